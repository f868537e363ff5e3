//! Folders of labelled photos (`<person>/<photo>`, as LFW is laid out): where the face data
//! sets are and who is in them. Evaluation, benchmarks and the demo read them.

use std::path::{Path, PathBuf};

/// Photo file extensions a data set folder may hold (case-insensitive).
pub const PHOTO_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "pgm", "ppm", "bmp"];

/// The face data sets folder (holding `lfw/`): `$FACEGATE_DATA`, else `../shared/faces`.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("FACEGATE_DATA").map(PathBuf::from).unwrap_or_else(|| "../shared/faces".into())
}

/// Whether `path` names a photo by its extension.
pub fn is_photo(path: &Path) -> bool {
    path.extension()
        .and_then(|x| x.to_str())
        .is_some_and(|x| PHOTO_EXTENSIONS.iter().any(|k| k.eq_ignore_ascii_case(x)))
}

/// The people under `root` with at least `min_photos` photos, by name, each with their
/// photos in path order. Files directly under `root` are ignored.
pub fn people(root: &Path, min_photos: usize) -> std::io::Result<Vec<(String, Vec<PathBuf>)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let dir = entry?.path();
        if !dir.is_dir() {
            continue;
        }
        let mut photos: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .map(|f| f.map(|f| f.path()))
            .filter(|p| p.as_ref().map_or(true, |p| is_photo(p)))
            .collect::<std::io::Result<_>>()?;
        if photos.len() >= min_photos {
            photos.sort();
            let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            out.push((name, photos));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_lists_folders_with_enough_photos_in_order() {
        let root = tempfile::tempdir().expect("tempdir");
        for (person, files) in [("Bo", &["b.JPG", "a.png", "notes.txt"][..]), ("Al", &["x.jpg"][..])] {
            std::fs::create_dir(root.path().join(person)).expect("person dir");
            for f in files {
                std::fs::write(root.path().join(person).join(f), b"").expect("file");
            }
        }
        std::fs::write(root.path().join("pairs.txt"), b"").expect("file");
        let all = people(root.path(), 1).expect("listing");
        let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Al", "Bo"]);
        let bo: Vec<_> = all[1].1.iter().map(|p| p.file_name().unwrap_or_default().to_owned()).collect();
        assert_eq!(bo, ["a.png", "b.JPG"], "photos only, in path order");
        assert_eq!(people(root.path(), 2).expect("listing").len(), 1, "Al has one photo");
        assert!(people(&root.path().join("missing"), 1).is_err());
    }
}
