//! The ggml tensor element types and their block geometry.
//!
//! ggml stores a tensor row as consecutive fixed-size blocks: `block_size`
//! elements packed into `type_size` bytes (for plain floats a "block" is one
//! element). The numbers below are the on-disk layouts of `ggml-common.h`;
//! they decide how many bytes a tensor occupies, so every known type is
//! listed even where this crate cannot dequantize it, which lets a file with
//! exotic tensors still be opened and its other tensors read.

use std::fmt;

/// Elements in one super-block of the k-quant family (`QK_K` in ggml).
pub const K_QUANT_BLOCK: usize = 256;

/// A ggml element type, by its on-disk id.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    IQ2_XXS,
    IQ2_XS,
    IQ3_XXS,
    IQ1_S,
    IQ4_NL,
    IQ3_S,
    IQ2_S,
    IQ4_XS,
    I8,
    I16,
    I32,
    I64,
    F64,
    IQ1_M,
    BF16,
    TQ1_0,
    TQ2_0,
    MXFP4,
    NVFP4,
    Q1_0,
}

/// Every type this crate can turn into `f32`, in id order.
pub const DEQUANTIZABLE_TYPES: [GgmlType; 14] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::Q8_K,
    GgmlType::BF16,
];

impl GgmlType {
    /// Maps an on-disk id to a type; `None` for ids ggml does not (or no longer) define.
    pub fn from_id(id: u32) -> Option<Self> {
        let ggml_type = match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            9 => Self::Q8_1,
            10 => Self::Q2_K,
            11 => Self::Q3_K,
            12 => Self::Q4_K,
            13 => Self::Q5_K,
            14 => Self::Q6_K,
            15 => Self::Q8_K,
            16 => Self::IQ2_XXS,
            17 => Self::IQ2_XS,
            18 => Self::IQ3_XXS,
            19 => Self::IQ1_S,
            20 => Self::IQ4_NL,
            21 => Self::IQ3_S,
            22 => Self::IQ2_S,
            23 => Self::IQ4_XS,
            24 => Self::I8,
            25 => Self::I16,
            26 => Self::I32,
            27 => Self::I64,
            28 => Self::F64,
            29 => Self::IQ1_M,
            30 => Self::BF16,
            34 => Self::TQ1_0,
            35 => Self::TQ2_0,
            39 => Self::MXFP4,
            40 => Self::NVFP4,
            41 => Self::Q1_0,
            _ => return None,
        };
        Some(ggml_type)
    }

    /// The ggml name, e.g. `Q4_K`.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::Q4_0 => "Q4_0",
            Self::Q4_1 => "Q4_1",
            Self::Q5_0 => "Q5_0",
            Self::Q5_1 => "Q5_1",
            Self::Q8_0 => "Q8_0",
            Self::Q8_1 => "Q8_1",
            Self::Q2_K => "Q2_K",
            Self::Q3_K => "Q3_K",
            Self::Q4_K => "Q4_K",
            Self::Q5_K => "Q5_K",
            Self::Q6_K => "Q6_K",
            Self::Q8_K => "Q8_K",
            Self::IQ2_XXS => "IQ2_XXS",
            Self::IQ2_XS => "IQ2_XS",
            Self::IQ3_XXS => "IQ3_XXS",
            Self::IQ1_S => "IQ1_S",
            Self::IQ4_NL => "IQ4_NL",
            Self::IQ3_S => "IQ3_S",
            Self::IQ2_S => "IQ2_S",
            Self::IQ4_XS => "IQ4_XS",
            Self::I8 => "I8",
            Self::I16 => "I16",
            Self::I32 => "I32",
            Self::I64 => "I64",
            Self::F64 => "F64",
            Self::IQ1_M => "IQ1_M",
            Self::BF16 => "BF16",
            Self::TQ1_0 => "TQ1_0",
            Self::TQ2_0 => "TQ2_0",
            Self::MXFP4 => "MXFP4",
            Self::NVFP4 => "NVFP4",
            Self::Q1_0 => "Q1_0",
        }
    }

    /// Elements per block.
    pub fn block_size(self) -> usize {
        match self {
            Self::F32 | Self::F16 | Self::BF16 | Self::F64 => 1,
            Self::I8 | Self::I16 | Self::I32 | Self::I64 => 1,
            Self::Q4_0 | Self::Q4_1 | Self::Q5_0 | Self::Q5_1 => 32,
            Self::Q8_0 | Self::Q8_1 | Self::IQ4_NL | Self::MXFP4 => 32,
            Self::NVFP4 => 64,
            Self::Q1_0 => 128,
            Self::Q2_K | Self::Q3_K | Self::Q4_K | Self::Q5_K | Self::Q6_K | Self::Q8_K => K_QUANT_BLOCK,
            Self::IQ2_XXS | Self::IQ2_XS | Self::IQ3_XXS | Self::IQ1_S | Self::IQ3_S => K_QUANT_BLOCK,
            Self::IQ2_S | Self::IQ4_XS | Self::IQ1_M | Self::TQ1_0 | Self::TQ2_0 => K_QUANT_BLOCK,
        }
    }

    /// Bytes per block.
    pub fn type_size(self) -> usize {
        const QK: usize = K_QUANT_BLOCK;
        match self {
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::BF16 | Self::I16 => 2,
            Self::F64 | Self::I64 => 8,
            Self::I8 => 1,
            Self::Q4_0 | Self::IQ4_NL => 2 + 16,
            Self::Q4_1 => 2 + 2 + 16,
            Self::Q5_0 => 2 + 4 + 16,
            Self::Q5_1 => 2 + 2 + 4 + 16,
            Self::Q8_0 => 2 + 32,
            // Current ggml stores d and s as f16 (older versions used f32).
            Self::Q8_1 => 2 + 2 + 32,
            Self::Q2_K => 2 + 2 + QK / 16 + QK / 4,
            Self::Q3_K => 2 + QK / 4 + QK / 8 + 12,
            Self::Q4_K => 2 + 2 + 12 + QK / 2,
            Self::Q5_K => 2 + 2 + 12 + QK / 8 + QK / 2,
            Self::Q6_K => 2 + QK / 2 + QK / 4 + QK / 16,
            Self::Q8_K => 4 + QK + 2 * (QK / 16),
            Self::IQ2_XXS => 2 + QK / 4,
            Self::IQ2_XS => 2 + QK / 4 + QK / 32,
            Self::IQ3_XXS => 2 + QK / 4 + QK / 8,
            Self::IQ1_S => 2 + QK / 8 + QK / 16,
            Self::IQ3_S => 2 + QK / 4 + QK / 8 + QK / 32 + 4,
            Self::IQ2_S => 2 + QK / 4 + QK / 16,
            Self::IQ4_XS => 2 + 2 + QK / 2 + QK / 64,
            Self::IQ1_M => QK / 8 + QK / 16 + QK / 32,
            Self::TQ1_0 => 2 + 4 * 13,
            Self::TQ2_0 => 2 + 64,
            Self::MXFP4 => 1 + 16,
            Self::NVFP4 => 4 + 32,
            Self::Q1_0 => 2 + 16,
        }
    }

    /// True when this crate can dequantize this type (see [`DEQUANTIZABLE_TYPES`]).
    pub fn is_dequantizable(self) -> bool {
        DEQUANTIZABLE_TYPES.contains(&self)
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The supported type names joined for an error message, e.g. `F32, F16, ...`.
pub(super) fn dequantizable_type_names() -> String {
    DEQUANTIZABLE_TYPES.iter().map(|ggml_type| ggml_type.name()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every id 0..=63 that maps to a type maps back to itself by name, and
    /// the retired ids 4 and 5 (old Q4_2/Q4_3) stay unknown.
    #[test]
    fn ids_are_unique_and_retired_ids_unknown() {
        let known: Vec<(u32, GgmlType)> = (0..64).filter_map(|id| GgmlType::from_id(id).map(|t| (id, t))).collect();
        assert_eq!(known.len(), 34);
        let mut names: Vec<&str> = known.iter().map(|(_, t)| t.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 34);
        assert_eq!(GgmlType::from_id(4), None);
        assert_eq!(GgmlType::from_id(5), None);
        assert_eq!(GgmlType::from_id(12), Some(GgmlType::Q4_K));
        assert_eq!(GgmlType::from_id(30), Some(GgmlType::BF16));
    }

    /// Byte sizes of the common blocks, written out as the struct layouts of
    /// ggml-common.h (field by field) so a typo in the formulas above shows.
    #[test]
    fn block_sizes_match_ggml_struct_layouts() {
        let cases = [
            (GgmlType::Q4_0, 32, 18),   // f16 d, u8 qs[16]
            (GgmlType::Q4_1, 32, 20),   // f16 d, f16 m, u8 qs[16]
            (GgmlType::Q5_0, 32, 22),   // f16 d, u8 qh[4], u8 qs[16]
            (GgmlType::Q5_1, 32, 24),   // f16 d, f16 m, u8 qh[4], u8 qs[16]
            (GgmlType::Q8_0, 32, 34),   // f16 d, i8 qs[32]
            (GgmlType::Q2_K, 256, 84),  // u8 scales[16], u8 qs[64], f16 d, f16 dmin
            (GgmlType::Q3_K, 256, 110), // u8 hmask[32], u8 qs[64], u8 scales[12], f16 d
            (GgmlType::Q4_K, 256, 144), // f16 d, f16 dmin, u8 scales[12], u8 qs[128]
            (GgmlType::Q5_K, 256, 176), // ... + u8 qh[32]
            (GgmlType::Q6_K, 256, 210), // u8 ql[128], u8 qh[64], i8 scales[16], f16 d
            (GgmlType::Q8_K, 256, 292), // f32 d, i8 qs[256], i16 bsums[16]
            (GgmlType::BF16, 1, 2),
        ];
        for (ggml_type, block, bytes) in cases {
            assert_eq!(ggml_type.block_size(), block, "{ggml_type}");
            assert_eq!(ggml_type.type_size(), bytes, "{ggml_type}");
        }
    }

    #[test]
    fn supported_list_names_every_dequantizable_type() {
        let names = dequantizable_type_names();
        assert!(names.starts_with("F32, F16, Q4_0"), "{names}");
        assert!(names.ends_with("Q8_K, BF16"), "{names}");
        assert!(!GgmlType::IQ4_NL.is_dequantizable());
        assert!(GgmlType::Q6_K.is_dequantizable());
    }
}
