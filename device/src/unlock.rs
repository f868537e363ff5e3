//! The local unlock socket: a PAM module asks "is `alice` in front of the camera?" and gets one
//! answer. The socket file's mode (0600, or 0660 for `--unlock-group`) keeps others out, and each
//! peer's `SO_PEERCRED` is checked again (uid 0, the daemon's own uid, or a member of the
//! group), so a socket made reachable by mistake still answers nobody else. The request goes to
//! the kiosk loop ([`UnlockJob`]), which owns the camera, the templates and the lockout.

use crate::kiosk::unlock::UnlockJob;
use crate::state::Core;
use facegate_proto::{
    encode_frame_vec, AuditKind, Body, ErrorCode, Frame, FrameDecoder, Request, Response, UnlockReply,
};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A client must send its request within this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest request accepted (a request is well under 100 bytes).
const MAX_REQUEST: usize = 4096;
/// Longest face check a client may ask for.
pub const MAX_TIMEOUT_MS: u32 = 60_000;
/// Connections served at once; more are answered busy.
const MAX_CLIENTS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum UnlockSocketError {
    #[error("unlock socket {}: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },
    #[error("unlock socket {}: a file that is not a socket is in the way", path.display())]
    NotASocket { path: PathBuf },
    #[error("unlock group {0:?} does not exist")]
    NoSuchGroup(String),
}

/// Who may ask: root, the daemon's own user, and members of `group`.
#[derive(Debug, Clone, Copy)]
pub struct Allowed {
    pub group: Option<libc::gid_t>,
}

/// The gid of a group name.
pub fn group_id(name: &str) -> Result<libc::gid_t, UnlockSocketError> {
    let c = std::ffi::CString::new(name).map_err(|_| UnlockSocketError::NoSuchGroup(name.to_owned()))?;
    // SAFETY: getgrnam reads a NUL-terminated name; the result is only read here, before any
    // other getgr* call on this thread.
    let group = unsafe { libc::getgrnam(c.as_ptr()) };
    if group.is_null() {
        return Err(UnlockSocketError::NoSuchGroup(name.to_owned()));
    }
    // SAFETY: non-null, points at a struct group owned by libc.
    Ok(unsafe { (*group).gr_gid })
}

/// Creates the socket (replacing a stale one), with the mode and group that say who may
/// connect, and serves it on a thread.
pub fn spawn(
    path: &Path,
    allowed: Allowed,
    jobs: SyncSender<UnlockJob>,
    core: Arc<Core>,
) -> Result<std::thread::JoinHandle<()>, UnlockSocketError> {
    let io = |error| UnlockSocketError::Io { path: path.to_owned(), error };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path).map_err(io)?,
        Ok(_) => return Err(UnlockSocketError::NotASocket { path: path.to_owned() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    // Created owner-only, then opened to the group if asked: never reachable more widely.
    // SAFETY: umask only changes this process's file-creation mask, restored right after.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let listener = bound.map_err(io)?;
    if let Some(gid) = allowed.group {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(io)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io)?;
    }
    let clients = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("unlock-socket".into())
        .spawn(move || {
            for conn in listener.incoming() {
                if core.is_stopping() {
                    break;
                }
                let Ok(stream) = conn else { continue };
                if clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
                    clients.fetch_sub(1, Ordering::SeqCst);
                    let _ = reply(&stream, 0, Response::Unlock(UnlockReply::Busy));
                    continue;
                }
                let (jobs, core, clients) = (jobs.clone(), core.clone(), clients.clone());
                let spawned = std::thread::Builder::new().name("unlock-client".into()).spawn(move || {
                    serve(stream, allowed, &jobs, &core);
                    clients.fetch_sub(1, Ordering::SeqCst);
                });
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "cannot start an unlock client thread");
                }
            }
        })
        .map_err(io)
}

/// One connection: check the peer, read one request, wait for the loop's answer, reply.
fn serve(stream: UnixStream, allowed: Allowed, jobs: &SyncSender<UnlockJob>, core: &Core) {
    let peer = match peer_credentials(&stream) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "unlock socket: cannot read the peer's credentials");
            return;
        }
    };
    if !allowed.admits(&peer) {
        tracing::warn!(uid = peer.uid, pid = peer.pid, "unlock socket: peer refused");
        core.audit(AuditKind::AuthFailure, None, None, &format!("unlock socket: uid {} refused", peer.uid));
        let _ = reply(&stream, 0, error_response(ErrorCode::Unauthenticated, "not allowed to ask for an unlock"));
        return;
    }
    let (id, request) = match read_request(&stream) {
        Ok(r) => r,
        Err((id, detail)) => {
            let _ = reply(&stream, id, error_response(ErrorCode::BadFrame, &detail));
            return;
        }
    };
    let mut request = request;
    request.timeout_ms = request.timeout_ms.clamp(1, MAX_TIMEOUT_MS);
    let wait = Duration::from_millis(u64::from(request.timeout_ms)) + Duration::from_secs(2);
    let (tx, rx) = mpsc::sync_channel(1);
    let answer = match jobs.try_send(UnlockJob { request, reply: tx, received: Instant::now() }) {
        Ok(()) => rx.recv_timeout(wait).unwrap_or(UnlockReply::Timeout),
        Err(TrySendError::Full(_)) => UnlockReply::Busy,
        // No loop to serve it (the door's source ended): nothing can check a face.
        Err(TrySendError::Disconnected(_)) => UnlockReply::Busy,
    };
    if let Err(e) = reply(&stream, id, Response::Unlock(answer)) {
        tracing::debug!(error = %e, "unlock client left before its answer");
    }
}

fn error_response(code: ErrorCode, detail: &str) -> Response {
    Response::Error(facegate_proto::ErrorResponse { code, detail: facegate_proto::bounded_str(detail) })
}

fn read_request(mut stream: &UnixStream) -> Result<(u32, facegate_proto::UnlockRequest), (u32, String)> {
    stream.set_read_timeout(Some(REQUEST_TIMEOUT)).map_err(|e| (0, e.to_string()))?;
    let mut decoder = FrameDecoder::new();
    let mut buf = [0u8; 512];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf).map_err(|e| (0, format!("reading the request: {e}")))?;
        if n == 0 {
            return Err((0, "connection closed before a request".into()));
        }
        total += n;
        if let Some(frame) = decoder.push(&buf[..n]).next() {
            return match frame {
                Ok(Frame { id, body: Body::Request(Request::Unlock(r)), .. }) => Ok((id, r)),
                Ok(Frame { id, .. }) => Err((id, "only unlock requests are served here".into())),
                Err(e) => Err((0, format!("request does not decode: {e}"))),
            };
        }
        if total > MAX_REQUEST {
            return Err((0, "request too long".into()));
        }
    }
}

fn reply(mut stream: &UnixStream, id: u32, response: Response) -> std::io::Result<()> {
    let bytes = encode_frame_vec(&Frame::response(id, response))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    stream.write_all(&bytes)
}

/// A connected peer's process credentials.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub pid: libc::pid_t,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
}

fn peer_credentials(stream: &UnixStream) -> std::io::Result<Peer> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED fills a `ucred` of the given length on a valid socket descriptor.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Peer { pid: cred.pid, uid: cred.uid, gid: cred.gid })
}

impl Allowed {
    pub fn admits(&self, peer: &Peer) -> bool {
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if peer.uid == 0 || peer.uid == me {
            return true;
        }
        let Some(group) = self.group else { return false };
        peer.gid == group || supplementary_groups(peer.pid).contains(&group)
    }
}

/// The peer process's supplementary groups, from /proc (empty when unreadable: refuse).
fn supplementary_groups(pid: libc::pid_t) -> Vec<libc::gid_t> {
    let status = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| g.split_whitespace().filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_self_are_admitted_others_by_group_only() {
        // SAFETY: no preconditions.
        let me = unsafe { libc::geteuid() };
        let none = Allowed { group: None };
        assert!(none.admits(&Peer { pid: 1, uid: 0, gid: 0 }));
        assert!(none.admits(&Peer { pid: 1, uid: me, gid: 0 }));
        let stranger = Peer { pid: i32::MAX, uid: 65534, gid: 65534 };
        if me != 65534 {
            assert!(!none.admits(&stranger));
            assert!(!Allowed { group: Some(4242) }.admits(&stranger));
            assert!(Allowed { group: Some(65534) }.admits(&stranger), "primary group");
        }
    }

    #[test]
    fn supplementary_groups_are_read_from_proc() {
        let mine = supplementary_groups(std::process::id() as libc::pid_t);
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let line = status.lines().find(|l| l.starts_with("Groups:")).unwrap_or("Groups:");
        assert_eq!(mine.len(), line.split_whitespace().count() - 1);
        assert!(supplementary_groups(i32::MAX).is_empty());
    }
}
