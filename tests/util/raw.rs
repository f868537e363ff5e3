//! A bare protocol session over TCP, for tests that must send exactly the frames they choose
//! (replays, altered frames, a commit not waited for) rather than what the host client sends.

use facegate_proto::{
    bounded_str, encode_frame_vec, Body, DeviceInfo, ErrorCode, Frame, FrameDecoder, HelloRequest, Key, Request,
    Response, Signer, PROTOCOL_VERSION,
};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct RawSession {
    stream: TcpStream,
    decoder: FrameDecoder,
    next_id: u32,
    /// Signs [`RawSession::send`] / [`RawSession::call`] requests when set.
    pub signer: Option<Signer>,
    pub info: DeviceInfo,
}

/// The error code of a reply, if it is an error.
pub fn error_code(r: &Response) -> Option<ErrorCode> {
    match r {
        Response::Error(e) => Some(e.code),
        _ => None,
    }
}

impl RawSession {
    /// Connects (`tcp:` prefix optional), says hello, and signs with `key` if given.
    pub fn connect(addr: &str, key: Option<Key>) -> RawSession {
        let stream = TcpStream::connect(addr.trim_start_matches("tcp:")).expect("connect to the device");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
        stream.set_nodelay(true).expect("nodelay");
        let hello = Request::Hello(HelloRequest { protocol_version: PROTOCOL_VERSION, host_id: bounded_str("test") });
        let mut s =
            RawSession { stream, decoder: FrameDecoder::new(), next_id: 2, signer: None, info: DeviceInfo::default() };
        let Response::Hello(info) = s.exchange(&Frame::request(1, hello)) else { panic!("no Hello reply") };
        s.signer = key.map(|k| Signer::new(k, info.session_nonce));
        s.info = info;
        s
    }

    /// Sends one frame as given.
    pub fn send_frame(&mut self, f: &Frame) {
        self.stream.write_all(&encode_frame_vec(f).expect("encode")).expect("send");
    }

    /// Sends a request (signed if a signer is set) without waiting for the reply.
    pub fn send(&mut self, req: Request) {
        let mut f = Frame::request(self.next_id, req);
        self.next_id += 1;
        if let Some(s) = &mut self.signer {
            s.sign(&mut f);
        }
        self.send_frame(&f);
    }

    /// The next reply on the link.
    pub fn reply(&mut self) -> Response {
        let mut buf = [0u8; 4096];
        loop {
            let n = self.stream.read(&mut buf).expect("reply");
            assert!(n > 0, "device closed the link");
            for r in self.decoder.push(&buf[..n]) {
                if let Ok(Frame { body: Body::Response(resp), .. }) = r {
                    return resp;
                }
            }
        }
    }

    /// Whether the device closes the link within `within` (reading and dropping anything it
    /// sends meanwhile).
    pub fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        let mut buf = [0u8; 4096];
        while std::time::Instant::now() < deadline {
            self.stream.set_read_timeout(Some(Duration::from_millis(100))).expect("read timeout");
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => return true,
            }
        }
        false
    }

    pub fn exchange(&mut self, f: &Frame) -> Response {
        self.send_frame(f);
        self.reply()
    }

    pub fn call(&mut self, req: Request) -> Response {
        self.send(req);
        self.reply()
    }

    /// How many records the device's audit log holds (needs a signer).
    pub fn audit_len(&mut self) -> usize {
        let mut n = 0;
        let mut since = 0;
        loop {
            let Response::Audit(page) = self.call(Request::FetchAudit { since_seq: since, limit: 64 }) else {
                panic!("FetchAudit refused")
            };
            n += page.records.len();
            match page.next_seq {
                Some(next) => since = next,
                None => return n,
            }
        }
    }

    /// Ids of every template on the device (needs a signer).
    pub fn ids(&mut self) -> BTreeSet<u32> {
        let mut out = BTreeSet::new();
        let mut cursor = 0;
        loop {
            let Response::Templates(page) = self.call(Request::ListTemplates { cursor, limit: 32 }) else {
                panic!("ListTemplates refused")
            };
            out.extend(page.items.iter().map(|t| t.id));
            match page.next {
                Some(n) => cursor = n,
                None => return out,
            }
        }
    }
}
