//! The library's modules form layers and data flows one way through them: a module may use the
//! modules below it, never one above. This test reads every source file of the library and
//! fails on the first `crate::<module>` reference that points upwards, naming file and line,
//! so a shortcut that would close a circle (say, `analysis` reaching into `report`) is caught
//! when it is written, not when the next person tries to read the code.

use std::path::{Path, PathBuf};

/// Bottom to top. Modules on one line are peers that do not use each other.
const LAYERS: &[&[&str]] = &[
    &["util", "progress", "stats"],
    &["runtime"],
    &["model"],
    &["data"],
    &["tasks"],
    &["prune"],
    &["calibrate"],
    &["pruned", "eval"],
    &["design"],
    &["store"],
    &["analysis", "workflow"],
    &["study"],
    &["report"],
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a library file belongs to (`src/eval/scorer.rs` -> `eval`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let first = file.strip_prefix(src).ok()?.components().next()?.as_os_str().to_str()?.to_string();
    Some(first.trim_end_matches(".rs").to_string())
}

/// Every `crate::<name>` in a line, outside comments.
fn crate_references(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    code.match_indices("crate::")
        .filter(|(i, _)| !code[..*i].ends_with('$'))
        .map(|(i, m)| code[i + m.len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect())
        .collect()
}

#[test]
fn every_module_uses_only_the_modules_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut checked = 0;
    let mut upward = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else { continue };
        // The binary's files (command line, commands) and the crate root sit above everything.
        if ["main", "cli", "commands", "bin", "lib"].contains(&module.as_str()) {
            continue;
        }
        let own = rank(&module).unwrap_or_else(|| panic!("{}: module '{module}' has no layer in LAYERS; add it", file.display()));
        for (n, line) in std::fs::read_to_string(file).unwrap().lines().enumerate() {
            for used in crate_references(line) {
                checked += 1;
                let Some(theirs) = rank(&used) else { continue };
                if theirs > own {
                    upward.push(format!("{}:{}: {module} uses crate::{used}, which is above it", file.display(), n + 1));
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} crate:: references found; is the source tree where the test looks?");
    assert!(upward.is_empty(), "upward references:\n{}", upward.join("\n"));
}

#[test]
fn the_reference_scanner_finds_what_it_must() {
    assert_eq!(crate_references("use crate::eval::{Scorer, TextSet}; // crate::report"), vec!["eval"]);
    assert_eq!(crate_references("let x = crate::util::sha256(a) + crate::stats::mean(b);"), vec!["util", "stats"]);
    assert!(crate_references("//! see crate::report").is_empty());
    assert!(rank("report") > rank("analysis") && rank("analysis") > rank("store"));
}
