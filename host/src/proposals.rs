//! Pulling proposed templates from a device into the registry for review: list them (signed:
//! they carry embeddings), file them, then tell the device to forget the ones on record, so a
//! lost reply at any step files nothing twice and loses nothing.

use crate::link::Addr;
use crate::paired::connect_paired;
use crate::registry::Registry;
use anyhow::{bail, Context, Result};
use facegate_proto::{Capabilities, Proposal, Request, Response, DROP_PER_MESSAGE, PROPOSALS_PER_PAGE};

/// What one device gave.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pulled {
    pub addr: String,
    pub device: String,
    /// Proposals the device sent.
    pub pulled: usize,
    /// `false`: the device does not keep proposals (an older build, or `[updates] enabled = false`).
    pub supported: bool,
}

pub fn pull(registry: &mut Registry, addr: &Addr) -> Result<Pulled> {
    let mut client = connect_paired(registry, addr)?;
    let device = client.info.device_id.to_string();
    if !client.info.capabilities.contains(Capabilities::PROPOSALS) {
        return Ok(Pulled { addr: addr.to_string(), device, pulled: 0, supported: false });
    }
    let mut all: Vec<Proposal> = Vec::new();
    let mut cursor = 0;
    loop {
        let request = Request::ListProposals { cursor, limit: PROPOSALS_PER_PAGE as u16 };
        let Response::Proposals(page) = client.request(request)? else { bail!("unexpected reply to ListProposals") };
        all.extend(page.items);
        match page.next {
            Some(n) if n > cursor => cursor = n,
            _ => break,
        }
    }
    let on_record = registry.file_proposals(&addr.to_string(), &all).context("filing the proposals")?;
    for ids in on_record.chunks(DROP_PER_MESSAGE) {
        let request = Request::DropProposals { ids: ids.iter().copied().collect() };
        let Response::ProposalsDropped { .. } = client.request(request)? else {
            bail!("unexpected reply to DropProposals")
        };
    }
    Ok(Pulled { addr: addr.to_string(), device, pulled: all.len(), supported: true })
}
