//! `facegate config --device ADDR [KEY VALUE]`: read or change a device's decision settings.

use crate::link::Addr;
use crate::paired::connect_paired;
use crate::registry::Registry;
use anyhow::{bail, Context, Result};
use clap::Args;
use facegate_proto::{ConfigKey, Request, Response, Setting, Threshold};

#[derive(Debug, Args)]
#[command(after_help = "Keys and values:\n  threshold 0.35      fixed cosine threshold\n  far 1e-3            \
                        verify (1:1) mode: false-accept rate per comparison\n  fpir 1e-2           \
                        identify (1:N) mode: share of stranger visits matched to someone; the per-comparison \
                        threshold follows the enrolled templates\n  consensus 2/3       \
                        decide on 2 agreeing frames of the last 3\n  liveness on|off\n  lockout 5/60/30     \
                        after 5 failures within 60 s, refuse for 30 s (0 disables)")]
pub struct ConfigArgs {
    #[arg(long)]
    pub device: Addr,
    /// Setting to change (threshold, far, fpir, consensus, liveness, lockout); none prints all.
    pub key: Option<String>,
    pub value: Option<String>,
    #[arg(long)]
    pub json: bool,
}

/// Parses `KEY VALUE` into a protocol setting.
pub fn parse_setting(key: &str, value: &str) -> Result<Setting> {
    let nums = |n: usize| -> Result<Vec<u32>> {
        let v: Vec<u32> = value
            .split('/')
            .map(|x| x.trim().parse())
            .collect::<Result<_, _>>()
            .with_context(|| format!("{key} takes {n} numbers separated by '/'"))?;
        if v.len() != n {
            bail!("{key} takes {n} numbers separated by '/'");
        }
        Ok(v)
    };
    let small = |x: u32, what: &str| u8::try_from(x).with_context(|| format!("{what} must be at most 255"));
    let setting = match key {
        "threshold" => {
            Setting::Threshold(Threshold::Cosine(value.parse().context("threshold is a cosine, e.g. 0.35")?))
        }
        "far" => Setting::Threshold(Threshold::FarTarget(value.parse().context("far is a rate, e.g. 1e-3")?)),
        "fpir" => Setting::Threshold(Threshold::FpirTarget(value.parse().context("fpir is a rate, e.g. 1e-2")?)),
        "consensus" => {
            let v = nums(2)?;
            Setting::Consensus { required: small(v[0], "required")?, window: small(v[1], "window")? }
        }
        "liveness" => Setting::Liveness(match value {
            "on" | "true" | "1" => true,
            "off" | "false" | "0" => false,
            _ => bail!("liveness is on or off"),
        }),
        "lockout" => {
            let v = nums(3)?;
            let secs = |x: u32| u16::try_from(x).context("seconds must be at most 65535");
            Setting::Lockout {
                max_failures: small(v[0], "failures")?,
                window_secs: secs(v[1])?,
                cooldown_secs: secs(v[2])?,
            }
        }
        other => bail!("unknown setting {other:?}: threshold, far, fpir, consensus, liveness or lockout"),
    };
    if setting.validate().is_err() {
        bail!("{key} {value} is out of range");
    }
    Ok(setting)
}

/// `KEY VALUE` as a person would type it.
pub fn describe(s: &Setting) -> (String, String) {
    match *s {
        Setting::Threshold(Threshold::Cosine(t)) => ("threshold".into(), format!("{t}")),
        Setting::Threshold(Threshold::FarTarget(f)) => ("far".into(), format!("{f:e}")),
        Setting::Threshold(Threshold::FpirTarget(f)) => ("fpir".into(), format!("{f:e}")),
        Setting::Consensus { required, window } => ("consensus".into(), format!("{required}/{window}")),
        Setting::Liveness(on) => ("liveness".into(), if on { "on" } else { "off" }.into()),
        Setting::Lockout { max_failures, window_secs, cooldown_secs } => {
            ("lockout".into(), format!("{max_failures}/{window_secs}/{cooldown_secs}"))
        }
    }
}

pub fn run(registry: &Registry, args: &ConfigArgs) -> Result<()> {
    let mut client = connect_paired(registry, &args.device)?;
    let settings: Vec<Setting> = match (&args.key, &args.value) {
        (Some(k), Some(v)) => {
            let s = parse_setting(k, v)?;
            match client.request(Request::SetConfig(s)).with_context(|| format!("setting {k}"))? {
                Response::Config(s) => vec![s],
                other => bail!("unexpected reply: {other:?}"),
            }
        }
        (Some(k), None) => bail!("give a value for {k} (see --help)"),
        _ => {
            let mut all = Vec::new();
            for key in ConfigKey::ALL {
                match client.request(Request::GetConfig { key })? {
                    Response::Config(s) => all.push(s),
                    other => bail!("unexpected reply: {other:?}"),
                }
            }
            all
        }
    };
    if args.json {
        let map: serde_json::Map<String, serde_json::Value> =
            settings.iter().map(describe).map(|(k, v)| (k, serde_json::Value::String(v))).collect();
        println!("{}", serde_json::Value::Object(map));
    } else {
        for s in &settings {
            let (k, v) = describe(s);
            println!("{k:<10} {v}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_describe_back() {
        for (k, v) in [("threshold", "0.35"), ("consensus", "2/3"), ("liveness", "on"), ("lockout", "5/60/30")] {
            let s = parse_setting(k, v).expect("valid setting");
            assert_eq!(describe(&s), (k.to_string(), v.to_string()));
        }
        assert!(matches!(parse_setting("far", "1e-3"), Ok(Setting::Threshold(Threshold::FarTarget(_)))));
        assert!(matches!(parse_setting("fpir", "1e-2"), Ok(Setting::Threshold(Threshold::FpirTarget(_)))));
        for (k, v) in [("consensus", "4/3"), ("consensus", "2"), ("far", "2"), ("liveness", "maybe"), ("speed", "1")] {
            assert!(parse_setting(k, v).is_err(), "{k} {v} must be refused");
        }
    }
}
