//! What a run of the loop amounts to: throughput and decision latency.

use super::KioskStats;
use facegate_proto::Decision;
use std::fmt;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub frames: u64,
    pub dropped: u64,
    pub embedded: u64,
    pub second_looks: u64,
    /// Frames per second of processing time (what the pipeline can sustain).
    pub fps_capacity: f64,
    /// Frames per second of wall time (includes waiting for the source).
    pub fps_wall: f64,
    pub granted: usize,
    pub denied: usize,
    pub unknown: usize,
    pub locked_out: usize,
    pub spoof: usize,
    /// Recognised but outside their access rules.
    pub not_allowed: usize,
    /// Deciding frame captured -> decision, median and p95, ms.
    pub decision_ms_median: f64,
    pub decision_ms_p95: f64,
    /// First frame of the visitor -> decision, median and p95, ms.
    pub visit_ms_median: f64,
    pub visit_ms_p95: f64,
}

fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

impl Summary {
    pub fn of(s: &KioskStats) -> Summary {
        let count = |d: Decision| s.decisions.iter().filter(|r| r.decision == d).count();
        let ms = |f: fn(&super::DecisionRecord) -> std::time::Duration| -> Vec<f64> {
            s.decisions.iter().map(|r| f(r).as_secs_f64() * 1e3).collect()
        };
        let per_s = |d: std::time::Duration| if d.is_zero() { 0.0 } else { s.frames as f64 / d.as_secs_f64() };
        Summary {
            frames: s.frames,
            dropped: s.dropped,
            embedded: s.embedded,
            second_looks: s.second_looks,
            fps_capacity: per_s(s.busy),
            fps_wall: per_s(s.wall),
            granted: count(Decision::Granted),
            denied: count(Decision::Denied),
            unknown: count(Decision::Unknown),
            locked_out: count(Decision::LockedOut),
            spoof: count(Decision::SpoofSuspected),
            not_allowed: count(Decision::NotAllowedNow),
            decision_ms_median: quantile(ms(|r| r.latency), 0.5),
            decision_ms_p95: quantile(ms(|r| r.latency), 0.95),
            visit_ms_median: quantile(ms(|r| r.track_latency), 0.5),
            visit_ms_p95: quantile(ms(|r| r.track_latency), 0.95),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} frames ({} embedded, {} second looks, {} dropped), {:.1} fps capacity; granted {}, denied {}, unknown {}, \
             locked out {}, spoof {}, not allowed now {}; decision latency median {:.0} ms (p95 {:.0}), visit {:.0} ms (p95 {:.0})",
            self.frames,
            self.embedded,
            self.second_looks,
            self.dropped,
            self.fps_capacity,
            self.granted,
            self.denied,
            self.unknown,
            self.locked_out,
            self.spoof,
            self.not_allowed,
            self.decision_ms_median,
            self.decision_ms_p95,
            self.visit_ms_median,
            self.visit_ms_p95
        )
    }
}
