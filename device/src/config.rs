//! The device configuration file (TOML). Every key is optional; command-line flags override
//! the file, and settings a paired host changed later (kept in the store) override both.
//!
//! ```toml
//! name = "front-door"
//! models = "/opt/facegate/models"
//! variant = "int8"             # embedding variant from the model manifest
//! mode = "identify"            # or "verify" with owner = <person id>
//! fpir = 1e-2                  # identify: stranger visits matched to someone; verify: far = 1e-3;
//!                              # either mode: threshold = 0.35 (cosine)
//! consensus = { required = 2, window = 3 }
//! liveness = true              # refuse a photo held up (models/liveness.toml; docs/LIVENESS.md)
//! liveness_threshold = 0.0087  # live probability a visit must reach (default: the measured one)
//! lockout = { max_failures = 5, window_secs = 60, cooldown_secs = 30 }
//! action = "/usr/local/bin/open-door"
//! camera = 0                  # V4L2 index (build feature `camera`)
//! store = "/var/lib/facegate"
//! listen = "127.0.0.1:7700"
//! serial = "/dev/ttyGS0"
//! max_frame_pixels = 8294400   # 3840x2160; larger frames are refused unread
//! unlock_socket = "/run/facegate/unlock.sock"  # the PAM module asks here
//! unlock_group = "facegate"    # may ask too (socket 0660); default root only (0600)
//! capture = "on-demand"        # camera only while unlocking (default with unlock_socket, no mode)
//!
//! [door]                       # an access-control panel, Wiegand, a relay (README: Connect to
//! authority = "device"         # an access-control panel); "panel": the panel opens the lock
//! osdp = "/dev/ttyUSB0"        # RS-485 adapter
//! osdp_address = 101           # 0-126
//! osdp_baud = 9600
//! osdp_scbk = "000102030405060708090a0b0c0d0e0f"  # or none: install mode, the panel sets a key
//! panel_timeout_ms = 3000      # panel authority: how long the screen waits for its answer
//! uncarded = "none"            # or "person-id": facility uncarded_facility, card = person id
//! relay = "gpiochip0:17"       # needs the `gpio` build feature
//! relay_ms = 3000
//! wiegand = "gpiochip0:5,6"    # D0,D1; needs the `gpio` build feature
//! wiegand_pulse_us = 50
//! wiegand_interval_us = 2000
//! ```

use crate::state::Settings;
use facegate_proto::DEFAULT_FAR;
use facegate_proto::{Setting, Threshold};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub struct ConsensusConfig {
    pub required: u8,
    pub window: u8,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub struct LockoutConfig {
    pub max_failures: u8,
    pub window_secs: u16,
    pub cooldown_secs: u16,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    pub name: Option<String>,
    pub models: Option<PathBuf>,
    pub variant: Option<String>,
    pub mode: Option<String>,
    pub owner: Option<u32>,
    pub far: Option<f32>,
    pub fpir: Option<f32>,
    pub threshold: Option<f32>,
    pub consensus: Option<ConsensusConfig>,
    pub liveness: Option<bool>,
    pub liveness_threshold: Option<f32>,
    pub lockout: Option<LockoutConfig>,
    pub action: Option<String>,
    pub action_timeout_secs: Option<u64>,
    /// The camera's V4L2 index (`--camera`).
    pub camera: Option<u32>,
    pub store: Option<PathBuf>,
    pub listen: Option<String>,
    pub serial: Option<String>,
    pub baud: Option<u32>,
    pub display_png: Option<PathBuf>,
    /// Frames with more pixels are refused from their header (default 3840x2160).
    pub max_frame_pixels: Option<u64>,
    /// Local unlock (the PAM module): the socket, the group that may use it besides root, and
    /// whether the camera runs continuously or only while someone is unlocking.
    pub unlock_socket: Option<PathBuf>,
    pub unlock_group: Option<String>,
    pub capture: Option<String>,
    /// The door's access-control panel, Wiegand output and relay.
    pub door: Option<crate::door::DoorConfig>,
    /// The IANA time zone the access rules' windows and dates are in (default: the system's).
    pub timezone: Option<String>,
    /// When a granted face is kept as a proposed template for review (`[updates]`).
    pub updates: Option<facegate_engine::updates::UpdatePolicy>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("config file {path}: {error}")]
    Parse { path: PathBuf, error: Box<toml::de::Error> },
    #[error("config: {0}")]
    Invalid(String),
}

impl DeviceConfig {
    pub fn load(path: &Path) -> Result<DeviceConfig, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|error| ConfigError::Read { path: path.to_path_buf(), error })?;
        toml::from_str(&text).map_err(|error| ConfigError::Parse { path: path.to_path_buf(), error: Box::new(error) })
    }

    /// The decision settings this file asks for, validated.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let mut s = Settings::default();
        let mut apply = |setting: Setting| {
            setting.validate().map_err(|_| ConfigError::Invalid(format!("{setting:?} is out of range")))?;
            s.apply(setting);
            Ok::<(), ConfigError>(())
        };
        let verify = self.mode.as_deref() == Some("verify");
        match (self.far, self.fpir, self.threshold) {
            (Some(far), None, None) => apply(Setting::Threshold(Threshold::FarTarget(far)))?,
            (None, Some(fpir), None) => apply(Setting::Threshold(Threshold::FpirTarget(fpir)))?,
            (None, None, Some(t)) => apply(Setting::Threshold(Threshold::Cosine(t)))?,
            (None, None, None) if verify => apply(Setting::Threshold(Threshold::FarTarget(DEFAULT_FAR)))?,
            (None, None, None) => {}
            _ => return Err(ConfigError::Invalid("set one of far, fpir or threshold".into())),
        }
        if let Some(c) = self.consensus {
            apply(Setting::Consensus { required: c.required, window: c.window })?;
        }
        if let Some(on) = self.liveness {
            apply(Setting::Liveness(on))?;
        }
        if let Some(t) = self.liveness_threshold.filter(|t| !(0.0..=1.0).contains(t)) {
            return Err(ConfigError::Invalid(format!("liveness_threshold {t} is not a probability (0..1)")));
        }
        if let Some(l) = self.lockout {
            apply(Setting::Lockout {
                max_failures: l.max_failures,
                window_secs: l.window_secs,
                cooldown_secs: l.cooldown_secs,
            })?;
        }
        Ok(s)
    }

    /// The template-update policy this file asks for (`[updates]`, else the defaults), validated.
    pub fn updates(&self) -> Result<facegate_engine::updates::UpdatePolicy, ConfigError> {
        let policy = self.updates.unwrap_or_default();
        policy.validate().map_err(|e| ConfigError::Invalid(format!("[updates]: {e}")))?;
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The packaged /etc/facegate/device.toml, with every commented setting switched on, is a
    /// config this build reads: what it documents exists, and says the defaults.
    #[test]
    fn the_packaged_config_parses_with_every_setting_uncommented() {
        let text = include_str!("../debian/device.toml");
        let setting = |l: &str| {
            l.starts_with('[')
                || l.split_once(" = ").is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        };
        let on: Vec<&str> = text.lines().map(|l| l.strip_prefix("# ").filter(|t| setting(t)).unwrap_or(l)).collect();
        let c: DeviceConfig = toml::from_str(&on.join("\n")).expect("the packaged config parses");
        assert_eq!(c.updates, Some(facegate_engine::updates::UpdatePolicy::default()));
        assert!(c.door.is_some() && c.timezone.is_some() && c.unlock_socket.is_some());
        assert_eq!(c.updates().expect("valid"), facegate_engine::updates::UpdatePolicy::default());
        let bad: DeviceConfig = toml::from_str("[updates]\nmax_per_person = 0\n").expect("parses");
        assert!(matches!(bad.updates(), Err(ConfigError::Invalid(m)) if m.contains("max_per_person")));
    }

    #[test]
    fn documented_example_parses() {
        let text = include_str!("config.rs")
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").trim_start())
            .collect::<Vec<_>>()
            .join("\n");
        let c: DeviceConfig = toml::from_str(&text).expect("the example in the module docs parses");
        assert_eq!(c.name.as_deref(), Some("front-door"));
        let s = c.settings().expect("valid settings");
        assert_eq!(s.threshold, Threshold::FpirTarget(1e-2));
        assert_eq!((s.consensus_required, s.consensus_window), (2, 3));
        assert_eq!(s.lockout_cooldown_secs, 30);
        let door = c.door.expect("the [door] table");
        assert_eq!((door.authority, door.osdp_address), (Some(crate::door::Authority::Device), Some(101)));
        assert_eq!(door.uncarded, Some(crate::door::Uncarded::None));
        assert!(crate::door::parse_scbk(door.osdp_scbk.as_deref().expect("key")).is_ok());
    }

    #[test]
    fn bad_values_are_refused() {
        let c: DeviceConfig = toml::from_str("consensus = { required = 4, window = 3 }").expect("parses");
        assert!(matches!(c.settings(), Err(ConfigError::Invalid(_))));
        let c: DeviceConfig = toml::from_str("liveness_threshold = 1.5").expect("parses");
        assert!(matches!(c.settings(), Err(ConfigError::Invalid(m)) if m.contains("liveness_threshold")));
        let c: DeviceConfig = toml::from_str("far = 1e-3\nthreshold = 0.3").expect("parses");
        assert!(c.settings().is_err());
        let c: DeviceConfig = toml::from_str("far = 1e-3\nfpir = 1e-2").expect("parses");
        assert!(c.settings().is_err());
        // Verify mode defaults to a per-comparison rate, identify mode to a per-visit one.
        let c: DeviceConfig = toml::from_str("mode = \"verify\"\nowner = 3").expect("parses");
        assert_eq!(c.settings().expect("valid").threshold, Threshold::FarTarget(DEFAULT_FAR));
        let c: DeviceConfig = toml::from_str("").expect("parses");
        assert_eq!(c.settings().expect("valid").threshold, Threshold::FpirTarget(facegate_proto::DEFAULT_FPIR));
        assert!(toml::from_str::<DeviceConfig>("treshold = 0.3").is_err(), "typos are errors, not ignored");
    }
}
