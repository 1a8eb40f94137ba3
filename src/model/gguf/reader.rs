//! An open, fully validated GGUF file.
//!
//! The file is memory-mapped rather than read: a 250 MB model costs no copy,
//! and only the pages of tensors actually dequantized are ever touched. The
//! whole header is parsed and checked on open (see [`super::header`]), so
//! every later accessor is infallible apart from caller mistakes such as an
//! unknown tensor name.

use std::collections::HashMap;
use std::fs::File;
use std::ops::{Deref, Range};
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::error::GgufError;
use super::format::{Alignment, GgufVersion};
use super::header::{parse_header, Header};
use super::metadata::Metadata;
use super::tensor_info::TensorInfo;
use super::tensor_view::TensorView;

/// Where the file's bytes live.
#[derive(Debug)]
enum Backing {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Deref for Backing {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Backing::Mapped(map) => map,
            Backing::Owned(bytes) => bytes,
        }
    }
}

/// A parsed GGUF file: metadata, tensor descriptors and access to tensor data.
#[derive(Debug)]
pub struct GgufFile {
    path: PathBuf,
    bytes: Backing,
    header: Header,
    index_by_name: HashMap<String, usize>,
}

impl GgufFile {
    /// Memory-maps and validates the file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, GgufError> {
        let path = path.as_ref();
        let io_error = |source| GgufError::Io { path: path.to_path_buf(), source };
        let file = File::open(path).map_err(io_error)?;
        let file_metadata = file.metadata().map_err(io_error)?;
        if !file_metadata.is_file() {
            return Err(io_error(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file")));
        }
        // Mapping an empty file fails on some platforms; an empty file is
        // simply a truncated GGUF, which the parser reports.
        let backing = if file_metadata.len() == 0 {
            Backing::Owned(Vec::new())
        } else {
            // SAFETY: the map is read-only. Another process truncating or
            // rewriting the model file while it is open would be undefined
            // behaviour; model files under the project cache are written once
            // by `polyprune model fetch` and never modified in place.
            Backing::Mapped(unsafe { Mmap::map(&file) }.map_err(io_error)?)
        };
        Self::from_backing(path.to_path_buf(), backing)
    }

    /// Validates a GGUF image already in memory; `path` only labels errors.
    pub fn from_bytes(path: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<Self, GgufError> {
        Self::from_backing(path.into(), Backing::Owned(bytes))
    }

    fn from_backing(path: PathBuf, bytes: Backing) -> Result<Self, GgufError> {
        let header = parse_header(&path, &bytes)?;
        let index_by_name = header.tensors.iter().enumerate().map(|(position, tensor)| (tensor.name().to_string(), position)).collect();
        Ok(Self { path, bytes, header, index_by_name })
    }

    /// The path given to [`GgufFile::open`] (or the label given to [`GgufFile::from_bytes`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Container version.
    pub fn version(&self) -> GgufVersion {
        self.header.version
    }

    /// Data-section alignment (`general.alignment`, default 32).
    pub fn alignment(&self) -> Alignment {
        self.header.alignment
    }

    /// Absolute byte offset where tensor data starts.
    pub fn data_offset(&self) -> u64 {
        self.header.data_offset
    }

    /// File length in bytes.
    pub fn file_len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// All metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.header.metadata
    }

    /// Tensor descriptors in file order.
    pub fn tensor_infos(&self) -> &[TensorInfo] {
        &self.header.tensors
    }

    /// The descriptor of `name`, if present.
    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.index_by_name.get(name).map(|&position| &self.header.tensors[position])
    }

    /// The tensor `name` with its bytes.
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>, GgufError> {
        let info = self.tensor_info(name).ok_or_else(|| GgufError::TensorNotFound { path: self.path.clone(), tensor: name.to_string() })?;
        Ok(self.view(info))
    }

    /// Every tensor with its bytes, in file order.
    pub fn tensors(&self) -> impl Iterator<Item = TensorView<'_>> {
        self.header.tensors.iter().map(|info| self.view(info))
    }

    fn view<'a>(&'a self, info: &'a TensorInfo) -> TensorView<'a> {
        // In bounds: every tensor was checked against the file length when
        // the header was parsed, so these offsets fit in usize as well.
        let start = (self.header.data_offset + info.relative_offset()) as usize;
        TensorView::new(&self.path, info, &self.bytes[start..start + info.byte_len()])
    }

    /// Shorthand for `tensor(name)?.dequantize()`.
    pub fn dequantize(&self, name: &str) -> Result<Vec<f32>, GgufError> {
        self.tensor(name)?.dequantize()
    }

    /// Shorthand for `tensor(name)?.dequantize_rows(rows)`.
    pub fn dequantize_rows(&self, name: &str, rows: Range<usize>) -> Result<Vec<f32>, GgufError> {
        self.tensor(name)?.dequantize_rows(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::super::ggml_type::GgmlType;
    use super::super::test_builder::{small_model, GgufBuilder};
    use super::*;

    fn small_file() -> GgufFile {
        GgufFile::from_bytes("small.gguf", small_model().build()).unwrap()
    }

    #[test]
    fn header_facts_are_exposed() {
        let (bytes, data_offset) = small_model().build_with_data_offset();
        let file = GgufFile::from_bytes("small.gguf", bytes).unwrap();
        assert_eq!(file.version(), GgufVersion::V3);
        assert_eq!(file.alignment(), Alignment::DEFAULT);
        assert_eq!(file.data_offset(), data_offset as u64);
        assert_eq!(file.data_offset() % 32, 0);
        let names: Vec<&str> = file.tensor_infos().iter().map(|t| t.name()).collect();
        assert_eq!(names, ["norm.weight", "proj.weight", "embed.weight"]);
        let embed = file.tensor_info("embed.weight").unwrap();
        assert_eq!(embed.dims(), [32, 2]);
        assert_eq!(embed.ggml_type(), GgmlType::Q8_0);
        // norm: 12 bytes -> next slot 32; proj: 8 bytes -> next slot 64.
        assert_eq!(embed.relative_offset(), 64);
        assert_eq!(file.metadata().get_u32("tiny.block_count").unwrap(), 2);
        assert_eq!(file.metadata().get_f32("tiny.eps").unwrap(), 1e-6);
        assert!(file.metadata().get_bool("tiny.add_bos").unwrap());
        assert_eq!(file.metadata().get_str_array("tokenizer.ggml.tokens").unwrap(), ["<s>", "a", "b"]);
    }

    #[test]
    fn tensors_dequantize_to_their_stored_values() {
        let file = small_file();
        assert_eq!(file.dequantize("norm.weight").unwrap(), [1.0, -2.0, 0.5]);
        assert_eq!(file.dequantize("proj.weight").unwrap(), [1.0, 2.0, -0.5, 0.25]);
        let embed = file.dequantize("embed.weight").unwrap();
        let expected: Vec<f32> = (0..64).map(|i| 0.5 * i as f32).collect();
        assert_eq!(embed, expected);
    }

    #[test]
    fn row_ranges_slice_the_full_result() {
        let file = small_file();
        let full = file.dequantize("embed.weight").unwrap();
        assert_eq!(file.dequantize_rows("embed.weight", 1..2).unwrap(), full[32..64]);
        assert!(file.dequantize_rows("embed.weight", 1..1).unwrap().is_empty());
        let mut buffer = vec![0f32; 32];
        let view = file.tensor("embed.weight").unwrap();
        view.dequantize_rows_into(0..1, &mut buffer).unwrap();
        assert_eq!(buffer, full[..32]);
    }

    #[test]
    fn caller_mistakes_are_errors_not_panics() {
        let file = small_file();
        assert!(matches!(
            file.tensor("absent"),
            Err(GgufError::TensorNotFound { tensor, .. }) if tensor == "absent"
        ));
        assert!(matches!(file.dequantize_rows("embed.weight", 1..3), Err(GgufError::RowRangeOutOfBounds { rows: 2, .. })));
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = 2..1;
        assert!(matches!(file.dequantize_rows("embed.weight", backwards), Err(GgufError::RowRangeOutOfBounds { .. })));
        let mut short = vec![0f32; 31];
        let view = file.tensor("embed.weight").unwrap();
        assert!(matches!(view.dequantize_rows_into(0..1, &mut short), Err(GgufError::OutputBufferSize { expected: 32, found: 31, .. })));
    }

    #[test]
    fn unsupported_types_open_but_refuse_to_dequantize() {
        let bytes = GgufBuilder::new().tensor("iq.weight", &[32], 20, vec![0u8; 18]).build();
        let file = GgufFile::from_bytes("iq.gguf", bytes).unwrap();
        let view = file.tensor("iq.weight").unwrap();
        assert_eq!(view.ggml_type(), GgmlType::IQ4_NL);
        assert_eq!(view.raw_bytes().len(), 18);
        let error = view.dequantize().unwrap_err();
        let message = error.to_string();
        assert!(matches!(&error, GgufError::UnsupportedTensorType { type_name: "IQ4_NL", .. }), "{error:?}");
        assert!(message.contains("iq.weight") && message.contains("Q6_K"), "{message}");
    }

    #[test]
    fn open_maps_a_file_from_disk() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("small.gguf");
        std::fs::write(&path, small_model().build()).unwrap();
        let file = GgufFile::open(&path).unwrap();
        assert_eq!(file.path(), path);
        assert_eq!(file.dequantize("proj.weight").unwrap(), [1.0, 2.0, -0.5, 0.25]);
        assert_eq!(file.tensors().count(), 3);
    }

    #[test]
    fn unreadable_paths_are_io_errors_naming_the_path() {
        let directory = tempfile::tempdir().unwrap();
        let missing = directory.path().join("missing.gguf");
        let error = GgufFile::open(&missing).unwrap_err();
        assert!(matches!(error, GgufError::Io { .. }));
        assert!(error.to_string().contains("missing.gguf"));
        assert!(matches!(GgufFile::open(directory.path()), Err(GgufError::Io { .. })));
    }

    #[test]
    fn empty_file_is_truncated_at_the_magic() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("empty.gguf");
        std::fs::write(&path, b"").unwrap();
        let error = GgufFile::open(&path).unwrap_err();
        assert!(matches!(&error, GgufError::Truncated { what, offset: 0, file_len: 0, .. } if what == "the magic number"), "{error:?}");
        assert!(error.to_string().contains("polyprune model fetch"));
    }

    #[test]
    fn version_two_files_read_like_version_three() {
        let bytes = small_model().version(2).build();
        let file = GgufFile::from_bytes("v2.gguf", bytes).unwrap();
        assert_eq!(file.version(), GgufVersion::V2);
        assert_eq!(file.dequantize("norm.weight").unwrap(), [1.0, -2.0, 0.5]);
    }
}
