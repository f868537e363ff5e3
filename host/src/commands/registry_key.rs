//! `facegate registry-key --new FILE`: the key a shared (PostgreSQL) registry seals device
//! pairing keys with, made once by its first administrator and handed to the others out of band.

use crate::registry::{RegistryKey, KEY_FILE_ENV};
use anyhow::{Context, Result};
use clap::Args;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  facegate registry-key --new ~/.config/facegate/registry.key\n  \
                        export FACEGATE_REGISTRY_KEY_FILE=~/.config/facegate/registry.key")]
pub struct RegistryKeyArgs {
    /// Write a new random key here (created private; an existing file is never overwritten).
    #[arg(long, value_name = "FILE")]
    pub new: PathBuf,
}

pub fn run(args: &RegistryKeyArgs) -> Result<()> {
    let key = RegistryKey::generate();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&args.new)
        .with_context(|| format!("creating {} (an existing key file is never overwritten)", args.new.display()))?;
    writeln!(file, "{}", key.to_hex())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", args.new.display()))?;
    println!(
        "registry key written to {}; point {KEY_FILE_ENV} at it, and give it to the other administrators \
         out of band (it is not stored in the registry)",
        args.new.display()
    );
    Ok(())
}
