//! Syncing a device to the registry's set of templates with the protocol's atomic sync session
//! (begin / chunks / commit with count and digest). The device swaps its store in one write on
//! commit, so an interrupted sync leaves the old complete set, and running it again completes it.

use crate::batch::progress;
use crate::link::{Addr, Client, LinkError, Patience};
use crate::paired::connect_paired_with;
use crate::registry::{DoorAccess, Registry, SyncRecord, OUTCOME_COMMITTED};
use anyhow::{bail, Context, Result};
use facegate_proto::{
    AccessEntry, CardEntry, ErrorCode, LoginEntry, Request, Response, SyncDigest, Template, TemplateSummary,
    ACCESS_PER_MESSAGE, CARDS_PER_MESSAGE, MAX_LOGINS, MAX_SYNC_CHUNK,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

/// What a sync did to one device.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SyncOutcome {
    pub device: String,
    pub addr: String,
    pub added: u32,
    pub removed: u32,
    pub changed: u32,
    pub templates: u32,
    pub generation: u64,
    pub up_to_date: bool,
    pub retries: u64,
    /// SHA-256 sync digest of the set the device now holds (hex).
    pub digest: String,
    /// Logins mapped on the device (local unlock).
    pub logins: u32,
    /// Cards the device reports to its access-control panel.
    pub cards: u32,
    /// People with access rules on the device (validity dates or time windows).
    pub access_rules: u32,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Every template summary on the device, by id.
pub fn device_templates(client: &mut Client) -> Result<BTreeMap<u32, TemplateSummary>> {
    let mut out = BTreeMap::new();
    let mut cursor = 0;
    loop {
        let Response::Templates(page) = client.request(Request::ListTemplates { cursor, limit: 32 })? else {
            bail!("unexpected reply to ListTemplates");
        };
        out.extend(page.items.into_iter().map(|t| (t.id, t)));
        match page.next {
            Some(next) if next > cursor => cursor = next,
            _ => return Ok(out),
        }
    }
}

/// Counts (added, removed, changed) going from the device's set to `wanted`.
fn diff(device: &BTreeMap<u32, TemplateSummary>, wanted: &[Template]) -> (u32, u32, u32) {
    let mut added = 0;
    let mut changed = 0;
    for t in wanted {
        match device.get(&t.id) {
            None => added += 1,
            Some(s) if *s != t.summary() => changed += 1,
            Some(_) => {}
        }
    }
    let keep: BTreeSet<u32> = wanted.iter().map(|t| t.id).collect();
    let removed = device.keys().filter(|id| !keep.contains(id)).count() as u32;
    (added, removed, changed)
}

/// Syncs one device; the registry records the attempt either way.
pub fn sync_device(registry: &mut Registry, addr: &Addr, show_progress: bool) -> Result<SyncOutcome> {
    sync_device_with(registry, addr, Patience::default(), show_progress)
}

/// [`sync_device`] with explicit timeouts and retries (e.g. for a noisy line).
pub fn sync_device_with(
    registry: &mut Registry,
    addr: &Addr,
    patience: Patience,
    show_progress: bool,
) -> Result<SyncOutcome> {
    let started = now_ms();
    let result = sync_inner(registry, addr, patience, show_progress);
    let record = match &result {
        Ok(o) => SyncRecord {
            addr: addr.to_string(),
            started_ms: started,
            finished_ms: Some(now_ms()),
            outcome: if o.up_to_date { "up-to-date".into() } else { OUTCOME_COMMITTED.into() },
            added: o.added,
            removed: o.removed,
            changed: o.changed,
            generation: Some(o.generation),
            digest: hex::decode(&o.digest).ok().and_then(|d| d.try_into().ok()),
        },
        Err(e) => SyncRecord {
            addr: addr.to_string(),
            started_ms: started,
            finished_ms: Some(now_ms()),
            outcome: format!("failed: {e:#}"),
            added: 0,
            removed: 0,
            changed: 0,
            generation: None,
            digest: None,
        },
    };
    if let Err(e) = registry.record_sync(&record) {
        tracing::warn!(error = %e, "could not record the sync in the registry");
    }
    result
}

fn sync_inner(registry: &mut Registry, addr: &Addr, patience: Patience, show_progress: bool) -> Result<SyncOutcome> {
    let mut client = connect_paired_with(registry, addr, patience)?;
    let model = client.info.model_id.to_string();
    let (wanted, access) = door_set(registry, &addr.to_string(), &model)?;
    if wanted.is_empty() && !access.restricted() {
        let others: Vec<String> = registry.model_ids()?.into_iter().filter(|m| *m != model).collect();
        if !others.is_empty() {
            bail!(
                "{addr} runs embedding model {model}, but the registry's templates were made with {}: \
                 re-enrol with `--model` matching the device, or update the device",
                others.join(", ")
            );
        }
    }
    let on_device = device_templates(&mut client)?;
    let (added, removed, changed) = diff(&on_device, &wanted);
    let generation = client.info.store_generation;
    let digest = set_digest(&wanted);
    let record = registry.device(&addr.to_string())?;
    let unchanged = added == 0 && removed == 0 && changed == 0;
    if unchanged && record.as_ref().is_some_and(|r| r.last_generation == Some(generation)) {
        let (logins, cards, access_rules) = sync_credentials(&mut client, registry, &wanted, &access)?;
        return Ok(SyncOutcome {
            logins,
            cards,
            access_rules,
            ..outcome(&client, (0, 0, 0), wanted.len(), generation, true, &digest)
        });
    }
    let total = u32::try_from(wanted.len()).context("too many templates")?;
    let chunk = match client.request(Request::SyncBegin { expected_generation: generation, total_templates: total }) {
        Ok(Response::SyncStarted { max_chunk_templates }) => usize::from(max_chunk_templates).clamp(1, MAX_SYNC_CHUNK),
        Ok(other) => bail!("unexpected reply to SyncBegin: {other:?}"),
        Err(e) if e.device_code() == Some(ErrorCode::GenerationMismatch) => {
            bail!("{addr} changed while we looked at it (another host syncing?); run sync again")
        }
        Err(e) => return Err(e).context("starting the sync"),
    };
    let bar = progress(wanted.len(), &format!("sync {}", client.info.device_id));
    if !show_progress {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    for (seq, part) in wanted.chunks(chunk).enumerate() {
        let templates = facegate_proto::heapless::Vec::from_slice(part)
            .map_err(|_| anyhow::anyhow!("chunk larger than the protocol allows"))?;
        let seq = u32::try_from(seq).context("too many chunks")?;
        match client.request(Request::SyncChunk { seq, templates }) {
            Ok(Response::SyncChunkAccepted { .. }) => bar.inc(part.len() as u64),
            Ok(other) => bail!("unexpected reply to chunk {seq}: {other:?}"),
            Err(e) => {
                // Best effort: the device drops the staged set on abort or when we leave.
                let _ = client.request(Request::SyncAbort);
                return Err(e).with_context(|| format!("sending chunk {seq}"));
            }
        }
    }
    bar.finish_and_clear();
    let new_generation = match client.request(Request::SyncCommit { template_count: total, digest }) {
        Ok(Response::SyncCommitted { generation, .. }) => generation,
        Ok(other) => bail!("unexpected reply to SyncCommit: {other:?}"),
        // Our commit landed but its reply was lost, and the resend found no session: check.
        Err(LinkError::Device { code: ErrorCode::NoSyncSession, .. }) if client.stats.retries > 0 => {
            client.hello()?;
            let now = device_templates(&mut client)?;
            if diff(&now, &wanted) != (0, 0, 0) || client.info.store_generation == generation {
                bail!("the commit's reply was lost and the device does not hold the new set: run sync again");
            }
            client.info.store_generation
        }
        Err(e) if e.device_code() == Some(ErrorCode::GenerationMismatch) => {
            bail!("{addr} changed while we sent the set (another host syncing?); nothing was replaced: run sync again")
        }
        Err(e) => return Err(e).context("committing the sync"),
    };
    let (logins, cards, access_rules) = sync_credentials(&mut client, registry, &wanted, &access)?;
    // `sync_device` records the commit (generation and digest) in the registry.
    Ok(SyncOutcome {
        logins,
        cards,
        access_rules,
        ..outcome(&client, (added, removed, changed), wanted.len(), new_generation, false, &digest)
    })
}

/// What the door at `addr` (running `model`) should hold: the templates of the people it lets
/// in (everyone's when it has no rules), in sync order, and its access rules.
pub fn door_set(registry: &Registry, addr: &str, model: &str) -> Result<(Vec<Template>, DoorAccess)> {
    let access = registry.door_access(addr)?;
    let wanted = registry.wire_templates(model)?.into_iter().filter(|t| access.admits(t.person_id)).collect();
    Ok((wanted, access))
}

/// The digest of a template set, as the device computes it at commit.
pub fn set_digest(templates: &[Template]) -> [u8; 32] {
    let mut digest = SyncDigest::new();
    templates.iter().for_each(|t| digest.update(t));
    digest.finalize()
}

/// Sends the logins, cards and access rules of the people this device holds templates for.
/// Always sent, an empty map included, so what was removed in the registry is removed on the
/// device; a device from before one of them is still synced while it needs none.
fn sync_credentials(
    client: &mut Client,
    registry: &Registry,
    wanted: &[Template],
    access: &DoorAccess,
) -> Result<(u32, u32, u32)> {
    let people: BTreeSet<u32> = wanted.iter().map(|t| t.person_id).collect();
    let logins = sync_logins(client, registry, &people)?;
    let cards: Vec<CardEntry> = registry
        .cards()?
        .into_iter()
        .filter(|(p, _)| people.contains(p))
        .map(|(person_id, card)| CardEntry { person_id, card })
        .collect();
    let cards =
        send_in_pieces(client, &cards, CARDS_PER_MESSAGE, "cards (access-control panels)", |first, last, c| {
            Request::SetCards { first, last, cards: c.iter().cloned().collect() }
        })?;
    let entries: Vec<AccessEntry> = access.entries.iter().filter(|e| people.contains(&e.person_id)).cloned().collect();
    let rules = send_in_pieces(client, &entries, ACCESS_PER_MESSAGE, "access rules", |first, last, e| {
        Request::SetAccess { first, last, entries: e.iter().cloned().collect() }
    })?;
    Ok((logins, cards, rules))
}

/// Sends `items` as a map in pieces the device stages and stores at the last (an empty map is
/// one empty piece); the count the device stored.
fn send_in_pieces<T>(
    client: &mut Client,
    items: &[T],
    per_message: usize,
    what: &str,
    request: impl Fn(bool, bool, &[T]) -> Request,
) -> Result<u32> {
    let pieces: Vec<&[T]> = if items.is_empty() { vec![&[]] } else { items.chunks(per_message).collect() };
    let mut stored = 0;
    for (i, piece) in pieces.iter().enumerate() {
        match client.request(request(i == 0, i + 1 == pieces.len(), piece)) {
            Ok(Response::CardsStored { count, .. } | Response::AccessStored { count, .. }) => stored = count,
            Ok(other) => bail!("unexpected reply to the {what}: {other:?}"),
            Err(e) if e.device_code() == Some(ErrorCode::Unsupported) && items.is_empty() => return Ok(0),
            Err(e) if e.device_code() == Some(ErrorCode::Unsupported) => {
                bail!("{} predates {what}: update its firmware, or remove them from the registry", client.addr)
            }
            Err(e) => return Err(e).with_context(|| format!("sending the {what}")),
        }
    }
    Ok(stored)
}

fn sync_logins(client: &mut Client, registry: &Registry, people: &BTreeSet<u32>) -> Result<u32> {
    let mut logins = facegate_proto::heapless::Vec::<LoginEntry, MAX_LOGINS>::new();
    for (login, person_id) in registry.logins()?.into_iter().filter(|(_, p)| people.contains(p)) {
        let entry = LoginEntry { person_id, login: facegate_proto::bounded_str(&login) };
        if logins.push(entry).is_err() {
            bail!("more than {MAX_LOGINS} logins for one device: an unlock device serves the people of one computer");
        }
    }
    let none = logins.is_empty();
    match client.request(Request::SetLogins { logins }) {
        Ok(Response::LoginsStored { count }) => Ok(u32::from(count)),
        Ok(other) => bail!("unexpected reply to SetLogins: {other:?}"),
        Err(e) if e.device_code() == Some(ErrorCode::Unsupported) && none => Ok(0),
        Err(e) if e.device_code() == Some(ErrorCode::Unsupported) => {
            bail!("{} predates logins (local unlock): update its firmware, or remove the logins", client.addr)
        }
        Err(e) => Err(e).context("sending the logins"),
    }
}

fn outcome(
    client: &Client,
    (added, removed, changed): (u32, u32, u32),
    n: usize,
    gen: u64,
    same: bool,
    digest: &[u8; 32],
) -> SyncOutcome {
    SyncOutcome {
        device: client.info.device_id.to_string(),
        addr: client.addr.to_string(),
        added,
        removed,
        changed,
        templates: n as u32,
        generation: gen,
        up_to_date: same,
        retries: client.stats.retries,
        digest: hex::encode(digest),
        logins: 0,
        cards: 0,
        access_rules: 0,
    }
}
