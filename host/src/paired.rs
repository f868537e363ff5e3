//! Connecting to a device this registry is paired with, ready for signed requests.

use crate::link::{Addr, Client, Patience};
use crate::registry::Registry;
use anyhow::{bail, Context, Result};

/// Connects to a device this registry is paired with, ready for signed requests.
pub fn connect_paired(registry: &Registry, addr: &Addr) -> Result<Client> {
    connect_paired_with(registry, addr, Patience::default())
}

/// [`connect_paired`] with explicit timeouts and retries.
pub fn connect_paired_with(registry: &Registry, addr: &Addr, patience: Patience) -> Result<Client> {
    let record = registry.device(&addr.to_string())?.with_context(|| {
        format!("no pairing with {addr} in this registry: run `facegate pair --device {addr}` first")
    })?;
    let mut client = Client::connect(addr, patience).with_context(|| format!("connecting to {addr}"))?;
    if !client.info.paired {
        bail!("{addr} has no host key (was it reset?): open its pairing window and run `facegate pair` again");
    }
    client.authenticate(record.key);
    Ok(client)
}

/// The devices named, or every device paired with this registry when none is.
pub fn named_or_all(registry: &Registry, named: &[Addr]) -> Result<Vec<Addr>> {
    if !named.is_empty() {
        return Ok(named.to_vec());
    }
    registry.devices()?.iter().map(|d| d.addr.parse().map_err(anyhow::Error::from)).collect()
}
