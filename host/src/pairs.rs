//! Labelled pair lists: the LFW `pairs.txt` format and a generic tab-separated one.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// One labelled pair of image paths (relative to the data root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub fold: usize,
    pub a: PathBuf,
    pub b: PathBuf,
    pub same: bool,
}

fn lfw_path(name: &str, index: &str) -> Result<PathBuf> {
    let i: u32 = index.parse().with_context(|| format!("bad image number {index:?}"))?;
    Ok(PathBuf::from(name).join(format!("{name}_{i:04}.jpg")))
}

/// Parses either format:
/// - LFW View 2: header `folds<TAB>n`, then per fold `n` lines `name i j` and `n` lines
///   `name1 i name2 j` (tab- or space-separated);
/// - generic: `fold<TAB>path1<TAB>path2<TAB>same` with `same` in {1,0,true,false}; `#` comments.
pub fn parse(text: &str) -> Result<Vec<Pair>> {
    let lines: Vec<(usize, Vec<&str>)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(i, l)| (i, l.split(['\t', ' ']).filter(|f| !f.is_empty()).collect()))
        .collect();
    let Some((_, first)) = lines.first() else { bail!("pair list is empty") };
    let lfw_header = first.len() == 2 && first.iter().all(|f| f.parse::<usize>().is_ok());
    let mut pairs = Vec::new();
    if lfw_header {
        let per_class: usize = first[1].parse()?;
        for (k, (line_no, f)) in lines[1..].iter().enumerate() {
            let fold = k / (2 * per_class.max(1));
            let pair = match f.as_slice() {
                [name, i, j] => Pair { fold, a: lfw_path(name, i)?, b: lfw_path(name, j)?, same: true },
                [n1, i, n2, j] => Pair { fold, a: lfw_path(n1, i)?, b: lfw_path(n2, j)?, same: false },
                _ => bail!("line {line_no}: expected 3 or 4 fields, found {}", f.len()),
            };
            pairs.push(pair);
        }
    } else {
        for (line_no, f) in &lines {
            let [fold, a, b, same] = f.as_slice() else {
                bail!("line {line_no}: expected fold, path1, path2, same (4 fields), found {}", f.len())
            };
            let same = match *same {
                "1" | "true" | "same" => true,
                "0" | "false" | "different" => false,
                other => bail!("line {line_no}: `same` must be 1/0/true/false, found {other:?}"),
            };
            let fold = fold.parse().with_context(|| format!("line {line_no}: bad fold {fold:?}"))?;
            pairs.push(Pair { fold, a: a.into(), b: b.into(), same });
        }
    }
    Ok(pairs)
}

pub fn load(path: &Path) -> Result<Vec<Pair>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading pair list {}", path.display()))?;
    parse(&text).with_context(|| format!("parsing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfw_format_with_folds() {
        let text = "2\t1\nAl\t1\t2\nBo\t1\tCy\t3\nDi\t2\t4\nEd\t10\tFi\t1\n";
        let p = parse(text).expect("parse");
        assert_eq!(p.len(), 4);
        assert_eq!(p[0], Pair { fold: 0, a: "Al/Al_0001.jpg".into(), b: "Al/Al_0002.jpg".into(), same: true });
        assert_eq!(p[1].b, PathBuf::from("Cy/Cy_0003.jpg"));
        assert!(!p[1].same);
        assert_eq!(p[2].fold, 1);
        assert_eq!(p[3].a, PathBuf::from("Ed/Ed_0010.jpg"));
    }

    #[test]
    fn generic_format_and_errors() {
        let p = parse("# comment\n0\ta.png\tb.png\t1\n3\tc.png\td.png\tfalse\n").expect("parse");
        assert_eq!(p[1], Pair { fold: 3, a: "c.png".into(), b: "d.png".into(), same: false });
        assert!(parse("0\ta\tb\tmaybe\n").is_err());
        assert!(parse("0\ta\tb\n").is_err());
        assert!(parse("").is_err());
        assert!(parse("1\t1\nAl\tx\t2\n").is_err());
    }
}
