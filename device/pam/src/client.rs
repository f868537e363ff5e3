//! One request, one reply over the device daemon's unlock socket.
//!
//! The socket speaks the link's framing (COBS + CRC-32, postcard) without a MAC: its file
//! mode and the peer's uid are the authentication. Every wait is bounded by one deadline and
//! every failure is an error value: the module then falls through to the password.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use facegate_proto::{
    encode_frame_vec, Body, ErrorResponse, Frame, FrameDecoder, FrameError, Request, Response, UnlockReply,
    UnlockRequest,
};

/// The id of our only request; the reply echoes it.
const REQUEST_ID: u32 = 1;
/// Bytes read before giving up on a chatty or broken daemon (one reply is < 100 bytes).
pub const MAX_REPLY_BYTES: usize = 64 * 1024;

/// Why no [`UnlockReply`] came back.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {}: {source}", path.display())]
    Connect { path: PathBuf, source: io::Error },
    #[error("cannot encode the request: {0}")]
    Encode(FrameError),
    #[error("socket I/O failed: {0}")]
    Io(#[from] io::Error),
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("the daemon closed the connection without replying")]
    Closed,
    #[error("undecodable reply: {0}")]
    Frame(FrameError),
    #[error("the daemon answered with an error: {0}")]
    Refused(ErrorResponse),
    #[error("the daemon answered something other than an unlock reply")]
    Unexpected,
    #[error("more than {MAX_REPLY_BYTES} bytes without a reply")]
    TooMuch,
}

/// Connects, sends `request` and waits at most `wait` for the reply ([`Connection::ask`]).
pub fn ask(socket: &Path, request: UnlockRequest, wait: Duration) -> Result<UnlockReply, ClientError> {
    Connection::open(socket)?.ask(request, wait)
}

/// A connection to the daemon, open before anything is shown to the user: when the daemon
/// is not running, the module stays silent.
#[derive(Debug)]
pub struct Connection {
    stream: UnixStream,
}

impl Connection {
    /// Connecting does not wait: a missing socket or a stopped daemon fails at once (no
    /// retries), so the password prompt is not delayed.
    pub fn open(socket: &Path) -> Result<Connection, ClientError> {
        UnixStream::connect(socket)
            .map(|stream| Connection { stream })
            .map_err(|source| ClientError::Connect { path: socket.to_owned(), source })
    }

    /// Sends `request` and waits at most `wait` in total (writing included) for the reply.
    pub fn ask(self, request: UnlockRequest, wait: Duration) -> Result<UnlockReply, ClientError> {
        let deadline = Instant::now() + wait;
        let mut stream = self.stream;
        let wire =
            encode_frame_vec(&Frame::request(REQUEST_ID, Request::Unlock(request))).map_err(ClientError::Encode)?;
        stream.set_write_timeout(Some(remaining(deadline, wait)?))?;
        stream.write_all(&wire).map_err(|e| timeout_or_io(e, wait))?;

        let mut decoder = FrameDecoder::new();
        let mut buf = [0u8; 1024];
        let mut total = 0usize;
        loop {
            stream.set_read_timeout(Some(remaining(deadline, wait)?))?;
            let n = match stream.read(&mut buf) {
                Ok(0) => return Err(ClientError::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(timeout_or_io(e, wait)),
            };
            total += n;
            for result in decoder.push(&buf[..n]) {
                let frame = result.map_err(ClientError::Frame)?;
                match frame.body {
                    Body::Response(Response::Unlock(reply)) if frame.id == REQUEST_ID => return Ok(reply),
                    Body::Response(Response::Error(e)) => return Err(ClientError::Refused(e)),
                    // Unsolicited events are not for us; anything else means a confused daemon.
                    Body::Event(_) => {}
                    _ => return Err(ClientError::Unexpected),
                }
            }
            if total >= MAX_REPLY_BYTES {
                return Err(ClientError::TooMuch);
            }
        }
    }
}

/// Time left before `deadline`, or the timeout error once it has passed (a zero socket
/// timeout would mean "block forever").
fn remaining(deadline: Instant, wait: Duration) -> Result<Duration, ClientError> {
    match deadline.checked_duration_since(Instant::now()) {
        Some(left) if !left.is_zero() => Ok(left),
        _ => Err(ClientError::Timeout(wait)),
    }
}

fn timeout_or_io(e: io::Error, wait: Duration) -> ClientError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Timeout(wait),
        _ => ClientError::Io(e),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use facegate_proto::{bounded_str, decode_frame, ErrorCode, Login};
    use std::os::unix::net::UnixListener;
    use std::thread;

    pub(crate) fn request() -> UnlockRequest {
        UnlockRequest { login: Login::try_from("alice").unwrap(), timeout_ms: 300, service: bounded_str("sudo") }
    }

    /// Reads the client's request frame (up to its closing delimiter).
    pub(crate) fn read_request(s: &mut UnixStream) -> Frame {
        let mut wire = Vec::new();
        let mut byte = [0u8; 1];
        while s.read(&mut byte).unwrap() == 1 {
            wire.push(byte[0]);
            if byte[0] == 0 && wire.len() > 1 {
                break;
            }
        }
        decode_frame(&wire).unwrap()
    }

    /// A one-connection fake daemon: `serve` gets the stream after the request was read.
    pub(crate) fn fake_daemon(
        serve: impl FnOnce(Frame, UnixStream) + Send + 'static,
    ) -> (tempfile::TempDir, PathBuf, thread::JoinHandle<()>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("unlock.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let frame = read_request(&mut s);
            serve(frame, s);
        });
        (dir, path, server)
    }

    #[test]
    fn granted_reply() {
        let (_dir, path, server) = fake_daemon(|frame, mut s| {
            assert_eq!(frame, Frame::request(1, Request::Unlock(request())));
            let reply = Frame::response(1, Response::Unlock(UnlockReply::Granted { person_id: 7, score: 0.8 }));
            s.write_all(&encode_frame_vec(&reply).unwrap()).unwrap();
        });
        let reply = ask(&path, request(), Duration::from_secs(2)).unwrap();
        assert_eq!(reply, UnlockReply::Granted { person_id: 7, score: 0.8 });
        server.join().unwrap();
    }

    #[test]
    fn no_socket_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let start = Instant::now();
        let err = ask(&dir.path().join("missing.sock"), request(), Duration::from_secs(5)).unwrap_err();
        let took = start.elapsed();
        eprintln!("no socket: {err} after {took:?}");
        assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
        assert!(took < Duration::from_millis(100), "{took:?}");
    }

    #[test]
    fn silent_daemon_times_out() {
        let (_dir, path, server) = fake_daemon(|_, mut s| {
            // Hold the connection open until the client gives up.
            let _ = s.read(&mut [0u8; 16]);
        });
        let start = Instant::now();
        let err = ask(&path, request(), Duration::from_millis(300)).unwrap_err();
        let took = start.elapsed();
        assert!(matches!(err, ClientError::Timeout(_)), "{err:?}");
        assert!(took >= Duration::from_millis(280) && took < Duration::from_millis(800), "{took:?}");
        server.join().unwrap();
    }

    #[test]
    fn garbage_is_an_error() {
        let (_dir, path, server) = fake_daemon(|_, mut s| s.write_all(b"\0not a frame at all\0").unwrap());
        let err = ask(&path, request(), Duration::from_secs(2)).unwrap_err();
        assert!(matches!(err, ClientError::Frame(_)), "{err:?}");
        server.join().unwrap();
    }

    #[test]
    fn closing_without_reply_is_an_error() {
        let (_dir, path, server) = fake_daemon(|_, s| drop(s));
        let err = ask(&path, request(), Duration::from_secs(2)).unwrap_err();
        assert!(matches!(err, ClientError::Closed), "{err:?}");
        server.join().unwrap();
    }

    #[test]
    fn error_response_is_refused() {
        let (_dir, path, server) = fake_daemon(|_, mut s| {
            let reply = Frame::error(1, ErrorCode::Unsupported, "no unlock here");
            s.write_all(&encode_frame_vec(&reply).unwrap()).unwrap();
        });
        let err = ask(&path, request(), Duration::from_secs(2)).unwrap_err();
        assert!(matches!(err, ClientError::Refused(_)), "{err:?}");
        server.join().unwrap();
    }

    #[test]
    fn endless_chatter_is_bounded() {
        let (_dir, path, server) = fake_daemon(|_, mut s| {
            // Delimiters only: empty chunks, never a frame.
            let zeros = [0u8; 4096];
            while s.write_all(&zeros).is_ok() {}
        });
        let err = ask(&path, request(), Duration::from_secs(5)).unwrap_err();
        assert!(matches!(err, ClientError::TooMuch), "{err:?}");
        server.join().unwrap();
    }
}
