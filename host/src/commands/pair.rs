//! `facegate pair --device ADDR`: give a device (with its pairing window open) a fresh shared
//! key and remember it in the registry.

use crate::link::{Addr, Client, Patience};
use crate::registry::Registry;
use anyhow::{bail, Context, Result};
use clap::Args;
use facegate_proto::{ConfigKey, Request, Response};
use rand::RngCore;

#[derive(Debug, Args)]
pub struct PairArgs {
    /// Device address: tcp:HOST:PORT or serial:/dev/ttyACM0[:BAUD].
    #[arg(long)]
    pub device: Addr,
}

pub fn run(registry: &mut Registry, args: &PairArgs) -> Result<()> {
    let info = pair(registry, &args.device)?;
    println!(
        "paired with {} at {} (model {}, {} templates)",
        info.device_id, args.device, info.model_id, info.template_count
    );
    Ok(())
}

/// Pairs with the device at `addr` and stores the key; returns what the device said of itself.
pub fn pair(registry: &mut Registry, addr: &Addr) -> Result<facegate_proto::DeviceInfo> {
    let args = PairArgs { device: addr.clone() };
    let mut client =
        Client::connect(&args.device, Patience::default()).with_context(|| format!("connecting to {}", args.device))?;
    if !client.info.pairing_open {
        bail!(
            "{} ({}) is not accepting pairing: start it with --allow-pairing, then pair within the window",
            args.device,
            client.info.device_id
        );
    }
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    match client.request(Request::Pair { key })? {
        Response::Paired => {}
        other => bail!("unexpected reply to pairing: {other:?}"),
    }
    // Prove the key works before keeping it.
    client.authenticate(key);
    client.request(Request::GetConfig { key: ConfigKey::Threshold }).context("checking the new key")?;
    registry
        .upsert_device(&args.device.to_string(), &client.info.device_id, &client.info.model_id, &key)
        .context("the device accepted the key but the registry could not store it: pair again")?;
    Ok(client.info.clone())
}
