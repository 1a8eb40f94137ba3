//! Tensor descriptors from the GGUF header: name, shape, element type and
//! where the bytes live.
//!
//! Shapes are kept in GGUF (ggml) order, where `dims[0]` is the fastest-varying
//! dimension. A 2-D weight with GGUF dims `[in, out]` is therefore a row-major
//! `out x in` matrix: `out` rows of `in` elements, i.e. the PyTorch shape
//! `[out, in]`. Quantization blocks never straddle rows because ggml requires
//! `dims[0]` to be a multiple of the block size, so any run of whole rows is a
//! run of whole blocks that can be dequantized on its own.

use std::path::Path;

use super::error::GgufError;
use super::ggml_type::GgmlType;

/// Most dimensions a ggml tensor can have (`GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;

/// A validated tensor shape in GGUF order whose element count fits in `usize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorShape {
    dims: Vec<u64>,
    n_elements: usize,
}

impl TensorShape {
    /// Dimensions in GGUF order (`dims()[0]` varies fastest).
    pub fn dims(&self) -> &[u64] {
        &self.dims
    }

    /// Dimensions in row-major (PyTorch / NumPy) order: GGUF order reversed.
    pub fn row_major_dims(&self) -> Vec<usize> {
        // Every dim was checked to fit in usize when the shape was validated.
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }

    /// Total number of elements.
    pub fn n_elements(&self) -> usize {
        self.n_elements
    }

    /// Elements per row: `dims[0]`, or 1 for a zero-dimensional tensor.
    pub fn row_len(&self) -> usize {
        self.dims.first().map_or(1, |&d| d as usize)
    }

    /// Number of rows: the product of every dimension after the first.
    pub fn n_rows(&self) -> usize {
        self.dims.iter().skip(1).map(|&d| d as usize).product()
    }
}

/// Why a raw shape was rejected (turned into an error naming the tensor).
fn validate_dims(dims: &[u64], ggml_type: GgmlType) -> Result<usize, String> {
    if dims.len() > MAX_DIMS {
        return Err(format!("{} dimensions, but ggml tensors have at most {MAX_DIMS}", dims.len()));
    }
    if dims.iter().any(|&d| usize::try_from(d).is_err()) {
        return Err("a dimension exceeds this platform's address space".to_string());
    }
    let n_elements = dims
        .iter()
        .try_fold(1u64, |product, &d| product.checked_mul(d))
        .and_then(|product| usize::try_from(product).ok())
        .ok_or_else(|| "the element count overflows this platform's address space".to_string())?;
    let row_len = dims.first().copied().unwrap_or(1);
    let block_size = ggml_type.block_size() as u64;
    if row_len % block_size != 0 {
        return Err(format!("the row length {row_len} is not a multiple of the {} block size {block_size}", ggml_type.name()));
    }
    Ok(n_elements)
}

/// One tensor as described by the header; its bytes have been checked to lie
/// inside the file and on an alignment boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    name: String,
    shape: TensorShape,
    ggml_type: GgmlType,
    relative_offset: u64,
    byte_len: usize,
}

impl TensorInfo {
    /// Validates a raw header entry. `relative_offset` is from the start of the
    /// data section; bounds and alignment are checked by the caller, which knows them.
    pub(super) fn new(path: &Path, name: String, dims: Vec<u64>, ggml_type: GgmlType, relative_offset: u64) -> Result<Self, GgufError> {
        let n_elements = match validate_dims(&dims, ggml_type) {
            Ok(n_elements) => n_elements,
            Err(reason) => return Err(GgufError::InvalidTensorShape { path: path.to_path_buf(), tensor: name, dims, reason }),
        };
        // Divides exactly: the row length, hence the count, is a multiple of the block size.
        let n_blocks = n_elements / ggml_type.block_size();
        let Some(byte_len) = n_blocks.checked_mul(ggml_type.type_size()) else {
            return Err(GgufError::InvalidTensorShape {
                path: path.to_path_buf(),
                tensor: name,
                dims,
                reason: "the byte size overflows this platform's address space".to_string(),
            });
        };
        Ok(Self { name, shape: TensorShape { dims, n_elements }, ggml_type, relative_offset, byte_len })
    }

    /// Tensor name, e.g. `blk.0.ffn_down.weight`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Validated shape in GGUF order.
    pub fn shape(&self) -> &TensorShape {
        &self.shape
    }

    /// Dimensions in GGUF order (shorthand for `shape().dims()`).
    pub fn dims(&self) -> &[u64] {
        self.shape.dims()
    }

    /// Element type.
    pub fn ggml_type(&self) -> GgmlType {
        self.ggml_type
    }

    /// Offset of the first byte from the start of the data section.
    pub fn relative_offset(&self) -> u64 {
        self.relative_offset
    }

    /// Number of bytes the tensor occupies (whole blocks).
    pub fn byte_len(&self) -> usize {
        self.byte_len
    }

    /// Bytes per row (whole blocks, since rows never split a block).
    pub fn row_byte_len(&self) -> usize {
        self.shape.row_len() / self.ggml_type.block_size() * self.ggml_type.type_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(dims: Vec<u64>, ggml_type: GgmlType) -> Result<TensorInfo, GgufError> {
        TensorInfo::new(Path::new("t.gguf"), "w".into(), dims, ggml_type, 0)
    }

    #[test]
    fn gguf_dims_map_to_rows_and_columns() {
        // GGUF [640, 2048] is 2048 rows of 640: PyTorch shape [2048, 640].
        let tensor = info(vec![640, 2048], GgmlType::Q8_0).unwrap();
        assert_eq!(tensor.shape().row_len(), 640);
        assert_eq!(tensor.shape().n_rows(), 2048);
        assert_eq!(tensor.shape().row_major_dims(), vec![2048, 640]);
        // 640 / 32 = 20 blocks of 34 bytes per row.
        assert_eq!(tensor.row_byte_len(), 20 * 34);
        assert_eq!(tensor.byte_len(), 2048 * 20 * 34);
    }

    #[test]
    fn k_quant_bytes_follow_the_super_block() {
        // 2048 x 640 Q6_K: 8 super-blocks of 210 bytes per row (the gemma ffn_down size).
        let tensor = info(vec![2048, 640], GgmlType::Q6_K).unwrap();
        assert_eq!(tensor.byte_len(), 640 * 8 * 210);
        assert_eq!(tensor.byte_len(), 1_075_200);
    }

    #[test]
    fn scalars_and_vectors_are_single_rows() {
        let vector = info(vec![640], GgmlType::F32).unwrap();
        assert_eq!((vector.shape().n_rows(), vector.shape().row_len()), (1, 640));
        let scalar = info(vec![], GgmlType::F32).unwrap();
        assert_eq!((scalar.shape().n_elements(), scalar.byte_len()), (1, 4));
    }

    #[test]
    fn rows_must_hold_whole_blocks() {
        let error = info(vec![100, 2], GgmlType::Q4_K).unwrap_err();
        assert!(matches!(&error, GgufError::InvalidTensorShape { reason, .. } if reason.contains("multiple")), "{error}");
    }

    #[test]
    fn overflowing_and_five_dimensional_shapes_are_rejected() {
        assert!(info(vec![u64::MAX, 4], GgmlType::F32).is_err());
        assert!(info(vec![1 << 62], GgmlType::F32).is_err()); // bytes overflow
        assert!(info(vec![1, 1, 1, 1, 1], GgmlType::F32).is_err());
    }
}
