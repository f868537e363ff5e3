//! A TCP proxy that damages the link between host and device on purpose: bit flips, dropped
//! bytes, duplicated and delayed frames, at set rates. It cuts the byte stream at the
//! protocol's 0x00 delimiters so each fault hits one frame, as noise on a real line would.

use rand::{Rng, SeedableRng};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Fault rates: per frame unless named per byte.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Flip one random bit of one random byte of the frame.
    pub corrupt: f64,
    /// Additionally, flip a bit in each byte with this probability.
    pub flip_per_byte: f64,
    /// Drop a run of 1..=8 bytes (possibly the delimiter, merging two frames).
    pub drop: f64,
    /// Send the frame twice.
    pub duplicate: f64,
    /// Hold the frame back for up to `max_delay`.
    pub delay: f64,
    pub max_delay: Duration,
}

/// What the proxy did, both directions together.
#[derive(Debug, Default)]
pub struct ProxyStats {
    pub frames: AtomicU64,
    pub corrupted: AtomicU64,
    pub dropped: AtomicU64,
    pub duplicated: AtomicU64,
    pub delayed: AtomicU64,
}

impl ProxyStats {
    pub fn summary(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "{} frames: {} corrupted, {} with bytes dropped, {} duplicated, {} delayed",
            g(&self.frames),
            g(&self.corrupted),
            g(&self.dropped),
            g(&self.duplicated),
            g(&self.delayed)
        )
    }
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    pub faults: Arc<Mutex<Faults>>,
    pub stats: Arc<ProxyStats>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1 (any port) and forwards every connection to `target`.
    pub fn start(target: SocketAddr, faults: Faults, seed: u64) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let faults = Arc::new(Mutex::new(faults));
        let stats = Arc::new(ProxyStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (f, s, st) = (faults.clone(), stats.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((host, _)) => {
                        let Ok(device) = TcpStream::connect(target) else { continue };
                        // Frames go on at once: Nagle plus delayed ACKs would add 40 ms a round trip.
                        let _ = (host.set_nodelay(true), device.set_nodelay(true), host.set_nonblocking(false));
                        n += 1;
                        for (from, to, dir) in [(&host, &device, 0u64), (&device, &host, 1)] {
                            let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) else { continue };
                            let (f, s, st) = (f.clone(), s.clone(), st.clone());
                            let seed = seed ^ (n << 1 | dir);
                            std::thread::spawn(move || pump(from, to, f, s, st, seed));
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(FaultProxy { addr, faults, stats, stop })
    }

    pub fn set(&self, faults: Faults) {
        *self.faults.lock().unwrap_or_else(|p| p.into_inner()) = faults;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    faults: Arc<Mutex<Faults>>,
    stats: Arc<ProxyStats>,
    stop: Arc<AtomicBool>,
    seed: u64,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    while !stop.load(Ordering::Relaxed) {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(_) => break,
        };
        pending.extend_from_slice(&buf[..n]);
        // Forward each complete frame (up to and including a delimiter) with its faults.
        while let Some(end) = pending.iter().position(|&b| b == 0) {
            let frame: Vec<u8> = pending.drain(..=end).collect();
            let f = *faults.lock().unwrap_or_else(|p| p.into_inner());
            if forward(&mut to, frame, &f, &stats, &mut rng).is_err() {
                return;
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

fn forward(
    to: &mut TcpStream,
    mut frame: Vec<u8>,
    f: &Faults,
    stats: &ProxyStats,
    rng: &mut impl Rng,
) -> std::io::Result<()> {
    if frame.len() > 1 {
        stats.frames.fetch_add(1, Ordering::Relaxed);
    } else {
        // A bare delimiter: pass it on untouched (it carries no frame).
        return to.write_all(&frame);
    }
    let mut damaged = false;
    if rng.gen_bool(f.corrupt) {
        let i = rng.gen_range(0..frame.len());
        frame[i] ^= 1 << rng.gen_range(0..8);
        damaged = true;
    }
    if f.flip_per_byte > 0.0 {
        for b in frame.iter_mut() {
            if rng.gen_bool(f.flip_per_byte) {
                *b ^= 1 << rng.gen_range(0..8);
                damaged = true;
            }
        }
    }
    if damaged {
        stats.corrupted.fetch_add(1, Ordering::Relaxed);
    }
    if rng.gen_bool(f.drop) {
        let start = rng.gen_range(0..frame.len());
        let len = rng.gen_range(1..=8).min(frame.len() - start);
        frame.drain(start..start + len);
        stats.dropped.fetch_add(1, Ordering::Relaxed);
    }
    if rng.gen_bool(f.delay) && !f.max_delay.is_zero() {
        stats.delayed.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(f.max_delay.mul_f64(rng.gen_range(0.0..1.0)));
    }
    to.write_all(&frame)?;
    if rng.gen_bool(f.duplicate) {
        stats.duplicated.fetch_add(1, Ordering::Relaxed);
        to.write_all(&frame)?;
    }
    to.flush()
}
