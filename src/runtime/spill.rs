//! Pruned weights on disk while a run needs them: a safetensors file per block (or per study
//! cell), each weight in the type the model folder stores it in (a pruned zero is exactly
//! zero in every type), read back through a memory map only when a graph session, a saved
//! folder or an analysis needs it. One writer and one reader serve `prune`'s spill folder and
//! a study's `weights/`.
//!
//! Why: a whole-model prune of an 8B model holds 28 GB of replacement weights in f32. With a
//! spill folder, `prune` keeps one block's replacements in memory while that block is pruned;
//! the later blocks' calibration, the perplexity comparison and `--save` read them back one
//! block (one layer for `--save`) at a time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{FloatType, OverrideData, SpillFile, WeightOverride};

/// The metadata key under which each tensor's stored type travels (the file may hold the
/// values in another type: a study written before the files kept the stored type held f32).
const STORED_KEY_PREFIX: &str = "stored:";

#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    #[error("cannot write pruned weights to {path}: {source}; free disk space there or give another --results folder")]
    Write { path: PathBuf, source: std::io::Error },
    #[error(
        "{path} is not a readable weights file ({message}); it is written by `polyprune prune` or `polyprune study run`, run that again"
    )]
    Malformed { path: PathBuf, message: String },
    #[error(transparent)]
    Read(#[from] super::SpillReadError),
}

/// One tensor's bytes for the safetensors writer.
struct Bytes {
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl safetensors::View for &Bytes {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn dtype_of(t: FloatType) -> safetensors::Dtype {
    match t {
        FloatType::F32 => safetensors::Dtype::F32,
        FloatType::F16 => safetensors::Dtype::F16,
        FloatType::Bf16 => safetensors::Dtype::BF16,
    }
}

fn float_type_of(d: safetensors::Dtype) -> Option<FloatType> {
    match d {
        safetensors::Dtype::F32 => Some(FloatType::F32),
        safetensors::Dtype::F16 => Some(FloatType::F16),
        safetensors::Dtype::BF16 => Some(FloatType::Bf16),
        _ => None,
    }
}

/// Writes `overrides` to `path` (atomically), each in its stored type.
pub fn write_overrides(path: &Path, overrides: &[WeightOverride]) -> Result<(), SpillError> {
    let mut tensors = Vec::with_capacity(overrides.len());
    for o in overrides {
        tensors.push((o.name.clone(), Bytes { dtype: dtype_of(o.stored), shape: o.shape.clone(), bytes: o.data.stored_bytes(o.stored)? }));
    }
    let metadata: HashMap<String, String> =
        overrides.iter().map(|o| (format!("{STORED_KEY_PREFIX}{}", o.name), o.stored.flag_name().to_string())).collect();
    let views = tensors.iter().map(|(n, b)| (n.clone(), b));
    let bytes = safetensors::tensor::serialize(views, Some(metadata))
        .map_err(|e| SpillError::Write { path: path.to_path_buf(), source: std::io::Error::other(e) })?;
    drop(tensors);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| SpillError::Write { path: parent.to_path_buf(), source })?;
    }
    crate::util::write_atomic(path, &bytes).map_err(|source| SpillError::Write { path: path.to_path_buf(), source })
}

/// The overrides in `path`, in name order, their values left in the file (read when used).
/// `keep` lives as long as any of them (see [`SpillFile`]).
pub fn map_overrides(path: &Path, keep: Option<Arc<dyn std::any::Any + Send + Sync>>) -> Result<Vec<WeightOverride>, SpillError> {
    let malformed = |message: String| SpillError::Malformed { path: path.to_path_buf(), message };
    let file = std::fs::File::open(path).map_err(|e| malformed(e.to_string()))?;
    // SAFETY: weights files are written once, atomically, and not modified while read.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| malformed(e.to_string()))?;
    let (header_len, header) = safetensors::SafeTensors::read_metadata(&map[..]).map_err(|e| malformed(e.to_string()))?;
    let start = 8 + header_len as u64;
    let metadata = header.metadata().clone().unwrap_or_default();
    let spill = Arc::new(SpillFile { path: path.to_path_buf(), keep });
    let mut out = Vec::new();
    for (name, info) in header.tensors() {
        let file_type =
            float_type_of(info.dtype).ok_or_else(|| malformed(format!("tensor {name} is {:?}, not F32, F16 or BF16", info.dtype)))?;
        // The stored type: this file's key, or the older study files' bare-name key.
        let stored = match metadata.get(&format!("{STORED_KEY_PREFIX}{name}")).or_else(|| metadata.get(&name)) {
            Some(tag) => tag.parse().map_err(|e: String| malformed(format!("tensor {name}: {e}")))?,
            None => file_type,
        };
        let count: usize = info.shape.iter().product();
        let (begin, end) = info.data_offsets;
        if end - begin != count * file_type.bytes() {
            return Err(malformed(format!("tensor {name} has {} bytes for shape {:?}", end - begin, info.shape)));
        }
        out.push(WeightOverride {
            name: name.clone(),
            shape: info.shape.clone(),
            data: OverrideData::Spilled { file: spill.clone(), offset: start + begin as u64, count, file_type },
            stored,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// A folder of spill files that removes itself once the folder and every override read from
/// it are dropped (so the files outlive `prune`'s steps that read them, and no longer).
pub struct SpillDir {
    folder: Arc<TemporaryFolder>,
}

struct TemporaryFolder {
    path: PathBuf,
}

impl Drop for TemporaryFolder {
    fn drop(&mut self) {
        // Best effort: a folder left behind (a killed run) is named as the spill it is.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

impl SpillDir {
    /// A new folder `spill-<pid>-<nanoseconds>` under `parent`.
    pub fn create(parent: &Path) -> Result<Self, SpillError> {
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        let path = parent.join(format!("spill-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|source| SpillError::Write { path: path.clone(), source })?;
        Ok(SpillDir { folder: Arc::new(TemporaryFolder { path }) })
    }

    pub fn path(&self) -> &Path {
        &self.folder.path
    }

    /// Writes `overrides` (dropping their values from memory) to `<name>.safetensors` and
    /// returns them as read back from it, in the order given.
    pub fn spill(&self, name: &str, overrides: Vec<WeightOverride>) -> Result<Vec<WeightOverride>, SpillError> {
        if overrides.is_empty() {
            return Ok(overrides);
        }
        let path = self.folder.path.join(format!("{name}.safetensors"));
        write_overrides(&path, &overrides)?;
        let order: Vec<String> = overrides.iter().map(|o| o.name.clone()).collect();
        drop(overrides);
        let keep: Arc<dyn std::any::Any + Send + Sync> = self.folder.clone();
        let mut mapped: HashMap<String, WeightOverride> =
            map_overrides(&path, Some(keep))?.into_iter().map(|o| (o.name.clone(), o)).collect();
        Ok(order.iter().map(|n| mapped.remove(n).expect("every override written is read back")).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values that each 16-bit type holds exactly, zeros among them: written in the stored
    /// type and read back, they come back bit for bit; the folder goes with its last reader.
    #[test]
    fn spilled_overrides_read_back_exactly_and_the_folder_goes_with_the_last_reader() {
        let parent = tempfile::tempdir().unwrap();
        let values = vec![1.5f32, 0.0, -0.25, 3.0, 0.0, 0.125];
        let mut written = Vec::new();
        for t in [FloatType::F32, FloatType::F16, FloatType::Bf16] {
            written.push(WeightOverride::new(format!("w.{}", t.flag_name()), vec![2, 3], values.clone(), t));
        }
        let spill = SpillDir::create(parent.path()).unwrap();
        let folder = spill.path().to_path_buf();
        let read = spill.spill("block-000", written.clone()).unwrap();
        let file = folder.join("block-000.safetensors");
        // 8-byte length, header, then 6 values at 4 + 2 + 2 bytes each.
        let header = u64::from_le_bytes(std::fs::read(&file).unwrap()[..8].try_into().unwrap());
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 8 + header + 6 * (4 + 2 + 2));
        for (w, r) in written.iter().zip(&read) {
            assert!(r.data.is_spilled());
            assert_eq!((&r.name, &r.shape, r.stored), (&w.name, &w.shape, w.stored));
            assert_eq!(*r.values().unwrap(), values, "{}", r.name);
            assert_eq!(r.data.stored_bytes(r.stored).unwrap(), r.stored.narrow(&values));
        }
        drop(spill);
        assert!(folder.is_dir(), "the overrides still read from it");
        drop(read);
        assert!(!folder.exists(), "removed with its last reader");
    }

    /// A study file written before the stored type was kept: f32 values, the stored type under
    /// the bare tensor name.
    #[test]
    fn older_f32_files_with_the_stored_type_in_metadata_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = [0.5f32, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = Bytes { dtype: safetensors::Dtype::F32, shape: vec![2], bytes };
        let meta: HashMap<String, String> = [("w".to_string(), "bf16".to_string())].into();
        let file = safetensors::tensor::serialize([("w".to_string(), &view)], Some(meta)).unwrap();
        std::fs::write(dir.path().join("cell.safetensors"), file).unwrap();
        let read = map_overrides(&dir.path().join("cell.safetensors"), None).unwrap();
        assert_eq!((read[0].stored, (*read[0].values().unwrap()).clone()), (FloatType::Bf16, vec![0.5, -2.0]));
        std::fs::write(dir.path().join("bad.safetensors"), b"not a weights file").unwrap();
        let err = map_overrides(&dir.path().join("bad.safetensors"), None).unwrap_err().to_string();
        assert!(err.contains("bad.safetensors") && err.contains("run that again"), "{err}");
    }
}
