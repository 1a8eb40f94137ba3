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

/// A folder written whole or not at all: everything goes into a hidden sibling
/// (`.<name>.staging-<pid>`), which [`StagedDir::commit`] swaps with the target in one atomic
/// `renameat2(RENAME_EXCHANGE)` (or renames into place when there is no target yet). A kill at
/// any moment leaves the old folder or the new one under the real name, never a half-written
/// one; a staging folder left by a killed process is removed by the next `begin` for the same
/// target. Dropped without `commit`, the staging folder is removed.
pub struct StagedDir {
    target: PathBuf,
    staging: PathBuf,
    committed: bool,
}

impl StagedDir {
    pub fn begin(target: &Path) -> std::io::Result<Self> {
        let parent = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{} names no folder", target.display())))?;
        remove_abandoned(parent, &format!(".{name}.staging-"))?;
        let staging = parent.join(format!(".{name}.staging-{}", std::process::id()));
        if staging.exists() {
            std::fs::remove_dir_all(&staging)?;
        }
        std::fs::create_dir(&staging)?;
        Ok(StagedDir { target: target.to_path_buf(), staging, committed: false })
    }

    /// Where to write.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// Puts the staged folder under the target's name; the previous folder, if any, is removed.
    pub fn commit(mut self) -> std::io::Result<()> {
        if self.target.exists() {
            exchange(&self.staging, &self.target)?;
            // The staging name now holds the old folder.
            std::fs::remove_dir_all(&self.staging)?;
        } else {
            std::fs::rename(&self.staging, &self.target)?;
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the staging name is this process's alone.
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

/// Swaps two paths atomically. Where the file system cannot (RENAME_EXCHANGE is refused), the
/// old folder is moved aside first: a kill between the two renames leaves it under the
/// `.old-` name, and the target absent rather than half-written.
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: both pointers are valid NUL-terminated paths for the duration of the call.
    let rc = unsafe { libc::renameat2(libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), libc::RENAME_EXCHANGE) };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if !matches!(err.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP)) {
        return Err(err);
    }
    let name = b.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let aside = b.with_file_name(format!(".{name}.old-{}", std::process::id()));
    std::fs::rename(b, &aside)?;
    std::fs::rename(a, b)?;
    std::fs::rename(&aside, a)
}

/// What a write in progress leaves under a hidden name: `write_atomic`'s `.<name>.tmp<pid>`
/// file, a [`StagedDir`]'s `.<name>.staging-<pid>` and, where folders could not be exchanged
/// atomically, `.<name>.old-<pid>`. Returns the visible name and the writer's pid.
fn abandoned_write(name: &str) -> Option<(&str, u32, &'static str)> {
    let hidden = name.strip_prefix('.')?;
    [".tmp", ".staging-", ".old-"].into_iter().find_map(|marker| {
        let (visible, pid) = hidden.rsplit_once(marker)?;
        let pid = pid.parse::<u32>().ok()?;
        (!visible.is_empty()).then_some((visible, pid, marker))
    })
}

fn process_alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

/// Tidies what killed writers left under `root` (see [`abandoned_write`]): temporaries and
/// staged folders of processes that are gone are removed; a folder moved aside by an
/// interrupted non-atomic swap is put back when nothing took its place. Returns how many.
pub fn remove_abandoned_writes(root: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            match abandoned_write(&name) {
                Some((visible, pid, marker)) if !process_alive(pid) => {
                    let target = dir.join(visible);
                    if marker == ".old-" && !target.exists() {
                        std::fs::rename(&path, &target)?;
                    } else if path.is_dir() {
                        std::fs::remove_dir_all(&path)?;
                    } else {
                        std::fs::remove_file(&path)?;
                    }
                    removed += 1;
                }
                _ if entry.file_type()?.is_dir() => stack.push(path),
                _ => {}
            }
        }
    }
    Ok(removed)
}

/// Removes `<prefix><pid>` folders in `parent` whose process is gone.
fn remove_abandoned(parent: &Path, prefix: &str) -> std::io::Result<()> {
    for entry in std::fs::read_dir(parent)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(prefix) else { continue };
        let alive = pid.parse::<u32>().is_ok_and(process_alive);
        if !alive && entry.path().is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
}

/// For tests whose prerequisite (shared data, a fetched model, a browser) is absent: under
/// `CI=true` the test fails with `reason` (CI always has them: a green CI cannot hide a suite
/// that did not run); in a user's own clone it skips with the reason, and the skip is appended
/// to `$POLYPRUNE_SKIP_LOG`, which `make test` counts and lists after the suite.
pub fn prerequisite_missing<T>(reason: &str) -> Option<T> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{reason} (CI=true: a missing prerequisite fails the test)");
    }
    eprintln!("skipping: {reason}");
    if let Some(path) = std::env::var_os("POLYPRUNE_SKIP_LOG") {
        let test = std::thread::current().name().unwrap_or("?").to_string();
        let program = std::env::args().next().unwrap_or_default();
        let binary = Path::new(&program).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{binary} {test}: {reason}");
        }
    }
    None
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

#[cfg(test)]
mod staged_dir_tests {
    use super::StagedDir;

    #[test]
    fn the_target_holds_the_old_folder_until_commit_and_the_new_one_after() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("out");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("old.txt"), "old").unwrap();
        let staged = StagedDir::begin(&target).unwrap();
        std::fs::write(staged.path().join("new.txt"), "new").unwrap();
        assert!(target.join("old.txt").is_file() && !target.join("new.txt").exists());
        staged.commit().unwrap();
        assert!(target.join("new.txt").is_file() && !target.join("old.txt").exists());
        let names: Vec<_> = std::fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out")], "no staging folder is left");
    }

    #[test]
    fn a_killed_writers_temporaries_are_tidied_and_live_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        let sub = root.path().join("cells/a");
        std::fs::create_dir_all(sub.join(".masks.staging-4294967294")).unwrap();
        std::fs::write(sub.join(".documents.csv.tmp4294967294"), "half").unwrap();
        let mine = format!(".summary.csv.tmp{}", std::process::id());
        std::fs::write(sub.join(&mine), "in progress").unwrap();
        std::fs::write(sub.join("documents.csv"), "done").unwrap();
        assert_eq!(super::remove_abandoned_writes(root.path()).unwrap(), 2);
        let mut left: Vec<String> =
            std::fs::read_dir(&sub).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, vec![mine, "documents.csv".to_string()]);
    }

    #[test]
    fn an_abandoned_staging_folder_is_removed_and_a_dropped_one_never_lands() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("out");
        // A staging folder of a process that no longer exists (pid beyond the kernel's maximum).
        let dead = root.path().join(".out.staging-4294967294");
        std::fs::create_dir(&dead).unwrap();
        let staged = StagedDir::begin(&target).unwrap();
        assert!(!dead.exists());
        std::fs::write(staged.path().join("half.txt"), "half").unwrap();
        drop(staged);
        assert!(!target.exists());
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    }
}
