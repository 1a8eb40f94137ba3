//! A reader for GGUF model files (the llama.cpp / ggml container format),
//! with dequantization of their tensors to `f32`, in pure Rust.
//!
//! [`GgufFile::open`] memory-maps a file and validates its whole header
//! against the file length (magic, version 2 or 3, metadata, tensor
//! descriptors, alignment, and that every tensor's bytes lie inside the file),
//! so a truncated download or a corrupt file is reported up front with a
//! [`GgufError`] that names the file and the damaged part, never a panic.
//!
//! Metadata is read through typed getters ([`Metadata::get_u32`],
//! [`Metadata::get_str_array`], ...) that accept any stored width that fits.
//! Tensors keep GGUF dimension order: `dims[0]` varies fastest, so a 2-D
//! weight with GGUF dims `[in, out]` is the row-major PyTorch matrix
//! `[out, in]`. [`TensorView::dequantize`] and
//! [`TensorView::dequantize_rows`] produce row-major `f32` values that are
//! bit-identical to ggml's `dequantize_row_*` and gguf-py's
//! `gguf.quants.dequantize` for F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
//! Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and Q8_K.
//!
//! Format reference: the GGUF specification in the ggml repository
//! (`docs/gguf.md`) and the block layouts in `ggml-common.h`.
//!
//! ```ignore
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use polyprune::model::gguf::GgufFile;
//! let model = GgufFile::open(".cache/models/gemma-3-270m.gguf")?;
//! let layers = model.metadata().get_u32("gemma3.block_count")?;
//! let embedding_row = model.dequantize_rows("token_embd.weight", 2..3)?;
//! # let _ = (layers, embedding_row);
//! # Ok(())
//! # }
//! ```

mod convert;
mod cursor;
mod error;
mod format;
mod ggml_type;
mod header;
mod metadata;
mod parse_context;
mod quant;
mod reader;
mod tensor_info;
mod tensor_view;
mod value;
mod value_parser;

#[cfg(test)]
pub(crate) mod test_builder;

#[cfg(test)]
mod corruption_tests;
#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
pub(crate) mod gemma_tests;

pub use convert::{FromMetadata, Mismatch};
pub use error::GgufError;
pub use format::{Alignment, GgufVersion, ALIGNMENT_KEY, MAGIC};
pub use ggml_type::{GgmlType, DEQUANTIZABLE_TYPES, K_QUANT_BLOCK};
pub use metadata::Metadata;
pub use reader::GgufFile;
pub use tensor_info::{TensorInfo, TensorShape, MAX_DIMS};
pub use tensor_view::TensorView;
pub use value::{GgufValueType, MetadataArray, MetadataValue};
