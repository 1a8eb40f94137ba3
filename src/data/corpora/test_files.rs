//! Test helper: uniquely named temporary files, removed when dropped (no extra dependency).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A file in the system temporary folder, deleted on drop.
pub(crate) struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// Writes `bytes` to a fresh file whose name ends with `name`.
    pub fn with_bytes(name: &str, bytes: &[u8]) -> TempFile {
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let folder = std::env::temp_dir().join(format!("polyprune-data-{}-{unique}", std::process::id()));
        std::fs::create_dir_all(&folder).expect("temporary folder is writable");
        let path = folder.join(name);
        std::fs::write(&path, bytes).expect("temporary file is writable");
        TempFile { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(folder) = self.path.parent() {
            let _ = std::fs::remove_dir_all(folder);
        }
    }
}
