//! Module arguments, the words after the module path in the PAM stack line.
//!
//! Parsing is pure and never fails: a bad or unknown argument becomes a warning and the
//! default is kept, so a typo in `/etc/pam.d` never locks anyone out.

use std::ffi::{c_char, c_int, CStr};
use std::path::PathBuf;
use std::time::Duration;

/// Where the device daemon listens by default.
pub const DEFAULT_SOCKET: &str = "/run/facegate/unlock.sock";
/// Seconds the daemon gets to see a face, by default.
pub const DEFAULT_TIMEOUT_SECS: f64 = 4.0;
/// Bounds of `timeout=`: shorter cannot see a face, longer keeps the password prompt waiting.
pub const TIMEOUT_RANGE: (f64, f64) = (0.1, 60.0);

/// The parsed module arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct Args {
    /// `socket=PATH`: the daemon's unlock socket.
    pub socket: PathBuf,
    /// `timeout=SECS`: how long the daemon looks for the face.
    pub timeout: Duration,
    /// `abort_if_ssh`: step aside (PAM_IGNORE) for remote logins: the camera sees the wrong room.
    pub abort_if_ssh: bool,
    /// `debug`: log every step to syslog (LOG_AUTHPRIV).
    pub debug: bool,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            socket: PathBuf::from(DEFAULT_SOCKET),
            timeout: Duration::from_secs_f64(DEFAULT_TIMEOUT_SECS),
            abort_if_ssh: false,
            debug: false,
        }
    }
}

impl Args {
    /// Parses the arguments; returns them with one warning per ignored argument.
    pub fn parse<'a>(words: impl IntoIterator<Item = &'a str>) -> (Args, Vec<String>) {
        let mut args = Args::default();
        let mut warnings = Vec::new();
        for word in words {
            match word.split_once('=') {
                None if word == "abort_if_ssh" => args.abort_if_ssh = true,
                None if word == "debug" => args.debug = true,
                Some(("socket", path)) if !path.is_empty() => args.socket = PathBuf::from(path),
                Some(("timeout", secs)) => match parse_timeout(secs) {
                    Some(t) => args.timeout = t,
                    None => warnings.push(format!("ignoring {word:?}: expected seconds, e.g. timeout=4 or 0.5")),
                },
                _ => warnings.push(format!("ignoring unknown argument {word:?}")),
            }
        }
        (args, warnings)
    }
}

/// A positive, finite number of seconds, clamped to [`TIMEOUT_RANGE`].
fn parse_timeout(secs: &str) -> Option<Duration> {
    let secs: f64 = secs.trim().parse().ok()?;
    if !secs.is_finite() || secs <= 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(secs.clamp(TIMEOUT_RANGE.0, TIMEOUT_RANGE.1)))
}

/// Copies PAM's `argc`/`argv` into owned strings (non-UTF-8 bytes replaced; such an argument
/// is then simply unknown). Null pointers and a negative count are tolerated.
///
/// # Safety
/// `argv`, if not null, must point to `argc` pointers, each null or a NUL-terminated string.
pub unsafe fn from_argv(argc: c_int, argv: *const *const c_char) -> Vec<String> {
    if argv.is_null() || argc <= 0 {
        return Vec::new();
    }
    (0..argc as usize)
        .filter_map(|i| {
            // SAFETY: the caller guarantees argv holds argc entries.
            let p = unsafe { *argv.add(i) };
            // SAFETY: a non-null entry is a NUL-terminated string.
            (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    #[test]
    fn defaults() {
        let (args, warnings) = Args::parse([]);
        assert_eq!(args.socket, PathBuf::from("/run/facegate/unlock.sock"));
        assert_eq!(args.timeout, Duration::from_secs(4));
        assert!(!args.abort_if_ssh && !args.debug);
        assert!(warnings.is_empty());
    }

    #[test]
    fn all_options() {
        let (args, warnings) = Args::parse(["socket=/tmp/x.sock", "timeout=0.5", "abort_if_ssh", "debug"]);
        assert_eq!(
            args,
            Args {
                socket: PathBuf::from("/tmp/x.sock"),
                timeout: Duration::from_millis(500),
                abort_if_ssh: true,
                debug: true
            }
        );
        assert!(warnings.is_empty());
        assert_eq!(Args::parse(["timeout=7"]).0.timeout, Duration::from_secs(7));
    }

    #[test]
    fn out_of_range_timeouts_are_clamped() {
        assert_eq!(Args::parse(["timeout=600"]).0.timeout, Duration::from_secs(60));
        assert_eq!(Args::parse(["timeout=0.01"]).0.timeout, Duration::from_millis(100));
    }

    #[test]
    fn bad_values_keep_the_default() {
        for bad in ["timeout=abc", "timeout=", "timeout=-1", "timeout=0", "timeout=NaN", "timeout=inf", "socket="] {
            let (args, warnings) = Args::parse([bad]);
            assert_eq!(args, Args::default(), "{bad}");
            assert_eq!(warnings.len(), 1, "{bad}");
        }
        let (args, warnings) = Args::parse(["nonsense", "debug", "Debug", "timeout=x", "timeout=2"]);
        assert!(args.debug);
        assert_eq!(args.timeout, Duration::from_secs(2));
        assert_eq!(warnings.len(), 3);
    }

    #[test]
    fn argv_with_nulls() {
        assert!(unsafe { from_argv(3, std::ptr::null()) }.is_empty());
        let a = CString::new("debug").unwrap();
        let b = CString::new(b"timeout=\xff".to_vec()).unwrap();
        let argv = [a.as_ptr(), std::ptr::null(), b.as_ptr()];
        assert_eq!(unsafe { from_argv(3, argv.as_ptr()) }, ["debug", "timeout=\u{fffd}"]);
        assert!(unsafe { from_argv(-1, argv.as_ptr()) }.is_empty());
    }
}
