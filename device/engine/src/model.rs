//! The model manifest (`models/manifest.toml`) and loading of ONNX networks through tract.
//!
//! Every network file is checked against the sha256 in the manifest before tract parses it:
//! a swapped or corrupted model is refused with a clear error instead of producing
//! plausible-looking but wrong embeddings.

use super::error::{EngineError, Result};
use super::kernels::{self, Kernels, Rewrites};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tract_onnx::prelude::*;

/// One `[[model]]` entry of the manifest; fields we do not use are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelEntry {
    pub name: String,
    pub file: String,
    pub role: String,
    #[serde(default)]
    pub variant: String,
    pub sha256: String,
    /// Embedding-space id: templates are only comparable between models sharing it.
    #[serde(default, alias = "embedding_model_id")]
    pub embedding_id: Option<String>,
    /// How to run the file: absent = float; `"int8"` = 1x1 convolutions as int8 products
    /// ([`Kernels::OwnInt8`]).
    #[serde(default)]
    pub compute: Option<String>,
    /// How a liveness network's input is cut from the frame (required for that role).
    #[serde(default)]
    pub crop: Option<CropSpec>,
}

/// A liveness network's preprocessing, as its authors wrote it down: the detector box scaled
/// about its centre, resized to a square, raw 0..255 values in RGB or BGR order, and which
/// softmax class means "live".
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct CropSpec {
    pub box_scale: f32,
    pub side: usize,
    pub bgr: bool,
    pub live_class: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    /// The embedding variant used when none is asked for.
    #[serde(default)]
    pub shipped_embed: Option<String>,
    #[serde(rename = "model")]
    pub models: Vec<ModelEntry>,
    #[serde(skip)]
    pub dir: PathBuf,
}

impl Manifest {
    pub fn load(dir: &Path) -> Result<Manifest> {
        let path = dir.join("manifest.toml");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| EngineError::Manifest { path: path.clone(), reason: e.to_string() })?;
        let mut manifest: Manifest =
            toml::from_str(&text).map_err(|e| EngineError::Manifest { path: path.clone(), reason: e.to_string() })?;
        manifest.dir = dir.to_owned();
        Ok(manifest)
    }

    /// The entry for `role` (and `variant`, when given).
    pub fn find(&self, role: &str, variant: Option<&str>) -> Result<&ModelEntry> {
        self.models.iter().find(|m| m.role == role && variant.is_none_or(|v| m.variant == v)).ok_or_else(|| {
            EngineError::Manifest {
                path: self.dir.join("manifest.toml"),
                reason: format!("no {role} model{}", variant.map(|v| format!(" of variant {v:?}")).unwrap_or_default()),
            }
        })
    }

    /// Variants available for a role, in manifest order.
    pub fn variants(&self, role: &str) -> Vec<&ModelEntry> {
        self.models.iter().filter(|m| m.role == role).collect()
    }

    pub fn path_of(&self, entry: &ModelEntry) -> PathBuf {
        self.dir.join(&entry.file)
    }
}

/// The default models folder: `$FACEGATE_MODELS`, else the source tree's `models/`, else
/// [`INSTALLED_MODELS`].
pub fn default_models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FACEGATE_MODELS") {
        return PathBuf::from(dir);
    }
    // A build run from its source tree uses the tree's models; an installed one (the Debian
    // packages) those under /usr/share.
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    if source.join("manifest.toml").is_file() {
        source
    } else {
        PathBuf::from(INSTALLED_MODELS)
    }
}

/// Where the packages install the models.
pub const INSTALLED_MODELS: &str = "/usr/share/facegate/models";

/// The networks' input sizes: the one place they are set. The stages read them from here.
pub mod input {
    /// Detector input, width x height.
    pub const DETECT_W: usize = 320;
    pub const DETECT_H: usize = 240;
    /// Landmark crop side (grey).
    pub const LANDMARK_SIDE: usize = 64;
    /// Aligned face side, the embedding network's input.
    pub const EMBED_SIDE: usize = 112;
}

/// The input shape the engine feeds `entry` (NCHW), `None` for unknown roles (and for a
/// liveness entry without its crop).
pub fn input_shape(entry: &ModelEntry) -> Option<Vec<usize>> {
    use input::*;
    match entry.role.as_str() {
        "detect" => Some(vec![1, 3, DETECT_H, DETECT_W]),
        "landmark" => Some(vec![1, 1, LANDMARK_SIDE, LANDMARK_SIDE]),
        "embed" => Some(vec![1, 3, EMBED_SIDE, EMBED_SIDE]),
        "liveness" => entry.crop.map(|c| vec![1, 3, c.side, c.side]),
        _ => None,
    }
}

type Plan = Arc<TypedRunnableModel>;

/// Time spent in one node of a network ([`Net::profile`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeTime {
    pub name: String,
    /// The tract operator that ran (after optimisation), e.g. `Conv`, `OptMatMul`.
    pub op: String,
    pub ms: f64,
}

/// A loaded, optimised network with a fixed input shape.
pub struct Net {
    pub name: String,
    plan: Plan,
    input_shape: Vec<usize>,
    output_names: Vec<String>,
    /// What [`kernels::rewrite`] changed (all zero with [`Kernels::Tract`]).
    pub rewrites: Rewrites,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net").field("name", &self.name).field("input", &self.input_shape).finish()
    }
}

impl Net {
    /// Loads `entry` from the manifest, verifying its sha256 first, with the input shape the
    /// engine feeds its role ([`input_shape`]).
    pub fn from_manifest(manifest: &Manifest, entry: &ModelEntry, kernels: Kernels) -> Result<Net> {
        let input_shape = input_shape(entry).ok_or_else(|| EngineError::Model {
            name: entry.name.clone(),
            reason: format!(
                "unknown role {:?} in the manifest (known: detect, landmark, embed, liveness with its crop)",
                entry.role
            ),
        })?;
        let path = manifest.path_of(entry);
        let bytes = std::fs::read(&path).map_err(|e| EngineError::Model {
            name: entry.name.clone(),
            reason: format!("cannot read {}: {e}", path.display()),
        })?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if !actual.eq_ignore_ascii_case(&entry.sha256) {
            return Err(EngineError::Model {
                name: entry.name.clone(),
                reason: format!(
                    "{} has sha256 {actual}, manifest expects {}: wrong or corrupted model file",
                    path.display(),
                    entry.sha256
                ),
            });
        }
        let kernels = match (entry.compute.as_deref(), kernels) {
            (None, k) => k,
            (Some("int8"), Kernels::Own) => Kernels::OwnInt8,
            // Tract alone (the comparison baseline) runs the file in float.
            (Some("int8"), k) => k,
            (Some(other), _) => {
                return Err(EngineError::Model {
                    name: entry.name.clone(),
                    reason: format!("unknown compute {other:?} in the manifest (known: int8)"),
                })
            }
        };
        Net::from_bytes(&entry.name, &bytes, &input_shape, kernels)
    }

    /// Parses and optimises an ONNX network for a fixed input shape (no hash check).
    pub fn from_bytes(name: &str, bytes: &[u8], input_shape: &[usize], kernels: Kernels) -> Result<Net> {
        let err = |e: TractError| EngineError::Model { name: name.to_owned(), reason: format!("{e:#}") };
        let model = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(bytes))
            .map_err(err)?
            .with_input_fact(0, f32::fact(input_shape).into())
            .map_err(err)?;
        let output_names = model
            .output_outlets()
            .map_err(err)?
            .iter()
            .map(|o| model.outlet_label(*o).map(str::to_owned).unwrap_or_else(|| model.node(o.node).name.clone()))
            .collect();
        let mut typed = model.into_typed().map_err(err)?;
        let mut int8 = 0;
        if kernels == Kernels::OwnInt8 {
            (typed, int8) = kernels::rewrite_int8(typed).map_err(err)?;
        }
        let mut typed = typed.into_decluttered().map_err(err)?;
        let mut rewrites = Rewrites::default();
        if kernels != Kernels::Tract {
            (typed, rewrites) = kernels::rewrite(typed).map_err(err)?;
        }
        rewrites.int8 = int8;
        let plan = typed.into_optimized().map_err(err)?.into_runnable().map_err(err)?;
        Ok(Net { name: name.to_owned(), plan, input_shape: input_shape.to_vec(), output_names, rewrites })
    }

    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// Runs the network on one input tensor laid out as `input_shape`; returns every output
    /// flattened, in graph order.
    pub fn run(&self, input: Vec<f32>) -> Result<Vec<Vec<f32>>> {
        let stage = "network";
        let tensor = tract_ndarray::ArrayD::from_shape_vec(self.input_shape.clone(), input)
            .map_err(|e| EngineError::inference(stage, e))?
            .into_tensor();
        let outputs = self.plan.run(tvec!(tensor.into_tvalue())).map_err(|e| EngineError::inference(stage, e))?;
        outputs
            .iter()
            .map(|t| {
                t.to_plain_array_view::<f32>()
                    .map(|v| v.iter().copied().collect())
                    .map_err(|e| EngineError::inference(stage, e))
            })
            .collect()
    }

    /// Per-node time of one run, averaged over `runs` runs after a warm-up, slowest first.
    /// Each node is timed around tract's own evaluation of it, so the sum is the run time
    /// less the plan's bookkeeping.
    pub fn profile(&self, input: Vec<f32>, runs: usize) -> Result<Vec<NodeTime>> {
        let stage = "profile";
        let tensor = tract_ndarray::ArrayD::from_shape_vec(self.input_shape.clone(), input)
            .map_err(|e| EngineError::inference(stage, e))?
            .into_tensor();
        let mut state =
            tract_onnx::tract_core::plan::SimpleState::new(&self.plan).map_err(|e| EngineError::inference(stage, e))?;
        let mut total: Vec<f64> = Vec::new();
        let mut names: Vec<(String, String)> = Vec::new();
        for run in 0..runs + 1 {
            state
                .run_plan_with_eval(tvec!(tensor.clone().into_tvalue()), |ctx, op_state, node, inputs| {
                    let t = std::time::Instant::now();
                    let out = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
                    let ms = t.elapsed().as_secs_f64() * 1e3;
                    if total.len() <= node.id {
                        total.resize(node.id + 1, 0.0);
                        names.resize(node.id + 1, (String::new(), String::new()));
                    }
                    // The first run is a warm-up (allocations, caches).
                    if run > 0 {
                        total[node.id] += ms;
                    }
                    names[node.id] = (node.name.clone(), node.op().name().to_string());
                    out
                })
                .map_err(|e| EngineError::inference(stage, e))?;
        }
        let mut nodes: Vec<NodeTime> = total
            .into_iter()
            .zip(names)
            .filter(|(_, (name, _))| !name.is_empty())
            .map(|(t, (name, op))| NodeTime { name, op, ms: t / runs.max(1) as f64 })
            .collect();
        nodes.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        Ok(nodes)
    }

    /// Index of the output called `name`.
    pub fn output_index(&self, name: &str) -> Result<usize> {
        self.output_names.iter().position(|n| n == name).ok_or_else(|| EngineError::Model {
            name: self.name.clone(),
            reason: format!("no output named {name:?} (has {:?})", self.output_names),
        })
    }
}
