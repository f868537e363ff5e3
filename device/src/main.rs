//! `facegate-device`: the kiosk / unlock firmware.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use facegate_device::audit_log::AuditLog;
use facegate_device::config::DeviceConfig;
use facegate_device::display::PngDisplay;
use facegate_device::door::{Authority, Door};
use facegate_device::kiosk::summary::Summary;
use facegate_device::kiosk::{self, action::Action, Kiosk, Mode};
use facegate_device::link;
use facegate_device::state::{Core, Identity};
use facegate_device::store::TemplateStore;
use facegate_device::unlock;
use facegate_engine::source::{DirSource, DirSourceOptions, FrameSource, SourceError};
use facegate_engine::{model, Engine, EngineConfig};
use facegate_proto::{AuditKind, Capabilities};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(name = "facegate-device", version, about = "Facegate kiosk firmware: camera -> face -> decision -> door")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the kiosk: frames in, decisions out, link server for the host.
    #[command(after_help = "Example:\n  facegate-device run --frames demo/frames --store /var/lib/facegate \
                            --listen 127.0.0.1:7700 --allow-pairing 120 --display-png /tmp/screens")]
    Run(Box<RunArgs>),
    /// Measure the kiosk loop on LFW visits against the naive loop, in one run.
    #[command(after_help = "Example:\n  facegate-device bench --data ../shared/faces --json")]
    Bench(BenchArgs),
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// Face data sets folder holding lfw/ (default $FACEGATE_DATA or ../shared/faces).
    #[arg(long)]
    data: Option<PathBuf>,
    #[arg(long, env = "FACEGATE_MODELS")]
    models: Option<PathBuf>,
    /// Embedding variant from the manifest (int8, int8w, fp32, int8qdq).
    #[arg(long)]
    model: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// TOML configuration file (flags override it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory of images played as the camera (sorted by path).
    #[arg(long, conflicts_with = "camera")]
    frames: Option<PathBuf>,
    /// Replay the directory in a loop.
    #[arg(long = "loop", requires = "frames")]
    looped: bool,
    /// After the last image, wait for new ones to appear.
    #[arg(long, requires = "frames")]
    follow: bool,
    /// Pace the directory at this frame rate (default: as fast as processed).
    #[arg(long, requires = "frames")]
    fps: Option<f32>,
    /// Camera index (V4L2); needs the `camera` build feature.
    #[arg(long)]
    camera: Option<u32>,
    /// The time zone the access rules are in, e.g. Europe/Paris (default: the system's).
    #[arg(long)]
    timezone: Option<String>,
    /// Start the door's clock at this moment (RFC 3339) instead of the system time: for tests
    /// and demonstrations of the access rules.
    #[arg(long, value_name = "TIME")]
    clock_start: Option<String>,
    /// Template store directory (device key, encrypted templates, audit log).
    #[arg(long)]
    store: Option<PathBuf>,
    /// Serve hosts over TCP at this address (port 0 picks a free port; the bound address is printed).
    #[arg(long)]
    listen: Option<String>,
    /// Serve hosts over this serial line.
    #[arg(long)]
    serial: Option<String>,
    #[arg(long)]
    baud: Option<u32>,
    /// Open the pairing window for this many seconds.
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "120")]
    allow_pairing: Option<u64>,
    /// Write each new screen to PNG files in this directory.
    #[arg(long)]
    display_png: Option<PathBuf>,
    #[arg(long, env = "FACEGATE_MODELS")]
    models: Option<PathBuf>,
    /// Embedding variant from the manifest (int8, int8w, fp32, int8qdq).
    #[arg(long)]
    model: Option<String>,
    /// 1:N door kiosk, or 1:1 unlock for --owner.
    #[arg(long, value_parser = ["identify", "verify"])]
    mode: Option<String>,
    /// Person id of the owner (verify mode).
    #[arg(long)]
    owner: Option<u32>,
    /// Verify mode: target false-accept rate per comparison (uses the calibration table).
    #[arg(long, conflicts_with_all = ["threshold", "fpir"])]
    far: Option<f32>,
    /// Identify mode: target share of stranger visits matched to someone (the per-comparison
    /// threshold follows the number of enrolled templates).
    #[arg(long, conflicts_with = "threshold")]
    fpir: Option<f32>,
    /// Fixed cosine threshold.
    #[arg(long)]
    threshold: Option<f32>,
    /// Consensus as REQUIRED/WINDOW, e.g. 2/3.
    #[arg(long)]
    consensus: Option<String>,
    /// Serve local unlock requests (the PAM module) on this Unix socket.
    #[arg(long)]
    unlock_socket: Option<PathBuf>,
    /// Members of this group may ask for an unlock too (socket mode 0660; default 0600, root only).
    #[arg(long, requires = "unlock_socket")]
    unlock_group: Option<String>,
    /// `continuous` (a door) or `on-demand`: the camera is opened for each unlock request and
    /// closed with its answer (default with --unlock-socket and no --mode).
    #[arg(long, value_parser = ["continuous", "on-demand"])]
    capture: Option<String>,
    /// Refuse faces that show no life (a photo held up): on or off (config key `liveness`).
    #[arg(long, value_parser = ["on", "off"])]
    liveness: Option<String>,
    /// Live probability a visit must reach (default: the one models/liveness.toml measured).
    #[arg(long)]
    liveness_threshold: Option<f32>,
    /// Shell command run on every granted decision (FACEGATE_PERSON_ID etc. in its environment).
    #[arg(long)]
    action: Option<String>,
    /// Act as an OSDP reader for an access-control panel on this serial device (RS-485 adapter).
    #[arg(long, value_name = "PATH")]
    osdp: Option<String>,
    /// OSDP address of this reader on the line (0-126).
    #[arg(long, value_name = "N")]
    osdp_address: Option<u8>,
    /// OSDP line speed (default 9600).
    #[arg(long, value_name = "BAUD")]
    osdp_baud: Option<u32>,
    /// OSDP secure channel base key, 32 hex digits (default: the one a panel set in install mode).
    #[arg(long, value_name = "HEX")]
    osdp_scbk: Option<String>,
    /// Who opens the lock on a grant: the device (action, relay) or the panel (OSDP).
    #[arg(long, value_parser = ["device", "panel"])]
    door_authority: Option<String>,
    /// Door relay line, e.g. gpiochip0:17 (needs the `gpio` build feature).
    #[arg(long, value_name = "CHIP:LINE")]
    relay: Option<String>,
    /// How long the relay holds the door open (default 3000).
    #[arg(long, value_name = "MS")]
    relay_ms: Option<u64>,
    /// Wiegand output lines D0,D1, e.g. gpiochip0:5,6 (needs the `gpio` build feature).
    #[arg(long, value_name = "CHIP:D0,D1")]
    wiegand: Option<String>,
    /// Device name reported to hosts.
    #[arg(long)]
    name: Option<String>,
    /// Refuse frames with more pixels than this, from their header (default 8294400, 3840x2160).
    #[arg(long)]
    max_frame_pixels: Option<u64>,
    /// Exit when the frame source ends instead of serving until SIGTERM.
    #[arg(long)]
    exit_when_done: bool,
    /// Write a JSON summary (frames per second, decision latencies) here at exit.
    #[arg(long)]
    stats_json: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    facegate_engine::tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // libosdp logs every malformed byte run it meets: noise on an RS-485 line would
                // flood the journal. The OSDP thread reports the link's state instead
                // (RUST_LOG=info,libosdp=debug shows the line in detail).
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libosdp=off")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into a log file or journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(*args),
        Command::Bench(args) => bench(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("facegate-device: error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(args: RunArgs) -> Result<()> {
    let mut config = match &args.config {
        Some(p) => DeviceConfig::load(p)?,
        None => DeviceConfig::default(),
    };
    // Flags override the file.
    macro_rules! flag {
        ($($f:ident),*) => { $( if args.$f.is_some() { config.$f = args.$f.clone(); } )* };
    }
    flag!(store, listen, serial, baud, display_png, models, name, action, owner, mode, max_frame_pixels);
    flag!(unlock_socket, unlock_group, capture, camera, timezone);
    if let Some(on) = &args.liveness {
        config.liveness = Some(on == "on");
    }
    if args.liveness_threshold.is_some() {
        config.liveness_threshold = args.liveness_threshold;
    }
    if args.model.is_some() {
        config.variant = args.model.clone();
    }
    let door = config.door.get_or_insert_with(Default::default);
    macro_rules! door_flag {
        ($($f:ident),*) => { $( if args.$f.is_some() { door.$f = args.$f.clone(); } )* };
    }
    door_flag!(osdp, osdp_address, osdp_baud, osdp_scbk, relay, relay_ms, wiegand);
    if let Some(a) = &args.door_authority {
        door.authority = Some(if a == "panel" { Authority::Panel } else { Authority::Device });
    }
    if args.far.is_some() || args.fpir.is_some() || args.threshold.is_some() {
        (config.far, config.fpir, config.threshold) = (args.far, args.fpir, args.threshold);
    }
    if let Some(c) = &args.consensus {
        let (r, w) = c.split_once('/').context("--consensus is REQUIRED/WINDOW, e.g. 2/3")?;
        config.consensus = Some(facegate_device::config::ConsensusConfig {
            required: r.trim().parse().context("--consensus REQUIRED")?,
            window: w.trim().parse().context("--consensus WINDOW")?,
        });
    }
    // Unlock alone (a computer, not a door): every decision is for a login, 1:1.
    let unlock_only = config.unlock_socket.is_some() && config.mode.is_none();
    let on_demand = match config.capture.as_deref() {
        None => unlock_only,
        Some("continuous") => false,
        Some("on-demand") if config.unlock_socket.is_some() => true,
        Some("on-demand") => bail!("--capture on-demand serves unlock requests: give --unlock-socket PATH"),
        Some(other) => bail!("unknown capture {other:?} (continuous or on-demand)"),
    };
    let settings = if unlock_only {
        DeviceConfig { mode: Some("verify".into()), ..config.clone() }.settings()?
    } else {
        config.settings()?
    };
    let updates = config.updates()?;
    let mode = match (config.mode.as_deref().unwrap_or("identify"), config.owner) {
        _ if unlock_only => Mode::Verify { owner: 0 },
        ("identify", _) => Mode::Identify,
        ("verify", Some(owner)) => Mode::Verify { owner },
        ("verify", None) => bail!("verify mode needs --owner PERSON_ID"),
        (m, _) => bail!("unknown mode {m:?} (identify or verify)"),
    };
    let store_dir = config.store.clone().context("--store DIR is required (templates, key, audit log)")?;

    let engine = load_engine(config.models.clone(), config.variant.clone())?;
    let store = TemplateStore::open(&store_dir, &engine.embedding_id)
        .with_context(|| format!("template store {}", store_dir.display()))?;
    let audit = AuditLog::open(&store_dir.join("audit.log")).context("audit log")?;
    let identity = Identity {
        device_id: config.name.clone().unwrap_or_else(|| "facegate".into()),
        model_id: engine.embedding_id.clone(),
        capabilities: Capabilities::AUDIT_LOG
            | Capabilities::SYNC
            | Capabilities::FAR_TARGET
            | Capabilities::LIVENESS
            | if updates.enabled { Capabilities::PROPOSALS } else { Capabilities::NONE }
            | if config.camera.is_some() && args.frames.is_none() { Capabilities::CAMERA } else { Capabilities::NONE },
        identify: matches!(mode, Mode::Identify) && !unlock_only,
    };
    let core = Arc::new(Core::new(identity, engine.calibration.clone(), store, audit, settings)?);
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, core.stop.clone()).context("installing signal handlers")?;
    }
    core.audit(AuditKind::Boot, None, None, env!("CARGO_PKG_VERSION"));
    tracing::info!(
        model = %engine.embedding_id, templates = core.gallery().len(), generation = core.lock().store.generation(),
        "device started"
    );
    if let Some(secs) = args.allow_pairing {
        core.open_pairing(Duration::from_secs(secs));
        tracing::warn!(secs, "pairing window open");
    }

    let mut threads = Vec::new();
    if let Some(addr) = &config.listen {
        let listener = TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
        let bound = listener.local_addr().context("listener address")?;
        // Scripts and tests read the address (port 0 = any free port) from this line.
        println!("facegate-device: listening on tcp:{bound}");
        threads.push(link::spawn_tcp(listener, core.clone()).context("starting the TCP link")?);
    }
    if let Some(path) = &config.serial {
        threads.push(link::spawn_serial(path, config.baud.unwrap_or(115_200), core.clone())?);
        println!("facegate-device: serving serial:{path}");
    }

    let unlock_jobs = match &config.unlock_socket {
        Some(path) => {
            let group = config.unlock_group.as_deref().map(unlock::group_id).transpose()?;
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            // Not joined at shutdown: it blocks in accept, and the process's exit ends it.
            drop(unlock::spawn(path, unlock::Allowed { group }, tx, core.clone())?);
            println!("facegate-device: unlock socket {}", path.display());
            Some(rx)
        }
        None => None,
    };
    let dir_options = DirSourceOptions {
        looped: args.looped,
        fps: args.fps,
        follow: args.follow,
        max_frame_pixels: config.max_frame_pixels,
    };
    let open_source = || -> Result<Option<Box<dyn FrameSource>>> {
        // Frames on the command line replace the configured camera (tests, replays).
        Ok(match (&args.frames, config.camera) {
            (Some(dir), _) => Some(Box::new(DirSource::open(dir, dir_options.clone(), core.stop.clone())?)),
            (None, Some(index)) => Some(camera_source(index)?),
            (None, None) => None,
        })
    };
    let source = if on_demand { None } else { open_source()? };
    let display = match &config.display_png {
        Some(dir) => Some(PngDisplay::new(dir).with_context(|| format!("display directory {}", dir.display()))?),
        None => None,
    };
    let mut options = kiosk::default_options();
    options.mode = mode;
    options.title = core.identity.device_id.clone();
    options.liveness_threshold = config.liveness_threshold;
    options.updates = updates;
    options.clock = kiosk::rules::DoorClock::new(config.timezone.as_deref(), args.clock_start.as_deref())?;
    tracing::info!(zone = options.clock.zone_name(), "access rules in this time zone");
    options.action = config
        .action
        .clone()
        .map(|command| Action { command, timeout: Duration::from_secs(config.action_timeout_secs.unwrap_or(10)) });
    let door = Door::open(&config.door.clone().unwrap_or_default(), &core)?;
    let mut kiosk = Kiosk::new(&engine, core.clone(), options, display)?;
    if let Some(door) = door {
        kiosk = kiosk.with_door(door);
    }
    if let Some(jobs) = unlock_jobs {
        kiosk = kiosk.with_unlock(jobs);
    }
    if on_demand {
        if args.frames.is_none() && config.camera.is_none() {
            bail!("--capture on-demand needs a camera (--camera N) or --frames DIR to open per request");
        }
        let opener = || {
            open_source()
                .map_err(|e| SourceError::Camera(format!("{e:#}")))?
                .ok_or_else(|| SourceError::Camera("no frame source".into()))
        };
        kiosk.serve_on_demand(opener)?;
    } else if let Some(source) = source {
        let stats = kiosk.run(source)?;
        let summary = Summary::of(&stats);
        tracing::info!(%summary, "frame source finished");
        if let Some(path) = &args.stats_json {
            std::fs::write(path, serde_json::to_string_pretty(&summary)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        if args.exit_when_done {
            core.stop.store(true, Ordering::Relaxed);
        }
    }
    while !core.is_stopping() {
        std::thread::sleep(Duration::from_millis(100));
    }
    tracing::info!("shutting down");
    if let Some(path) = &config.unlock_socket {
        // A dead socket left behind would make clients wait for a connect error instead of
        // finding no file.
        let _ = std::fs::remove_file(path);
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

fn load_engine(models: Option<PathBuf>, variant: Option<String>) -> Result<Engine> {
    let config = EngineConfig {
        models_dir: models.unwrap_or_else(model::default_models_dir),
        embed_variant: variant,
        ..EngineConfig::default()
    };
    Engine::load(&config).with_context(|| format!("loading models from {}", config.models_dir.display()))
}

fn bench(args: BenchArgs) -> Result<()> {
    let engine = load_engine(args.models, args.model)?;
    let lfw = args.data.unwrap_or_else(facegate_engine::dataset::default_data_dir).join("lfw");
    let report = facegate_device::bench::run(&engine, &lfw)?;
    facegate_device::bench::print(&report, args.json);
    Ok(())
}

#[cfg(feature = "camera")]
fn camera_source(index: u32) -> Result<Box<dyn FrameSource>> {
    Ok(Box::new(facegate_engine::source::camera::CameraSource::open(index)?))
}

#[cfg(not(feature = "camera"))]
fn camera_source(_index: u32) -> Result<Box<dyn FrameSource>> {
    bail!("this build has no camera support; rebuild with `--features camera` or use --frames DIR")
}
