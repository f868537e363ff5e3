//! The door as an OSDP peripheral device (a reader) on an RS-485 line, through libosdp: the
//! panel polls it, and it answers a grant with a card read carrying the person's credential.
//! Panel commands (LED, buzzer, text, a new secure-channel key) come back as [`PanelCommand`]s; the link's state is audited here.
//!
//! libosdp wants `refresh` at least every 50 ms and never blocks; it runs on its own thread.

use super::PanelCommand;
use crate::state::Core;
use facegate_proto::{AuditKind, Card};
use libosdp::{
    Channel, ChannelError, OsdpCommand, OsdpEvent, OsdpEventCardRead, OsdpFlag, PdCapEntity, PdCapability, PdId,
    PdInfoBuilder, PeripheralDevice,
};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the device meets its panel.
#[derive(Debug, Clone)]
pub struct OsdpConfig {
    /// Serial device of the RS-485 adapter (or one end of a pty pair).
    pub path: String,
    /// 0-126.
    pub address: u8,
    pub baud: u32,
    /// Secure channel base key; `None`: the one a panel set earlier (kept in the store), else
    /// install mode (the panel may set one with KEYSET under the default key).
    pub scbk: Option<[u8; 16]>,
}

/// Between refreshes while the line is quiet (libosdp needs one at least every 50 ms).
const IDLE_REFRESH: Duration = Duration::from_millis(10);
/// Before opening the serial device again after it failed (an adapter unplugged).
const REOPEN_AFTER: Duration = Duration::from_secs(2);

/// Bytes handed to libosdp per refresh: half its receive ring (512), so a flood of noise is
/// taken in bites it can parse instead of overflowing the ring.
const READ_BUDGET: usize = 256;

/// The serial line as libosdp's channel: non-blocking reads, and a flag for a dead line.
struct SerialChannel {
    port: Box<dyn serialport::SerialPort>,
    /// Bytes libosdp may still take in this refresh (reset before each one).
    budget: Arc<std::sync::atomic::AtomicUsize>,
    /// Bytes arrived in the last read: refresh again at once instead of sleeping.
    busy: Arc<AtomicBool>,
    failed: Arc<AtomicBool>,
}

impl SerialChannel {
    fn fail(&self, e: std::io::Error) -> ChannelError {
        if !self.failed.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %e, "OSDP line failed");
        }
        ChannelError::TransportError
    }
}

impl Channel for SerialChannel {
    fn get_id(&self) -> i32 {
        0
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ChannelError> {
        let waiting = self.port.bytes_to_read().map_err(|e| self.fail(e.into()))?;
        if waiting == 0 {
            self.busy.store(false, Ordering::Relaxed);
            return Err(ChannelError::WouldBlock);
        }
        self.busy.store(true, Ordering::Relaxed);
        let n = (waiting as usize).min(buf.len()).min(self.budget.load(Ordering::Relaxed));
        if n == 0 {
            return Err(ChannelError::WouldBlock);
        }
        match self.port.read(&mut buf[..n]) {
            Ok(n) => {
                self.budget.fetch_sub(n, Ordering::Relaxed);
                Ok(n)
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {
                Err(ChannelError::WouldBlock)
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn write(&mut self, buf: &[u8]) -> Result<usize, ChannelError> {
        match self.port.write(buf) {
            Ok(n) => Ok(n),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {
                Err(ChannelError::WouldBlock)
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn flush(&mut self) -> Result<(), ChannelError> {
        self.port.flush().map_err(|e| self.fail(e))
    }

    fn close(&mut self) -> Result<(), ChannelError> {
        Ok(())
    }
}

/// Starts the peripheral on its own thread: cards sent on the returned sender are reported to
/// the panel; what the panel says arrives on `events`.
pub fn spawn(config: OsdpConfig, core: Arc<Core>, events: SyncSender<PanelCommand>) -> std::io::Result<Sender<Card>> {
    let (cards_tx, cards_rx) = std::sync::mpsc::channel::<Card>();
    std::thread::Builder::new().name("osdp".into()).spawn(move || {
        while !core.is_stopping() {
            if let Err(e) = serve(&config, &core, &events, &cards_rx) {
                tracing::warn!(path = %config.path, error = %e, "OSDP line unavailable; retrying");
            }
            let until = Instant::now() + REOPEN_AFTER;
            while Instant::now() < until && !core.is_stopping() {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    })?;
    Ok(cards_tx)
}

/// Serves the panel until the line fails or the device stops.
fn serve(
    config: &OsdpConfig,
    core: &Arc<Core>,
    events: &SyncSender<PanelCommand>,
    cards: &Receiver<Card>,
) -> Result<(), String> {
    let port = serialport::new(&config.path, config.baud)
        .timeout(Duration::from_millis(5))
        .open()
        .map_err(|e| format!("cannot open {}: {e}", config.path))?;
    // Bytes from before this reader started are the panel talking to its previous run: answering
    // them would answer out of sequence.
    if let Err(e) = port.clear(serialport::ClearBuffer::All) {
        tracing::warn!(error = %e, "cannot discard stale bytes on the OSDP line");
    }
    let (busy, failed) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let budget = Arc::new(std::sync::atomic::AtomicUsize::new(READ_BUDGET));
    let channel = SerialChannel { port, budget: budget.clone(), busy: busy.clone(), failed: failed.clone() };
    let key = config.scbk.or_else(|| core.lock().store.panel_key());
    let mut info = PdInfoBuilder::new()
        .name(&core.identity.device_id)
        .map_err(|e| e.to_string())?
        .address(i32::from(config.address))
        .map_err(|e| e.to_string())?
        .baud_rate(config.baud as i32)
        .map_err(|e| e.to_string())?
        .id(&PdId { version: 1, model: 1, vendor_code: (0, 0, 0), serial_number: [0; 4], firmware_version: (0, 1, 0) })
        .capabilities(&[
            PdCapability::CardDataFormat(PdCapEntity::new(1, 0)),
            PdCapability::LedControl(PdCapEntity::new(1, 1)),
            PdCapability::AudibleOutput(PdCapEntity::new(1, 1)),
            PdCapability::TextOutput(PdCapEntity::new(1, 1)),
            PdCapability::CheckCharacterSupport(PdCapEntity::new(1, 0)),
            PdCapability::CommunicationSecurity(PdCapEntity::new(1, 1)),
        ]);
    info = match key {
        // With a key, nothing is accepted in clear.
        Some(key) => info.secure_channel_key(key).flag(OsdpFlag::EnforceSecure),
        None => {
            tracing::warn!("OSDP install mode: no secure channel key yet; the panel may set one (KEYSET)");
            info.flag(OsdpFlag::InstallMode)
        }
    };
    let mut pd = PeripheralDevice::new(info, Box::new(channel)).map_err(|e| format!("libosdp setup: {e}"))?;
    let (cmd_tx, cmd_rx) = std::sync::mpsc::channel::<OsdpCommand>();
    pd.set_command_callback(move |cmd: &mut OsdpCommand| {
        // Called by libosdp on this thread; only hands the command on (0 = ACK).
        let _ = cmd_tx.send(cmd.clone());
        0
    });
    tracing::info!(path = %config.path, address = config.address, baud = config.baud, secure = key.is_some(), "OSDP reader on the line");
    let (mut online, mut secure) = (false, false);
    while !core.is_stopping() && !failed.load(Ordering::Relaxed) {
        budget.store(READ_BUDGET, Ordering::Relaxed);
        pd.refresh();
        loop {
            match cards.try_recv() {
                Ok(card) => report(&mut pd, &card),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Ok(()),
            }
        }
        while let Ok(cmd) = cmd_rx.try_recv() {
            if let Some(event) = panel_command(cmd, core) {
                // A full queue means the kiosk is behind; the command is in the audit log anyway.
                let _ = events.try_send(event);
            }
        }
        let (now_online, now_secure) = (pd.is_online(), pd.is_sc_active());
        if (now_online, now_secure) != (online, secure) {
            (online, secure) = (now_online, now_secure);
            let detail = match (online, secure) {
                (true, true) => "panel online, secure channel",
                (true, false) => "panel online, no secure channel",
                (false, _) => "panel offline",
            };
            tracing::info!(online, secure, "{detail}");
            core.audit(AuditKind::Panel, None, None, detail);
        }
        if !busy.load(Ordering::Relaxed) {
            std::thread::sleep(IDLE_REFRESH);
        }
    }
    Err(format!("{}: the line failed", config.path))
}

fn report(pd: &mut PeripheralDevice, card: &Card) {
    let event = OsdpEventCardRead::new_wiegand(usize::from(card.bits), card.data.to_vec());
    match event.map(OsdpEvent::CardRead).and_then(|e| pd.notify_event(e)) {
        Ok(()) => tracing::info!(%card, "card read queued for the panel"),
        Err(e) => tracing::error!(%card, error = %e, "the card read could not be queued"),
    }
}

/// What a panel command means for the kiosk, audited as it arrives.
fn panel_command(cmd: OsdpCommand, core: &Core) -> Option<PanelCommand> {
    use super::LedColour;
    let command = match cmd {
        OsdpCommand::Led(led) => {
            // A temporary state (control code 2) is the answer to a read; a permanent one
            // (control 1 of `permanent`) is the reader's idle colour.
            let (params, temporary) = if led.temporary.control_code == 2 {
                (&led.temporary, true)
            } else if led.permanent.control_code == 1 {
                (&led.permanent, false)
            } else {
                return None;
            };
            let colour = LedColour::from_osdp(params.on_color);
            let ms = u32::from(params.timer_count) * 100;
            PanelCommand::Led { colour, temporary, ms }
        }
        OsdpCommand::Buzzer(b) => {
            PanelCommand::Buzzer { on_ms: u32::from(b.on_count) * 100, repeat: b.rep_count, tone: b.control_code }
        }
        OsdpCommand::Text(t) => PanelCommand::Text(String::from_utf8_lossy(&t.data).into_owned()),
        OsdpCommand::KeySet(k) => {
            let key: [u8; 16] = k.data.get(..16).and_then(|d| d.try_into().ok())?;
            match core.lock().store.set_panel_key(key) {
                Ok(()) => tracing::info!("the panel set a new secure channel key; kept in the store"),
                Err(e) => {
                    tracing::error!(error = %e, "cannot keep the panel's new secure channel key; it is lost at restart")
                }
            }
            PanelCommand::KeySet
        }
        OsdpCommand::Output(o) => PanelCommand::Output { number: o.output_no, control: o.control_code },
        other => {
            tracing::debug!(command = ?other, "panel command ignored");
            return None;
        }
    };
    core.audit(AuditKind::Panel, None, None, &command.to_string());
    Some(command)
}
