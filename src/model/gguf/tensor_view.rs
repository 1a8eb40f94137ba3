//! A tensor of an open GGUF file together with its bytes, ready to dequantize.
//!
//! A view can only be obtained from [`super::GgufFile::tensor`], which pairs a
//! descriptor with exactly the bytes it describes; that pairing is what lets
//! the dequantizer slice rows without re-checking bounds.

use std::ops::Range;
use std::path::Path;

use super::error::GgufError;
use super::ggml_type::{dequantizable_type_names, GgmlType};
use super::quant;
use super::tensor_info::{TensorInfo, TensorShape};

/// One tensor's descriptor and bytes, borrowed from an open file.
#[derive(Debug, Clone, Copy)]
pub struct TensorView<'a> {
    file_path: &'a Path,
    info: &'a TensorInfo,
    bytes: &'a [u8],
}

impl<'a> TensorView<'a> {
    /// Pairs a descriptor with its bytes; `bytes.len()` must equal `info.byte_len()`.
    pub(super) fn new(file_path: &'a Path, info: &'a TensorInfo, bytes: &'a [u8]) -> Self {
        assert_eq!(bytes.len(), info.byte_len(), "internal error: tensor '{}' paired with a slice of the wrong length", info.name());
        Self { file_path, info, bytes }
    }

    /// The header descriptor.
    pub fn info(&self) -> &'a TensorInfo {
        self.info
    }

    /// Tensor name.
    pub fn name(&self) -> &'a str {
        self.info.name()
    }

    /// Element type.
    pub fn ggml_type(&self) -> GgmlType {
        self.info.ggml_type()
    }

    /// Shape in GGUF order.
    pub fn shape(&self) -> &'a TensorShape {
        self.info.shape()
    }

    /// The stored (possibly quantized) bytes.
    pub fn raw_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The whole tensor as `f32`, row-major in GGUF element order.
    pub fn dequantize(&self) -> Result<Vec<f32>, GgufError> {
        self.dequantize_rows(0..self.shape().n_rows())
    }

    /// Rows `rows` (row = `dims[0]` consecutive elements) as `f32`; only the
    /// blocks of those rows are decoded.
    pub fn dequantize_rows(&self, rows: Range<usize>) -> Result<Vec<f32>, GgufError> {
        self.check_supported()?;
        self.check_row_range(&rows)?;
        let mut output = vec![0f32; (rows.end - rows.start) * self.shape().row_len()];
        self.decode_rows(rows, &mut output);
        Ok(output)
    }

    /// Like [`TensorView::dequantize_rows`] but writes into `output`, which must
    /// hold exactly `rows.len() * dims[0]` values.
    pub fn dequantize_rows_into(&self, rows: Range<usize>, output: &mut [f32]) -> Result<(), GgufError> {
        self.check_supported()?;
        self.check_row_range(&rows)?;
        let expected = (rows.end - rows.start) * self.shape().row_len();
        if output.len() != expected {
            return Err(GgufError::OutputBufferSize {
                path: self.file_path.to_path_buf(),
                tensor: self.name().to_string(),
                expected,
                found: output.len(),
            });
        }
        self.decode_rows(rows, output);
        Ok(())
    }

    fn check_supported(&self) -> Result<(), GgufError> {
        if self.ggml_type().is_dequantizable() {
            return Ok(());
        }
        Err(GgufError::UnsupportedTensorType {
            path: self.file_path.to_path_buf(),
            tensor: self.name().to_string(),
            type_name: self.ggml_type().name(),
            supported: dequantizable_type_names(),
        })
    }

    fn check_row_range(&self, rows: &Range<usize>) -> Result<(), GgufError> {
        let n_rows = self.shape().n_rows();
        if rows.start <= rows.end && rows.end <= n_rows {
            return Ok(());
        }
        Err(GgufError::RowRangeOutOfBounds {
            path: self.file_path.to_path_buf(),
            tensor: self.name().to_string(),
            start: rows.start,
            end: rows.end,
            rows: n_rows,
        })
    }

    /// Decodes validated rows of a supported type into a buffer of the right size.
    fn decode_rows(&self, rows: Range<usize>, output: &mut [f32]) {
        let row_bytes = self.info.row_byte_len();
        let source = &self.bytes[rows.start * row_bytes..rows.end * row_bytes];
        let decoded = quant::dequantize_into(self.ggml_type(), source, output);
        assert!(decoded.is_ok(), "internal error: {} is listed as dequantizable but has no kernel", self.ggml_type());
    }
}
