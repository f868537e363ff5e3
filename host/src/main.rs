//! `facegate`: enrolment, registry, sync, events and evaluation for Facegate devices.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use facegate_device::engine::{model, Engine, EngineConfig};
use facegate_host::commands;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "facegate", version, about = "Facegate host tool: enrol faces, manage devices, evaluate the engine")]
struct Cli {
    /// Folder holding manifest.toml and the ONNX models.
    #[arg(long, global = true, env = "FACEGATE_MODELS")]
    models: Option<PathBuf>,
    /// Embedding model variant from the manifest (e.g. int8w, fp32).
    #[arg(long, global = true)]
    model: Option<String>,
    /// Also embed the mirrored face and sum (twice the embedding cost; on LFW: better TAR at
    /// FAR 1e-3, slightly lower 10-fold accuracy).
    #[arg(long, global = true)]
    flip: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compare two photos: prints score, probability and decision; exit 0 same, 1 different, 2 error.
    #[command(after_help = "Example:\n  facegate verify alice1.jpg alice2.jpg --far 1e-3 --json")]
    Verify(commands::verify::VerifyArgs),
    /// Per-stage latency against the onnxruntime reference, in one run.
    #[command(after_help = "Example:\n  facegate bench --data ../shared/faces --json")]
    Bench(commands::bench::BenchArgs),
    /// Evaluate the engine on labelled data.
    #[command(subcommand)]
    Eval(EvalCommand),
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// 10-fold verification accuracy on a pair list (LFW pairs.txt or a 4-column TSV).
    #[command(
        after_help = "Example:\n  facegate eval pairs --root ../shared/faces/lfw --pairs ../shared/faces/lfw/pairs.txt --json"
    )]
    Pairs(commands::eval::EvalPairsArgs),
}

fn engine_config(cli: &Cli) -> EngineConfig {
    EngineConfig {
        models_dir: cli.models.clone().unwrap_or_else(model::default_models_dir),
        embed_variant: cli.model.clone(),
        flip: cli.flip,
        ..EngineConfig::default()
    }
}

fn load_engine(cli: &Cli) -> Result<Engine> {
    let config = engine_config(cli);
    Engine::load(&config).with_context(|| format!("loading models from {}", config.models_dir.display()))
}

fn run(cli: &Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Verify(args) => {
            let same = commands::verify::run(&load_engine(cli)?, args)?;
            Ok(if same { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Bench(args) => {
            let report = commands::bench::run(&engine_config(cli), args)?;
            commands::bench::print(&report, args.json);
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval(EvalCommand::Pairs(args)) => {
            let report = commands::eval::run(&load_engine(cli)?, args)?;
            commands::eval::print(&report, args.json)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("FACEGATE_LOG").unwrap_or_else(|_| "error".into()))
        .with_writer(std::io::stderr)
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
