//! `facegate eval split`: a 1:N protocol from a `<person>/<photo>` folder, written as the
//! gallery and probe lists `eval identify` reads.
//!
//! People with two photos or more are enrolled with their first photo and probe with the next
//! ones, except every `--stranger-every`-th of them, held back as strangers with all their
//! photos; people with a single photo are strangers too. Deterministic: people in name order.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct EvalSplitArgs {
    /// Folder of `<person>/<photo>` images.
    #[arg(long)]
    pub root: PathBuf,
    /// Write the gallery list here.
    #[arg(long)]
    pub gallery: PathBuf,
    /// Write the probe list here.
    #[arg(long)]
    pub probes: PathBuf,
    /// Hold back every K-th person with two photos or more as a stranger.
    #[arg(long, default_value_t = 3)]
    pub stranger_every: usize,
    /// At most this many probe photos per person (one prolific person must not dominate).
    #[arg(long, default_value_t = 5)]
    pub max_per_person: usize,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SplitReport {
    pub enrolled: usize,
    pub enrolled_probes: usize,
    pub strangers: usize,
    pub stranger_probes: usize,
}

type Lines = Vec<(String, PathBuf)>;

/// The gallery and probe lines for the people under `root`.
pub fn split(root: &Path, stranger_every: usize, max_per_person: usize) -> Result<(Lines, Lines, SplitReport)> {
    if stranger_every < 2 || max_per_person == 0 {
        bail!("--stranger-every must be at least 2 and --max-per-person at least 1");
    }
    let people = facegate_engine::dataset::people(root, 1).with_context(|| format!("listing {}", root.display()))?;
    let (mut gallery, mut probes, mut report) = (Vec::new(), Vec::new(), SplitReport::default());
    let rel = |p: &PathBuf| p.strip_prefix(root).map(Path::to_path_buf).unwrap_or_else(|_| p.clone());
    let mut several = 0;
    for (name, photos) in &people {
        let stranger = photos.len() < 2 || {
            several += 1;
            several % stranger_every == 0
        };
        if stranger {
            report.strangers += 1;
            for p in photos.iter().take(max_per_person) {
                probes.push((name.clone(), rel(p)));
                report.stranger_probes += 1;
            }
        } else {
            report.enrolled += 1;
            gallery.push((name.clone(), rel(&photos[0])));
            for p in photos.iter().skip(1).take(max_per_person) {
                probes.push((name.clone(), rel(p)));
                report.enrolled_probes += 1;
            }
        }
    }
    if gallery.is_empty() || report.stranger_probes == 0 {
        bail!("{} needs people with two photos or more, and strangers", root.display());
    }
    Ok((gallery, probes, report))
}

pub fn run(args: &EvalSplitArgs) -> Result<SplitReport> {
    let (gallery, probes, report) = split(&args.root, args.stranger_every, args.max_per_person)?;
    for (path, lines) in [(&args.gallery, &gallery), (&args.probes, &probes)] {
        write_list(path, lines).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

fn write_list(path: &Path, lines: &[(String, PathBuf)]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for (who, p) in lines {
        writeln!(out, "{who}\t{}", p.display())?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrols_first_photos_and_holds_back_strangers() {
        let root = tempfile::tempdir().expect("tempdir");
        for (person, n) in [("Ann", 3), ("Bob", 1), ("Cy", 2), ("Di", 8), ("Ed", 2)] {
            std::fs::create_dir(root.path().join(person)).expect("dir");
            for i in 0..n {
                std::fs::write(root.path().join(person).join(format!("{i}.jpg")), b"").expect("file");
            }
        }
        let (gallery, probes, r) = split(root.path(), 3, 5).expect("split");
        // Several-photo people: Ann, Cy, Di, Ed; the third (Di) is held back; Bob has one photo.
        let enrolled: Vec<&str> = gallery.iter().map(|(w, _)| w.as_str()).collect();
        assert_eq!(enrolled, ["Ann", "Cy", "Ed"]);
        assert_eq!(gallery[0].1, PathBuf::from("Ann/0.jpg"));
        assert_eq!(r, SplitReport { enrolled: 3, enrolled_probes: 4, strangers: 2, stranger_probes: 6 });
        assert!(probes.iter().all(|(_, p)| !gallery.iter().any(|g| &g.1 == p)), "no enrolment photo is a probe");
        assert_eq!(probes.iter().filter(|(w, _)| w == "Di").count(), 5, "capped per person");
        assert!(split(root.path(), 1, 5).is_err());
    }
}
