//! The metadata value model of GGUF: thirteen value types, one of which
//! (`ARRAY`) holds a homogeneous, possibly nested, list of the others.
//!
//! Arrays are stored as one typed vector per element type rather than a list
//! of boxed values: a vocabulary of 262,144 tokens stays one `Vec<String>`,
//! the element type of an empty array is not lost, and typed accessors can
//! hand out slices without copying.

use std::fmt;

/// The type tag stored before every metadata value (GGUF spec, `gguf_metadata_value_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgufValueType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
}

impl GgufValueType {
    /// Maps the on-disk tag to a type; `None` for tags the format does not define.
    pub fn from_id(id: u32) -> Option<Self> {
        let value_type = match id {
            0 => Self::U8,
            1 => Self::I8,
            2 => Self::U16,
            3 => Self::I16,
            4 => Self::U32,
            5 => Self::I32,
            6 => Self::F32,
            7 => Self::Bool,
            8 => Self::String,
            9 => Self::Array,
            10 => Self::U64,
            11 => Self::I64,
            12 => Self::F64,
            _ => return None,
        };
        Some(value_type)
    }

    /// Short lowercase name used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::U8 => "u8",
            Self::I8 => "i8",
            Self::U16 => "u16",
            Self::I16 => "i16",
            Self::U32 => "u32",
            Self::I32 => "i32",
            Self::F32 => "f32",
            Self::Bool => "bool",
            Self::String => "string",
            Self::Array => "array",
            Self::U64 => "u64",
            Self::I64 => "i64",
            Self::F64 => "f64",
        }
    }

    /// Fewest bytes one value of this type occupies on disk. Used to cap
    /// preallocation by what the rest of the file could possibly hold.
    pub(super) fn min_encoded_len(self) -> u64 {
        match self {
            Self::U8 | Self::I8 | Self::Bool => 1,
            Self::U16 | Self::I16 => 2,
            Self::U32 | Self::I32 | Self::F32 => 4,
            Self::U64 | Self::I64 | Self::F64 | Self::String => 8,
            // element type tag (4) + element count (8)
            Self::Array => 12,
        }
    }
}

impl fmt::Display for GgufValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(MetadataArray),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl MetadataValue {
    /// The on-disk type of this value.
    pub fn value_type(&self) -> GgufValueType {
        match self {
            Self::U8(_) => GgufValueType::U8,
            Self::I8(_) => GgufValueType::I8,
            Self::U16(_) => GgufValueType::U16,
            Self::I16(_) => GgufValueType::I16,
            Self::U32(_) => GgufValueType::U32,
            Self::I32(_) => GgufValueType::I32,
            Self::F32(_) => GgufValueType::F32,
            Self::Bool(_) => GgufValueType::Bool,
            Self::String(_) => GgufValueType::String,
            Self::Array(_) => GgufValueType::Array,
            Self::U64(_) => GgufValueType::U64,
            Self::I64(_) => GgufValueType::I64,
            Self::F64(_) => GgufValueType::F64,
        }
    }

    /// The value of any integer variant, widened losslessly; `None` otherwise.
    pub fn as_integer(&self) -> Option<i128> {
        match *self {
            Self::U8(v) => Some(v.into()),
            Self::I8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::I16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::I32(v) => Some(v.into()),
            Self::U64(v) => Some(v.into()),
            Self::I64(v) => Some(v.into()),
            _ => None,
        }
    }

    /// A short description for error messages, e.g. `i64 -5` or
    /// `array of 3 string`. Long strings are cut so a message stays readable.
    pub fn describe(&self) -> String {
        const MAX_SHOWN_CHARS: usize = 40;
        match self {
            Self::String(text) if text.chars().count() > MAX_SHOWN_CHARS => {
                let head: String = text.chars().take(MAX_SHOWN_CHARS).collect();
                format!("string {head:?}...")
            }
            Self::String(text) => format!("string {text:?}"),
            Self::Array(array) => array.describe(),
            Self::U8(v) => format!("u8 {v}"),
            Self::I8(v) => format!("i8 {v}"),
            Self::U16(v) => format!("u16 {v}"),
            Self::I16(v) => format!("i16 {v}"),
            Self::U32(v) => format!("u32 {v}"),
            Self::I32(v) => format!("i32 {v}"),
            Self::U64(v) => format!("u64 {v}"),
            Self::I64(v) => format!("i64 {v}"),
            Self::F32(v) => format!("f32 {v}"),
            Self::F64(v) => format!("f64 {v}"),
            Self::Bool(v) => format!("bool {v}"),
        }
    }
}

/// A homogeneous metadata array; nested arrays are arrays of arrays.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataArray {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<String>),
    Array(Vec<MetadataArray>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl MetadataArray {
    /// The type of every element.
    pub fn element_type(&self) -> GgufValueType {
        match self {
            Self::U8(_) => GgufValueType::U8,
            Self::I8(_) => GgufValueType::I8,
            Self::U16(_) => GgufValueType::U16,
            Self::I16(_) => GgufValueType::I16,
            Self::U32(_) => GgufValueType::U32,
            Self::I32(_) => GgufValueType::I32,
            Self::F32(_) => GgufValueType::F32,
            Self::Bool(_) => GgufValueType::Bool,
            Self::String(_) => GgufValueType::String,
            Self::Array(_) => GgufValueType::Array,
            Self::U64(_) => GgufValueType::U64,
            Self::I64(_) => GgufValueType::I64,
            Self::F64(_) => GgufValueType::F64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::I8(v) => v.len(),
            Self::U16(v) => v.len(),
            Self::I16(v) => v.len(),
            Self::U32(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::F32(v) => v.len(),
            Self::Bool(v) => v.len(),
            Self::String(v) => v.len(),
            Self::Array(v) => v.len(),
            Self::U64(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::F64(v) => v.len(),
        }
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every element widened to `i128` when the elements are integers.
    pub(super) fn integers(&self) -> Option<Vec<i128>> {
        fn widen<T: Copy + Into<i128>>(values: &[T]) -> Vec<i128> {
            values.iter().map(|&v| v.into()).collect()
        }
        match self {
            Self::U8(v) => Some(widen(v)),
            Self::I8(v) => Some(widen(v)),
            Self::U16(v) => Some(widen(v)),
            Self::I16(v) => Some(widen(v)),
            Self::U32(v) => Some(widen(v)),
            Self::I32(v) => Some(widen(v)),
            Self::U64(v) => Some(widen(v)),
            Self::I64(v) => Some(widen(v)),
            _ => None,
        }
    }

    /// A short description for error messages, e.g. `array of 3 string`.
    pub fn describe(&self) -> String {
        format!("array of {} {}", self.len(), self.element_type())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_ids_follow_the_gguf_spec() {
        // The numbering is fixed by the spec; spot-check both ends and the array tag.
        assert_eq!(GgufValueType::from_id(0), Some(GgufValueType::U8));
        assert_eq!(GgufValueType::from_id(8), Some(GgufValueType::String));
        assert_eq!(GgufValueType::from_id(9), Some(GgufValueType::Array));
        assert_eq!(GgufValueType::from_id(12), Some(GgufValueType::F64));
        assert_eq!(GgufValueType::from_id(13), None);
    }

    #[test]
    fn integers_widen_losslessly() {
        assert_eq!(MetadataValue::U64(u64::MAX).as_integer(), Some(u64::MAX as i128));
        assert_eq!(MetadataValue::I8(-128).as_integer(), Some(-128));
        assert_eq!(MetadataValue::F32(1.0).as_integer(), None);
    }

    #[test]
    fn long_strings_are_shortened_in_descriptions() {
        let long = MetadataValue::String("x".repeat(100));
        assert_eq!(long.describe(), format!("string {:?}...", "x".repeat(40)));
        let array = MetadataArray::String(vec!["a".into(), "b".into()]);
        assert_eq!(array.describe(), "array of 2 string");
    }
}
