//! `facegate events` (match decisions, live with --follow) and `facegate audit` (the device's
//! audit log).

use crate::link::{Addr, Client};
use crate::paired::connect_paired;
use crate::registry::Registry;
use anyhow::{bail, Result};
use clap::Args;
use facegate_proto::{AuditKind, AuditRecord, ConfigKey, Decision, MatchEvent, Request, Response};
use std::io::Write;
use std::time::Duration;

/// How often `events --follow` pings the device (its idle limit is ten minutes).
const FOLLOW_PING: Duration = Duration::from_secs(60);

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[arg(long)]
    pub device: Addr,
    /// Keep streaming decisions as they happen (Ctrl-C to stop).
    #[arg(long)]
    pub follow: bool,
    /// Stop following after this many seconds.
    #[arg(long, requires = "follow")]
    pub timeout: Option<f64>,
    /// Stop following after this many events.
    #[arg(long, requires = "follow")]
    pub count: Option<usize>,
    /// Past decisions to show first (from the audit log).
    #[arg(long, default_value_t = 10)]
    pub last: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[arg(long)]
    pub device: Addr,
    /// First record to show (sequence number).
    #[arg(long, default_value_t = 1)]
    pub since: u64,
    #[arg(long)]
    pub json: bool,
}

/// Every audit record from `since` on.
pub fn fetch_audit(client: &mut Client, since: u64) -> Result<Vec<AuditRecord>> {
    let mut out = Vec::new();
    let mut cursor = since;
    loop {
        let Response::Audit(page) = client.request(Request::FetchAudit { since_seq: cursor, limit: 16 })? else {
            bail!("unexpected reply to FetchAudit");
        };
        out.extend(page.records);
        match page.next_seq {
            Some(n) if n > cursor => cursor = n,
            _ => return Ok(out),
        }
    }
}

fn name_of(registry: &Registry, person: Option<u32>) -> String {
    person
        .and_then(|p| registry.person_by_id(p).ok().flatten())
        .map(|p| p.name)
        .or_else(|| person.map(|p| format!("person {p}")))
        .unwrap_or_else(|| "-".into())
}

/// One event as JSON (names resolved through the registry).
pub fn event_json(registry: &Registry, e: &MatchEvent) -> serde_json::Value {
    serde_json::json!({
        "seq": e.event_seq,
        "frame": e.frame_counter,
        "decision": format!("{:?}", e.decision),
        "person_id": e.identity.map(|i| i.person_id),
        "template_id": e.identity.map(|i| i.template_id),
        "name": e.identity.map(|i| name_of(registry, Some(i.person_id))),
        "score": e.score,
        "liveness": e.liveness,
        "latency_ms": e.latency_ms,
    })
}

fn record_json(registry: &Registry, r: &AuditRecord) -> serde_json::Value {
    serde_json::json!({
        "seq": r.seq,
        "timestamp_ms": r.timestamp_ms,
        "kind": format!("{:?}", r.kind),
        "person_id": r.person_id,
        "name": r.person_id.map(|p| name_of(registry, Some(p))),
        "score": r.score,
        "detail": r.detail.as_str(),
    })
}

fn print_record(registry: &Registry, r: &AuditRecord, json: bool) {
    if json {
        println!("{}", record_json(registry, r));
    } else {
        let score = r.score.map(|s| format!("{s:.3}")).unwrap_or_default();
        println!(
            "#{:<6} {:>13} {:<16} {:<20} {:>6} {}",
            r.seq,
            r.timestamp_ms,
            format!("{:?}", r.kind),
            name_of(registry, r.person_id),
            score,
            r.detail
        );
    }
}

fn is_decision(kind: AuditKind) -> bool {
    matches!(
        kind,
        AuditKind::AccessGranted
            | AuditKind::AccessDenied
            | AuditKind::UnknownFace
            | AuditKind::LockedOut
            | AuditKind::SpoofSuspected
    )
}

pub fn run_audit(registry: &Registry, args: &AuditArgs) -> Result<()> {
    let mut client = connect_paired(registry, &args.device)?;
    for r in fetch_audit(&mut client, args.since)? {
        print_record(registry, &r, args.json);
    }
    Ok(())
}

pub fn run_events(registry: &Registry, args: &EventsArgs) -> Result<()> {
    let mut client = connect_paired(registry, &args.device)?;
    // A signed request shows the key, after which the device streams events to us.
    client.request(Request::GetConfig { key: ConfigKey::Threshold })?;
    if args.last > 0 {
        let decisions: Vec<AuditRecord> =
            fetch_audit(&mut client, 1)?.into_iter().filter(|r| is_decision(r.kind)).collect();
        for r in &decisions[decisions.len().saturating_sub(args.last)..] {
            print_record(registry, r, args.json);
        }
    }
    if !args.follow {
        return Ok(());
    }
    // Tells a person (or a test) that events from now on will be shown.
    eprintln!("following events from {} ({})", client.info.device_id, args.device);
    let deadline = args.timeout.map(|s| std::time::Instant::now() + Duration::from_secs_f64(s));
    let mut seen = 0usize;
    let mut last_ping = std::time::Instant::now();
    loop {
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) || args.count.is_some_and(|c| seen >= c) {
            return Ok(());
        }
        // The device closes sessions idle for ten minutes; a follower says it is still here.
        if last_ping.elapsed() >= FOLLOW_PING {
            client.request(Request::Ping { payload: 0 })?;
            last_ping = std::time::Instant::now();
        }
        let Some(e) = client.next_event(Duration::from_millis(200))? else { continue };
        seen += 1;
        if args.json {
            println!("{}", event_json(registry, &e));
        } else {
            let who = e.identity.map(|i| name_of(registry, Some(i.person_id))).unwrap_or_else(|| "-".into());
            let mark = match e.decision {
                Decision::Granted => "GRANTED",
                Decision::Denied => "DENIED",
                Decision::Unknown => "UNKNOWN",
                Decision::LockedOut => "LOCKED OUT",
                Decision::SpoofSuspected => "SPOOF?",
                Decision::NotAllowedNow => "NOT NOW",
            };
            println!("#{:<6} {mark:<10} {who:<24} score {:.3}  {} ms", e.event_seq, e.score, e.latency_ms);
        }
        // Followers are often piped into other tools: every event goes out at once.
        let _ = std::io::stdout().flush();
    }
}
