//! `facegate sync`: bring each device to the registry's set of templates (the algorithm is
//! [`crate::sync`]); prints what changed on each.

use crate::link::Addr;
use crate::registry::Registry;
use crate::sync::{sync_device, SyncOutcome};
use anyhow::{bail, Result};
use clap::Args;

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Devices to sync (repeatable); default: every paired device in the registry.
    #[arg(long = "device")]
    pub devices: Vec<Addr>,
    #[arg(long)]
    pub json: bool,
}

/// Syncs every requested (or every paired) device; fails if any failed, after trying all.
pub fn run(registry: &mut Registry, args: &SyncArgs) -> Result<Vec<SyncOutcome>> {
    let addrs = crate::paired::named_or_all(registry, &args.devices)?;
    if addrs.is_empty() {
        bail!("no devices: pair one with `facegate pair --device ADDR` or pass --device");
    }
    let mut outcomes = Vec::new();
    let mut failures = 0;
    for addr in &addrs {
        match sync_device(registry, addr, !args.json) {
            Ok(o) => {
                if args.json {
                    println!("{}", serde_json::to_string(&o)?);
                } else if o.up_to_date {
                    println!(
                        "{} ({}): up to date, {} templates, generation {}",
                        o.device, o.addr, o.templates, o.generation
                    );
                } else {
                    println!(
                        "{} ({}): +{} added, -{} removed, ~{} changed -> {} templates, generation {}",
                        o.device, o.addr, o.added, o.removed, o.changed, o.templates, o.generation
                    );
                }
                outcomes.push(o);
            }
            Err(e) => {
                failures += 1;
                eprintln!("{addr}: sync failed: {e:#}");
            }
        }
    }
    if failures > 0 {
        bail!("{failures} of {} devices failed to sync (they keep their previous set)", addrs.len());
    }
    Ok(outcomes)
}
