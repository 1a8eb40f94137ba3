//! Reading and rewriting the float weights of a model folder, wherever the graph keeps them
//! (inline `raw_data`, `float_data`, or an external data file at an offset).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::builder::float_type_of;
use super::decoder::LinearLayer;
use super::import::transpose;
use super::onnx::{ModelProto, TensorProto};
use super::{graph, ModelError};
use crate::runtime::{FloatType, WeightOverride};

/// Where one initializer's bytes are.
#[derive(Clone, Debug)]
enum Location {
    Inline,
    External { file: PathBuf, offset: u64, length: u64 },
}

/// Where `t`'s bytes are. ONNX makes an external tensor's `offset` optional (0) and its
/// `length` optional (the tensor's size); a value that is present must parse, and a `location`
/// must be given: a damaged entry is an error, never a read from the wrong place.
fn location(dir: &Path, graph_file: &str, t: &TensorProto) -> Result<Location, ModelError> {
    if !t.is_external() {
        return Ok(Location::Inline);
    }
    let bad = |reason: String| ModelError::Unusable {
        path: dir.join(graph_file),
        reason: format!("initializer '{}': {reason}; re-export or re-import the model", t.name()),
    };
    let number = |key: &str| -> Result<Option<u64>, ModelError> {
        t.external_entry(key)
            .map(|v| v.trim().parse::<u64>().map_err(|_| bad(format!("external data {key} '{v}' is not a whole number of bytes"))))
            .transpose()
    };
    let file = t.external_entry("location").ok_or_else(|| bad("external data without a location".into()))?;
    let float = t.data_type.and_then(float_type_of);
    let width = float.map_or(4, FloatType::bytes) as u64;
    let size = t.element_count().ok_or_else(|| bad(format!("dims {:?} are no tensor shape", t.dims)))? as u64 * width;
    let length = number("length")?.unwrap_or(size);
    // Only float tensors are read or rewritten; others need only a well-formed entry.
    if float.is_some() && length != size {
        return Err(bad(format!("external data length {length} bytes, but its shape {:?} needs {size}", t.dims)));
    }
    Ok(Location::External { file: dir.join(file), offset: number("offset")?.unwrap_or(0), length })
}

/// The float initializers of one model folder, readable by name.
pub struct WeightStore {
    dir: PathBuf,
    model: ModelProto,
    index: HashMap<String, (usize, Location)>,
}

impl WeightStore {
    pub fn open(dir: &Path, graph_file: &str) -> Result<Self, ModelError> {
        let model = graph::read_model(&dir.join(graph_file))?;
        let mut index = HashMap::new();
        if let Some(g) = &model.graph {
            for (i, t) in g.initializer.iter().enumerate() {
                index.insert(t.name().to_string(), (i, location(dir, graph_file, t)?));
            }
        }
        Ok(WeightStore { dir: dir.to_path_buf(), model, index })
    }

    fn tensor(&self, i: usize) -> &TensorProto {
        &self.model.graph.as_ref().expect("graph").initializer[i]
    }

    /// The type the folder stores initializer `name` in (f32 when it has none of the three).
    pub fn stored_type(&self, name: &str) -> FloatType {
        self.index.get(name).and_then(|(i, _)| self.tensor(*i).data_type).and_then(float_type_of).unwrap_or(FloatType::F32)
    }

    /// The override that puts `[out][in]` rows into the graph in place of `layer`'s weights,
    /// in the layout and type the folder stores them in.
    pub fn override_of(&self, layer: &LinearLayer, rows: Vec<f32>) -> WeightOverride {
        let (shape, data) = stored_layout(layer, rows);
        WeightOverride::new(layer.name.clone(), shape, data, self.stored_type(&layer.name))
    }

    /// A linear layer's weights as `[out][in]` rows, the layout the pruning maths and the
    /// papers use, whichever way the graph stores them (imported graphs keep `[in][out]`).
    pub fn read_rows(&self, layer: &LinearLayer) -> Result<Vec<f32>, ModelError> {
        let stored = self.read(&layer.name)?;
        let [d_in, d_out] = layer.shape;
        Ok(if layer.transposed { stored } else { transpose(&stored, d_in, d_out) })
    }

    /// The values of a float initializer, in its stored (row-major) layout.
    pub fn read(&self, name: &str) -> Result<Vec<f32>, ModelError> {
        let unusable = |reason: String| ModelError::Unusable { path: self.dir.clone(), reason };
        let (i, loc) = self.index.get(name).ok_or_else(|| unusable(format!("no initializer named '{name}'")))?;
        let t = self.tensor(*i);
        let Some(stored) = t.data_type.and_then(float_type_of) else {
            return Err(unusable(format!("initializer '{name}' is not float32, float16 or bfloat16 (type {})", t.data_type())));
        };
        let n =
            t.element_count().ok_or_else(|| unusable(format!("initializer '{name}' has dims {:?}, which is no tensor shape", t.dims)))?;
        match loc {
            Location::Inline if stored == FloatType::F32 && !t.float_data.is_empty() => Ok(t.float_data.clone()),
            // ONNX keeps inline 16-bit values in int32_data, one per entry, when not in raw_data.
            Location::Inline if stored != FloatType::F32 && !t.int32_data.is_empty() => {
                let bytes: Vec<u8> = t.int32_data.iter().flat_map(|&v| (v as u16).to_le_bytes()).collect();
                Ok(stored.widen(&bytes))
            }
            Location::Inline => {
                let bytes = t.raw_data.as_deref().unwrap_or_default();
                if bytes.len() != n * stored.bytes() {
                    return Err(unusable(format!(
                        "initializer '{name}' holds {} bytes, but its shape {:?} needs {}",
                        bytes.len(),
                        t.dims,
                        n * stored.bytes()
                    )));
                }
                Ok(stored.widen(bytes))
            }
            Location::External { file, offset, length } => {
                let mut f = std::fs::File::open(file).map_err(|e| ModelError::io(file, e))?;
                f.seek(SeekFrom::Start(*offset)).map_err(|e| ModelError::io(file, e))?;
                let mut buf = vec![0u8; *length as usize];
                f.read_exact(&mut buf).map_err(|e| ModelError::io(file, e))?;
                Ok(stored.widen(&buf))
            }
        }
    }

    /// Writes a copy of the model folder to `out` with the given initializers replaced.
    /// External weight files are copied and patched in place (offsets unchanged, so every graph
    /// of the folder stays valid); inline weights are re-encoded into the graph.
    pub fn save_with(&self, out: &Path, replaced: &[(String, &[f32])]) -> Result<(), ModelError> {
        self.copy_folder(out)?;
        self.patch(out, replaced)
    }

    /// As [`WeightStore::save_with`], the replacements read from overrides one at a time.
    pub fn save_with_overrides(&self, out: &Path, overrides: &[WeightOverride]) -> Result<(), ModelError> {
        self.copy_folder(out)?;
        self.patch_overrides(out, overrides)
    }

    fn copy_folder(&self, out: &Path) -> Result<(), ModelError> {
        std::fs::create_dir_all(out).map_err(|e| ModelError::io(out, e))?;
        for entry in std::fs::read_dir(&self.dir).map_err(|e| ModelError::io(&self.dir, e))? {
            let entry = entry.map_err(|e| ModelError::io(&self.dir, e))?;
            if entry.path().is_file() {
                let to = out.join(entry.file_name());
                std::fs::copy(entry.path(), &to).map_err(|e| ModelError::io(&to, e))?;
            }
        }
        Ok(())
    }

    /// Replaces initializers in `out`, a copy of this folder: external weights are patched in
    /// place, inline ones re-encoded into `out`'s `model.onnx`. Several graphs sharing one
    /// weight file (an encoder-decoder's) are patched one store at a time.
    pub fn patch(&self, out: &Path, replaced: &[(String, &[f32])]) -> Result<(), ModelError> {
        self.patch_each(out, replaced.iter().map(|(name, values)| Ok((name.as_str(), std::borrow::Cow::Borrowed(*values)))))
    }

    /// As [`WeightStore::patch`] with the overrides' values, read one at a time: a spilled
    /// override is read back from its file only while it is written (a whole pruned model
    /// never sits in memory at once).
    pub fn patch_overrides(&self, out: &Path, overrides: &[WeightOverride]) -> Result<(), ModelError> {
        self.patch_each(
            out,
            overrides.iter().map(|o| {
                let values = o.values().map_err(|e| ModelError::Unusable { path: e.path.clone(), reason: e.to_string() })?;
                Ok((o.name.as_str(), std::borrow::Cow::Owned(std::sync::Arc::unwrap_or_clone(values))))
            }),
        )
    }

    fn patch_each<'a>(
        &self,
        out: &Path,
        replaced: impl Iterator<Item = Result<(&'a str, std::borrow::Cow<'a, [f32]>), ModelError>>,
    ) -> Result<(), ModelError> {
        let mut model: Option<ModelProto> = None;
        for item in replaced {
            let (name, values) = item?;
            let (i, loc) = self
                .index
                .get(name)
                .ok_or_else(|| ModelError::Unusable { path: self.dir.clone(), reason: format!("no initializer named '{name}'") })?;
            let expected = self.tensor(*i).element_count();
            if Some(values.len()) != expected {
                return Err(ModelError::Unusable {
                    path: self.dir.clone(),
                    reason: format!("replacement for '{name}' has {} values, the initializer {expected:?}", values.len()),
                });
            }
            // Written back in the type the folder stores it in: a pruned zero stays exactly
            // zero, and values read from a 16-bit weight come back bit for bit.
            let stored = self.tensor(*i).data_type.and_then(float_type_of).unwrap_or(FloatType::F32);
            let bytes = stored.narrow(&values);
            drop(values);
            match loc {
                Location::External { file, offset, .. } => {
                    let target = out.join(file.file_name().unwrap_or_default());
                    let mut f = std::fs::OpenOptions::new().write(true).open(&target).map_err(|e| ModelError::io(&target, e))?;
                    f.seek(SeekFrom::Start(*offset)).map_err(|e| ModelError::io(&target, e))?;
                    f.write_all(&bytes).map_err(|e| ModelError::io(&target, e))?;
                }
                Location::Inline => {
                    let model = model.get_or_insert_with(|| self.model.clone());
                    let t = &mut model.graph.as_mut().expect("graph").initializer[*i];
                    t.float_data.clear();
                    t.int32_data.clear();
                    t.raw_data = Some(bytes);
                }
            }
        }
        if let Some(model) = model {
            let path = out.join("model.onnx");
            crate::util::write_atomic(&path, &prost::Message::encode_to_vec(&model)).map_err(|e| ModelError::io(&path, e))?;
        }
        Ok(())
    }
}

/// `[out][in]` rows of a linear layer back in the layout its graph stores, with that shape.
pub fn stored_layout(layer: &LinearLayer, rows: Vec<f32>) -> (Vec<usize>, Vec<f32>) {
    let [d_in, d_out] = layer.shape;
    if layer.transposed {
        (vec![d_out, d_in], rows)
    } else {
        (vec![d_in, d_out], transpose(&rows, d_out, d_in))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::onnx::{data_type, GraphProto, StringStringEntryProto, DATA_LOCATION_EXTERNAL};

    /// A model folder with one external float tensor of 4 values whose entries are `entries`.
    fn folder(entries: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let values: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dir.path().join("weights.bin"), [vec![0u8; 8], values].concat()).unwrap();
        let tensor = TensorProto {
            name: Some("w".into()),
            dims: vec![2, 2],
            data_type: Some(data_type::FLOAT),
            data_location: Some(DATA_LOCATION_EXTERNAL),
            external_data: entries
                .iter()
                .map(|(k, v)| StringStringEntryProto { key: Some((*k).into()), value: Some((*v).into()) })
                .collect(),
            ..Default::default()
        };
        let model = ModelProto { graph: Some(GraphProto { initializer: vec![tensor], ..Default::default() }), ..Default::default() };
        std::fs::write(dir.path().join("model.onnx"), prost::Message::encode_to_vec(&model)).unwrap();
        dir
    }

    #[test]
    fn external_data_is_read_from_its_offset() {
        let dir = folder(&[("location", "weights.bin"), ("offset", "8"), ("length", "16")]);
        assert_eq!(WeightStore::open(dir.path(), "model.onnx").unwrap().read("w").unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
        // Offset and length are optional in ONNX (0 and the tensor's size).
        let dir = folder(&[("location", "weights.bin")]);
        assert_eq!(WeightStore::open(dir.path(), "model.onnx").unwrap().read("w").unwrap(), vec![0.0, 0.0, 1.0, 2.0]);
    }

    /// A 16-bit weight reads widened, and saving pruned values writes them back in its type:
    /// zeros as zero bits, kept values bit for bit, the initializer's type unchanged.
    #[test]
    fn half_weights_read_widened_and_save_in_their_type() {
        for t in [FloatType::F16, FloatType::Bf16] {
            let dir = tempfile::tempdir().unwrap();
            let values = [1.5f32, -0.25, 3.0, 0.125];
            std::fs::write(dir.path().join("weights.bin"), t.narrow(&values)).unwrap();
            let tensor = TensorProto {
                name: Some("w".into()),
                dims: vec![2, 2],
                data_type: Some(crate::model::builder::onnx_type(t)),
                data_location: Some(DATA_LOCATION_EXTERNAL),
                external_data: vec![StringStringEntryProto { key: Some("location".into()), value: Some("weights.bin".into()) }],
                ..Default::default()
            };
            let model = ModelProto { graph: Some(GraphProto { initializer: vec![tensor], ..Default::default() }), ..Default::default() };
            std::fs::write(dir.path().join("model.onnx"), prost::Message::encode_to_vec(&model)).unwrap();
            let store = WeightStore::open(dir.path(), "model.onnx").unwrap();
            assert_eq!(store.read("w").unwrap(), values.to_vec(), "{t}");
            assert_eq!(store.stored_type("w"), t);
            let out = tempfile::tempdir().unwrap();
            store.save_with(out.path(), &[("w".into(), &[0.0, -0.25, 0.0, 0.125])]).unwrap();
            let bytes = std::fs::read(out.path().join("weights.bin")).unwrap();
            assert_eq!(bytes.len(), 8, "{t}: still two bytes a weight");
            assert_eq!(&bytes[..2], &[0, 0], "{t}: a pruned weight is exactly zero");
            let saved = WeightStore::open(out.path(), "model.onnx").unwrap();
            assert_eq!(saved.read("w").unwrap(), vec![0.0, -0.25, 0.0, 0.125]);
            assert_eq!(saved.stored_type("w"), t);
        }
    }

    #[test]
    fn a_damaged_external_entry_is_an_error_naming_it() {
        for (entries, expected) in [
            (vec![("location", "weights.bin"), ("offset", "eight")], "external data offset 'eight' is not a whole number"),
            (vec![("location", "weights.bin"), ("offset", "8"), ("length", "12")], "external data length 12 bytes"),
            (vec![("offset", "8")], "external data without a location"),
        ] {
            let dir = folder(&entries);
            let err = WeightStore::open(dir.path(), "model.onnx").err().expect("refused").to_string();
            assert!(err.contains(expected) && err.contains("initializer 'w'"), "{err}");
        }
    }
}
