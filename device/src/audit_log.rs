//! Append-only audit log.
//!
//! One file of length-prefixed, checksummed records:
//!
//! ```text
//! record = u32 LE payload length | u32 LE CRC-32 (ISO-HDLC) of payload | payload = postcard(AuditRecord)
//! ```
//!
//! Sequence numbers start at 1 and are contiguous within the file. Each append is a single
//! positioned write followed by `fdatasync`, so a crash can only leave a *prefix* of the last
//! record. `open` removes such a torn tail (logging a warning); anything wrong before the last
//! record is real corruption and is reported without touching the file, so it can be
//! inspected. An in-memory index (seq -> offset) makes paged reads cheap.
//!
//! **Size bound.** When the file reaches its bound ([`DEFAULT_MAX_BYTES`]), it becomes
//! `<name>.1` (replacing an older `.1`) and a new file starts with a [`AuditKind::LogRotated`]
//! record, sequence numbers continuing. So the log holds the newest one to two bounds' worth of
//! records; when an older `.1` is dropped, the marker says which sequence numbers went with it,
//! so no record (security ones included) disappears without a trace. Reads span both files.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use facegate_proto::{bounded_str, AuditKind, AuditRecord};

/// The default size bound of one log file (see the module docs): about 40,000 records.
pub const DEFAULT_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// Largest payload accepted; anything longer is corruption (a record is well under 100 bytes).
pub const MAX_PAYLOAD: usize = 1024;
const HEADER_LEN: usize = 8;

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Errors of [`AuditLog`].
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {}: cannot {op}: {error}", path.display())]
    Io { op: &'static str, path: PathBuf, error: io::Error },
    #[error("audit log is corrupt at byte offset {offset}; the file was left untouched for inspection")]
    Corrupt { offset: u64 },
    #[error("cannot encode an audit record: {0}")]
    Encode(#[source] postcard::Error),
    #[error("audit record of {len} bytes exceeds the {MAX_PAYLOAD}-byte limit")]
    TooLarge { len: usize },
}

/// The append-only audit log (see the module docs).
pub struct AuditLog {
    path: PathBuf,
    file: File,
    /// Seq of the first record in the file (`next_seq` while the file is empty).
    first_seq: u64,
    /// File offset of each record; record `i` has seq `first_seq + i`.
    offsets: Vec<u64>,
    /// End of the last good record: where the next append goes.
    end: u64,
    next_seq: u64,
    /// A failed append could not be rolled back: retry the truncation before writing again.
    needs_truncate: bool,
    /// Rotate once the file reaches this many bytes.
    max_bytes: u64,
    /// The rotated file (`<name>.1`), read-only.
    previous: Option<Box<AuditLog>>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the index: it has one entry per record.
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .field("records", &self.offsets.len())
            .field("next_seq", &self.next_seq)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

/// What the open-time scan found where it stopped.
enum Stop {
    /// Clean end of file.
    End,
    /// A torn last record starts here.
    Torn { offset: u64, reason: &'static str },
}

impl AuditLog {
    /// Opens (or creates, mode 0600) the log at `path` with the default size bound.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        AuditLog::open_bounded(path, DEFAULT_MAX_BYTES)
    }

    /// Opens the log at `path` and its rotated predecessor, rotating at `max_bytes`.
    pub fn open_bounded(path: &Path, max_bytes: u64) -> Result<AuditLog, AuditError> {
        let mut log = AuditLog::open_file(path)?;
        log.max_bytes = max_bytes;
        let rotated = rotated_path(path);
        if rotated.exists() {
            let previous = AuditLog::open_file(&rotated)?;
            // A crash between the rename and the marker leaves the new file empty: its
            // numbering continues from the rotated one, never restarting at 1.
            if log.is_empty() {
                log.first_seq = previous.next_seq;
                log.next_seq = previous.next_seq;
            }
            log.previous = Some(Box::new(previous));
        }
        Ok(log)
    }

    /// Opens (or creates, mode 0600) one log file, indexing every record and removing a torn
    /// tail left by a crash.
    fn open_file(path: &Path) -> Result<AuditLog, AuditError> {
        let io = |op| move |error| AuditError::Io { op, path: path.to_path_buf(), error };
        let existed = match path.symlink_metadata() {
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(io("stat")(e)),
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io("open"))?;
        if existed {
            let mode = file.metadata().map_err(io("stat"))?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format_args!("{mode:03o}"),
                    "audit log is accessible by group/other"
                );
            }
        } else {
            // Make the new directory entry durable, not just the records that follow.
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            File::open(dir).and_then(|d| d.sync_all()).map_err(io("sync directory of"))?;
        }

        let mut log = AuditLog {
            path: path.to_path_buf(),
            file,
            first_seq: 1,
            offsets: Vec::new(),
            end: 0,
            next_seq: 1,
            needs_truncate: false,
            max_bytes: DEFAULT_MAX_BYTES,
            previous: None,
        };
        let file_len = log.file.metadata().map_err(io("stat"))?.len();
        if let Stop::Torn { offset, reason } = log.scan(file_len)? {
            tracing::warn!(
                path = %path.display(),
                offset,
                dropped_bytes = file_len - offset,
                reason,
                "audit log ends in a half-written record (crash or power loss); truncating it"
            );
            log.file.set_len(offset).map_err(io("truncate"))?;
            log.file.sync_all().map_err(io("sync"))?;
        }
        tracing::debug!(path = %path.display(), records = log.len(), next_seq = log.next_seq, "audit log opened");
        Ok(log)
    }

    /// Reads every record once, filling the index. Stops at a torn tail; errors on corruption.
    fn scan(&mut self, file_len: u64) -> Result<Stop, AuditError> {
        let mut reader = BufReader::with_capacity(64 * 1024, &self.file);
        let mut payload = Vec::with_capacity(MAX_PAYLOAD);
        let mut offset = 0u64;
        loop {
            let remaining = file_len - offset;
            if remaining == 0 {
                return Ok(Stop::End);
            }
            if remaining < HEADER_LEN as u64 {
                return Ok(Stop::Torn { offset, reason: "incomplete header" });
            }
            let mut header = [0u8; HEADER_LEN];
            reader.read_exact(&mut header).map_err(|e| self.io("read", e))?;
            let (len, crc) = parse_header(&header);
            if len == 0 || len > MAX_PAYLOAD {
                // We never write such a length. Zeros can still be the unwritten data of an
                // append the filesystem had already extended the file for.
                if self.zero_tail(offset, file_len)? {
                    return Ok(Stop::Torn { offset, reason: "zero-filled tail" });
                }
                return Err(corrupt(offset, "invalid record length"));
            }
            let record_end = offset + (HEADER_LEN + len) as u64;
            if record_end > file_len {
                // A torn append is the last thing in the file. A damaged length that merely
                // points past EOF would hide good records behind it: check for any.
                if self.later_record(offset, file_len)? {
                    return Err(corrupt(offset, "record length runs past records that follow"));
                }
                return Ok(Stop::Torn { offset, reason: "incomplete payload" });
            }
            payload.resize(len, 0);
            reader.read_exact(&mut payload).map_err(|e| self.io("read", e))?;
            if CRC32.checksum(&payload) != crc {
                if record_end == file_len {
                    return Ok(Stop::Torn { offset, reason: "bad checksum on the last record" });
                }
                if self.zero_tail(offset, file_len)? {
                    return Ok(Stop::Torn { offset, reason: "zero-filled tail" });
                }
                return Err(corrupt(offset, "checksum mismatch before the end of the log"));
            }
            let record = decode(&payload, offset)?;
            if self.offsets.is_empty() {
                if record.seq == 0 {
                    return Err(corrupt(offset, "sequence number 0"));
                }
                self.first_seq = record.seq;
            } else if record.seq != self.next_seq {
                return Err(corrupt(offset, "sequence numbers not contiguous"));
            }
            self.offsets.push(offset);
            self.next_seq = record.seq.saturating_add(1);
            self.end = record_end;
            offset = record_end;
        }
    }

    /// `true` if everything from `offset` to EOF is zero bytes and no longer than one record.
    fn zero_tail(&self, offset: u64, file_len: u64) -> Result<bool, AuditError> {
        let len = file_len - offset;
        if len > (HEADER_LEN + MAX_PAYLOAD) as u64 {
            return Ok(false);
        }
        let mut buf = vec![0u8; len as usize];
        self.file.read_exact_at(&mut buf, offset).map_err(|e| self.io("read", e))?;
        Ok(buf.iter().all(|b| *b == 0))
    }

    /// `true` if a complete, checksummed record newer than the last indexed one starts
    /// anywhere after `offset`. Only called on a tail shorter than one maximal record.
    fn later_record(&self, offset: u64, file_len: u64) -> Result<bool, AuditError> {
        let mut buf = vec![0u8; (file_len - offset) as usize];
        self.file.read_exact_at(&mut buf, offset).map_err(|e| self.io("read", e))?;
        for p in 1..buf.len() {
            let Some(header) = buf.get(p..p + HEADER_LEN).and_then(|h| <[u8; HEADER_LEN]>::try_from(h).ok()) else {
                break;
            };
            let (len, crc) = parse_header(&header);
            let Some(payload) = buf.get(p + HEADER_LEN..p.saturating_add(HEADER_LEN).saturating_add(len)) else {
                continue;
            };
            if len == 0 || CRC32.checksum(payload) != crc {
                continue;
            }
            if let Ok((record, [])) = postcard::take_from_bytes::<AuditRecord>(payload) {
                if record.seq >= self.next_seq {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Appends one record and makes it durable. On failure nothing is added (the file is cut
    /// back to its previous end) and the next append reuses the same seq.
    pub fn append(
        &mut self,
        kind: AuditKind,
        person_id: Option<u32>,
        score: Option<f32>,
        detail: &str,
    ) -> Result<AuditRecord, AuditError> {
        if self.needs_truncate {
            self.file.set_len(self.end).map_err(|e| self.io("truncate", e))?;
            self.needs_truncate = false;
        }
        if self.end >= self.max_bytes {
            self.rotate()?;
        }
        let record = AuditRecord {
            seq: self.next_seq,
            timestamp_ms: now_ms(),
            kind,
            person_id,
            score,
            detail: bounded_str(detail),
        };
        let payload = postcard::to_allocvec(&record).map_err(AuditError::Encode)?;
        if payload.len() > MAX_PAYLOAD {
            return Err(AuditError::TooLarge { len: payload.len() });
        }
        let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
        // Cannot truncate: checked against MAX_PAYLOAD above.
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&CRC32.checksum(&payload).to_le_bytes());
        frame.extend_from_slice(&payload);

        // Positioned write at our own idea of the end, so garbage past it can never shift
        // where records land.
        let written = self.file.write_all_at(&frame, self.end).and_then(|()| {
            fault()?;
            self.file.sync_data()
        });
        if let Err(e) = written {
            if let Err(te) = self.file.set_len(self.end) {
                tracing::error!(path = %self.path.display(), error = %te, "cannot roll back a failed audit append");
                self.needs_truncate = true;
            }
            return Err(self.io("append to", e));
        }
        if self.offsets.is_empty() {
            self.first_seq = record.seq;
        }
        self.offsets.push(self.end);
        self.end += frame.len() as u64;
        self.next_seq = self.next_seq.saturating_add(1);
        Ok(record)
    }

    /// Starts a new file (see the module docs): this one becomes `<name>.1`, replacing the
    /// older one, and the new one opens with a record saying what was kept and dropped.
    fn rotate(&mut self) -> Result<(), AuditError> {
        let rotated = rotated_path(&self.path);
        let io = |op| {
            let path = self.path.clone();
            move |error| AuditError::Io { op, path, error }
        };
        let dropped_before = self.previous.as_ref().map(|p| p.next_seq);
        if dropped_before.is_some() {
            std::fs::remove_file(&rotated).map_err(io("remove the older rotated log"))?;
        }
        std::fs::rename(&self.path, &rotated).map_err(io("rotate"))?;
        let mut fresh = AuditLog::open_file(&self.path)?;
        fresh.max_bytes = self.max_bytes;
        fresh.first_seq = self.next_seq;
        fresh.next_seq = self.next_seq;
        let mut old = std::mem::replace(self, fresh);
        old.path = rotated;
        old.previous = None;
        self.previous = Some(Box::new(old));
        let detail = match dropped_before {
            Some(seq) => format!("log rotated; records before {seq} dropped"),
            None => "log rotated; older records in the .1 file".to_string(),
        };
        tracing::warn!(detail, "audit log reached its size bound");
        self.append(AuditKind::LogRotated, None, None, &detail).map(|_| ())
    }

    /// Records with `seq >= since_seq`, in order, at most `limit` of them (from the rotated
    /// file first when it holds some of them).
    pub fn read(&self, since_seq: u64, limit: usize) -> Result<Vec<AuditRecord>, AuditError> {
        let mut out = match &self.previous {
            Some(previous) if since_seq < self.first_seq => previous.read_file(since_seq, limit)?,
            _ => Vec::new(),
        };
        let rest = limit - out.len();
        out.extend(self.read_file(since_seq.max(self.first_seq), rest)?);
        Ok(out)
    }

    /// [`AuditLog::read`] within this file.
    fn read_file(&self, since_seq: u64, limit: usize) -> Result<Vec<AuditRecord>, AuditError> {
        let start = usize::try_from(since_seq.saturating_sub(self.first_seq)).unwrap_or(usize::MAX);
        if limit == 0 || start >= self.offsets.len() {
            return Ok(Vec::new());
        }
        let stop = start.saturating_add(limit).min(self.offsets.len());
        let from = self.offsets[start];
        let to = self.offsets.get(stop).copied().unwrap_or(self.end);
        // One read for the whole page; records were verified at open, but the file may have
        // been damaged since, so check them again.
        let mut buf = vec![0u8; (to - from) as usize];
        self.file.read_exact_at(&mut buf, from).map_err(|e| self.io("read", e))?;
        let mut out = Vec::with_capacity(stop - start);
        let mut pos = 0usize;
        for (i, offset) in self.offsets[start..stop].iter().enumerate() {
            let bad = || corrupt(*offset, "record changed since open");
            let header: [u8; HEADER_LEN] =
                buf.get(pos..pos + HEADER_LEN).and_then(|h| h.try_into().ok()).ok_or_else(bad)?;
            let (len, crc) = parse_header(&header);
            let payload = buf.get(pos + HEADER_LEN..pos + HEADER_LEN + len).ok_or_else(bad)?;
            if len > MAX_PAYLOAD || CRC32.checksum(payload) != crc {
                return Err(bad());
            }
            let record = decode(payload, *offset)?;
            if record.seq != self.first_seq + (start + i) as u64 {
                return Err(bad());
            }
            out.push(record);
            pos += HEADER_LEN + len;
        }
        Ok(out)
    }

    /// Seq the next appended record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Number of records in the log (both files).
    pub fn len(&self) -> usize {
        self.offsets.len() + self.previous.as_ref().map_or(0, |p| p.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn io(&self, op: &'static str, source: io::Error) -> AuditError {
        AuditError::Io { op, path: self.path.clone(), error: source }
    }
}

/// Where a full log file is moved on rotation: `<name>.1`.
fn rotated_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

fn parse_header(h: &[u8; HEADER_LEN]) -> (usize, u32) {
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    (usize::try_from(len).unwrap_or(usize::MAX), crc)
}

fn decode(payload: &[u8], offset: u64) -> Result<AuditRecord, AuditError> {
    match postcard::take_from_bytes::<AuditRecord>(payload) {
        Ok((record, [])) => Ok(record),
        // A good checksum over bytes that do not decode: not a torn write.
        _ => Err(corrupt(offset, "record does not decode")),
    }
}

fn corrupt(offset: u64, reason: &'static str) -> AuditError {
    tracing::error!(offset, reason, "audit log corrupt");
    AuditError::Corrupt { offset }
}

/// Wall clock in Unix ms; 0 when the clock is before 1970 (unset RTC).
fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(not(test))]
#[inline(always)]
fn fault() -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
thread_local! {
    /// Test hook: fail the next append after its bytes are written, before the sync.
    static FAIL_NEXT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
fn fault() -> io::Result<()> {
    if FAIL_NEXT.with(|f| f.replace(false)) {
        return Err(io::Error::new(io::ErrorKind::StorageFull, "injected failure"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use facegate_proto::AUDIT_DETAIL_LEN;
    use std::fs;
    use tempfile::TempDir;

    fn log_path() -> (TempDir, PathBuf) {
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join("audit.log");
        (tmp, path)
    }

    fn fill(log: &mut AuditLog, n: usize) -> Vec<AuditRecord> {
        (0..n)
            .map(|i| {
                let kind = if i % 2 == 0 { AuditKind::AccessGranted } else { AuditKind::UnknownFace };
                log.append(kind, Some(i as u32), Some(0.5 + i as f32 / 100.0), &format!("event {i}")).unwrap()
            })
            .collect()
    }

    #[test]
    fn append_read_reopen_continues_seq() {
        let (_tmp, path) = log_path();
        let mut log = AuditLog::open(&path).unwrap();
        assert!(log.is_empty());
        assert_eq!(log.next_seq(), 1);
        let written = fill(&mut log, 3);
        assert_eq!(written.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(written[0].timestamp_ms > 1_600_000_000_000);
        assert_eq!(log.read(0, 100).unwrap(), written);
        drop(log);

        let mut log = AuditLog::open(&path).unwrap();
        assert_eq!(log.len(), 3);
        assert_eq!(log.next_seq(), 4);
        assert_eq!(log.read(1, 100).unwrap(), written);
        let r = log.append(AuditKind::Boot, None, None, "boot").unwrap();
        assert_eq!(r.seq, 4);
        drop(log);
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(log.read(4, 1).unwrap(), vec![r]);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn detail_is_bounded() {
        let (_tmp, path) = log_path();
        let mut log = AuditLog::open(&path).unwrap();
        let long = "é".repeat(AUDIT_DETAIL_LEN);
        let r = log.append(AuditKind::ConfigChanged, None, None, &long).unwrap();
        assert_eq!(r.detail.len(), AUDIT_DETAIL_LEN);
        assert_eq!(log.read(1, 1).unwrap()[0].detail, r.detail);
    }

    #[test]
    fn read_pages() {
        let (_tmp, path) = log_path();
        let mut log = AuditLog::open(&path).unwrap();
        let all = fill(&mut log, 20);
        assert_eq!(log.read(0, 5).unwrap(), all[..5]);
        assert_eq!(log.read(6, 5).unwrap(), all[5..10]);
        assert_eq!(log.read(18, 5).unwrap(), all[17..]);
        assert_eq!(log.read(20, 5).unwrap(), all[19..]);
        assert!(log.read(21, 5).unwrap().is_empty());
        assert!(log.read(u64::MAX, 5).unwrap().is_empty());
        assert!(log.read(1, 0).unwrap().is_empty());
        assert_eq!(log.read(1, usize::MAX).unwrap(), all);

        // Paging the way a host does: since = last seq + 1.
        let mut since = 0;
        let mut seen = Vec::new();
        loop {
            let page = log.read(since, 3).unwrap();
            let Some(last) = page.last() else { break };
            since = last.seq + 1;
            seen.extend(page);
        }
        assert_eq!(seen, all);
    }

    #[test]
    fn torn_tail_of_every_length_is_dropped() {
        let (_tmp, path) = log_path();
        let mut log = AuditLog::open(&path).unwrap();
        let written = fill(&mut log, 4);
        let last_start = log.offsets[3];
        drop(log);
        let full = fs::read(&path).unwrap();
        for cut in last_start as usize + 1..full.len() {
            fs::write(&path, &full[..cut]).unwrap();
            let mut log = AuditLog::open(&path).unwrap();
            assert_eq!(log.len(), 3, "cut at {cut}");
            assert_eq!(log.read(0, 10).unwrap(), written[..3]);
            assert_eq!(fs::metadata(&path).unwrap().len(), last_start, "cut at {cut}");
            assert_eq!(log.append(AuditKind::Boot, None, None, "after crash").unwrap().seq, 4);
            drop(log);
            assert_eq!(AuditLog::open(&path).unwrap().len(), 4);
        }
    }

    #[test]
    fn torn_first_record_leaves_an_empty_log() {
        let (_tmp, path) = log_path();
        let mut log = AuditLog::open(&path).unwrap();
        fill(&mut log, 1);
        drop(log);
        let full = fs::read(&path).unwrap();
        for cut in 1..full.len() {
            fs::write(&path, &full[..cut]).unwrap();
            let log = AuditLog::open(&path).unwrap();
            assert!(log.is_empty());
            assert_eq!(log.next_seq(), 1);
            assert_eq!(fs::metadata(&path).unwrap().len(), 0);
        }
    }

    #[test]
    fn bad_checksum_on_last_record_is_a_torn_tail() {
        let (_tmp, path) = log_path();
        let mut log = AuditLog::open(&path).unwrap();
        fill(&mut log, 3);
        let last_start = log.offsets[2];
        drop(log);
        let mut bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0xFF;
        fs::write(&path, &bytes).unwrap();
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(fs::metadata(&path).unwrap().len(), last_start);
    }

    #[test]
    fn zero_filled_tail_is_a_torn_tail() {
        let (_tmp, path) = log_path();
        let mut log = AuditLog::open(&path).unwrap();
        fill(&mut log, 2);
        let end = log.end;
        drop(log);
        let good = fs::read(&path).unwrap();
        for zeros in [1, 8, 60, HEADER_LEN + MAX_PAYLOAD] {
            let mut bytes = good.clone();
            bytes.resize(good.len() + zeros, 0);
            fs::write(&path, &bytes).unwrap();
            let log = AuditLog::open(&path).unwrap();
            assert_eq!(log.len(), 2, "{zeros} zeros");
            assert_eq!(fs::metadata(&path).unwrap().len(), end);
        }
        // More zeros than one record could leave is not a crash artefact.
        let mut bytes = good.clone();
        bytes.resize(good.len() + HEADER_LEN + MAX_PAYLOAD + 1, 0);
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(AuditLog::open(&path), Err(AuditError::Corrupt { offset }) if offset == end));
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn middle_corruption_is_reported_and_file_untouched() {
        let (_tmp, path) = log_path();
        let mut log = AuditLog::open(&path).unwrap();
        fill(&mut log, 5);
        let offsets = log.offsets.clone();
        drop(log);
        let good = fs::read(&path).unwrap();

        // Payload byte, CRC byte and length byte of record 2 (seq 3), and the first record.
        let record = offsets[2] as usize;
        for (at, mask) in
            [(record + HEADER_LEN + 3, 0x10u8), (record + 5, 0x01), (record + 1, 0x04), (2, 0x01), (9, 0x01)]
        {
            let mut bytes = good.clone();
            bytes[at] ^= mask;
            fs::write(&path, &bytes).unwrap();
            match AuditLog::open(&path) {
                Err(AuditError::Corrupt { offset }) => {
                    assert!(offsets.contains(&offset), "byte {at}: offset {offset}");
                    assert!(offset as usize <= at, "byte {at}: offset {offset}");
                }
                other => panic!("byte {at}: expected Corrupt, got {other:?}"),
            }
            assert_eq!(fs::read(&path).unwrap(), bytes, "byte {at}: file was modified");
        }
    }

    #[test]
    fn length_running_past_later_records_is_corruption() {
        let (_tmp, path) = log_path();
        let mut log = AuditLog::open(&path).unwrap();
        fill(&mut log, 5);
        let third = log.offsets[2] as usize;
        drop(log);
        let mut bytes = fs::read(&path).unwrap();
        // Still a legal length, but past EOF: looks torn, yet records 4 and 5 follow.
        bytes[third..third + 4].copy_from_slice(&1000u32.to_le_bytes());
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(AuditLog::open(&path), Err(AuditError::Corrupt { offset }) if offset == third as u64));
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn oversized_length_is_corruption() {
        let (_tmp, path) = log_path();
        let mut log = AuditLog::open(&path).unwrap();
        fill(&mut log, 2);
        drop(log);
        let mut bytes = fs::read(&path).unwrap();
        bytes[..4].copy_from_slice(&(MAX_PAYLOAD as u32 + 1).to_le_bytes());
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(AuditLog::open(&path), Err(AuditError::Corrupt { offset: 0 })));
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn damage_after_open_is_reported_by_read() {
        let (_tmp, path) = log_path();
        let mut log = AuditLog::open(&path).unwrap();
        fill(&mut log, 3);
        let at = log.offsets[1] + HEADER_LEN as u64;
        let mut bytes = fs::read(&path).unwrap();
        bytes[at as usize] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        assert_eq!(log.read(1, 1).unwrap().len(), 1);
        assert!(matches!(log.read(1, 3), Err(AuditError::Corrupt { offset }) if offset == log.offsets[1]));
    }

    #[test]
    fn failed_append_leaves_no_partial_record() {
        let (_tmp, path) = log_path();
        let mut log = AuditLog::open(&path).unwrap();
        let mut written = fill(&mut log, 2);
        let len_before = fs::metadata(&path).unwrap().len();

        FAIL_NEXT.with(|f| f.set(true));
        let err = log.append(AuditKind::AccessDenied, Some(1), None, "lost").unwrap_err();
        assert!(matches!(err, AuditError::Io { .. }), "{err:?}");
        assert_eq!(fs::metadata(&path).unwrap().len(), len_before);
        assert_eq!(log.next_seq(), 3);
        assert_eq!(log.len(), 2);

        written.push(log.append(AuditKind::AccessDenied, Some(1), None, "kept").unwrap());
        assert_eq!(written[2].seq, 3);
        drop(log);
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(log.read(0, 10).unwrap(), written);
    }

    #[test]
    fn non_contiguous_seq_is_corruption() {
        let (_tmp, path) = log_path();
        let mut log = AuditLog::open(&path).unwrap();
        fill(&mut log, 2);
        let second = log.offsets[1] as usize;
        drop(log);
        let good = fs::read(&path).unwrap();
        // The file with its second record doubled: a valid record whose seq repeats.
        let mut bytes = good.clone();
        bytes.extend_from_slice(&good[second..]);
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(AuditLog::open(&path), Err(AuditError::Corrupt { offset }) if offset == good.len() as u64));
    }

    #[test]
    fn debug_is_compact() {
        let (_tmp, path) = log_path();
        let mut log = AuditLog::open(&path).unwrap();
        fill(&mut log, 3);
        let shown = format!("{log:?}");
        assert!(shown.contains("records: 3") && shown.contains("next_seq: 4"), "{shown}");
    }

    /// A flood cannot fill the disk: the log keeps the newest one to two bounds' worth of
    /// records, numbering continues across files and restarts, and what was dropped is said.
    #[test]
    fn the_log_rotates_at_its_bound_and_says_what_it_dropped() {
        let (tmp, path) = log_path();
        const BOUND: u64 = 4096;
        let mut log = AuditLog::open_bounded(&path, BOUND).unwrap();
        for i in 0..1000 {
            log.append(AuditKind::AuthFailure, None, None, &format!("attempt {i}")).unwrap();
        }
        let files: u64 = std::fs::read_dir(tmp.path()).unwrap().flatten().map(|e| e.metadata().unwrap().len()).sum();
        assert!(files <= 2 * BOUND + 200, "{files} bytes on disk");
        let check = |log: &AuditLog| {
            let all = log.read(0, usize::MAX).unwrap();
            assert_eq!(all.len(), log.len());
            assert!(all.windows(2).all(|w| w[1].seq == w[0].seq + 1), "contiguous across the two files");
            assert_eq!(all.last().unwrap().seq, log.next_seq() - 1);
            let marker = all.iter().rev().find(|r| r.kind == AuditKind::LogRotated).expect("a rotation marker");
            assert_eq!(marker.detail.as_str(), format!("log rotated; records before {} dropped", all[0].seq));
            all
        };
        let all = check(&log);
        // A page that starts in the rotated file runs on into the current one.
        let page = log.read(all[0].seq, all.len()).unwrap();
        assert_eq!(page, all);
        drop(log);
        let mut reopened = AuditLog::open_bounded(&path, BOUND).unwrap();
        assert_eq!(check(&reopened), all);
        let next = reopened.append(AuditKind::Boot, None, None, "after restart").unwrap();
        assert_eq!(next.seq, all.last().unwrap().seq + 1);
    }

    #[test]
    fn a_crash_between_rename_and_marker_does_not_restart_the_numbering() {
        let (_tmp, path) = log_path();
        let mut log = AuditLog::open_bounded(&path, 1 << 20).unwrap();
        fill(&mut log, 5);
        drop(log);
        std::fs::rename(&path, rotated_path(&path)).unwrap();
        let mut log = AuditLog::open_bounded(&path, 1 << 20).unwrap();
        assert_eq!(log.len(), 5);
        assert_eq!(log.append(AuditKind::Boot, None, None, "").unwrap().seq, 6);
    }
}
