//! `facegate demo`: the whole system on this machine. Starts a `facegate-device` on a local
//! link with a directory frame source, pairs with it, enrols a handful of people from one
//! photo each, syncs, then plays frames of them (other photos) and of strangers, printing the
//! device's decisions as they happen and a summary at the end. The display's screens are left
//! as PNG files to look at.

use super::{enroll, pair};
use crate::link::Addr;
use crate::paired::connect_paired;
use crate::registry::Registry;
use crate::sync;
use anyhow::{bail, Context, Result};
use clap::Args;
use facegate_engine::dataset::people;
use facegate_engine::source::{empty_frame, visit_frames};
use facegate_engine::{Engine, FacePolicy, QualityGate};
use facegate_proto::{ConfigKey, Decision, Request};
use image::RgbImage;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  facegate demo                         # uses ../shared/faces/lfw or $FACEGATE_DATA/lfw\n  \
                        facegate demo --faces ~/photos         # any folder of <person>/<photo>"
)]
pub struct DemoArgs {
    /// A folder of `<person>/<photo>` images (default: $FACEGATE_DATA/lfw, then ../shared/faces/lfw).
    #[arg(long)]
    pub faces: Option<PathBuf>,
    /// Where to keep the device's store, frames, screens and the demo registry (default: a new
    /// folder under the system's temp directory).
    #[arg(long)]
    pub work: Option<PathBuf>,
    /// People to enrol (one photo each).
    #[arg(long, default_value_t = 5)]
    pub people: usize,
    /// Strangers to show the door (not enrolled).
    #[arg(long, default_value_t = 3)]
    pub strangers: usize,
    /// Frames per second to play (default: as fast as the device takes them).
    #[arg(long)]
    pub fps: Option<f32>,
    /// The device binary (default: `facegate-device` beside this program).
    #[arg(long)]
    pub device_bin: Option<PathBuf>,
    /// Print the summary as one JSON object (events are still printed as JSON lines first).
    #[arg(long)]
    pub json: bool,
}

/// How a visit turned out against what it should have been.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VisitResult {
    pub photo: String,
    pub expected: Option<String>,
    pub decision: String,
    pub name: Option<String>,
    pub score: f32,
    pub latency_ms: u32,
    pub correct: bool,
}

#[derive(Debug, serde::Serialize)]
pub struct DemoSummary {
    pub enrolled: Vec<String>,
    pub visits: Vec<VisitResult>,
    pub granted: usize,
    pub denied: usize,
    pub unknown: usize,
    pub other: usize,
    pub correct: usize,
    pub latency_ms_median: u32,
    pub latency_ms_max: u32,
    pub screens: PathBuf,
    pub work: PathBuf,
}

/// Frames written per visit by [`FrameWriter::visit`].
pub const FRAMES_PER_VISIT: u64 = 6;

/// Puts frames into a directory the device follows, numbered in play order.
pub struct FrameWriter {
    pub dir: PathBuf,
    pub next: u32,
}

impl FrameWriter {
    pub fn put(&mut self, img: &RgbImage) -> Result<()> {
        // Written under a name the device ignores, then renamed: it never reads half a frame.
        crate::save_png(img, &self.dir.join(format!("{:06}.png", self.next))).context("publishing a frame")?;
        self.next += 1;
        Ok(())
    }

    /// One visitor: three frames of them, then three empty ones.
    pub fn visit(&mut self, img: &RgbImage) -> Result<()> {
        for f in visit_frames(img) {
            self.put(&f)?;
        }
        let blank = empty_frame(img.width(), img.height());
        for _ in 0..3 {
            self.put(&blank)?;
        }
        Ok(())
    }
}

fn find_faces(args: &DemoArgs) -> Result<PathBuf> {
    if let Some(f) = &args.faces {
        if f.is_dir() {
            return Ok(f.clone());
        }
        bail!("--faces {}: not a folder", f.display());
    }
    let lfw = facegate_engine::dataset::default_data_dir().join("lfw");
    if lfw.is_dir() {
        return Ok(lfw);
    }
    bail!(
        "no face photos found (looked in {}).\nPass --faces DIR, a folder with one sub-folder of photos per person \
         (e.g. LFW: DIR/Ada_Lovelace/Ada_Lovelace_0001.jpg), or set FACEGATE_DATA to the folder holding lfw/.",
        lfw.display()
    )
}

struct Device(Child);

impl Drop for Device {
    fn drop(&mut self) {
        // SIGTERM for a clean stop; the child is reaped either way.
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_device(bin: &Path, work: &Path) -> Result<(Device, Addr)> {
    let mut child = Command::new(bin)
        .arg("run")
        .arg("--store")
        .arg(work.join("store"))
        .arg("--frames")
        .arg(work.join("frames"))
        .arg("--follow")
        .arg("--display-png")
        .arg(work.join("screens"))
        .args(["--listen", "127.0.0.1:0", "--allow-pairing", "60", "--consensus", "2/3", "--name", "demo-door"])
        // The demo's visitors are photos, not people: the liveness check would be right to
        // refuse some of them, which is not what the demo shows.
        .args(["--liveness", "off"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(work.join("device.log")).context("device log")?)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stdout = child.stdout.take().context("device stdout")?;
    let device = Device(child);
    let mut lines = std::io::BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        if let Some(a) = line?.strip_prefix("facegate-device: listening on ") {
            let addr: Addr = a.trim().parse()?;
            std::thread::spawn(move || for _ in lines {});
            return Ok((device, addr));
        }
    }
    bail!("the device exited at start; see {}", work.join("device.log").display())
}

pub fn run(engine: &Engine, args: &DemoArgs) -> Result<DemoSummary> {
    let faces = find_faces(args)?;
    let work = match &args.work {
        Some(w) => w.clone(),
        None => std::env::temp_dir().join(format!("facegate-demo-{}", std::process::id())),
    };
    for sub in ["frames", "screens"] {
        std::fs::create_dir_all(work.join(sub)).with_context(|| format!("creating {}", work.display()))?;
    }
    let bin = match &args.device_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("facegate-device"),
    };
    let candidates = people(&faces, 2).with_context(|| format!("reading {}", faces.display()))?;
    if candidates.len() < args.people + args.strangers {
        bail!(
            "{} has {} people with two or more photos; the demo needs {} (--people + --strangers)",
            faces.display(),
            candidates.len(),
            args.people + args.strangers
        );
    }
    // Spread the picks over the alphabet so the demo is not all "A" names; each enrolment slot
    // may fall back on the next few people when its first pick has no photo the gate accepts.
    let step = candidates.len() / (args.people + args.strangers);
    let strangers: Vec<(String, Vec<PathBuf>)> =
        (args.people..args.people + args.strangers).map(|i| candidates[i * step].clone()).collect();
    let slots: Vec<&[(String, Vec<PathBuf>)]> =
        (0..args.people).map(|i| &candidates[i * step..(i * step + step.min(4)).max(i * step + 1)]).collect();

    let (device, addr) = start_device(&bin, &work)?;
    let mut registry = Registry::open(&work.join("registry.sqlite3"))?;
    let info = pair::pair(&mut registry, &addr)?;
    say(args, &format!("device {} at {addr}: paired (model {})", info.device_id, info.model_id));
    let mut enrolled = Vec::new();
    let mut visits: Vec<(PathBuf, Option<String>)> = Vec::new();
    // Visit photos are ones the verification gate accepts: a real visitor faces the camera
    // until the screen says yes or no; a photo cannot.
    let usable = |p: &PathBuf| engine.process_file(p, FacePolicy::Subject, &QualityGate::VERIFY).is_ok();
    for slot in &slots {
        for (name, photos) in slot.iter() {
            // One photo is enough: the first that passes the enrolment gate.
            let Some((i, result)) = photos
                .iter()
                .enumerate()
                .map(|(i, p)| (i, engine.process_file(p, FacePolicy::Single, &QualityGate::ENROL)))
                .find(|(_, r)| r.is_ok())
            else {
                say(args, &format!("skipping {name}: no photo passes the enrolment gate"));
                continue;
            };
            let Some(visit) = photos.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, p)| p).find(|p| usable(p))
            else {
                say(args, &format!("skipping {name}: no second usable photo to show the door"));
                continue;
            };
            let report = enroll::enroll_results(
                &mut registry,
                engine,
                name,
                vec![(photos[i].display().to_string(), result)],
                false,
            )?;
            say(args, &format!("enrolled {name} from {}", report.accepted[0].source));
            enrolled.push(name.clone());
            visits.push((visit.clone(), Some(name.clone())));
            break;
        }
    }
    for (_, photos) in &strangers {
        if let Some(p) = photos.iter().find(|p| usable(p)) {
            visits.push((p.clone(), None));
        }
    }
    let outcome = sync::sync_device(&mut registry, &addr, false)?;
    say(args, &format!("synced {} templates to the device (generation {})", outcome.templates, outcome.generation));

    let mut client = connect_paired(&registry, &addr)?;
    client.request(Request::GetConfig { key: ConfigKey::Threshold })?;
    let frames_dir = work.join("frames");
    let to_play: Vec<PathBuf> = visits.iter().map(|(p, _)| p.clone()).collect();
    let fps = args.fps;
    let player = std::thread::spawn(move || -> Result<()> {
        let mut w = FrameWriter { dir: frames_dir, next: 0 };
        for p in &to_play {
            let img = facegate_engine::image_io::load_image(p)?;
            w.visit(&img)?;
            if let Some(fps) = fps.filter(|f| *f > 0.0) {
                std::thread::sleep(Duration::from_secs_f32(6.0 / fps));
            }
        }
        Ok(())
    });
    let n_strangers = visits.iter().filter(|(_, who)| who.is_none()).count();
    say(args, &format!("playing {} visitors ({} enrolled, {n_strangers} strangers)...", visits.len(), enrolled.len()));
    let mut results = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60 + 5 * visits.len() as u64);
    while results.len() < visits.len() && Instant::now() < deadline {
        let Some(e) = client.next_event(Duration::from_millis(200))? else { continue };
        // Each visit is FRAMES_PER_VISIT frames, so the deciding frame tells whose visit it was.
        let Some((photo, expected)) = visits.get((e.frame_counter / FRAMES_PER_VISIT) as usize) else { continue };
        let name = e.identity.and_then(|i| registry.person_by_id(i.person_id).ok().flatten()).map(|p| p.name);
        let correct = match (e.decision, expected) {
            (Decision::Granted, Some(x)) => name.as_ref() == Some(x),
            (Decision::Unknown, None) => true,
            _ => false,
        };
        let r = VisitResult {
            photo: photo.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
            expected: expected.clone(),
            decision: format!("{:?}", e.decision),
            name,
            score: e.score,
            latency_ms: e.latency_ms,
            correct,
        };
        if args.json {
            println!("{}", serde_json::to_string(&r)?);
        } else {
            println!(
                "  {:<8} {:<28} score {:.3}  {:>4} ms   {} {}",
                r.decision.to_uppercase(),
                r.name.clone().unwrap_or_else(|| "-".into()),
                r.score,
                r.latency_ms,
                if r.correct { "ok   " } else { "WRONG" },
                match &r.expected {
                    Some(x) => format!("({x}, {})", r.photo),
                    None => format!("(stranger, {})", r.photo),
                }
            );
        }
        results.push(r);
    }
    player.join().map_err(|_| anyhow::anyhow!("frame player panicked"))??;
    drop(client);
    drop(device);
    if results.len() < visits.len() {
        bail!(
            "only {} of {} visitors got a decision (a photo the gate refuses, or a slow machine); see {}",
            results.len(),
            visits.len(),
            work.join("device.log").display()
        );
    }
    let mut lat: Vec<u32> = results.iter().map(|r| r.latency_ms).collect();
    lat.sort_unstable();
    let count = |d: &str| results.iter().filter(|r| r.decision == d).count();
    let summary = DemoSummary {
        enrolled,
        granted: count("Granted"),
        denied: count("Denied"),
        unknown: count("Unknown"),
        other: results.len() - count("Granted") - count("Denied") - count("Unknown"),
        correct: results.iter().filter(|r| r.correct).count(),
        latency_ms_median: lat.get(lat.len() / 2).copied().unwrap_or(0),
        latency_ms_max: lat.last().copied().unwrap_or(0),
        visits: results,
        screens: work.join("screens"),
        work: work.clone(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!(
            "\n{} visitors: {} granted, {} denied, {} unknown, {} other; {} of {} correct; decision latency median {} ms, max {} ms",
            summary.visits.len(),
            summary.granted,
            summary.denied,
            summary.unknown,
            summary.other,
            summary.correct,
            summary.visits.len(),
            summary.latency_ms_median,
            summary.latency_ms_max
        );
        println!("display screens: {}", summary.screens.display());
        println!("device log:      {}", work.join("device.log").display());
    }
    Ok(summary)
}

fn say(args: &DemoArgs, msg: &str) {
    if args.json {
        eprintln!("{msg}");
    } else {
        println!("{msg}");
    }
}
