//! `facegate`: enrolment, registry, sync, events and evaluation for Facegate devices.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use facegate_engine::{model, Engine, EngineConfig, Search};
use facegate_host::commands;
use facegate_host::commands::bench::BenchMode;
use facegate_host::registry::{Registry, RegistryKey};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "facegate", version, about = "Facegate host tool: enrol faces, manage devices, evaluate the engine")]
struct Cli {
    /// Folder holding manifest.toml and the ONNX models.
    #[arg(long, global = true, env = "FACEGATE_MODELS")]
    models: Option<PathBuf>,
    /// Embedding model variant from the manifest (e.g. int8, fp32).
    #[arg(long, global = true)]
    model: Option<String>,
    /// Embed every face together with its mirror image (twice the embedding cost). By default
    /// only templates and probes too close to call get this (the second look).
    #[arg(long, global = true)]
    flip: bool,
    /// The registry: people, templates, paired devices. An SQLite file (default: in the user's
    /// data directory) or a shared PostgreSQL database, postgres://USER@HOST/DB (its key from
    /// FACEGATE_REGISTRY_KEY or FACEGATE_REGISTRY_KEY_FILE).
    #[arg(long, global = true, env = "FACEGATE_REGISTRY")]
    registry: Option<PathBuf>,
    /// How hard to look for a face the plain detector pass misses: photo (default: padded,
    /// tiled, brightened and turned passes), frame (as the door camera: padded and brightened
    /// only) or plain (one pass, for comparison).
    #[arg(long, global = true, default_value = "photo")]
    search: Search,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole system on this machine: a device, enrolment, sync, visitors, decisions.
    Demo(commands::demo::DemoArgs),
    /// Give a device in its pairing window a shared key, kept in the registry.
    #[command(
        after_help = "Example:\n  facegate pair --device tcp:127.0.0.1:7700\n  facegate pair --device serial:/dev/ttyACM0"
    )]
    Pair(commands::pair::PairArgs),
    /// Enrol a person from one or more photos (or the camera).
    Enroll(commands::enroll::EnrollArgs),
    /// People in the registry, and paired devices.
    List(commands::people::ListArgs),
    /// Remove a person and their templates from the registry.
    Remove(commands::people::RemoveArgs),
    /// Rename a person.
    Rename(commands::people::RenameArgs),
    /// Map an enrolled person to the Unix login they unlock (local unlock, PAM).
    Login(commands::people::LoginArgs),
    /// Give an enrolled person the card a door reports to its access-control panel (OSDP).
    Card(commands::card::CardArgs),
    /// Access groups: add, remove, list, and their members.
    #[command(subcommand)]
    Group(commands::access::GroupCommand),
    /// Which groups a door lets in, and when.
    #[command(subcommand)]
    Door(commands::access::DoorCommand),
    /// A person's validity dates (the doors refuse them outside these days).
    Valid(commands::access::ValidArgs),
    /// Each paired device: its groups, last sync, generation, templates, and whether it is behind.
    Doors(commands::access::DoorsArgs),
    /// Make the key a shared (PostgreSQL) registry seals device pairing keys with.
    RegistryKey(commands::registry_key::RegistryKeyArgs),
    /// Bring devices to the registry's set of templates (atomic on each device).
    #[command(
        after_help = "Example:\n  facegate sync                      # every paired device\n  facegate sync --device tcp:10.0.0.7:7700"
    )]
    Sync(commands::sync::SyncArgs),
    /// Show a device's recent decisions; --follow streams them live.
    #[command(after_help = "Example:\n  facegate events --device tcp:127.0.0.1:7700 --follow --json")]
    Events(commands::audit::EventsArgs),
    /// Read a device's audit log.
    Audit(commands::audit::AuditArgs),
    /// Read or change a device's settings.
    Config(commands::config::ConfigArgs),
    /// Who is in this photo? (offline 1:N against the registry); exit 0 identified, 1 unknown, 2 error.
    Identify(commands::identify::IdentifyArgs),
    /// Compare two photos: prints score, probability and decision; exit 0 same, 1 different, 2 error.
    #[command(after_help = "Example:\n  facegate verify alice1.jpg alice2.jpg --far 1e-3 --json")]
    Verify(commands::verify::VerifyArgs),
    /// Why two photos (do not) match: occlusion maps over both aligned faces, as a picture
    /// and the top regions by face area.
    #[command(after_help = "Example:\n  facegate explain alice1.jpg alice2.jpg --out why.png --json")]
    Explain(commands::explain::ExplainArgs),
    /// Measure the engine: per-stage latency against tract alone and onnxruntime in one run
    /// (`stages`, the default), or time per network node (`profile`).
    #[command(after_help = "Example:\n  facegate bench --data ../shared/faces --json\n  facegate bench profile")]
    Bench(commands::bench::BenchCommand),
    /// Evaluate the engine on labelled data.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Proposed templates from the devices: review, history, rollback.
    #[command(
        subcommand,
        after_help = "Example:\n  facegate templates review\n  facegate templates review --accept 3 --reject 4\n  facegate templates history Ada\n  facegate templates rollback Ada"
    )]
    Templates(commands::templates::TemplatesCommand),
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// 10-fold verification accuracy on a pair list (LFW pairs.txt or a 4-column TSV).
    #[command(
        after_help = "Example:\n  facegate eval pairs --root ../shared/faces/lfw --pairs ../shared/faces/lfw/pairs.txt --json"
    )]
    Pairs(commands::eval::pairs::EvalPairsArgs),
    /// How many photos under a folder give a usable face, and why the others do not.
    #[command(
        after_help = "Example:\n  facegate eval faces --root ../shared/faces/yale_b_cropped --json\n  facegate eval faces --root ../shared/faces/lfw --derive small:80"
    )]
    Faces(commands::eval::faces::EvalFacesArgs),
    /// 1:N at a door: a one-shot gallery, probes with strangers; rank-1, FNIR at FPIR, and the
    /// FPIR the kiosk's default setting achieves for this gallery.
    #[command(
        after_help = "Example:\n  facegate eval split --root ../shared/faces/lfw --gallery g.tsv --probes p.tsv\n  facegate eval identify --root ../shared/faces/lfw --gallery g.tsv --probes p.tsv --json"
    )]
    Identify(commands::eval::identify::EvalIdentifyArgs),
    /// Template updates replayed: each person enrolled from their first photo, the rest shown
    /// in order with and without the proposals accepted; strangers tried against the result.
    #[command(after_help = "Example:\n  facegate eval updates --root ../shared/faces/lfw --min-photos 10 --json")]
    Updates(commands::eval::updates::EvalUpdatesArgs),
    /// Write a 1:N protocol (gallery and probe lists, with strangers) from a <person>/<photo> folder.
    Split {
        #[command(flatten)]
        args: commands::eval::split::EvalSplitArgs,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Fit the score calibration on several photo sources; check each left out in turn.
    #[command(
        after_help = "Example:\n  facegate eval calibrate --source lfw=../shared/faces/lfw --source orl=../shared/faces/att_orl \\\n    --far-margin 2 --out models/calibration-int8.toml"
    )]
    Calibrate(commands::eval::calibrate::EvalCalibrateArgs),
    /// Liveness against presentation attacks: APCER, BPCER, ACER, EER, per frame and per visit;
    /// `--fit-out` chooses networks and threshold on some subjects and checks them on the others.
    #[command(
        after_help = "Example:\n  facegate eval liveness --root ../shared/faces/nuaa_pad_dev --json\n  facegate eval liveness --root ../shared/faces/nuaa_pad_dev --fit-out models/liveness.toml"
    )]
    Liveness(commands::eval::liveness::EvalLivenessArgs),
    /// The five points and embedding of each listed photo as JSON lines (to compare builds).
    #[command(
        after_help = "Example:\n  facegate eval embed --root ../shared/faces/lfw --list photos.txt --out x86.jsonl"
    )]
    Embed(commands::eval::embed::EvalEmbedArgs),
    /// Write the engine's aligned 112x112 crops of listed images as PNG (int8 calibration data).
    #[command(
        after_help = "Example:\n  facegate eval crops --root ../shared/faces/lfw --list models/.work/calib-list.txt --out models/.work/calib-rust"
    )]
    Crops {
        #[command(flatten)]
        args: commands::crops::CropsArgs,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

fn engine_config(cli: &Cli) -> EngineConfig {
    EngineConfig {
        models_dir: cli.models.clone().unwrap_or_else(model::default_models_dir),
        embed_variant: cli.model.clone(),
        flip: cli.flip,
        search: cli.search,
        ..EngineConfig::default()
    }
}

fn load_engine(cli: &Cli) -> Result<Engine> {
    let config = engine_config(cli);
    Engine::load(&config).with_context(|| format!("loading models from {}", config.models_dir.display()))
}

fn open_registry(cli: &Cli) -> Result<Registry> {
    let path = match &cli.registry {
        Some(p) => p.clone(),
        None => Registry::default_path().context("no home directory for the default registry: pass --registry PATH")?,
    };
    let location = path.to_string_lossy();
    Registry::open_location(&location, || RegistryKey::from_env(None))
        .with_context(|| format!("opening the registry {}", facegate_host::registry::shown_location(&location)))
}

fn bench_stages(cli: &Cli, args: &commands::bench::BenchArgs) -> Result<()> {
    let report = commands::bench::run(&engine_config(cli), args)?;
    commands::bench::print(&report, args.json);
    Ok(())
}

fn bench_profile(cli: &Cli, args: &commands::profile::ProfileArgs) -> Result<()> {
    let report = match &args.onnx {
        Some(file) => commands::profile::run_file(file, &args.shape, args.kernels())?,
        None => commands::profile::run(&engine_config(cli).models_dir, args.kernels())?,
    };
    commands::profile::print(&report, args.json);
    Ok(())
}

fn run(cli: &Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Demo(args) => {
            let summary = commands::demo::run(&load_engine(cli)?, args)?;
            if summary.correct < summary.visits.len() {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Pair(args) => commands::pair::run(&mut open_registry(cli)?, args)?,
        Command::Enroll(args) => {
            commands::enroll::run(&mut open_registry(cli)?, &load_engine(cli)?, args)?;
        }
        Command::List(args) => commands::people::list(&open_registry(cli)?, args)?,
        Command::Remove(args) => commands::people::remove(&mut open_registry(cli)?, args)?,
        Command::Rename(args) => commands::people::rename(&mut open_registry(cli)?, args)?,
        Command::Login(args) => commands::people::login(&mut open_registry(cli)?, args)?,
        Command::Card(args) => commands::card::run(&mut open_registry(cli)?, args)?,
        Command::RegistryKey(args) => commands::registry_key::run(args)?,
        Command::Group(cmd) => commands::access::group(&mut open_registry(cli)?, cmd)?,
        Command::Door(cmd) => commands::access::door(&mut open_registry(cli)?, cmd)?,
        Command::Valid(args) => commands::access::valid(&mut open_registry(cli)?, args)?,
        Command::Doors(args) => commands::access::doors(&open_registry(cli)?, args)?,
        Command::Sync(args) => {
            commands::sync::run(&mut open_registry(cli)?, args)?;
        }
        Command::Events(args) => commands::audit::run_events(&open_registry(cli)?, args)?,
        Command::Audit(args) => commands::audit::run_audit(&open_registry(cli)?, args)?,
        Command::Config(args) => commands::config::run(&open_registry(cli)?, args)?,
        Command::Identify(args) => {
            let found = commands::identify::run(&open_registry(cli)?, &load_engine(cli)?, args)?;
            return Ok(if found.is_some() { ExitCode::SUCCESS } else { ExitCode::from(1) });
        }
        Command::Verify(args) => {
            let same = commands::verify::run(&load_engine(cli)?, args)?;
            return Ok(if same { ExitCode::SUCCESS } else { ExitCode::from(1) });
        }
        Command::Templates(commands::templates::TemplatesCommand::Review(args)) => {
            commands::templates::review(&mut open_registry(cli)?, args)?;
        }
        Command::Templates(commands::templates::TemplatesCommand::History(args)) => {
            commands::templates::history(&open_registry(cli)?, args)?;
        }
        Command::Templates(commands::templates::TemplatesCommand::Rollback(args)) => {
            commands::templates::rollback(&mut open_registry(cli)?, args)?;
        }
        Command::Explain(args) => {
            let explanation = commands::explain::run(&load_engine(cli)?, args)?;
            commands::explain::print(&explanation, args)?;
        }
        Command::Bench(bench) => match &bench.mode {
            Some(BenchMode::Profile(args)) => bench_profile(cli, args)?,
            Some(BenchMode::Stages(args)) => bench_stages(cli, args)?,
            None => bench_stages(cli, &bench.stages)?,
        },
        Command::Eval(EvalCommand::Pairs(args)) => {
            let report = commands::eval::pairs::run(&load_engine(cli)?, args)?;
            commands::eval::pairs::print(&report, args.json)?;
        }
        Command::Eval(EvalCommand::Updates(args)) => {
            let report = commands::eval::updates::run(&load_engine(cli)?, args)?;
            commands::eval::updates::print(&report, args.json)?;
        }
        Command::Eval(EvalCommand::Calibrate(args)) => {
            let report = commands::eval::calibrate::run(&load_engine(cli)?, args)?;
            commands::eval::calibrate::print(&report, args.json)?;
        }
        Command::Eval(EvalCommand::Identify(args)) => {
            let report = commands::eval::identify::run(&load_engine(cli)?, args)?;
            commands::eval::identify::print(&report, args.json)?;
        }
        Command::Eval(EvalCommand::Split { args, json }) => {
            let r = commands::eval::split::run(args)?;
            if *json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!(
                    "{} enrolled ({} probes), {} strangers ({} probes)",
                    r.enrolled, r.enrolled_probes, r.strangers, r.stranger_probes
                );
            }
        }
        Command::Eval(EvalCommand::Liveness(args)) => {
            let report = commands::eval::liveness::run(&load_engine(cli)?, args)?;
            commands::eval::liveness::print(&report, args.json)?;
        }
        Command::Eval(EvalCommand::Embed(args)) => {
            let n = commands::eval::embed::run(&load_engine(cli)?, args)?;
            eprintln!("{n} photo(s)");
        }
        Command::Eval(EvalCommand::Faces(args)) => {
            let report = commands::eval::faces::run(&load_engine(cli)?, args)?;
            commands::eval::faces::print(&report, args.json)?;
        }
        Command::Eval(EvalCommand::Crops { args, json }) => {
            let report = commands::crops::run(&load_engine(cli)?, args)?;
            commands::crops::print(&report, *json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    facegate_engine::tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("FACEGATE_LOG").unwrap_or_else(|_| "error".into()))
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into a log file or journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
