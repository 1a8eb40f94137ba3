//! The weights of a Hugging Face folder: `model.safetensors`, or shards listed by
//! `model.safetensors.index.json`, each memory-mapped and parsed by the `safetensors` crate
//! (no copy until a tensor is converted), and a streaming writer for export.
//!
//! Only F32, F16 and BF16 tensors are read; every other dtype is refused with the tensor and
//! file named. A writer lays out the header from the tensors' shapes first and then appends
//! one tensor at a time, so an export never holds more than one tensor in memory.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

use crate::model::ModelError;

pub const SINGLE_FILE: &str = "model.safetensors";
pub const INDEX_FILE: &str = "model.safetensors.index.json";

pub use crate::runtime::FloatType;

/// The float format of a safetensors dtype, for the three polyprune reads.
fn float_type_of(d: Dtype) -> Option<FloatType> {
    match d {
        Dtype::F32 => Some(FloatType::F32),
        Dtype::F16 => Some(FloatType::F16),
        Dtype::BF16 => Some(FloatType::Bf16),
        _ => None,
    }
}

/// One tensor read from a checkpoint, widened to f32.
pub struct Tensor {
    pub dtype: FloatType,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
    /// The stored bytes (kept only when asked for, for tensors an export may need verbatim).
    pub raw: Option<Vec<u8>>,
}

/// Every tensor of a Hugging Face folder, by name, across its shards.
pub struct Checkpoint {
    dir: PathBuf,
    /// Tensor name to shard file name.
    owner: BTreeMap<String, String>,
    maps: HashMap<String, Mmap>,
}

fn unusable(path: &Path, reason: String) -> ModelError {
    ModelError::Unusable { path: path.to_path_buf(), reason }
}

fn map_file(path: &Path) -> Result<Mmap, ModelError> {
    let file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    // SAFETY: the file is opened read-only and only read through the map; a checkpoint
    // changed by another process while importing is outside what any reader can guard against.
    unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io(path, e))
}

fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>, ModelError> {
    SafeTensors::deserialize(bytes)
        .map_err(|e| unusable(path, format!("not a readable safetensors file ({e}); the file is truncated or damaged: download it again")))
}

impl Checkpoint {
    /// Opens the folder's weights: the index and its shards, or the single file. Every shard
    /// the index names must exist and parse, and must hold the tensors the index gives it.
    pub fn open(dir: &Path) -> Result<Self, ModelError> {
        let index_path = dir.join(INDEX_FILE);
        let mut owner = BTreeMap::new();
        let mut maps = HashMap::new();
        if index_path.is_file() {
            let text = std::fs::read_to_string(&index_path).map_err(|e| ModelError::io(&index_path, e))?;
            let value: Value = serde_json::from_str(&text)
                .map_err(|e| unusable(&index_path, format!("not valid JSON ({e}); download the index again")))?;
            let Some(weight_map) = value.get("weight_map").and_then(Value::as_object) else {
                return Err(unusable(&index_path, "no \"weight_map\" object naming each tensor's shard".into()));
            };
            for (tensor, file) in weight_map {
                let file = file.as_str().ok_or_else(|| unusable(&index_path, format!("tensor '{tensor}' has no shard file name")))?;
                if file.contains('/') || file.contains('\\') || file == ".." {
                    return Err(unusable(&index_path, format!("shard '{file}' is not a file name in this folder")));
                }
                owner.insert(tensor.clone(), file.to_string());
            }
            let mut held: HashMap<String, std::collections::HashSet<String>> = HashMap::new();
            for file in owner.values() {
                if maps.contains_key(file) {
                    continue;
                }
                let path = dir.join(file);
                if !path.is_file() {
                    return Err(unusable(&path, format!("shard listed in {INDEX_FILE} is missing; download it into the folder")));
                }
                let map = map_file(&path)?;
                held.insert(file.clone(), parse(&path, &map)?.names().into_iter().map(|n| n.to_string()).collect());
                maps.insert(file.clone(), map);
            }
            for (tensor, file) in &owner {
                if !held[file].contains(tensor) {
                    return Err(unusable(
                        &dir.join(file),
                        format!("{INDEX_FILE} puts tensor '{tensor}' in this shard, but it is not there"),
                    ));
                }
            }
        } else {
            if !dir.join(SINGLE_FILE).is_file() {
                return Err(unusable(dir, format!("no {SINGLE_FILE} and no {INDEX_FILE}: the folder has no safetensors weights")));
            }
            return Self::open_file(dir, SINGLE_FILE);
        }
        Ok(Checkpoint { dir: dir.to_path_buf(), owner, maps })
    }

    /// Opens one safetensors file `file` of the folder `dir` on its own.
    pub fn open_file(dir: &Path, file: &str) -> Result<Self, ModelError> {
        let path = dir.join(file);
        let map = map_file(&path)?;
        let owner = parse(&path, &map)?.names().into_iter().map(|n| (n.to_string(), file.to_string())).collect();
        Ok(Checkpoint { dir: dir.to_path_buf(), owner, maps: HashMap::from([(file.to_string(), map)]) })
    }

    /// The weight files, each once, in name order.
    pub fn shard_files(&self) -> Vec<String> {
        let mut files: Vec<String> = self.maps.keys().cloned().collect();
        files.sort();
        files
    }

    pub fn contains(&self, name: &str) -> bool {
        self.owner.contains_key(name)
    }

    /// The file a tensor is in (for errors).
    pub fn file_of(&self, name: &str) -> PathBuf {
        self.dir.join(self.owner.get(name).map(String::as_str).unwrap_or(SINGLE_FILE))
    }

    /// Shape and dtype of a tensor without converting it.
    pub fn info(&self, name: &str) -> Result<(FloatType, Vec<usize>), ModelError> {
        let (file, st) = self.view_source(name)?;
        let view = st.tensor(name).map_err(|e| unusable(&file, format!("tensor '{name}': {e}")))?;
        let dtype = float_type_of(view.dtype())
            .ok_or_else(|| unusable(&file, format!("tensor '{name}' is {:?}; only F32, F16 and BF16 weights are read", view.dtype())))?;
        Ok((dtype, view.shape().to_vec()))
    }

    fn view_source(&self, name: &str) -> Result<(PathBuf, SafeTensors<'_>), ModelError> {
        let file = self.owner.get(name).ok_or_else(|| ModelError::MissingTensor { path: self.dir.clone(), tensor: name.to_string() })?;
        let path = self.dir.join(file);
        Ok((path.clone(), parse(&path, &self.maps[file])?))
    }

    /// Reads `name`, checking it has `shape`, widened to f32; `keep_raw` keeps the stored bytes.
    pub fn read(&self, name: &str, shape: &[usize], keep_raw: bool) -> Result<Tensor, ModelError> {
        let (file, st) = self.view_source(name)?;
        let view = st.tensor(name).map_err(|e| unusable(&file, format!("tensor '{name}': {e}")))?;
        let dtype = float_type_of(view.dtype())
            .ok_or_else(|| unusable(&file, format!("tensor '{name}' is {:?}; only F32, F16 and BF16 weights are read", view.dtype())))?;
        if view.shape() != shape {
            return Err(unusable(
                &file,
                format!("tensor '{name}' has shape {:?} but config.json implies {shape:?}; the config and weights disagree", view.shape()),
            ));
        }
        let bytes = view.data();
        let tensor = Tensor { dtype, shape: shape.to_vec(), values: dtype.widen(bytes), raw: keep_raw.then(|| bytes.to_vec()) };
        self.release(name, bytes);
        Ok(tensor)
    }

    /// Drops the mapped pages of a tensor already converted: each is read once, and without
    /// this a multi-gigabyte checkpoint would stay resident until the import ends.
    fn release(&self, name: &str, bytes: &[u8]) {
        let Some(map) = self.owner.get(name).and_then(|f| self.maps.get(f)) else { return };
        let start = bytes.as_ptr() as usize - map.as_ptr() as usize;
        // Whole pages inside the tensor only, so no neighbour is touched.
        let page = 4096;
        let (from, to) = (start.div_ceil(page) * page, (start + bytes.len()) / page * page);
        if to > from {
            // SAFETY: the range lies inside the read-only file mapping; MADV_DONTNEED on a
            // file-backed page only drops it from memory (a later access reads the file again),
            // and no slice into it is used after this call.
            let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from) };
        }
    }

    /// The dtype most of the checkpoint's weights have (what an export writes by default).
    pub fn main_dtype(&self) -> Result<FloatType, ModelError> {
        let mut counts: BTreeMap<&'static str, (usize, FloatType)> = BTreeMap::new();
        for name in self.owner.keys() {
            if let Ok((d, _)) = self.info(name) {
                counts.entry(d.tag()).or_insert((0, d)).0 += 1;
            }
        }
        counts
            .values()
            .max_by_key(|(n, _)| *n)
            .map(|(_, d)| *d)
            .ok_or_else(|| unusable(&self.dir, "the checkpoint holds no float tensors".into()))
    }
}

/// A safetensors file written one tensor at a time, in the order declared.
pub struct Writer {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    tmp: PathBuf,
    pending: std::collections::VecDeque<(String, FloatType, usize)>,
}

impl Writer {
    /// Declares every tensor (name, dtype, shape) up front and writes the header.
    pub fn create(path: &Path, tensors: &[(String, FloatType, Vec<usize>)]) -> Result<Self, ModelError> {
        let mut header = serde_json::Map::new();
        header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
        let mut offset = 0usize;
        let mut pending = std::collections::VecDeque::new();
        for (name, dtype, shape) in tensors {
            let len = shape.iter().product::<usize>() * dtype.bytes();
            header.insert(name.clone(), serde_json::json!({"dtype": dtype.tag(), "shape": shape, "data_offsets": [offset, offset + len]}));
            offset += len;
            pending.push_back((name.clone(), *dtype, len));
        }
        let mut text = serde_json::to_string(&Value::Object(header)).expect("json");
        // The data starts 8-byte aligned, as the reference writer pads its header.
        while !(text.len() + 8).is_multiple_of(8) {
            text.push(' ');
        }
        let tmp = path.with_extension("safetensors.partial");
        let file = std::fs::File::create(&tmp).map_err(|e| ModelError::io(&tmp, e))?;
        let mut file = std::io::BufWriter::new(file);
        let io = |e| ModelError::io(&tmp, e);
        file.write_all(&(text.len() as u64).to_le_bytes()).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        Ok(Writer { path: path.to_path_buf(), file, tmp, pending })
    }

    /// Appends the next declared tensor's values, converted to its dtype; or `raw` bytes
    /// already in that dtype.
    pub fn append(&mut self, name: &str, values: &[f32], raw: Option<&[u8]>) -> Result<(), ModelError> {
        let (expected, dtype, len) =
            self.pending.pop_front().ok_or_else(|| unusable(&self.path, format!("tensor '{name}' was not declared")))?;
        assert_eq!(expected, name, "tensors are appended in the order declared");
        let io = |e| ModelError::io(&self.tmp, e);
        match raw {
            Some(r) => {
                assert_eq!(r.len(), len, "tensor '{name}' has the declared size");
                self.file.write_all(r).map_err(io)
            }
            None => {
                assert_eq!(values.len() * dtype.bytes(), len, "tensor '{name}' has the declared size");
                // In slices, so a vocabulary-sized tensor is never held twice.
                for chunk in values.chunks(1 << 20) {
                    self.file.write_all(&dtype.narrow(chunk)).map_err(io)?;
                }
                Ok(())
            }
        }
    }

    pub fn finish(mut self) -> Result<(), ModelError> {
        if let Some((name, ..)) = self.pending.front() {
            return Err(unusable(&self.path, format!("tensor '{name}' was declared but never written")));
        }
        self.file.flush().map_err(|e| ModelError::io(&self.tmp, e))?;
        self.file.get_ref().sync_all().map_err(|e| ModelError::io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| ModelError::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_formats_round_trip_bit_for_bit_through_f32() {
        // Every bf16 and f16 bit pattern that is a number widens to f32 and narrows back unchanged.
        for ty in [FloatType::Bf16, FloatType::F16] {
            let bytes: Vec<u8> = (0..=u16::MAX).flat_map(|b| b.to_le_bytes()).collect();
            let wide = ty.widen(&bytes);
            let back = ty.narrow(&wide);
            for (i, (a, b)) in bytes.chunks(2).zip(back.chunks(2)).enumerate() {
                if !wide[i].is_nan() {
                    assert_eq!(a, b, "{ty:?} bits {i:#06x}");
                }
            }
        }
        // bf16 is the top half of f32: 1.0 = 0x3f80.
        assert_eq!(FloatType::Bf16.widen(&[0x80, 0x3f]), vec![1.0]);
    }

    #[test]
    fn written_file_reads_back_and_truncation_is_an_error_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("polyprune-st-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(SINGLE_FILE);
        let tensors = vec![("a".to_string(), FloatType::F32, vec![2, 3]), ("b".to_string(), FloatType::Bf16, vec![3])];
        let mut w = Writer::create(&path, &tensors).unwrap();
        w.append("a", &[1.0, 2.0, 3.0, 4.0, 5.0, 6.5], None).unwrap();
        w.append("b", &[0.5, -2.0, 3.0], None).unwrap();
        w.finish().unwrap();
        let ck = Checkpoint::open(&dir).unwrap();
        assert_eq!(ck.read("a", &[2, 3], false).unwrap().values, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.5]);
        let b = ck.read("b", &[3], true).unwrap();
        assert_eq!((b.dtype, b.values), (FloatType::Bf16, vec![0.5, -2.0, 3.0]));
        let err = ck.read("a", &[3, 2], false).err().unwrap().to_string();
        assert!(err.contains("shape [2, 3]") && err.contains(SINGLE_FILE), "{err}");
        drop(ck);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..20]).unwrap();
        let err = Checkpoint::open(&dir).err().unwrap().to_string();
        assert!(err.contains(SINGLE_FILE) && err.contains("truncated"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
