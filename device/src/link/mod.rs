//! The link server: `facegate-proto` frames over TCP or a serial line, one [`Session`] per
//! connection (TCP) or per `Hello` (serial, where the line never "closes").

pub mod session;

pub use session::{Session, SessionStats};

use crate::state::Core;
use facegate_proto::{encode_frame_vec, ErrorCode, Frame, FrameDecoder, NO_ID};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a blocked read wakes to forward events and check for shutdown.
const POLL: Duration = Duration::from_millis(50);
/// Concurrent TCP sessions (e.g. one following events while another syncs).
const MAX_TCP_SESSIONS: usize = 8;
/// A TCP connection must say `Hello` within this...
const HELLO_WITHIN: Duration = Duration::from_secs(5);
/// ...and show the pairing key (or pair) within this, or it is closed.
const AUTHENTICATE_WITHIN: Duration = Duration::from_secs(30);
/// An authenticated session with no request for this long is closed (a host following events
/// pings well within it).
const IDLE_AFTER: Duration = Duration::from_secs(600);
/// The detail of the refusal a host gets when every session is taken by authenticated hosts.
const BUSY: &str = "device busy: too many sessions";

fn write_frame(w: &mut impl Write, frame: &Frame) -> io::Result<()> {
    let bytes = encode_frame_vec(frame).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    w.write_all(&bytes)?;
    w.flush()
}

/// What the TCP accept loop knows of a running session, so that a flood of idle connections
/// cannot keep a paired host out: a session that has not authenticated is the first to go.
#[derive(Debug)]
pub struct Watch {
    started: Instant,
    authenticated: AtomicBool,
    evicted: AtomicBool,
    finished: AtomicBool,
}

impl Watch {
    fn new() -> Watch {
        Watch {
            started: Instant::now(),
            authenticated: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            finished: AtomicBool::new(false),
        }
    }

    /// Why the session should end now, if it should.
    fn expired(&self, session: &Session, last_request: Instant) -> Option<&'static str> {
        let age = self.started.elapsed();
        if self.evicted.load(Ordering::SeqCst) {
            Some("evicted to make room for another host")
        } else if !session.said_hello() && age > HELLO_WITHIN {
            Some("no Hello in time")
        } else if !session.is_authenticated() && age > AUTHENTICATE_WITHIN {
            Some("not authenticated in time")
        } else if last_request.elapsed() > IDLE_AFTER {
            Some("idle")
        } else {
            None
        }
    }
}

/// Serves one byte stream until EOF, an I/O error, shutdown, or (with a `watch`, for TCP) a
/// time limit or eviction. The stream's reads must time out (around [`POLL`]) so events are
/// forwarded while the host is quiet.
pub fn serve_stream<S: Read + Write>(
    stream: &mut S,
    core: Arc<Core>,
    peer: &str,
    watch: Option<&Watch>,
) -> io::Result<SessionStats> {
    let mut session = Session::with_peer(core.clone(), peer);
    let mut decoder = FrameDecoder::new();
    let mut buf = [0u8; 4096];
    let mut last_request = Instant::now();
    while !core.is_stopping() {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let mut replies = Vec::new();
                for result in decoder.push(&buf[..n]) {
                    replies.push(match result {
                        Ok(frame) => session.handle(frame),
                        Err(e) => session.bad_frame(e),
                    });
                }
                if !replies.is_empty() {
                    last_request = Instant::now();
                }
                for r in &replies {
                    write_frame(stream, r)?;
                }
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for ev in session.pending_events() {
            write_frame(stream, &ev)?;
        }
        if session.is_revoked() {
            tracing::warn!(peer, "closing a host session: its key was replaced, or it kept trying to pair");
            break;
        }
        if let Some(watch) = watch {
            watch.authenticated.store(session.is_authenticated(), Ordering::SeqCst);
            if let Some(why) = watch.expired(&session, last_request) {
                tracing::info!(why, "closing a host session");
                break;
            }
        }
    }
    Ok(session.stats)
}

/// Makes room for a new connection: `Ok` when there is room (evicting the oldest session that
/// has not authenticated if needed), `Err` when every session belongs to an authenticated host.
fn make_room(sessions: &mut Vec<Arc<Watch>>) -> Result<(), ()> {
    sessions.retain(|w| !w.finished.load(Ordering::SeqCst));
    let live = sessions.iter().filter(|w| !w.evicted.load(Ordering::SeqCst));
    if live.count() < MAX_TCP_SESSIONS {
        return Ok(());
    }
    let oldest = sessions
        .iter()
        .filter(|w| !w.evicted.load(Ordering::SeqCst) && !w.authenticated.load(Ordering::SeqCst))
        .min_by_key(|w| w.started)
        .ok_or(())?;
    oldest.evicted.store(true, Ordering::SeqCst);
    Ok(())
}

/// Accepts TCP hosts until shutdown, each in its own thread.
pub fn spawn_tcp(listener: TcpListener, core: Arc<Core>) -> io::Result<JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    let mut sessions: Vec<Arc<Watch>> = Vec::new();
    std::thread::Builder::new().name("link-tcp".into()).spawn(move || {
        while !core.is_stopping() {
            core.flush_refused_pairs(Instant::now());
            match listener.accept() {
                Ok((mut stream, peer)) => {
                    if make_room(&mut sessions).is_err() {
                        tracing::warn!(%peer, "every host session is taken by an authenticated host; connection refused");
                        // Best effort: the host learns why before the connection closes.
                        let _ = stream.set_nonblocking(false);
                        let _ = write_frame(&mut stream, &Frame::error(NO_ID, ErrorCode::Busy, BUSY));
                        continue;
                    }
                    let watch = Arc::new(Watch::new());
                    sessions.push(watch.clone());
                    let core = core.clone();
                    let spawned = std::thread::Builder::new().name(format!("link-{peer}")).spawn(move || {
                        tracing::info!(%peer, "host connected");
                        match tcp_session(stream, core, &format!("tcp:{}", peer.ip()), &watch) {
                            Ok(stats) => tracing::info!(%peer, ?stats, "host disconnected"),
                            Err(e) => tracing::info!(%peer, error = %e, "host link closed"),
                        }
                        watch.finished.store(true, Ordering::SeqCst);
                    });
                    if let Err(e) = spawned {
                        tracing::error!(error = %e, "cannot start a session thread");
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    std::thread::sleep(POLL);
                }
            }
        }
    })
}

fn tcp_session(mut stream: TcpStream, core: Arc<Core>, peer: &str, watch: &Watch) -> io::Result<SessionStats> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(POLL))?;
    stream.set_nodelay(true)?;
    serve_stream(&mut stream, core, peer, Some(watch))
}

/// Serves a serial line (USB gadget, UART, or a pseudo-terminal in tests) until shutdown.
pub fn spawn_serial(path: &str, baud: u32, core: Arc<Core>) -> io::Result<JoinHandle<()>> {
    let mut port = serialport::new(path, baud)
        .timeout(POLL)
        .open()
        .map_err(|e| io::Error::other(format!("serial port {path}: {e}")))?;
    let path = path.to_string();
    std::thread::Builder::new().name("link-serial".into()).spawn(move || {
        tracing::info!(%path, baud, "serving serial link");
        // The line outlives host sessions; an I/O error (cable pulled) is retried.
        while !core.is_stopping() {
            match serve_stream(&mut port, core.clone(), &format!("serial:{path}"), None) {
                Ok(stats) => tracing::info!(?stats, "serial link stopped"),
                Err(e) => {
                    tracing::warn!(error = %e, "serial link error");
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
    })
}
