//! `facegate templates review|history|rollback`: proposed templates from the devices, reviewed
//! by an administrator, audited, reversible.

use crate::link::Addr;
use crate::proposals;
use crate::registry::{FiledProposal, Registry};
use anyhow::{bail, Result};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Pull proposals from the devices, then accept or reject them; lists what still waits.
    Review(ReviewArgs),
    /// A person's templates (enrolment or update) and every proposal filed for them.
    History(HistoryArgs),
    /// Take a person's update templates away again (all, or those after --to); sync carries it.
    Rollback(RollbackArgs),
}

#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// Devices to pull from (repeatable); default: every paired device. `--offline`: none.
    #[arg(long = "device")]
    pub devices: Vec<Addr>,
    /// Review only what the registry already holds.
    #[arg(long)]
    pub offline: bool,
    /// Accept these proposals (ids as listed); repeatable.
    #[arg(long)]
    pub accept: Vec<i64>,
    /// Reject these proposals; repeatable.
    #[arg(long)]
    pub reject: Vec<i64>,
    /// Accept every pending proposal (auto-accept; off unless asked for).
    #[arg(long, conflicts_with = "reject_all")]
    pub accept_all: bool,
    /// Reject every pending proposal.
    #[arg(long)]
    pub reject_all: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    pub name: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    pub name: String,
    /// Keep update templates up to and including this template id; default: remove them all.
    #[arg(long)]
    pub to: Option<u32>,
}

fn when(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map_or_else(|_| ms.to_string(), |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
}

fn line(p: &FiledProposal) -> String {
    format!(
        "{:>5}  {:<20} {}  score {:.3} (threshold {:.3})  face {} px, sharpness {:.0}, yaw {:+.0}°  {}  [{}]",
        p.id,
        p.person,
        when(p.granted_ms),
        p.score,
        p.threshold,
        p.face_px,
        p.sharpness,
        p.yaw_deg,
        p.device,
        p.status
    )
}

pub fn review(registry: &mut Registry, args: &ReviewArgs) -> Result<()> {
    let addrs = if args.offline { Vec::new() } else { crate::paired::named_or_all(registry, &args.devices)? };
    let mut failures = 0;
    for addr in &addrs {
        match proposals::pull(registry, addr) {
            Ok(p) if !p.supported => eprintln!("{} ({}): keeps no proposals", p.device, p.addr),
            Ok(p) => eprintln!("{} ({}): {} proposal(s) pulled", p.device, p.addr, p.pulled),
            Err(e) => {
                failures += 1;
                eprintln!("{addr}: could not pull proposals: {e:#}");
            }
        }
    }
    // The ids named first; then --accept-all / --reject-all take whatever still waits.
    for &id in &args.accept {
        let t = registry.accept_proposal(id)?;
        eprintln!("proposal {id} accepted: template {t} (run `facegate sync` to send it)");
    }
    for &id in &args.reject {
        registry.reject_proposal(id)?;
        eprintln!("proposal {id} rejected");
    }
    if args.accept_all || args.reject_all {
        for p in registry.pending_proposals()? {
            if args.accept_all {
                let t = registry.accept_proposal(p.id)?;
                eprintln!("proposal {} accepted: template {t} (run `facegate sync` to send it)", p.id);
            } else {
                registry.reject_proposal(p.id)?;
                eprintln!("proposal {} rejected", p.id);
            }
        }
    }
    let pending = registry.pending_proposals()?;
    if args.json {
        println!("{}", serde_json::to_string(&pending)?);
    } else if pending.is_empty() {
        println!("no proposals waiting for review");
    } else {
        for p in &pending {
            println!("{}", line(p));
        }
        println!("accept with --accept ID, reject with --reject ID");
    }
    if failures > 0 {
        bail!("{failures} of {} devices could not be reached; their proposals stay on them", addrs.len());
    }
    Ok(())
}

pub fn history(registry: &Registry, args: &HistoryArgs) -> Result<()> {
    let (templates, proposals) = registry.template_history(&args.name)?;
    if args.json {
        println!("{}", serde_json::json!({ "templates": templates, "proposals": proposals }));
        return Ok(());
    }
    println!("templates");
    for t in &templates {
        println!("{:>7}  {:<9}  {}  {}", t.template_id, t.origin, when(t.created_ms), t.source);
    }
    if !proposals.is_empty() {
        println!("proposals");
        for p in &proposals {
            let decided = p.decided_ms.map_or_else(String::new, |ms| format!(", decided {}", when(ms)));
            println!("{}{decided}", line(p));
        }
    }
    Ok(())
}

pub fn rollback(registry: &mut Registry, args: &RollbackArgs) -> Result<()> {
    let removed = registry.rollback_updates(&args.name, args.to)?;
    if removed.is_empty() {
        println!("{}: no update templates to remove", args.name);
    } else {
        let ids: Vec<String> = removed.iter().map(u32::to_string).collect();
        println!("{}: removed update template(s) {} (run `facegate sync` to send it)", args.name, ids.join(", "));
    }
    Ok(())
}
