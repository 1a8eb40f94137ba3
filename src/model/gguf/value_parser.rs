//! Decoding of metadata values (scalars, strings and nested arrays) from the
//! header bytes.
//!
//! Element counts come from the file and may be forged, so vectors are
//! preallocated for at most as many elements as the rest of the file could
//! hold, and array nesting is bounded so a crafted file cannot exhaust the
//! stack.

use super::cursor::{ByteCursor, OutOfBytes};
use super::error::GgufError;
use super::parse_context::ParseContext;
use super::value::{GgufValueType, MetadataArray, MetadataValue};

/// Deepest array-of-array nesting accepted; real files use at most two levels.
const MAX_ARRAY_NESTING: usize = 8;

/// Reads a length-prefixed UTF-8 string; `what` describes it for errors.
pub(super) fn read_string(cursor: &mut ByteCursor<'_>, context: ParseContext<'_>, what: impl Fn() -> String) -> Result<String, GgufError> {
    let start = cursor.position();
    let bytes = cursor.read_string_bytes().map_err(|shortfall| context.truncated(what(), shortfall))?;
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_owned()),
        Err(utf8_error) => Err(context.corrupt(what(), start, format!("the string is not valid UTF-8 ({utf8_error})"))),
    }
}

/// Reads the type tag and the value of the metadata entry `key`.
pub(super) fn read_value(cursor: &mut ByteCursor<'_>, context: ParseContext<'_>, key: &str) -> Result<MetadataValue, GgufError> {
    let value_type = read_value_type(cursor, context, key)?;
    read_typed_value(cursor, context, key, value_type, 0)
}

fn describe_value(key: &str) -> String {
    format!("the value of metadata key '{key}'")
}

fn read_value_type(cursor: &mut ByteCursor<'_>, context: ParseContext<'_>, key: &str) -> Result<GgufValueType, GgufError> {
    let what = || format!("the value type of metadata key '{key}'");
    let offset = cursor.position();
    let id = cursor.read_u32().map_err(|shortfall| context.truncated(what(), shortfall))?;
    GgufValueType::from_id(id).ok_or_else(|| context.corrupt(what(), offset, format!("unknown value type id {id} (valid ids are 0 to 12)")))
}

fn read_bool(cursor: &mut ByteCursor<'_>, context: ParseContext<'_>, key: &str) -> Result<bool, GgufError> {
    let offset = cursor.position();
    let byte = cursor.read_u8().map_err(|shortfall| context.truncated(describe_value(key), shortfall))?;
    match byte {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(context.corrupt(describe_value(key), offset, format!("a bool must be 0 or 1, found {other}"))),
    }
}

fn read_typed_value(
    cursor: &mut ByteCursor<'_>,
    context: ParseContext<'_>,
    key: &str,
    value_type: GgufValueType,
    depth: usize,
) -> Result<MetadataValue, GgufError> {
    let short = |shortfall: OutOfBytes| context.truncated(describe_value(key), shortfall);
    let value = match value_type {
        GgufValueType::U8 => MetadataValue::U8(cursor.read_u8().map_err(short)?),
        GgufValueType::I8 => MetadataValue::I8(cursor.read_i8().map_err(short)?),
        GgufValueType::U16 => MetadataValue::U16(cursor.read_u16().map_err(short)?),
        GgufValueType::I16 => MetadataValue::I16(cursor.read_i16().map_err(short)?),
        GgufValueType::U32 => MetadataValue::U32(cursor.read_u32().map_err(short)?),
        GgufValueType::I32 => MetadataValue::I32(cursor.read_i32().map_err(short)?),
        GgufValueType::U64 => MetadataValue::U64(cursor.read_u64().map_err(short)?),
        GgufValueType::I64 => MetadataValue::I64(cursor.read_i64().map_err(short)?),
        GgufValueType::F32 => MetadataValue::F32(cursor.read_f32().map_err(short)?),
        GgufValueType::F64 => MetadataValue::F64(cursor.read_f64().map_err(short)?),
        GgufValueType::Bool => MetadataValue::Bool(read_bool(cursor, context, key)?),
        GgufValueType::String => MetadataValue::String(read_string(cursor, context, || describe_value(key))?),
        GgufValueType::Array => MetadataValue::Array(read_array(cursor, context, key, depth + 1)?),
    };
    Ok(value)
}

/// Reads `count` elements with `read_one`, preallocating no more than `capacity`.
fn read_elements<T>(count: u64, capacity: usize, mut read_one: impl FnMut() -> Result<T, GgufError>) -> Result<Vec<T>, GgufError> {
    let mut elements = Vec::with_capacity(capacity);
    for _ in 0..count {
        elements.push(read_one()?);
    }
    Ok(elements)
}

/// Elements worth preallocating: the declared count, unless the remaining
/// bytes cannot possibly hold that many.
fn capped_capacity(count: u64, remaining_bytes: u64, min_element_len: u64) -> usize {
    let fits = remaining_bytes / min_element_len;
    usize::try_from(count.min(fits)).unwrap_or(usize::MAX)
}

fn read_array(cursor: &mut ByteCursor<'_>, context: ParseContext<'_>, key: &str, depth: usize) -> Result<MetadataArray, GgufError> {
    let offset = cursor.position();
    if depth > MAX_ARRAY_NESTING {
        return Err(context.corrupt(describe_value(key), offset, format!("arrays are nested more than {MAX_ARRAY_NESTING} levels deep")));
    }
    let element_type = read_value_type(cursor, context, key)?;
    let count = cursor.read_u64().map_err(|shortfall| context.truncated(describe_value(key), shortfall))?;
    let capacity = capped_capacity(count, cursor.remaining(), element_type.min_encoded_len());
    let short = |shortfall: OutOfBytes| context.truncated(describe_value(key), shortfall);

    macro_rules! numbers {
        ($variant:ident, $read:ident) => {
            MetadataArray::$variant(read_elements(count, capacity, || cursor.$read().map_err(short))?)
        };
    }

    let array = match element_type {
        GgufValueType::U8 => numbers!(U8, read_u8),
        GgufValueType::I8 => numbers!(I8, read_i8),
        GgufValueType::U16 => numbers!(U16, read_u16),
        GgufValueType::I16 => numbers!(I16, read_i16),
        GgufValueType::U32 => numbers!(U32, read_u32),
        GgufValueType::I32 => numbers!(I32, read_i32),
        GgufValueType::U64 => numbers!(U64, read_u64),
        GgufValueType::I64 => numbers!(I64, read_i64),
        GgufValueType::F32 => numbers!(F32, read_f32),
        GgufValueType::F64 => numbers!(F64, read_f64),
        GgufValueType::Bool => MetadataArray::Bool(read_elements(count, capacity, || read_bool(cursor, context, key))?),
        GgufValueType::String => {
            MetadataArray::String(read_elements(count, capacity, || read_string(cursor, context, || describe_value(key)))?)
        }
        GgufValueType::Array => MetadataArray::Array(read_elements(count, capacity, || read_array(cursor, context, key, depth + 1))?),
    };
    Ok(array)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn context(bytes: &[u8]) -> ParseContext<'static> {
        ParseContext { path: Path::new("v.gguf"), file_len: bytes.len() as u64 }
    }

    fn parse(bytes: &[u8]) -> Result<MetadataValue, GgufError> {
        let mut cursor = ByteCursor::new(bytes);
        read_value(&mut cursor, context(bytes), "k")
    }

    /// Encodes an array header: element type tag and count.
    fn array_header(element_type: u32, count: u64) -> Vec<u8> {
        let mut bytes = 9u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&element_type.to_le_bytes());
        bytes.extend_from_slice(&count.to_le_bytes());
        bytes
    }

    #[test]
    fn scalar_values_decode_by_tag() {
        let mut bytes = 11u32.to_le_bytes().to_vec(); // i64
        bytes.extend_from_slice(&(-7i64).to_le_bytes());
        assert_eq!(parse(&bytes).unwrap(), MetadataValue::I64(-7));

        let mut bytes = 12u32.to_le_bytes().to_vec(); // f64
        bytes.extend_from_slice(&0.125f64.to_le_bytes());
        assert_eq!(parse(&bytes).unwrap(), MetadataValue::F64(0.125));
    }

    #[test]
    fn nested_arrays_keep_their_structure() {
        // [[1, 2], [3]] as arrays of i32
        let mut bytes = array_header(9, 2);
        for inner in [&[1i32, 2][..], &[3][..]] {
            bytes.extend_from_slice(&5u32.to_le_bytes());
            bytes.extend_from_slice(&(inner.len() as u64).to_le_bytes());
            for v in inner {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
        }
        let expected = MetadataValue::Array(MetadataArray::Array(vec![MetadataArray::I32(vec![1, 2]), MetadataArray::I32(vec![3])]));
        assert_eq!(parse(&bytes).unwrap(), expected);
    }

    #[test]
    fn forged_count_fails_as_truncation_without_huge_allocation() {
        let mut bytes = array_header(8, u64::MAX); // u64::MAX strings
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.push(b'a');
        let error = parse(&bytes).unwrap_err();
        assert!(matches!(error, GgufError::Truncated { offset: 25, .. }), "{error:?}");
        assert_eq!(capped_capacity(u64::MAX, 9, 8), 1);
    }

    #[test]
    fn deep_nesting_is_refused() {
        // Value tag ARRAY, then a chain of array headers (element type ARRAY, count 1).
        let mut chain = 9u32.to_le_bytes().to_vec();
        for _ in 0..(MAX_ARRAY_NESTING + 2) {
            chain.extend_from_slice(&9u32.to_le_bytes());
            chain.extend_from_slice(&1u64.to_le_bytes());
        }
        let error = parse(&chain).unwrap_err();
        assert!(matches!(&error, GgufError::Corrupt { detail, .. } if detail.contains("nested")), "{error:?}");
    }

    #[test]
    fn invalid_bool_and_utf8_are_corruption() {
        let bytes = [7u8, 0, 0, 0, 2];
        assert!(matches!(parse(&bytes), Err(GgufError::Corrupt { offset: 4, .. })));

        let mut bytes = 8u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&2u64.to_le_bytes());
        bytes.extend_from_slice(&[0xff, 0xfe]);
        assert!(matches!(parse(&bytes), Err(GgufError::Corrupt { offset: 4, .. })));
    }

    #[test]
    fn unknown_value_type_is_corruption() {
        let bytes = 13u32.to_le_bytes();
        let error = parse(&bytes).unwrap_err();
        assert!(matches!(&error, GgufError::Corrupt { detail, .. } if detail.contains("13")), "{error:?}");
    }
}
