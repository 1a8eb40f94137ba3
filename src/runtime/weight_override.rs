//! Replacement weights handed to the runtime when a session is created (a pruned layer): their
//! values either in memory or in a spill file, read through a memory map only when a session
//! that needs them is built. A pruned 8B model's replacements are 28 GB in f32; kept in spill
//! files (in the type the folder stores them in), a streamed run holds one block's at a time.

use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::FloatType;

/// One replacement weight: a named initializer of the graph, its shape as the graph stores it.
#[derive(Clone, Debug)]
pub struct WeightOverride {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: OverrideData,
    /// The type the graph stores this weight in: the override is handed to the runtime in
    /// it (rounded to nearest even from the values; a pruned zero stays exactly zero).
    pub stored: FloatType,
}

impl WeightOverride {
    /// An override whose values are in memory.
    pub fn new(name: impl Into<String>, shape: Vec<usize>, values: Vec<f32>, stored: FloatType) -> Self {
        WeightOverride { name: name.into(), shape, data: OverrideData::in_memory(values), stored }
    }

    /// The values (row-major in `shape`), read from the spill file when they are there.
    pub fn values(&self) -> Result<Arc<Vec<f32>>, SpillReadError> {
        self.data.values()
    }

    /// Values in the element count of `shape`.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where an override's values are.
#[derive(Clone, Debug)]
pub enum OverrideData {
    /// f32 values in memory (counted by [`override_bytes_in_memory`]).
    Memory(Arc<CountedValues>),
    /// `count` values of type `file_type` at byte `offset` of a spill file.
    Spilled { file: Arc<SpillFile>, offset: u64, count: usize, file_type: FloatType },
}

impl PartialEq for OverrideData {
    /// Equal values (a spilled override compares by what it reads back).
    fn eq(&self, other: &Self) -> bool {
        match (self.values(), other.values()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

impl OverrideData {
    pub fn in_memory(values: Vec<f32>) -> Self {
        OverrideData::Memory(Arc::new(CountedValues::new(values)))
    }

    pub fn values(&self) -> Result<Arc<Vec<f32>>, SpillReadError> {
        match self {
            OverrideData::Memory(v) => Ok(v.values.clone()),
            OverrideData::Spilled { file, offset, count, file_type } => {
                let bytes = read_mapped(&file.path, *offset, *count * file_type.bytes())?;
                Ok(Arc::new(file_type.widen(&bytes)))
            }
        }
    }

    /// The values as little-endian bytes of `stored`, as the runtime takes them: straight from
    /// the spill file when it holds that type (no f32 copy), else narrowed from the values.
    pub fn stored_bytes(&self, stored: FloatType) -> Result<Vec<u8>, SpillReadError> {
        match self {
            OverrideData::Spilled { file, offset, count, file_type } if *file_type == stored => {
                read_mapped(&file.path, *offset, *count * file_type.bytes())
            }
            _ => Ok(stored.narrow(&self.values()?)),
        }
    }

    pub fn is_spilled(&self) -> bool {
        matches!(self, OverrideData::Spilled { .. })
    }
}

/// A file that holds overrides' values. `keep` is whatever must live as long as the file is
/// read (a temporary folder that removes itself when the last override in it is dropped).
pub struct SpillFile {
    pub path: PathBuf,
    pub keep: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for SpillFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SpillFile({})", self.path.display())
    }
}

/// A spill file that cannot be read back (removed, truncated, or not readable).
#[derive(Debug, thiserror::Error)]
#[error("cannot read pruned weights back from {path}: {message}; the spill file is written by `polyprune prune` and removed when it ends, so run the prune again")]
pub struct SpillReadError {
    pub path: PathBuf,
    pub message: String,
}

/// `length` bytes at `offset` of `path`, through a memory map that is dropped on return (the
/// pages go back to the page cache, not the process).
fn read_mapped(path: &Path, offset: u64, length: usize) -> Result<Vec<u8>, SpillReadError> {
    let err = |message: String| SpillReadError { path: path.to_path_buf(), message };
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let size = file.metadata().map_err(|e| err(e.to_string()))?.len();
    if offset + length as u64 > size {
        return Err(err(format!("it holds {size} bytes, the weight needs bytes {offset}..{}", offset + length as u64)));
    }
    // SAFETY: the spill files are written once (atomically, by rename) and never modified.
    let map = unsafe { memmap2::MmapOptions::new().offset(offset).len(length).map(&file) }.map_err(|e| err(e.to_string()))?;
    Ok(map.to_vec())
}

/// f32 values in memory, counted while they live.
#[derive(Debug)]
pub struct CountedValues {
    values: Arc<Vec<f32>>,
}

static IN_MEMORY: AtomicU64 = AtomicU64::new(0);
static HIGH_WATER: AtomicU64 = AtomicU64::new(0);

impl CountedValues {
    fn new(values: Vec<f32>) -> Self {
        let bytes = (values.len() * 4) as u64;
        let now = IN_MEMORY.fetch_add(bytes, Ordering::SeqCst) + bytes;
        HIGH_WATER.fetch_max(now, Ordering::SeqCst);
        CountedValues { values: Arc::new(values) }
    }
}

impl Drop for CountedValues {
    fn drop(&mut self) {
        IN_MEMORY.fetch_sub((self.values.len() * 4) as u64, Ordering::SeqCst);
    }
}

/// Bytes of override values in memory in this process now, and the most at once since
/// [`reset_override_high_water`] (what a whole-model prune holds before its spill files take
/// over; `tests/streamed_prune.rs` checks it stays within one block).
pub fn override_bytes_in_memory() -> (u64, u64) {
    (IN_MEMORY.load(Ordering::SeqCst), HIGH_WATER.load(Ordering::SeqCst))
}

/// Starts a new high-water mark at the bytes in memory now.
pub fn reset_override_high_water() {
    HIGH_WATER.store(IN_MEMORY.load(Ordering::SeqCst), Ordering::SeqCst);
}
