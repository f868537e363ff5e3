//! `facegate bench profile`: where the time goes inside each network, node by node, as tract
//! runs it after optimisation (one core).

use anyhow::{Context, Result};
use clap::Args;
use facegate_engine::kernels::Kernels;
use facegate_engine::model::{self, Manifest, Net, NodeTime};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const RUNS: usize = 50;

#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// Profile this ONNX file instead of the manifest's (no hash check; for trying graph rewrites).
    #[arg(long)]
    pub onnx: Option<PathBuf>,
    /// With --onnx: its input shape, e.g. 1,3,112,112.
    #[arg(long, requires = "onnx", value_delimiter = ',')]
    pub shape: Vec<usize>,
    /// Tract's operators only (without the engine's own depthwise, PReLU and softmax operators),
    /// to see what they replace.
    #[arg(long)]
    pub tract_kernels: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

impl ProfileArgs {
    pub fn kernels(&self) -> Kernels {
        if self.tract_kernels {
            Kernels::Tract
        } else {
            Kernels::Own
        }
    }
}

/// Profiles every network in the manifest.
pub fn run(models_dir: &Path, kernels: Kernels) -> Result<Value> {
    let manifest = Manifest::load(models_dir)?;
    let mut out = Map::new();
    for entry in &manifest.models {
        // Roles the engine does not run have no input shape to profile with.
        if model::input_shape(entry).is_none() {
            continue;
        }
        let net = Net::from_manifest(&manifest, entry, kernels)?;
        let n: usize = net.input_shape().iter().product();
        // A fixed pseudo-random input: timings do not depend on the values.
        let input: Vec<f32> = (0..n).map(|i| ((i * 7919) % 255) as f32 / 128.0 - 1.0).collect();
        let nodes = net.profile(input, RUNS)?;
        out.insert(entry.name.clone(), summarise(&nodes));
    }
    Ok(Value::Object(out))
}

/// Profiles one ONNX file (no manifest, no hash check).
pub fn run_file(path: &Path, shape: &[usize], kernels: Kernels) -> Result<Value> {
    let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
    let net = Net::from_bytes(&path.display().to_string(), &bytes, shape, kernels)?;
    let n: usize = shape.iter().product();
    let input: Vec<f32> = (0..n).map(|i| ((i * 7919) % 255) as f32 / 128.0 - 1.0).collect();
    let mut out = Map::new();
    out.insert(path.display().to_string(), summarise(&net.profile(input, RUNS)?));
    Ok(Value::Object(out))
}

fn summarise(nodes: &[NodeTime]) -> Value {
    let total: f64 = nodes.iter().map(|n| n.ms).sum();
    let mut by_op: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    for n in nodes {
        let e = by_op.entry(n.op.as_str()).or_default();
        e.0 += n.ms;
        e.1 += 1;
    }
    let mut ops: Vec<(&str, (f64, usize))> = by_op.into_iter().collect();
    ops.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
    json!({
        "total_ms": total,
        "nodes": nodes.len(),
        "by_op": ops.iter().map(|(op, (ms, count))| json!({"op": op, "ms": ms, "count": count, "share": ms / total})).collect::<Vec<_>>(),
        "top": nodes.iter().take(8).map(|n| json!({"name": n.name, "op": n.op, "ms": n.ms})).collect::<Vec<_>>(),
    })
}

pub fn print(v: &Value, json_out: bool) {
    if json_out {
        println!("{v}");
        return;
    }
    let Some(nets) = v.as_object() else { return };
    for (name, p) in nets {
        println!(
            "{name}: {:.2} ms in {} nodes (tract, one core, mean of {RUNS} runs)",
            p["total_ms"].as_f64().unwrap_or(0.0),
            p["nodes"]
        );
        for op in p["by_op"].as_array().into_iter().flatten().take(6) {
            println!(
                "  {:<28} {:>7.2} ms  {:>4.0}%  ({} nodes)",
                op["op"].as_str().unwrap_or("?"),
                op["ms"].as_f64().unwrap_or(0.0),
                op["share"].as_f64().unwrap_or(0.0) * 100.0,
                op["count"]
            );
        }
        println!("  slowest nodes:");
        for n in p["top"].as_array().into_iter().flatten().take(5) {
            println!(
                "    {:<40} {:<20} {:>6.2} ms",
                n["name"].as_str().unwrap_or("?"),
                n["op"].as_str().unwrap_or("?"),
                n["ms"].as_f64().unwrap_or(0.0)
            );
        }
    }
}
