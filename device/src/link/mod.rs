//! The link server: `facegate-proto` frames over TCP or a serial line, one [`Session`] per
//! connection (TCP) or per `Hello` (serial, where the line never "closes").

pub mod session;

pub use session::{Session, SessionStats};

use crate::state::Core;
use facegate_proto::{encode_frame_vec, Frame, FrameDecoder};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a blocked read wakes to forward events and check for shutdown.
const POLL: Duration = Duration::from_millis(50);
/// Concurrent TCP sessions (e.g. one following events while another syncs).
const MAX_TCP_SESSIONS: usize = 8;

fn write_frame(w: &mut impl Write, frame: &Frame) -> io::Result<()> {
    let bytes = encode_frame_vec(frame).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    w.write_all(&bytes)?;
    w.flush()
}

/// Serves one byte stream until EOF, an I/O error or shutdown. The stream's reads must time
/// out (around [`POLL`]) so events are forwarded while the host is quiet.
pub fn serve_stream<S: Read + Write>(stream: &mut S, core: Arc<Core>) -> io::Result<SessionStats> {
    let mut session = Session::new(core.clone());
    let mut decoder = FrameDecoder::new();
    let mut buf = [0u8; 4096];
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
            tracing::warn!("closing a host session: another host paired with the device");
            break;
        }
    }
    Ok(session.stats)
}

/// Accepts TCP hosts until shutdown, each in its own thread.
pub fn spawn_tcp(listener: TcpListener, core: Arc<Core>) -> io::Result<JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    let active = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new().name("link-tcp".into()).spawn(move || {
        while !core.is_stopping() {
            match listener.accept() {
                Ok((stream, peer)) => {
                    if active.load(Ordering::SeqCst) >= MAX_TCP_SESSIONS {
                        tracing::warn!(%peer, "too many host sessions; connection refused");
                        continue;
                    }
                    active.fetch_add(1, Ordering::SeqCst);
                    let (core, active) = (core.clone(), active.clone());
                    let spawned = std::thread::Builder::new().name(format!("link-{peer}")).spawn(move || {
                        tracing::info!(%peer, "host connected");
                        match tcp_session(stream, core) {
                            Ok(stats) => tracing::info!(%peer, ?stats, "host disconnected"),
                            Err(e) => tracing::info!(%peer, error = %e, "host link closed"),
                        }
                        active.fetch_sub(1, Ordering::SeqCst);
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

fn tcp_session(mut stream: TcpStream, core: Arc<Core>) -> io::Result<SessionStats> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(POLL))?;
    stream.set_nodelay(true)?;
    serve_stream(&mut stream, core)
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
            match serve_stream(&mut port, core.clone()) {
                Ok(stats) => tracing::info!(?stats, "serial link stopped"),
                Err(e) => {
                    tracing::warn!(error = %e, "serial link error");
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
    })
}
