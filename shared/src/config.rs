//! Device configuration as typed settings (no stringly-typed keys).

use serde::{Deserialize, Serialize};

/// How the accept threshold is expressed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Threshold {
    /// Raw cosine-similarity threshold in `[-1, 1]`; a match needs `score >= t`.
    Cosine(f32),
    /// Target false-accept rate per comparison in `(0, 1)` (verify mode: one claimed
    /// person); the device maps it to a cosine threshold with its calibration table.
    FarTarget(f32),
    /// Target false-positive identification rate in `(0, 1)` (identify mode): the share of
    /// stranger visits matched to someone. The device derives the per-comparison rate from it
    /// and the number of enrolled templates. Appended: older peers never send it.
    FpirTarget(f32),
}

/// A device's promise in identify mode unless configured: one stranger visit in 100 matched
/// to someone.
pub const DEFAULT_FPIR: f32 = 1e-2;
/// A device's per-comparison promise in verify mode unless configured.
pub const DEFAULT_FAR: f32 = 1e-3;

/// One configurable setting with its value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Setting {
    /// Match acceptance threshold.
    Threshold(Threshold),
    /// Grant only if `required` of the last `window` frames agree on the same
    /// person (`1 <= required <= window`).
    Consensus { required: u8, window: u8 },
    /// Liveness (anti-spoofing) check on or off.
    Liveness(bool),
    /// After `max_failures` denials within `window_secs`, refuse for
    /// `cooldown_secs`. `max_failures == 0` disables lockout.
    Lockout { max_failures: u8, window_secs: u16, cooldown_secs: u16 },
}

/// Key naming a [`Setting`] (for `GetConfig`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConfigKey {
    Threshold,
    Consensus,
    Liveness,
    Lockout,
}

impl ConfigKey {
    pub const ALL: [ConfigKey; 4] =
        [ConfigKey::Threshold, ConfigKey::Consensus, ConfigKey::Liveness, ConfigKey::Lockout];
}

impl Setting {
    /// The key this setting belongs to.
    pub const fn key(&self) -> ConfigKey {
        match self {
            Setting::Threshold(_) => ConfigKey::Threshold,
            Setting::Consensus { .. } => ConfigKey::Consensus,
            Setting::Liveness(_) => ConfigKey::Liveness,
            Setting::Lockout { .. } => ConfigKey::Lockout,
        }
    }

    /// Range check; the device answers `InvalidConfig` when this fails.
    pub fn validate(&self) -> Result<(), crate::ErrorCode> {
        let ok = match *self {
            Setting::Threshold(Threshold::Cosine(t)) => (-1.0..=1.0).contains(&t),
            Setting::Threshold(Threshold::FarTarget(f) | Threshold::FpirTarget(f)) => f > 0.0 && f < 1.0,
            Setting::Consensus { required, window } => required >= 1 && required <= window,
            Setting::Liveness(_) => true,
            Setting::Lockout { max_failures, window_secs, cooldown_secs } => {
                max_failures == 0 || (window_secs > 0 && cooldown_secs > 0)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(crate::ErrorCode::InvalidConfig)
        }
    }
}
