//! Small filesystem helpers shared by every module that writes results.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Writes a file so that readers see either the old content or the new, never a torn file:
/// the bytes go to a temporary file in the same folder, are synced, then renamed over the target.
/// The process id in the temporary name keeps two concurrent writers apart. This is the
/// project's only atomic writer (results, masks, fetched task files).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        // Best effort: the temporary name is ours alone, and the real error is reported.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Hex SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The project-local cache (`.cache/` of the polyprune checkout): the ONNX Runtime library,
/// fetched models and data live there. `POLYPRUNE_CACHE` overrides it; otherwise the first
/// `.cache` found walking up from the current directory, then from the executable.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("POLYPRUNE_CACHE") {
        return PathBuf::from(dir);
    }
    let mut starts: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        starts.push(exe);
    }
    for start in &starts {
        for dir in start.ancestors() {
            if dir.join("Cargo.toml").is_file() && dir.join(".cache").is_dir() {
                return dir.join(".cache");
            }
        }
    }
    starts.first().cloned().unwrap_or_default().join(".cache")
}

/// The polyprune checkout: the folder holding `.cache` (text sources are found relative to it).
pub fn project_root() -> PathBuf {
    let cache = cache_dir();
    cache.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}
