//! Frame envelope and the COBS + CRC-32 codec (see the crate docs for the
//! wire diagram).

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, ErrorResponse, FrameError};
use crate::message::{Event, Request, Response};

/// Maximum size of one frame on the wire, both `0x00` delimiters included.
pub const MAX_FRAME: usize = 8192;
/// Maximum COBS-encoded bytes between the delimiters (decoder buffer size).
pub const MAX_ENCODED: usize = MAX_FRAME - 2;
/// CRC trailer length.
pub const CRC_LEN: usize = 4;

/// CRC-32/ISO-HDLC (the zlib/Ethernet CRC), appended little-endian.
static CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Frame id used for unsolicited events and for replies to frames whose id
/// could not be read. Hosts should number requests from 1.
pub const NO_ID: u32 = 0;

/// MAC stamp of an authenticated frame (see [`crate::auth`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Auth {
    /// Strictly increasing per session.
    pub counter: u64,
    /// HMAC-SHA256 truncated to 16 bytes.
    pub tag: [u8; 16],
}

/// What a frame carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
// no_std has no Box: fixed-size inline messages are intended.
#[allow(clippy::large_enum_variant)]
pub enum Body {
    Request(Request),
    Response(Response),
    Event(Event),
}

impl Body {
    /// `true` if this is a state-changing request (see [`Request::changes_state`]).
    pub const fn changes_state(&self) -> bool {
        match self {
            Body::Request(r) => r.changes_state(),
            Body::Response(_) | Body::Event(_) => false,
        }
    }
}

/// The unit sent on the wire. Field order is part of the format: `auth` is
/// last so the MAC input (`id`, `body`) is a prefix of the encoding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    /// Request id chosen by the host; responses echo it; events use [`NO_ID`].
    pub id: u32,
    pub body: Body,
    pub auth: Option<Auth>,
}

impl Frame {
    pub const fn request(id: u32, req: Request) -> Frame {
        Frame { id, body: Body::Request(req), auth: None }
    }

    pub const fn response(id: u32, resp: Response) -> Frame {
        Frame { id, body: Body::Response(resp), auth: None }
    }

    pub const fn event(ev: Event) -> Frame {
        Frame { id: NO_ID, body: Body::Event(ev), auth: None }
    }

    /// Error reply to request `id`.
    pub fn error(id: u32, code: ErrorCode, detail: &str) -> Frame {
        Frame::response(id, Response::Error(ErrorResponse::new(code, detail)))
    }
}

/// postcard flavor that CRCs and COBS-encodes on the fly, so encoding needs
/// no scratch buffer besides the caller's output.
struct CobsCrc<'a> {
    cobs: cobs::CobsEncoder<'a>,
    crc: crc::Digest<'static, u32>,
}

impl postcard::ser_flavors::Flavor for CobsCrc<'_> {
    type Output = usize;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.crc.update(data);
        self.cobs.push(data).map_err(|_| postcard::Error::SerializeBufferFull)
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.try_extend(&[data])
    }

    fn finalize(mut self) -> postcard::Result<usize> {
        let crc = self.crc.finalize().to_le_bytes();
        self.cobs.push(&crc).map_err(|_| postcard::Error::SerializeBufferFull)?;
        Ok(self.cobs.finalize())
    }
}

/// Encodes `frame` as `0x00 | COBS(postcard | crc32) | 0x00` into `out` and
/// returns the written prefix. Fails with [`FrameError::TooLarge`] if the
/// frame would exceed [`MAX_FRAME`], or [`FrameError::BufferTooSmall`] if
/// `out` is shorter than that (a `MAX_FRAME` buffer always suffices).
pub fn encode_frame<'a>(frame: &Frame, out: &'a mut [u8]) -> Result<&'a [u8], FrameError> {
    let limit = out.len().min(MAX_FRAME);
    if limit < 3 {
        return Err(FrameError::BufferTooSmall);
    }
    // Leading delimiter: terminates any garbage or truncated frame the
    // receiver may be holding, so this frame is never merged with it.
    out[0] = 0;
    let flavor = CobsCrc { cobs: cobs::CobsEncoder::new(&mut out[1..limit - 1]), crc: CRC32.digest() };
    let n = match postcard::serialize_with_flavor(frame, flavor) {
        Ok(n) => n,
        Err(postcard::Error::SerializeBufferFull) if out.len() >= MAX_FRAME => return Err(FrameError::TooLarge),
        Err(postcard::Error::SerializeBufferFull) => return Err(FrameError::BufferTooSmall),
        Err(_) => return Err(FrameError::Encode),
    };
    // Defensive: never trust the encoder's length beyond the slice it had.
    if n == 0 || n > limit - 2 {
        return Err(if out.len() >= MAX_FRAME { FrameError::TooLarge } else { FrameError::BufferTooSmall });
    }
    out[n + 1] = 0;
    Ok(&out[..n + 2])
}

/// Allocating convenience around [`encode_frame`].
#[cfg(feature = "alloc")]
pub fn encode_frame_vec(frame: &Frame) -> Result<alloc::vec::Vec<u8>, FrameError> {
    let mut buf = alloc::vec![0u8; MAX_FRAME];
    let n = encode_frame(frame, &mut buf)?.len();
    buf.truncate(n);
    Ok(buf)
}

/// Decodes one frame given as its COBS bytes, with or without the
/// surrounding delimiters (e.g. a golden vector or a datagram).
pub fn decode_frame(wire: &[u8]) -> Result<Frame, FrameError> {
    let start = wire.iter().position(|b| *b != 0).unwrap_or(wire.len());
    let end = wire.iter().rposition(|b| *b != 0).map_or(start, |i| i + 1);
    let inner = &wire[start..end];
    if inner.is_empty() {
        return Err(FrameError::TooShort);
    }
    if inner.contains(&0) {
        // More than one frame: not what the caller meant.
        return Err(FrameError::Cobs);
    }
    if inner.len() > MAX_ENCODED {
        return Err(FrameError::Oversized);
    }
    let mut buf = [0u8; MAX_ENCODED];
    buf[..inner.len()].copy_from_slice(inner);
    decode_in_place(&mut buf[..inner.len()])
}

/// COBS-decodes `buf` in place, checks the CRC and deserializes.
fn decode_in_place(buf: &mut [u8]) -> Result<Frame, FrameError> {
    let n = cobs::decode_in_place(buf).map_err(|_| FrameError::Cobs)?;
    let decoded = buf.get(..n).ok_or(FrameError::Cobs)?;
    // Smallest valid frame: id (1) + body tag (1) + request tag (1) + auth flag (1).
    if n < CRC_LEN + 4 {
        return Err(FrameError::TooShort);
    }
    let (payload, crc) = decoded.split_at(n - CRC_LEN);
    let expected = CRC32.checksum(payload).to_le_bytes();
    if crc != expected {
        return Err(FrameError::Crc);
    }
    match postcard::take_from_bytes::<Frame>(payload) {
        Ok((frame, [])) => Ok(frame),
        Ok((frame, _trailing)) => Err(FrameError::Malformed { id: Some(frame.id), what: "bytes after the message" }),
        Err(e) => {
            // The CRC matched, so the sender really sent this; recover the id
            // (first field) so the reply can reference the request, and the
            // request kind, to say what was wrong with which field.
            let (id, request) = match postcard::take_from_bytes::<(u32, u32, u32)>(payload) {
                Ok(((id, 0, kind), _)) => (Some(id), Some(kind)),
                Ok(((id, _, _), _)) => (Some(id), None),
                Err(_) => (postcard::take_from_bytes::<u32>(payload).ok().map(|(id, _)| id), None),
            };
            Err(match e {
                // An unknown variant index (newer peer), or an over-long bounded field
                // (heapless refuses it while deserializing).
                postcard::Error::SerdeDeCustom | postcard::Error::DeserializeBadEnum => {
                    FrameError::Unsupported { id, what: unsupported(request) }
                }
                postcard::Error::DeserializeUnexpectedEnd => FrameError::Malformed { id, what: "cut short" },
                postcard::Error::DeserializeBadUtf8 => FrameError::Malformed { id, what: "text that is not UTF-8" },
                _ => FrameError::Malformed { id, what: "a field that does not decode" },
            })
        }
    }
}

/// Which bounded field of request `kind` (its variant index) can be too long, for the error
/// reply: the peer learns what to fix, not just "frame rejected". Each fits an error detail
/// ([`ERROR_DETAIL_LEN`](crate::ERROR_DETAIL_LEN)).
fn unsupported(kind: Option<u32>) -> &'static str {
    match kind {
        Some(0) => "Hello: host id longer than 32 bytes",
        Some(3) => "UpsertTemplate: name > 48 bytes or model id > 32",
        Some(7) => "SyncChunk: > 4 templates or a field too long",
        Some(13) => "SetLogins: > 32 logins or a login > 32 bytes",
        Some(14) => "Unlock: login or service > 32 bytes",
        Some(15) => "SetCards: > 128 cards or a card > 16 bytes",
        Some(16) => "SetAccess: > 64 entries or > 8 windows",
        Some(18) => "DropProposals: > 32 ids",
        Some(k) if k < REQUEST_KINDS => "a value this device does not know",
        _ => "a kind of message this device does not know",
    }
}

/// How many kinds of [`Request`](crate::Request) this build knows (variant indices 0..this).
const REQUEST_KINDS: u32 = 19;

/// Incremental stream decoder with a fixed [`MAX_ENCODED`]-byte buffer.
///
/// Feed it bytes as they arrive from the link. It yields one result per
/// delimited chunk: `Ok(frame)` or the reason the chunk was rejected. Empty
/// chunks (consecutive delimiters) are skipped silently. It never panics and
/// never allocates; an over-long chunk is reported once as
/// [`FrameError::Oversized`] and then discarded up to the next delimiter, so
/// the decoder resynchronises on the next frame after any damage.
///
/// ~8 KiB: on a microcontroller, place it in a `static` (`new` is `const`).
pub struct FrameDecoder {
    buf: [u8; MAX_ENCODED],
    len: usize,
    /// Discarding an oversized chunk until the next delimiter.
    dropping: bool,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for FrameDecoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FrameDecoder").field("buffered", &self.len).field("dropping", &self.dropping).finish()
    }
}

impl FrameDecoder {
    pub const fn new() -> Self {
        FrameDecoder { buf: [0; MAX_ENCODED], len: 0, dropping: false }
    }

    /// Bytes of the current, incomplete chunk held in the buffer.
    pub const fn buffered(&self) -> usize {
        self.len
    }

    /// Forgets any partial chunk (e.g. after reconnecting the link).
    pub fn reset(&mut self) {
        self.len = 0;
        self.dropping = false;
    }

    /// Processes one byte; returns a result when it completes a chunk.
    pub fn feed(&mut self, byte: u8) -> Option<Result<Frame, FrameError>> {
        if byte != 0 {
            if self.dropping {
                return None;
            }
            if self.len == MAX_ENCODED {
                self.len = 0;
                self.dropping = true;
                return Some(Err(FrameError::Oversized));
            }
            self.buf[self.len] = byte;
            self.len += 1;
            return None;
        }
        if self.dropping {
            self.dropping = false;
            return None;
        }
        if self.len == 0 {
            return None;
        }
        let len = core::mem::take(&mut self.len);
        Some(decode_in_place(&mut self.buf[..len]))
    }

    /// Iterator over the results completed by `bytes`. Consume it fully:
    /// bytes after the point where iteration stops are not processed.
    pub fn push<'d, 'b>(&'d mut self, bytes: &'b [u8]) -> Push<'d, 'b> {
        Push { dec: self, bytes }
    }

    /// Feeds all of `bytes`, calling `on_result` for each completed chunk.
    pub fn push_with(&mut self, bytes: &[u8], mut on_result: impl FnMut(Result<Frame, FrameError>)) {
        for b in bytes {
            if let Some(r) = self.feed(*b) {
                on_result(r);
            }
        }
    }
}

/// Iterator returned by [`FrameDecoder::push`].
#[derive(Debug)]
pub struct Push<'d, 'b> {
    dec: &'d mut FrameDecoder,
    bytes: &'b [u8],
}

impl Iterator for Push<'_, '_> {
    type Item = Result<Frame, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        while let Some((&b, rest)) = self.bytes.split_first() {
            self.bytes = rest;
            if let Some(r) = self.dec.feed(b) {
                return Some(r);
            }
        }
        None
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;

    #[test]
    fn vec_encoder_matches_slice_encoder() {
        let f = Frame::request(1, Request::Ping { payload: 5 });
        let mut buf = [0u8; MAX_FRAME];
        let slice = encode_frame(&f, &mut buf).map(<[u8]>::to_vec);
        assert_eq!(encode_frame_vec(&f), slice);
        assert_eq!(decode_frame(&encode_frame_vec(&f).unwrap()), Ok(f));
    }
}
