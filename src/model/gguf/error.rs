//! The single error type of the GGUF reader.
//!
//! Every variant carries the file it concerns plus the piece of it that is
//! wrong (key, tensor, byte offset), and its message ends with what the user
//! can do about it. A damaged download is by far the most likely cause of a
//! structural problem, so those messages point at re-fetching the model.

use std::path::PathBuf;

use thiserror::Error;

/// Anything that can go wrong while opening, validating or reading a GGUF file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GgufError {
    /// The file could not be opened, inspected or memory-mapped.
    #[error(
        "cannot read GGUF file {path}: {source}; check that the path exists and is readable, \
         or re-run `polyprune model fetch`"
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A header structure runs past the end of the file.
    #[error(
        "GGUF file {path} is truncated: {what} needs {needed} byte(s) at offset {offset}, \
         but the file is only {file_len} bytes long; re-run `polyprune model fetch` \
         or re-download the file"
    )]
    Truncated { path: PathBuf, what: String, offset: u64, needed: u64, file_len: u64 },

    /// The first four bytes are not `GGUF`.
    #[error(
        "{path} is not a GGUF file: it starts with bytes {found:02x?} instead of the magic \
         \"GGUF\"; check that the path points at a .gguf model, or re-run `polyprune model fetch`"
    )]
    BadMagic { path: PathBuf, found: [u8; 4] },

    /// The header declares a version this reader does not understand.
    #[error(
        "GGUF file {path} has format version {version}, but only little-endian GGUF versions \
         2 and 3 are supported (a huge number usually means a big-endian file); \
         re-convert the model with a current llama.cpp converter or fetch a little-endian copy"
    )]
    UnsupportedVersion { path: PathBuf, version: u32 },

    /// A header field holds a value that no valid file can contain.
    #[error(
        "GGUF file {path} is corrupt: {what} at offset {offset}: {detail}; \
         re-run `polyprune model fetch` or re-download the file"
    )]
    Corrupt { path: PathBuf, what: String, offset: u64, detail: String },

    /// The same metadata key appears twice.
    #[error(
        "GGUF file {path} contains the metadata key '{key}' more than once; the file is corrupt \
         or was written by a faulty tool: re-download it or re-export it"
    )]
    DuplicateKey { path: PathBuf, key: String },

    /// `general.alignment` is zero or not a power of two.
    #[error(
        "GGUF file {path} declares general.alignment = {value}, which is not a non-zero power \
         of two; the file is corrupt: re-download it or re-export it"
    )]
    BadAlignment { path: PathBuf, value: u64 },

    /// The same tensor name appears twice.
    #[error(
        "GGUF file {path} lists the tensor '{tensor}' more than once; the file is corrupt: \
         re-download it or re-export it"
    )]
    DuplicateTensor { path: PathBuf, tensor: String },

    /// A tensor's ggml type id is not one this reader knows.
    #[error(
        "GGUF file {path}: tensor '{tensor}' has the unknown ggml type id {type_id}; the file \
         is corrupt or needs a newer reader: re-download it or use a common quantization"
    )]
    UnknownTensorType { path: PathBuf, tensor: String, type_id: u32 },

    /// A tensor's dimensions are impossible for its type.
    #[error(
        "GGUF file {path}: tensor '{tensor}' has the invalid shape {dims:?}: {reason}; \
         the file is corrupt: re-download it or re-export it"
    )]
    InvalidTensorShape { path: PathBuf, tensor: String, dims: Vec<u64>, reason: String },

    /// A tensor does not start on the file's alignment boundary.
    #[error(
        "GGUF file {path}: tensor '{tensor}' starts at data offset {offset}, which is not a \
         multiple of the alignment {alignment}; the file is corrupt: re-download it"
    )]
    MisalignedTensor { path: PathBuf, tensor: String, offset: u64, alignment: u64 },

    /// A tensor's bytes extend beyond the end of the file.
    #[error(
        "GGUF file {path}: the data of tensor '{tensor}' spans bytes {start}..{end}, but the \
         file is only {file_len} bytes long; the file is truncated: re-run \
         `polyprune model fetch` or re-download it"
    )]
    TensorOutOfBounds { path: PathBuf, tensor: String, start: u64, end: u64, file_len: u64 },

    /// The file is of a supported architecture but uses an option import does not build.
    #[error("GGUF file {path}: {feature} is not supported by polyprune's import; {hint}")]
    UnsupportedVariant { path: PathBuf, feature: String, hint: &'static str },

    /// A metadata key the caller needs is absent.
    #[error(
        "GGUF file {path} has no metadata key '{key}'; the model may be for a different \
         architecture or converted by an old tool: check the model file or re-export it \
         with a current llama.cpp converter"
    )]
    MissingKey { path: PathBuf, key: String },

    /// A metadata key holds a value of another type than the caller expects.
    #[error(
        "GGUF file {path}: metadata key '{key}' holds {found}, but {expected} was expected; \
         the model may be for a different architecture: check the model file or re-export it \
         with a current llama.cpp converter"
    )]
    WrongType { path: PathBuf, key: String, expected: &'static str, found: String },

    /// A metadata value has the right kind but does not fit the requested type.
    #[error(
        "GGUF file {path}: metadata key '{key}' holds {value}, which does not fit in \
         {expected}; the file is corrupt or not the model you meant: check it or re-download it"
    )]
    ValueOutOfRange { path: PathBuf, key: String, expected: &'static str, value: String },

    /// No tensor has the requested name.
    #[error(
        "GGUF file {path} has no tensor named '{tensor}'; check the name against the file's \
         tensor list (the model may use a different architecture or naming scheme)"
    )]
    TensorNotFound { path: PathBuf, tensor: String },

    /// The tensor's type is known but has no dequantizer here.
    #[error(
        "GGUF file {path}: tensor '{tensor}' has ggml type {type_name}, which this reader \
         cannot dequantize; supported types are {supported}: use a model quantized with one \
         of those"
    )]
    UnsupportedTensorType { path: PathBuf, tensor: String, type_name: &'static str, supported: String },

    /// A row range asks for rows the tensor does not have.
    #[error(
        "GGUF file {path}: rows {start}..{end} were requested from tensor '{tensor}', which has \
         {rows} rows; request a range start..end with start <= end <= {rows}"
    )]
    RowRangeOutOfBounds { path: PathBuf, tensor: String, start: usize, end: usize, rows: usize },

    /// A caller-provided output buffer has the wrong length.
    #[error(
        "GGUF file {path}: the output buffer for tensor '{tensor}' holds {found} values, but \
         {expected} are needed; pass a buffer of exactly {expected} f32 values"
    )]
    OutputBufferSize { path: PathBuf, tensor: String, expected: usize, found: usize },
}
