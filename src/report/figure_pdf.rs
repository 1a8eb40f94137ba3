//! The report's SVG figures as PDF, for pdflatex (which cannot read SVG).
//!
//! Drawing PDF ourselves would mean a second chart backend with its own fonts; librsvg's
//! `rsvg-convert` (Debian's librsvg2-bin, installed by `make texlive`) renders the very SVG the
//! HTML page shows, so the paper and the page cannot drift apart. Without it the LaTeX folder
//! still compiles, with a box naming each SVG.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The converter program, when it is on the `PATH`.
pub fn converter() -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|p| p.join("rsvg-convert")).find(|p| p.is_file())
}

/// What a report says when it could not convert: the figures are then boxes in the LaTeX.
pub const MISSING_CONVERTER: &str =
    "rsvg-convert is not installed, so the LaTeX figures are boxes naming their SVG files: install librsvg2-bin (or run `make texlive`) and run the report again";

/// Writes `svg` as the PDF `pdf` (its folder is created).
pub fn convert(converter: &Path, svg: &Path, pdf: &Path) -> std::io::Result<()> {
    if let Some(dir) = pdf.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let out = Command::new(converter).arg("--format=pdf").arg("--output").arg(pdf).arg(svg).output()?;
    if out.status.success() && pdf.is_file() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{} could not convert {}: {}",
            converter.display(),
            svg.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
