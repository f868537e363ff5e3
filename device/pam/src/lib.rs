//! # pam_facegate — face unlock for Linux PAM
//!
//! `pam_sm_authenticate` asks the Facegate device daemon, over its local unlock socket,
//! whether the user being authenticated is in front of the camera. The module does no face
//! inference itself; it sends one `Request::Unlock` (login, PAM service, timeout) and maps
//! the daemon's `UnlockReply` to a PAM code (see [`outcome`]). Only a recognised face
//! returns PAM_SUCCESS. When the daemon is not running the module returns
//! PAM_AUTHINFO_UNAVAIL at once and says nothing; a daemon that does not answer within
//! `timeout` + 1 s, or answers nonsense, gives the same code. The password prompt follows as
//! usual. Messages go through the application's conversation, none under PAM_SILENT.
//!
//! Install (Debian paths; Fedora uses `/usr/lib64/security`), and put the line above the
//! password module in e.g. `/etc/pam.d/sudo`:
//!
//! ```text
//! cargo build --release -p pam-facegate
//! install -m 0644 target/release/libpam_facegate.so /lib/x86_64-linux-gnu/security/pam_facegate.so
//! auth  sufficient  pam_facegate.so  abort_if_ssh  timeout=4
//! ```
//!
//! Arguments (all optional, see [`args`]): `socket=PATH` (default
//! `/run/facegate/unlock.sock`), `timeout=SECS` (default 4, 0.1–60), `abort_if_ssh`,
//! `debug` (syslog, LOG_AUTHPRIV).
//!
//! Every entry point runs inside [`std::panic::catch_unwind`]: a bug returns PAM_IGNORE
//! (the password still works) instead of unwinding into the application.

use std::ffi::{c_char, c_int, c_void, CString};
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use facegate_proto::{bounded_str, Login, UnlockRequest};

pub mod args;
pub mod client;
pub mod conv;
pub mod outcome;

use args::Args;
use client::Connection;
use conv::{
    Pam, PAM_AUTHINFO_UNAVAIL, PAM_IGNORE, PAM_RHOST, PAM_SERVICE, PAM_SILENT, PAM_SYSTEM_ERR, PAM_TEXT_INFO,
    PAM_USER_UNKNOWN,
};

/// Extra time on top of the daemon's timeout for it to decide and reply.
const REPLY_SLACK: Duration = Duration::from_secs(1);

#[no_mangle]
pub extern "C" fn pam_sm_authenticate(
    pamh: *mut c_void,
    flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    guard(|| authenticate(pamh, flags, argc, argv))
}

/// The entry points with nothing to do: a face is not a credential other modules could use,
/// and accounts, sessions and passwords are not this module's business. Guarded all the same.
macro_rules! ignored {
    ($($name:ident),*) => {$(
        #[no_mangle]
        pub extern "C" fn $name(
            _pamh: *mut c_void,
            _flags: c_int,
            _argc: c_int,
            _argv: *const *const c_char,
        ) -> c_int {
            guard(|| PAM_IGNORE)
        }
    )*};
}

ignored!(pam_sm_setcred, pam_sm_acct_mgmt, pam_sm_open_session, pam_sm_close_session, pam_sm_chauthtok);

/// Runs an entry point's body; a panic becomes PAM_IGNORE so it never unwinds into C and
/// the rest of the stack (the password) still decides.
fn guard(body: impl FnOnce() -> c_int) -> c_int {
    panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| {
        log(libc::LOG_ERR, "internal error (panic); face unlock skipped");
        PAM_IGNORE
    })
}

fn authenticate(pamh: *mut c_void, flags: c_int, argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: PAM passes argc strings in argv.
    let words = unsafe { args::from_argv(argc, argv) };
    let (args, warnings) = Args::parse(words.iter().map(String::as_str));
    for warning in &warnings {
        log(libc::LOG_WARNING, warning);
    }
    let debug = |msg: &str| {
        if args.debug {
            log(libc::LOG_DEBUG, msg);
        }
    };
    // SAFETY: the handle PAM passed to this call.
    let Some(pam) = (unsafe { Pam::new(pamh) }) else {
        log(libc::LOG_ERR, "called without a PAM handle");
        return PAM_SYSTEM_ERR;
    };
    if args.abort_if_ssh {
        if let Some(why) = remote_session(&pam) {
            debug(&format!("remote session ({why}): skipped"));
            return PAM_IGNORE;
        }
    }

    let user = match pam.user() {
        Ok(user) => user,
        Err(rc) => {
            debug(&format!("no user (pam_get_user: {rc})"));
            return PAM_USER_UNKNOWN;
        }
    };
    let login = match Login::try_from(user.as_str()) {
        Ok(login) if !login.is_empty() => login,
        _ => {
            debug(&format!("login {user:?} is empty or longer than {} bytes", facegate_proto::LOGIN_LEN));
            return PAM_USER_UNKNOWN;
        }
    };
    let service = pam.item_str(PAM_SERVICE).unwrap_or_default();
    let request = UnlockRequest {
        login,
        timeout_ms: args.timeout.as_millis().min(u32::MAX.into()) as u32,
        service: bounded_str(&service),
    };

    let connection = match Connection::open(&args.socket) {
        Ok(connection) => connection,
        Err(e) => {
            debug(&format!("{e}"));
            return PAM_AUTHINFO_UNAVAIL;
        }
    };
    // PAM_SILENT: the application wants no messages (e.g. a screen locker's background check).
    let say = |style, text: &str| {
        if flags & PAM_SILENT == 0 {
            pam.say(style, text);
        }
    };
    say(PAM_TEXT_INFO, &format!("Looking for {user}'s face…"));
    match connection.ask(request, args.timeout + REPLY_SLACK) {
        Ok(reply) => {
            let (code, message) = outcome::code_for(&reply, &user);
            debug(&format!("{service}: {user}: {reply:?} → {code}"));
            if let Some(message) = message {
                say(message.style, &message.text);
            }
            code
        }
        Err(e) => {
            debug(&format!("{service}: {user}: {e}"));
            PAM_AUTHINFO_UNAVAIL
        }
    }
}

/// Why this looks like a remote login, if it does.
fn remote_session(pam: &Pam) -> Option<String> {
    if let Some(rhost) = pam.item_str(PAM_RHOST).filter(|h| !h.is_empty()) {
        return Some(format!("PAM_RHOST={rhost}"));
    }
    ["SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY"]
        .into_iter()
        .find(|var| std::env::var_os(var).is_some())
        .map(|var| format!("{var} is set"))
}

/// Logs to syslog (auth facility, private), `priority` being a LOG_* level.
fn log(priority: c_int, msg: &str) {
    let Ok(line) = CString::new(format!("pam_facegate: {}", msg.replace('\0', ""))) else { return };
    // SAFETY: a constant "%s" format and one NUL-terminated string argument.
    unsafe { libc::syslog(libc::LOG_AUTHPRIV | priority, c"%s".as_ptr(), line.as_ptr()) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tests::fake_daemon;
    use crate::conv::{PamConv, PamMessage, PamResponse, PAM_CONV, PAM_ERROR_MSG, PAM_SUCCESS};
    use facegate_proto::{encode_frame_vec, Body, Frame, Request, Response, UnlockReply};
    use std::cell::RefCell;
    use std::ffi::CStr;
    use std::io::Write;
    use std::ptr;

    /// What the fake libpam below sees behind a `pam_handle_t *`.
    struct FakePam {
        user: Option<CString>,
        service: CString,
        rhost: Option<CString>,
        conv: PamConv,
    }

    type Shown = RefCell<Vec<(c_int, String)>>;

    /// The test binary has no libpam: these stand in for the two functions the module calls.
    #[no_mangle]
    extern "C" fn pam_get_user(pamh: *mut c_void, user: *mut *const c_char, _prompt: *const c_char) -> c_int {
        let fake = unsafe { &*pamh.cast::<FakePam>() };
        match &fake.user {
            Some(u) => {
                unsafe { *user = u.as_ptr() };
                PAM_SUCCESS
            }
            None => PAM_SYSTEM_ERR,
        }
    }

    #[no_mangle]
    extern "C" fn pam_get_item(pamh: *const c_void, item_type: c_int, item: *mut *const c_void) -> c_int {
        let fake = unsafe { &*pamh.cast::<FakePam>() };
        let p: *const c_void = match item_type {
            PAM_SERVICE => fake.service.as_ptr().cast(),
            PAM_RHOST => fake.rhost.as_ref().map_or(ptr::null(), |h| h.as_ptr().cast()),
            PAM_CONV => (&fake.conv as *const PamConv).cast(),
            _ => ptr::null(),
        };
        unsafe { *item = p };
        PAM_SUCCESS
    }

    /// Records the messages and answers like a real application: malloc'd responses.
    unsafe extern "C" fn record(
        n: c_int,
        msg: *mut *const PamMessage,
        resp: *mut *mut PamResponse,
        appdata: *mut c_void,
    ) -> c_int {
        let shown = unsafe { &*appdata.cast::<Shown>() };
        let responses = unsafe { libc::calloc(n as usize, std::mem::size_of::<PamResponse>()) }.cast::<PamResponse>();
        for i in 0..n as usize {
            let m = unsafe { &**msg.add(i) };
            let text = unsafe { CStr::from_ptr(m.msg) }.to_string_lossy().into_owned();
            shown.borrow_mut().push((m.msg_style, text));
            unsafe { (*responses.add(i)).resp = libc::strdup(c"".as_ptr()) };
        }
        unsafe { *resp = responses };
        PAM_SUCCESS
    }

    fn run(user: &str, rhost: Option<&str>, args: &[&str]) -> (c_int, Vec<(c_int, String)>) {
        run_with_flags(0, user, rhost, args)
    }

    fn run_with_flags(flags: c_int, user: &str, rhost: Option<&str>, args: &[&str]) -> (c_int, Vec<(c_int, String)>) {
        let shown: Shown = RefCell::default();
        let mut fake = FakePam {
            user: Some(CString::new(user).unwrap()),
            service: CString::new("sudo").unwrap(),
            rhost: rhost.map(|h| CString::new(h).unwrap()),
            conv: PamConv { conv: Some(record), appdata_ptr: (&shown as *const Shown).cast_mut().cast() },
        };
        let args: Vec<CString> = args.iter().map(|a| CString::new(*a).unwrap()).collect();
        let argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        let pamh = (&mut fake as *mut FakePam).cast();
        let rc = pam_sm_authenticate(pamh, flags, argv.len() as c_int, argv.as_ptr());
        (rc, shown.into_inner())
    }

    #[test]
    fn guard_turns_a_panic_into_ignore() {
        assert_eq!(guard(|| panic!("boom")), PAM_IGNORE);
        assert_eq!(guard(|| conv::PAM_AUTH_ERR), conv::PAM_AUTH_ERR);
    }

    #[test]
    fn null_pointers_are_safe() {
        let null = ptr::null_mut();
        assert_eq!(pam_sm_setcred(null, 0, 0, ptr::null()), PAM_IGNORE);
        assert_eq!(pam_sm_acct_mgmt(null, 0, 0, ptr::null()), PAM_IGNORE);
        assert_eq!(pam_sm_open_session(null, 0, 0, ptr::null()), PAM_IGNORE);
        assert_eq!(pam_sm_close_session(null, 0, 0, ptr::null()), PAM_IGNORE);
        assert_eq!(pam_sm_chauthtok(null, 0, 0, ptr::null()), PAM_IGNORE);
        assert_eq!(pam_sm_authenticate(null, 0, 5, ptr::null()), PAM_SYSTEM_ERR);
    }

    #[test]
    fn granted_end_to_end() {
        let (dir, path, server) = fake_daemon(|frame, mut s| {
            let Body::Request(Request::Unlock(req)) = frame.body else { panic!("{frame:?}") };
            assert_eq!((req.login.as_str(), req.service.as_str(), req.timeout_ms), ("alice", "sudo", 500));
            let reply = Frame::response(1, Response::Unlock(UnlockReply::Granted { person_id: 1, score: 0.9 }));
            s.write_all(&encode_frame_vec(&reply).unwrap()).unwrap();
        });
        let socket = format!("socket={}", path.display());
        let (rc, shown) = run("alice", None, &[&socket, "timeout=0.5", "debug"]);
        server.join().unwrap();
        drop(dir);
        assert_eq!(rc, PAM_SUCCESS);
        assert_eq!(
            shown,
            [(PAM_TEXT_INFO, "Looking for alice's face…".to_owned()), (PAM_TEXT_INFO, "Recognised alice".to_owned())]
        );
    }

    #[test]
    fn refusal_end_to_end() {
        let (_dir, path, server) = fake_daemon(|_, mut s| {
            let reply = Frame::response(1, Response::Unlock(UnlockReply::NoFace));
            s.write_all(&encode_frame_vec(&reply).unwrap()).unwrap();
        });
        let (rc, shown) = run("alice", None, &[&format!("socket={}", path.display())]);
        server.join().unwrap();
        assert_eq!(rc, conv::PAM_AUTH_ERR);
        assert_eq!(shown.last(), Some(&(PAM_ERROR_MSG, "No face seen".to_owned())));
    }

    #[test]
    fn pam_silent_shows_nothing() {
        let (_dir, path, server) = fake_daemon(|_, mut s| {
            let reply = Frame::response(1, Response::Unlock(UnlockReply::Granted { person_id: 1, score: 0.9 }));
            s.write_all(&encode_frame_vec(&reply).unwrap()).unwrap();
        });
        let (rc, shown) = run_with_flags(PAM_SILENT, "alice", None, &[&format!("socket={}", path.display())]);
        server.join().unwrap();
        assert_eq!((rc, shown), (PAM_SUCCESS, vec![]));
    }

    #[test]
    fn no_daemon_is_silent_and_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let socket = format!("socket={}", dir.path().join("none.sock").display());
        assert_eq!(run("alice", None, &[&socket]), (PAM_AUTHINFO_UNAVAIL, vec![]));
    }

    #[test]
    fn bad_logins_and_remote_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let socket = format!("socket={}", dir.path().join("none.sock").display());
        assert_eq!(run(&"x".repeat(33), None, &[&socket]).0, PAM_USER_UNKNOWN);
        assert_eq!(run("", None, &[&socket]).0, PAM_USER_UNKNOWN);
        assert_eq!(run("alice", Some("10.0.0.2"), &[&socket, "abort_if_ssh"]).0, PAM_IGNORE);
        // Without the option the remote host does not matter.
        assert_eq!(run("alice", Some("10.0.0.2"), &[&socket]).0, PAM_AUTHINFO_UNAVAIL);
    }
}
