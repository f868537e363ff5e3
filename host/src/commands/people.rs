//! `facegate list`, `facegate remove NAME`, `facegate rename OLD NEW`, `facegate login NAME LOGIN`.

use crate::registry::Registry;
use anyhow::{Context, Result};
use clap::Args;

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    pub name: String,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    pub old: String,
    pub new: String,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The enrolled person.
    pub name: String,
    /// The Unix login they unlock.
    #[arg(required_unless_present = "remove", conflicts_with = "remove")]
    pub login: Option<String>,
    /// Take the person's login away.
    #[arg(long)]
    pub remove: bool,
}

pub fn login(registry: &mut Registry, args: &LoginArgs) -> Result<()> {
    let name = args.name.trim();
    let Some(login) = &args.login else {
        let removed = registry.remove_login(name).with_context(|| format!("removing {name}'s login"))?;
        match removed {
            true => println!("{name} no longer unlocks a login; run `facegate sync` to update devices"),
            false => println!("{name} had no login"),
        }
        return Ok(());
    };
    let id = registry.set_login(name, login).with_context(|| format!("mapping login {login}"))?;
    println!("{name} (id {id}) unlocks login {login}; run `facegate sync` to update devices");
    Ok(())
}

pub fn list(registry: &Registry, args: &ListArgs) -> Result<()> {
    let people = registry.people()?;
    let cards: std::collections::HashMap<_, _> = registry.cards()?.into_iter().collect();
    let logins: std::collections::HashMap<_, _> = registry.logins()?.into_iter().map(|(l, p)| (p, l)).collect();
    if args.json {
        let v: Vec<serde_json::Value> = people
            .iter()
            .map(|p| {
                serde_json::json!({
                    "id": p.id, "name": p.name, "templates": p.templates, "created_ms": p.created_ms,
                    "card": cards.get(&p.id).map(|c| c.to_string()), "login": logins.get(&p.id),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    if people.is_empty() {
        println!("nobody enrolled yet: `facegate enroll NAME PHOTO`");
    }
    for p in &people {
        let mut extra = String::new();
        if let Some(c) = cards.get(&p.id) {
            extra += &format!("  card {c}");
        }
        if let Some(l) = logins.get(&p.id) {
            extra += &format!("  login {l}");
        }
        println!("{:>5}  {:<40} {} template(s){extra}", p.id, p.name, p.templates);
    }
    let devices = registry.devices()?;
    if !devices.is_empty() {
        println!();
        for d in devices {
            let synced = d.last_generation.map_or("never synced".to_string(), |g| format!("synced at generation {g}"));
            println!("device {} at {} (model {}): {synced}", d.device_id, d.addr, d.model_id);
        }
    }
    Ok(())
}

pub fn remove(registry: &mut Registry, args: &RemoveArgs) -> Result<()> {
    let n = registry.remove_person(&args.name).with_context(|| format!("removing {}", args.name))?;
    println!("removed {} and {n} template(s); run `facegate sync` to remove them from devices", args.name);
    Ok(())
}

pub fn rename(registry: &mut Registry, args: &RenameArgs) -> Result<()> {
    let p = registry.rename_person(&args.old, &args.new).with_context(|| format!("renaming {}", args.old))?;
    println!("renamed {} to {} (id {}); run `facegate sync` to update devices", args.old, p.name, p.id);
    Ok(())
}
