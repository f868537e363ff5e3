//! The report's HTML: one static page, no scripts, no network, readable offline.

use super::ReportError;
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// One failure shown in a gallery: one or two images (paths relative to the page) and its
/// caption lines.
#[derive(Debug, Clone)]
pub struct Tile {
    pub images: Vec<String>,
    pub caption: Vec<String>,
}

/// A page being built, section by section.
#[derive(Debug, Default)]
pub struct Page {
    title: String,
    body: String,
    /// Every file the page refers to, relative to it.
    files: Vec<String>,
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;max-width:1700px}\
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}\
th:first-child,td:first-child{text-align:left}figure{display:inline-block;margin:6px;vertical-align:top}\
figcaption{font-size:13px}.tile figcaption{font-size:12px;max-width:240px}.tile img{margin-right:2px}.note{color:#555;font-size:14px}";

impl Page {
    pub fn new(title: &str) -> Page {
        let mut page = Page { title: title.to_owned(), ..Page::default() };
        let _ = writeln!(page.body, "<h1>{}</h1>", text(title));
        page
    }

    pub fn heading(&mut self, title: &str) {
        let _ = writeln!(self.body, "<h2>{}</h2>", text(title));
    }

    pub fn note(&mut self, line: &str) {
        let _ = writeln!(self.body, "<p class=\"note\">{}</p>", text(line));
    }

    /// A plot (its file relative to the page).
    pub fn figure(&mut self, file: &str, caption: &str) {
        self.files.push(file.to_owned());
        let _ = writeln!(
            self.body,
            "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
            attr(file),
            attr(caption),
            text(caption)
        );
    }

    pub fn table(&mut self, header: &[&str], rows: &[Vec<String>]) {
        let mut html = String::from("<table><tr>");
        for h in header {
            let _ = write!(html, "<th>{}</th>", text(h));
        }
        html.push_str("</tr>\n");
        for row in rows {
            html.push_str("<tr>");
            for cell in row {
                let _ = write!(html, "<td>{}</td>", text(cell));
            }
            html.push_str("</tr>\n");
        }
        html.push_str("</table>\n");
        self.body.push_str(&html);
    }

    /// A row of failure tiles; `empty` is said when there are none.
    pub fn gallery(&mut self, tiles: &[Tile], empty: &str) {
        if tiles.is_empty() {
            self.note(empty);
            return;
        }
        self.body.push_str("<div>\n");
        for tile in tiles {
            self.body.push_str("<figure class=\"tile\">");
            for img in &tile.images {
                self.files.push(img.clone());
                let _ = write!(self.body, "<img src=\"{}\" alt=\"{}\">", attr(img), attr(img));
            }
            let caption: Vec<String> = tile.caption.iter().map(|l| text(l).into_owned()).collect();
            let _ = writeln!(self.body, "<figcaption>{}</figcaption></figure>", caption.join("<br>"));
        }
        self.body.push_str("</div>\n");
    }

    /// The files the page refers to, relative to it.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// Writes `dir/index.html` (the files it refers to are the caller's to have written).
    pub fn write(&self, dir: &Path) -> Result<PathBuf, ReportError> {
        let html = format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
             <style>{STYLE}</style></head>\n<body>\n{}</body></html>\n",
            text(&self.title),
            self.body
        );
        let path = dir.join("index.html");
        std::fs::write(&path, html).map_err(ReportError::io(&path))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_files_are_listed() {
        let mut page = Page::new("a <b> & c");
        page.figure("det.png", "DET \"curve\"");
        page.gallery(&[Tile { images: vec!["g/1.png".into()], caption: vec!["<script>".into()] }], "none");
        page.gallery(&[], "no failures");
        let dir = tempfile::tempdir().expect("temp dir");
        let html = std::fs::read_to_string(page.write(dir.path()).expect("written")).expect("read");
        assert!(html.contains("a &lt;b&gt; &amp; c"));
        assert!(!html.contains("<script>"), "caption text must not become markup");
        assert!(html.contains("no failures"));
        assert_eq!(page.files(), ["det.png", "g/1.png"]);
    }
}
