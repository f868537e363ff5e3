//! The host end of the link: addresses, transports, and a request/response client that
//! signs requests, matches replies by id, retries through a lossy line and collects the
//! device's unsolicited match events.

use facegate_proto::{
    encode_frame_vec, Body, DeviceInfo, ErrorCode, Event, Frame, FrameDecoder, HelloRequest, Key, MatchEvent, Request,
    Response, Signer, NO_ID, PROTOCOL_VERSION,
};
use rand::RngCore;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::str::FromStr;
use std::time::{Duration, Instant};

const DEFAULT_BAUD: u32 = 115_200;
const POLL: Duration = Duration::from_millis(20);

/// Where a device is: `tcp:HOST:PORT` or `serial:/dev/ttyACM0[:BAUD]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    Tcp(String),
    Serial { path: String, baud: u32 },
}

impl FromStr for Addr {
    type Err = LinkError;

    fn from_str(s: &str) -> Result<Addr, LinkError> {
        let bad = || LinkError::BadAddr(s.to_string());
        if let Some(rest) = s.strip_prefix("tcp:") {
            let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(bad());
            }
            return Ok(Addr::Tcp(rest.to_string()));
        }
        if let Some(rest) = s.strip_prefix("serial:") {
            // A trailing all-digit component is the baud rate (device paths do not end so).
            let (path, baud) = match rest.rsplit_once(':') {
                Some((p, b)) if !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()) => {
                    (p, b.parse().map_err(|_| bad())?)
                }
                _ => (rest, DEFAULT_BAUD),
            };
            if path.is_empty() {
                return Err(bad());
            }
            return Ok(Addr::Serial { path: path.to_string(), baud });
        }
        Err(bad())
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Tcp(a) => write!(f, "tcp:{a}"),
            Addr::Serial { path, baud } if *baud == DEFAULT_BAUD => write!(f, "serial:{path}"),
            Addr::Serial { path, baud } => write!(f, "serial:{path}:{baud}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("bad device address {0:?}: use tcp:HOST:PORT or serial:/dev/ttyACM0[:BAUD]")]
    BadAddr(String),
    #[error("cannot open {addr}: {reason}")]
    Open { addr: String, reason: String },
    #[error("link I/O: {0}")]
    Io(#[from] io::Error),
    #[error("device did not answer within {0:?} (after retries)")]
    Timeout(Duration),
    #[error("device refused: {code_name} ({detail}){hint}", code_name = .code.name(), hint = what_to_do(*.code))]
    Device { code: ErrorCode, detail: String },
    #[error("unexpected reply from the device: {0}")]
    Unexpected(String),
    #[error("device speaks protocol {device}, this host {host}")]
    Version { device: u16, host: u16 },
}

/// What the person at the host can do about a device's refusal, where there is something.
fn what_to_do(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::PairedElsewhere => {
            ". Another host paired with the device and this registry's key no longer works: if this \
             registry should manage it, open the device's pairing window and run `facegate pair` for it again"
        }
        _ => "",
    }
}

impl LinkError {
    /// The device's error code, if the device answered with one.
    pub fn device_code(&self) -> Option<ErrorCode> {
        match self {
            LinkError::Device { code, .. } => Some(*code),
            _ => None,
        }
    }
}

trait Transport: Read + Write + Send {}
impl<T: Read + Write + Send> Transport for T {}

/// How patient the client is.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    /// Wait for one reply.
    pub reply: Duration,
    /// Resends of a request whose reply never came (lost or corrupted on the line).
    pub retries: u32,
}

impl Default for Patience {
    fn default() -> Self {
        Patience { reply: Duration::from_secs(3), retries: 3 }
    }
}

/// Counters for reports (e.g. retries through a noisy line).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ClientStats {
    pub requests: u64,
    pub retries: u64,
    pub bad_frames: u64,
}

pub struct Client {
    io: Box<dyn Transport>,
    decoder: FrameDecoder,
    next_id: u32,
    key: Option<Key>,
    signer: Option<Signer>,
    events: VecDeque<MatchEvent>,
    patience: Patience,
    pub info: DeviceInfo,
    pub addr: Addr,
    pub stats: ClientStats,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("addr", &self.addr).field("info", &self.info.device_id).finish_non_exhaustive()
    }
}

fn open(addr: &Addr) -> Result<Box<dyn Transport>, LinkError> {
    let fail = |reason: String| LinkError::Open { addr: addr.to_string(), reason };
    match addr {
        Addr::Tcp(a) => {
            let stream = TcpStream::connect(a).map_err(|e| fail(e.to_string()))?;
            stream.set_read_timeout(Some(POLL))?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream))
        }
        Addr::Serial { path, baud } => {
            let port = serialport::new(path, *baud).timeout(POLL).open().map_err(|e| fail(e.to_string()))?;
            Ok(Box::new(port))
        }
    }
}

impl Client {
    /// Opens the link and says hello; the reply describes the device.
    pub fn connect(addr: &Addr, patience: Patience) -> Result<Client, LinkError> {
        let io = open(addr)?;
        // Random first id: replies left on a serial line by an earlier session never match.
        let next_id = (rand::rngs::OsRng.next_u32() >> 1).max(1);
        let mut c = Client {
            io,
            decoder: FrameDecoder::new(),
            next_id,
            key: None,
            signer: None,
            events: VecDeque::new(),
            patience,
            info: DeviceInfo::default(),
            addr: addr.clone(),
            stats: ClientStats::default(),
        };
        c.hello()?;
        Ok(c)
    }

    /// (Re)starts the session: new nonce, so any signer must be re-keyed.
    pub fn hello(&mut self) -> Result<&DeviceInfo, LinkError> {
        let host_id = facegate_proto::bounded_str(&format!("facegate-host {}", env!("CARGO_PKG_VERSION")));
        let reply = self.request(Request::Hello(HelloRequest { protocol_version: PROTOCOL_VERSION, host_id }))?;
        let Response::Hello(info) = reply else { return Err(LinkError::Unexpected(format!("{reply:?}"))) };
        if info.protocol_version != PROTOCOL_VERSION {
            return Err(LinkError::Version { device: info.protocol_version, host: PROTOCOL_VERSION });
        }
        self.info = info;
        // MACs are bound to the session nonce: a new session needs a new signer.
        self.signer = self.key.map(|k| Signer::new(k, self.info.session_nonce));
        Ok(&self.info)
    }

    /// Signs every following request with the pairing key.
    pub fn authenticate(&mut self, key: Key) {
        self.key = Some(key);
        self.signer = Some(Signer::new(key, self.info.session_nonce));
    }

    pub fn is_authenticated(&self) -> bool {
        self.signer.is_some()
    }

    fn send(&mut self, frame: &Frame) -> Result<(), LinkError> {
        let bytes = encode_frame_vec(frame).map_err(|e| LinkError::Unexpected(format!("cannot encode: {e}")))?;
        self.io.write_all(&bytes)?;
        self.io.flush()?;
        Ok(())
    }

    /// Reads what the line has, keeping events and returning the frames received.
    fn pump(&mut self) -> Result<Vec<Frame>, LinkError> {
        let mut buf = [0u8; 4096];
        let n = match self.io.read(&mut buf) {
            Ok(0) => return Err(LinkError::Io(io::Error::new(io::ErrorKind::UnexpectedEof, "device closed the link"))),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return Ok(Vec::new()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut frames = Vec::new();
        for r in self.decoder.push(&buf[..n]) {
            match r {
                Ok(f) => frames.push(f),
                Err(_) => self.stats.bad_frames += 1,
            }
        }
        let mut rest = Vec::new();
        for f in frames {
            match f.body {
                Body::Event(Event::Match(e)) => self.events.push_back(e),
                _ => rest.push(f),
            }
        }
        Ok(rest)
    }

    /// Sends a request and waits for its reply, resending it if the reply does not come (lost
    /// or garbled on the line). Every attempt gets a fresh id and MAC counter, and only the
    /// latest attempt's reply counts: a late reply to an earlier `Hello` must not install a
    /// stale session nonce. Requests are idempotent on the device (a repeated sync chunk is
    /// acknowledged again), except a commit, which the sync command double-checks.
    /// A device error reply becomes [`LinkError::Device`].
    pub fn request(&mut self, req: Request) -> Result<Response, LinkError> {
        self.stats.requests += 1;
        for attempt in 0..=self.patience.retries {
            if attempt > 0 {
                self.stats.retries += 1;
                tracing::debug!(attempt, "resending request");
            }
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1).max(1);
            let mut frame = Frame::request(id, req.clone());
            if let Some(s) = &mut self.signer {
                s.sign(&mut frame);
            }
            self.send(&frame)?;
            let deadline = Instant::now() + self.patience.reply;
            'wait: while Instant::now() < deadline {
                for f in self.pump()? {
                    let Body::Response(resp) = f.body else { continue };
                    match resp {
                        // A duplicate of our frame reached the device (the line repeated it):
                        // the original was handled, but its reply may be lost. Ask again.
                        Response::Error(e)
                            if f.id == id && matches!(e.code, ErrorCode::Replay | ErrorCode::BadFrame) =>
                        {
                            break 'wait
                        }
                        Response::Error(e) if f.id == id => {
                            return Err(LinkError::Device { code: e.code, detail: e.detail.to_string() })
                        }
                        other if f.id == id => return Ok(other),
                        // The device could not read one of our frames: resend now rather than
                        // wait out the timeout.
                        Response::Error(e) if f.id == NO_ID && e.code == ErrorCode::BadFrame => break 'wait,
                        // Refused at the door: every session is taken ("device busy: too many sessions").
                        Response::Error(e) if f.id == NO_ID && e.code == ErrorCode::Busy => {
                            return Err(LinkError::Device { code: e.code, detail: e.detail.to_string() })
                        }
                        _ => {}
                    }
                }
            }
        }
        Err(LinkError::Timeout(self.patience.reply))
    }

    /// The next match event, waiting up to `wait`.
    pub fn next_event(&mut self, wait: Duration) -> Result<Option<MatchEvent>, LinkError> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(Some(e));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            self.pump()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_print_back() {
        assert_eq!("tcp:127.0.0.1:7700".parse::<Addr>().ok(), Some(Addr::Tcp("127.0.0.1:7700".into())));
        assert_eq!(
            "serial:/dev/ttyACM0".parse::<Addr>().ok(),
            Some(Addr::Serial { path: "/dev/ttyACM0".into(), baud: 115_200 })
        );
        assert_eq!(
            "serial:/dev/ttyUSB1:9600".parse::<Addr>().ok(),
            Some(Addr::Serial { path: "/dev/ttyUSB1".into(), baud: 9600 })
        );
        for s in ["tcp:127.0.0.1:7700", "serial:/dev/ttyACM0", "serial:/dev/ttyUSB1:9600"] {
            assert_eq!(s.parse::<Addr>().map(|a| a.to_string()).ok().as_deref(), Some(s));
        }
        for bad in ["127.0.0.1:7700", "tcp:localhost", "tcp::80", "tcp:host:99999", "serial:", "udp:x:1"] {
            assert!(bad.parse::<Addr>().is_err(), "{bad} must be refused");
        }
    }
}
