//! Parsing and validation of everything before the tensor data: magic,
//! version, metadata, tensor descriptors and the data-section offset.
//!
//! The result guarantees that every tensor's bytes lie inside the file on an
//! alignment boundary, so later reads can slice without further checks.
//! Validation follows what ggml's own loader enforces (`gguf.cpp`): unique
//! keys and tensor names, at most four dimensions, rows made of whole blocks,
//! aligned offsets, and a power-of-two alignment.

use std::collections::HashSet;
use std::path::Path;

use super::cursor::{padding_to, ByteCursor};
use super::error::GgufError;
use super::format::{Alignment, GgufVersion, ALIGNMENT_KEY, MAGIC};
use super::ggml_type::GgmlType;
use super::metadata::Metadata;
use super::parse_context::ParseContext;
use super::tensor_info::{TensorInfo, MAX_DIMS};
use super::value_parser::{read_string, read_value};

/// Smallest possible encoded metadata entry: empty key (8) + type tag (4) + u8 value (1).
const MIN_KV_LEN: u64 = 13;
/// Smallest possible encoded tensor descriptor: empty name (8) + n_dims (4) + type (4) + offset (8).
const MIN_TENSOR_INFO_LEN: u64 = 24;

/// A fully validated header.
#[derive(Debug, Clone)]
pub(super) struct Header {
    pub version: GgufVersion,
    pub metadata: Metadata,
    pub tensors: Vec<TensorInfo>,
    pub alignment: Alignment,
    /// Absolute offset of the data section (tensor offsets are relative to it).
    pub data_offset: u64,
}

/// Parses and validates the header of the GGUF file `bytes`, read from `path`.
pub(super) fn parse_header(path: &Path, bytes: &[u8]) -> Result<Header, GgufError> {
    let context = ParseContext { path, file_len: bytes.len() as u64 };
    let mut cursor = ByteCursor::new(bytes);
    let version = read_preamble(&mut cursor, context)?;
    let tensor_count = read_count(&mut cursor, context, "the tensor count")?;
    let kv_count = read_count(&mut cursor, context, "the metadata entry count")?;
    let metadata = read_metadata(&mut cursor, context, kv_count)?;
    let alignment = read_alignment(path, &metadata)?;
    let tensors = read_tensor_infos(&mut cursor, context, tensor_count)?;
    let data_offset = locate_data_section(&mut cursor, context, alignment, tensors.is_empty())?;
    for tensor in &tensors {
        check_tensor_placement(context, tensor, alignment, data_offset)?;
    }
    Ok(Header { version, metadata, tensors, alignment, data_offset })
}

fn read_preamble(cursor: &mut ByteCursor<'_>, context: ParseContext<'_>) -> Result<GgufVersion, GgufError> {
    let magic = cursor.take_array::<4>().map_err(|shortfall| context.truncated("the magic number".into(), shortfall))?;
    if magic != MAGIC {
        return Err(GgufError::BadMagic { path: context.path.to_path_buf(), found: magic });
    }
    let number = cursor.read_u32().map_err(|shortfall| context.truncated("the format version".into(), shortfall))?;
    GgufVersion::from_number(number).ok_or_else(|| GgufError::UnsupportedVersion { path: context.path.to_path_buf(), version: number })
}

fn read_count(cursor: &mut ByteCursor<'_>, context: ParseContext<'_>, what: &str) -> Result<u64, GgufError> {
    cursor.read_u64().map_err(|shortfall| context.truncated(what.into(), shortfall))
}

fn read_metadata(cursor: &mut ByteCursor<'_>, context: ParseContext<'_>, kv_count: u64) -> Result<Metadata, GgufError> {
    let capacity = kv_count.min(cursor.remaining() / MIN_KV_LEN) as usize;
    let mut entries = Vec::with_capacity(capacity);
    for index in 0..kv_count {
        let key = read_string(cursor, context, || format!("the key of metadata entry #{index}"))?;
        let value = read_value(cursor, context, &key)?;
        entries.push((key, value));
    }
    Metadata::new(context.path, entries)
}

fn read_alignment(path: &Path, metadata: &Metadata) -> Result<Alignment, GgufError> {
    match metadata.get_opt::<u64>(ALIGNMENT_KEY)? {
        None => Ok(Alignment::DEFAULT),
        Some(bytes) => Alignment::new(bytes).ok_or_else(|| GgufError::BadAlignment { path: path.to_path_buf(), value: bytes }),
    }
}

fn read_tensor_infos(cursor: &mut ByteCursor<'_>, context: ParseContext<'_>, tensor_count: u64) -> Result<Vec<TensorInfo>, GgufError> {
    let capacity = tensor_count.min(cursor.remaining() / MIN_TENSOR_INFO_LEN) as usize;
    let mut tensors = Vec::with_capacity(capacity);
    let mut seen_names = HashSet::with_capacity(capacity);
    for index in 0..tensor_count {
        let tensor = read_tensor_info(cursor, context, index)?;
        if !seen_names.insert(tensor.name().to_string()) {
            return Err(GgufError::DuplicateTensor { path: context.path.to_path_buf(), tensor: tensor.name().to_string() });
        }
        tensors.push(tensor);
    }
    Ok(tensors)
}

fn read_tensor_info(cursor: &mut ByteCursor<'_>, context: ParseContext<'_>, index: u64) -> Result<TensorInfo, GgufError> {
    let name = read_string(cursor, context, || format!("the name of tensor descriptor #{index}"))?;
    let what = || format!("the descriptor of tensor '{name}'");
    let short = |shortfall| context.truncated(what(), shortfall);

    let n_dims = cursor.read_u32().map_err(short)?;
    // Checked before reading the dims so a forged count cannot drive the loop.
    if n_dims as usize > MAX_DIMS {
        return Err(GgufError::InvalidTensorShape {
            path: context.path.to_path_buf(),
            tensor: name,
            dims: Vec::new(),
            reason: format!("{n_dims} dimensions, but ggml tensors have at most {MAX_DIMS}"),
        });
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        dims.push(cursor.read_u64().map_err(short)?);
    }
    let type_id = cursor.read_u32().map_err(short)?;
    let relative_offset = cursor.read_u64().map_err(short)?;
    let Some(ggml_type) = GgmlType::from_id(type_id) else {
        return Err(GgufError::UnknownTensorType { path: context.path.to_path_buf(), tensor: name, type_id });
    };
    TensorInfo::new(context.path, name, dims, ggml_type, relative_offset)
}

/// The data section starts at the first aligned offset after the descriptors.
/// A file with tensors must reach that point; one without may end earlier.
fn locate_data_section(
    cursor: &mut ByteCursor<'_>,
    context: ParseContext<'_>,
    alignment: Alignment,
    no_tensors: bool,
) -> Result<u64, GgufError> {
    let aligned = cursor.position() + padding_to(cursor.position(), alignment.bytes());
    if no_tensors {
        return Ok(aligned);
    }
    cursor.align_to(alignment.bytes()).map_err(|shortfall| context.truncated("the padding before the tensor data".into(), shortfall))?;
    Ok(aligned)
}

fn check_tensor_placement(context: ParseContext<'_>, tensor: &TensorInfo, alignment: Alignment, data_offset: u64) -> Result<(), GgufError> {
    let relative = tensor.relative_offset();
    if !relative.is_multiple_of(alignment.bytes()) {
        return Err(GgufError::MisalignedTensor {
            path: context.path.to_path_buf(),
            tensor: tensor.name().to_string(),
            offset: relative,
            alignment: alignment.bytes(),
        });
    }
    let start = data_offset.checked_add(relative);
    let end = start.and_then(|start| start.checked_add(tensor.byte_len() as u64));
    match (start, end) {
        (Some(_), Some(end)) if end <= context.file_len => Ok(()),
        _ => Err(GgufError::TensorOutOfBounds {
            path: context.path.to_path_buf(),
            tensor: tensor.name().to_string(),
            start: start.unwrap_or(u64::MAX),
            end: end.unwrap_or(u64::MAX),
            file_len: context.file_len,
        }),
    }
}
