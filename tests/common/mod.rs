//! Shared helpers for the end-to-end tests: where things are, and skipping with a reason when
//! something a test needs is absent (as in a user's own clone without `../shared`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A missing prerequisite: a skip with the reason in a user's own clone, a failure under
/// `CI=true` (CI always has `../shared` and runs `make test`, which prepares the rest), so a
/// green CI cannot hide a suite that did not run.
pub fn skip<T>(reason: &str) -> Option<T> {
    polyprune::util::prerequisite_missing(reason)
}

/// `../shared` (benchmark data and the oracle), or `None` after printing why the test skips.
pub fn shared() -> Option<PathBuf> {
    let p = repo().join("../shared");
    if p.join("data").is_dir() {
        Some(p)
    } else {
        skip("../shared is absent (it holds the test data and the oracle)")
    }
}

/// An imported model folder under `.cache/models`, or `None` after printing how to make it.
pub fn model(name: &str) -> Option<PathBuf> {
    let p = repo().join(".cache/models").join(name);
    if p.join("card.json").is_file() {
        Some(p)
    } else {
        skip(&format!("{} is missing; run `make models`", p.display()))
    }
}

pub fn gguf(name: &str) -> Option<PathBuf> {
    let p = repo().join(".cache/models").join(format!("{name}.gguf"));
    if p.is_file() {
        Some(p)
    } else {
        skip(&format!("{} is missing; run `make models`", p.display()))
    }
}

/// A model fixture folder written by `make fixtures` (the repository keeps no weights; see
/// tests/fixtures/README.md). Missing fixtures fail the test: they need only the set-up venv.
pub fn model_fixture(name: &str) -> PathBuf {
    let p = repo().join(".cache/fixtures").join(name);
    assert!(p.is_dir(), "{} is missing; run `make fixtures` to write the model fixtures", p.display());
    p
}

/// A committed fixture source: tokenizer.json, reference.json, the weightless graph.
pub fn fixture_source(name: &str) -> PathBuf {
    repo().join("tests/fixtures").join(name)
}

/// The project's Python (NumPy + gguf), for the oracle.
pub fn python() -> Option<PathBuf> {
    let p = repo().join(".cache/venv/bin/python");
    if p.is_file() {
        Some(p)
    } else {
        skip(&format!("{} is missing; run `make venv`", p.display()))
    }
}

/// pdflatex on the PATH, or `None` after saying how to install it (a failure under CI).
pub fn pdflatex() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|p| p.join("pdflatex")).find(|p| p.is_file()));
    found.or_else(|| {
        skip("pdflatex is absent; `make texlive` installs it (texlive-latex-base, -recommended, and texlive-science for siunitx)")
    })
}

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_polyprune"))
}

/// The trimmed `text` column of the first `n` rows of a SIB-200 split file, read with
/// [`rfc4180_rows`] rather than the library's reader, so that the tests check the library
/// against an independent reading of the files.
pub fn sib200_sentences(shared: &Path, lang: &str, split: &str, n: usize) -> Vec<String> {
    let path = shared.join("data/sib200").join(lang).join(format!("{split}.tsv"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let rows = rfc4180_rows(&text, '\t');
    let column = rows[0].iter().position(|h| h == "text").expect("a text column");
    rows[1..].iter().take(n).map(|r| r[column].trim().to_string()).collect()
}

/// A minimal RFC 4180 reader (with `separator` for the comma): a field that starts with `"` runs
/// to the next `"` not followed by another `"`, and `""` inside it stands for one `"`; other
/// fields run to the next separator or line end. Blank lines are skipped; `\r\n` ends a line.
pub fn rfc4180_rows(text: &str, separator: char) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut chars = text.chars().peekable();
    while chars.peek().is_some() {
        let mut row = Vec::new();
        loop {
            let mut field = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        '"' => break,
                        c => field.push(c),
                    }
                }
            }
            while let Some(&c) = chars.peek() {
                if c == separator || c == '\n' {
                    break;
                }
                chars.next();
                if c != '\r' {
                    field.push(c);
                }
            }
            row.push(field);
            match chars.next() {
                Some(c) if c == separator => continue,
                _ => break,
            }
        }
        if !(row.len() == 1 && row[0].is_empty()) {
            rows.push(row);
        }
    }
    rows
}

/// A fresh, empty folder unique to this call (tests in one binary run in parallel).
pub fn temp_dir(tag: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("polyprune-test-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The tiny Llama GGUF fixture imported into a fresh temporary folder (`tag` names it).
pub fn imported_tiny_llama(tag: &str) -> polyprune::model::ModelDir {
    use polyprune::model::import::{import_gguf, ImportOptions};
    let out = temp_dir(tag);
    import_gguf(&model_fixture("tiny-llama").join("model.gguf"), &out, &ImportOptions { max_positions: 128 }).unwrap();
    polyprune::model::ModelDir::open(&out).unwrap()
}

/// The Hugging Face Llama fixture in bf16 imported into a fresh temporary folder.
pub fn imported_hf_llama_bf16(tag: &str) -> polyprune::model::ModelDir {
    use polyprune::model::import::ImportOptions;
    let out = temp_dir(tag);
    polyprune::model::hf::import::import_hf(&model_fixture("hf-llama-bf16"), &out, &ImportOptions { max_positions: 128 }).unwrap();
    polyprune::model::ModelDir::open(&out).unwrap()
}

/// `samples` FLORES windows of 32 tokens, English and German evenly, drawn with `seed`.
pub fn english_german_calibration(
    model: &polyprune::model::ModelDir,
    shared: &Path,
    samples: usize,
    seed: u64,
) -> polyprune::calibrate::CalibrationSet {
    use polyprune::calibrate::{CalibrationSet, CalibrationSpec, Mix};
    use polyprune::data::{Language, SourceLocations, TextRegistry};
    let registry = TextRegistry::new(SourceLocations { flores_root: shared.join("data/sib200"), ..SourceLocations::for_project(&repo()) });
    let spec = CalibrationSpec {
        languages: vec![Language::parse("eng_Latn").unwrap(), Language::parse("deu_Latn").unwrap()],
        mix: Mix::Even,
        samples,
        seqlen: 32,
        seed,
        source: Some("flores".into()),
    };
    CalibrationSet::draw(&spec, &registry, &model.tokenizer().unwrap(), model.card.start_token().unwrap()).unwrap()
}

/// The pinned torch + transformers in the project venv (`make hf-reference` installs them).
pub fn transformers_python() -> Option<PathBuf> {
    let py = python()?;
    let ok =
        std::process::Command::new(&py).args(["-c", "import torch, transformers"]).output().map(|o| o.status.success()).unwrap_or(false);
    if ok {
        Some(py)
    } else {
        skip("torch and transformers are not in .cache/venv; `make hf-reference` installs the pinned ones")
    }
}

/// A study file over the mT5 fixture (or any model folder), as the encoder-decoder tests write
/// it: one seed, sequential calibration on the CPU, unstructured 50%, calibration and
/// perplexity on the FLORES copy at `flores`. `pruning` adds keys to `[pruning]`; `tables`
/// follows `[perplexity]` (tasks, analyses).
pub struct StudyFile<'a> {
    pub name: &'a str,
    pub model: &'a Path,
    pub flores: &'a Path,
    /// TOML list items, e.g. `"wanda", "magnitude"`.
    pub methods: &'a str,
    pub samples: usize,
    pub seqlen: usize,
    pub calibration: &'a [&'a str],
    pub perplexity: &'a [&'a str],
    pub limit: usize,
    pub pruning: &'a str,
    pub tables: &'a str,
}

impl StudyFile<'_> {
    /// Writes `dir/study.toml` (results under `dir/results`) and returns its path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let quoted = |langs: &[&str]| langs.iter().map(|l| format!("\"{l}\"")).collect::<Vec<_>>().join(", ");
        let sets = self.calibration.iter().map(|l| format!("{{ languages = [\"{l}\"] }}")).collect::<Vec<_>>().join(", ");
        let text = format!(
            r#"[study]
name = "{name}"
out = "{out}"
seeds = [0]
mode = "sequential"
device = "cpu"

[[models]]
name = "mt5"
path = "{model}"

[pruning]
methods = [{methods}]
sparsities = [0.5]
patterns = ["unstructured"]
{pruning}
[calibration]
source = "flores:{flores}"
samples = {samples}
seqlen = {seqlen}
sets = [{sets}]

[perplexity]
languages = [{perplexity}]
source = "flores:{flores}"
limit = {limit}
{tables}"#,
            name = self.name,
            out = dir.join("results").display(),
            model = self.model.display(),
            methods = self.methods,
            pruning = self.pruning,
            flores = self.flores.display(),
            samples = self.samples,
            seqlen = self.seqlen,
            perplexity = quoted(self.perplexity),
            limit = self.limit,
            tables = self.tables,
        );
        let path = dir.join("study.toml");
        std::fs::write(&path, text).unwrap();
        path
    }
}
