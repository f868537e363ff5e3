//! Access rules: `facegate group ...`, `facegate door ...`, `facegate valid NAME`, and
//! `facegate doors` (each paired device with its groups and whether it is behind the registry).

use crate::link::Addr;
use crate::registry::{Registry, Validity};
use crate::sync::{door_set, set_digest};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Add an access group.
    Add { name: String },
    /// Remove an access group (its members stay enrolled; doors stop letting it in).
    Remove { name: String },
    /// Show a group's members, or change them with --add / --remove.
    #[command(after_help = "Example:\n  facegate group members Staff --add \"Ada Lovelace\" \"Alan Turing\"")]
    Members {
        group: String,
        /// People to add (enrolled names).
        #[arg(long, num_args = 1.., value_name = "NAME")]
        add: Vec<String>,
        /// People to take out.
        #[arg(long, num_args = 1.., value_name = "NAME")]
        remove: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Every group and how many members it has.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DoorCommand {
    /// Let a group through a paired device, on a weekly schedule in the device's local time.
    #[command(
        after_help = "Example:\n  facegate door allow tcp:10.0.0.7:7700 Staff --schedule \"Mon-Fri 07:00-19:00\"\n  \
                            facegate door allow tcp:10.0.0.7:7700 Cleaners --schedule \"Mon-Fri 19:00-23:00; Sat 08:00-12:00\""
    )]
    Allow {
        device: Addr,
        group: String,
        /// Windows like "Mon-Fri 07:00-19:00; Sat 09:00-13:00" (an end before the start runs
        /// past midnight), or "always".
        #[arg(long, default_value = "always")]
        schedule: String,
    },
    /// Stop letting a group through a device.
    Deny { device: Addr, group: String },
    /// Let everyone enrolled through a device again, at any time (forgets its groups).
    Everyone { device: Addr },
    /// The groups a device lets in, and when (never given one: everyone enrolled, at any time).
    Show {
        device: Addr,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  facegate valid \"Sam Contractor\" --until 2027-03-31\n  facegate valid \"Sam Contractor\" --clear"
)]
// Nothing given would silently clear the dates: --clear says so.
#[command(group(clap::ArgGroup::new("dates").required(true).multiple(true).args(["from", "until", "clear"])))]
pub struct ValidArgs {
    pub name: String,
    /// First day the person may pass (YYYY-MM-DD, the door's calendar).
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Last day the person may pass, inclusive.
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// No dates: valid from now on, with no end.
    #[arg(long, conflicts_with_all = ["from", "until"])]
    pub clear: bool,
}

#[derive(Debug, Args)]
pub struct DoorsArgs {
    #[arg(long)]
    pub json: bool,
}

pub fn group(registry: &mut Registry, cmd: &GroupCommand) -> Result<()> {
    match cmd {
        GroupCommand::Add { name } => {
            let g = registry.add_group(name).with_context(|| format!("adding group {name}"))?;
            println!("group {} added; add people with `facegate group members {} --add NAME...`", g.name, g.name);
        }
        GroupCommand::Remove { name } => {
            registry.remove_group(name).with_context(|| format!("removing group {name}"))?;
            println!("group {} removed; run `facegate sync` to update the doors", name.trim());
        }
        GroupCommand::Members { group, add, remove, json } => {
            if !add.is_empty() || !remove.is_empty() {
                let g = registry.change_members(group, add, remove).with_context(|| format!("changing {group}"))?;
                if !json {
                    println!("{}: {} member(s); run `facegate sync` to update the doors", g.name, g.members);
                }
            }
            let members = registry.members(group)?;
            if *json {
                let names: Vec<&str> = members.iter().map(|p| p.name.as_str()).collect();
                println!("{}", serde_json::json!({ "group": group.trim(), "members": names }));
            } else if add.is_empty() && remove.is_empty() {
                members.iter().for_each(|p| println!("{}", p.name));
            }
        }
        GroupCommand::List { json } => {
            let groups = registry.groups()?;
            if *json {
                println!("{}", serde_json::to_string(&groups)?);
            } else {
                groups.iter().for_each(|g| println!("{}\t{} member(s)", g.name, g.members));
            }
        }
    }
    Ok(())
}

pub fn door(registry: &mut Registry, cmd: &DoorCommand) -> Result<()> {
    match cmd {
        DoorCommand::Allow { device, group, schedule } => {
            let rule = registry.allow(&device.to_string(), group, schedule).with_context(|| format!("{device}"))?;
            println!("{device} lets {} in: {}; run `facegate sync` to update it", rule.group, rule.schedule);
        }
        DoorCommand::Deny { device, group } => match registry.disallow(&device.to_string(), group)? {
            true => println!("{device} no longer lets {} in; run `facegate sync` to update it", group.trim()),
            false => println!("{device} did not let {} in", group.trim()),
        },
        DoorCommand::Everyone { device } => {
            registry.open_to_everyone(&device.to_string()).with_context(|| format!("{device}"))?;
            println!("{device} lets everyone enrolled in, at any time; run `facegate sync` to update it");
        }
        DoorCommand::Show { device, json } => {
            let rules = registry.door_rules(&device.to_string())?;
            let restricted = registry.is_restricted(&device.to_string())?;
            if *json {
                let v = serde_json::json!({ "device": device.to_string(), "restricted": restricted, "rules": rules });
                println!("{v}");
            } else if !restricted {
                println!("{device}: no rules; everyone enrolled, at any time");
            } else if rules.is_empty() {
                println!("{device}: no group left; no one (`facegate door everyone {device}` lets everyone in again)");
            } else {
                rules.iter().for_each(|r| println!("{}\t{}", r.group, r.schedule));
            }
        }
    }
    Ok(())
}

pub fn valid(registry: &mut Registry, args: &ValidArgs) -> Result<()> {
    let validity = Validity { from: args.from.clone(), until: args.until.clone() };
    let id = registry.set_validity(&args.name, &validity).with_context(|| format!("{}'s dates", args.name.trim()))?;
    let shown = |d: &Option<String>| d.clone().unwrap_or_else(|| "-".into());
    println!(
        "{} (id {id}) valid from {} until {}; run `facegate sync` to update the doors",
        args.name.trim(),
        shown(&validity.from),
        shown(&validity.until)
    );
    Ok(())
}

/// One paired device as `facegate doors` shows it.
#[derive(Debug, serde::Serialize)]
pub struct DoorStatus {
    pub addr: String,
    pub device: String,
    /// Only its groups' members (none when `groups` is empty); `false`: everyone enrolled.
    pub restricted: bool,
    /// Groups it lets in, as `Group (schedule)`.
    pub groups: Vec<String>,
    pub last_sync_ms: Option<i64>,
    pub generation: Option<u64>,
    /// Templates the registry would send it now.
    pub templates: usize,
    /// The registry's set differs from the one it last committed (or it was never synced).
    pub behind: bool,
}

pub fn doors(registry: &Registry, args: &DoorsArgs) -> Result<()> {
    let mut out = Vec::new();
    for d in registry.devices()? {
        let (set, access) = door_set(registry, &d.addr, &d.model_id)?;
        let groups =
            registry.door_rules(&d.addr)?.into_iter().map(|r| format!("{} ({})", r.group, r.schedule)).collect();
        out.push(DoorStatus {
            behind: d.last_digest != Some(set_digest(&set)),
            restricted: access.restricted(),
            addr: d.addr,
            device: d.device_id,
            groups,
            last_sync_ms: d.last_sync_ms,
            generation: d.last_generation,
            templates: set.len(),
        });
    }
    if args.json {
        println!("{}", serde_json::to_string(&out)?);
        return Ok(());
    }
    for d in &out {
        let groups = match (d.restricted, d.groups.is_empty()) {
            (false, _) => "everyone".to_owned(),
            (true, true) => "no one".to_owned(),
            (true, false) => d.groups.join(", "),
        };
        let synced = d.generation.map_or("never synced".to_owned(), |g| format!("generation {g}"));
        let state = if d.behind { "BEHIND: run `facegate sync`" } else { "up to date" };
        println!("{} ({}): {groups}; {} templates; {synced}; {state}", d.device, d.addr, d.templates);
    }
    Ok(())
}
