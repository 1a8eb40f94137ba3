//! Conversions from stored metadata values to the Rust types callers want.
//!
//! Converters write integers in whatever width is at hand (the same key is a
//! `u32` in one file and an `i32` or `u64` in another), so integer targets
//! accept any integer variant whose value fits, and float targets accept both
//! `f32` and `f64`. Anything else is a type mismatch that the caller turns
//! into an error naming the key.

use super::value::{MetadataArray, MetadataValue};

/// Why a stored value could not be converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// The stored value is of another kind (e.g. a string where a number was wanted).
    WrongType,
    /// The stored value is of the right kind but does not fit the target type.
    OutOfRange,
}

/// A Rust type that can be read out of a [`MetadataValue`].
///
/// The lifetime lets borrowed targets (`&str`, `&[String]`) point into the
/// metadata instead of copying it.
pub trait FromMetadata<'a>: Sized {
    /// What the caller expected, phrased for an error message.
    const EXPECTED: &'static str;

    /// Converts `value`, or says why it cannot.
    fn from_metadata(value: &'a MetadataValue) -> Result<Self, Mismatch>;
}

macro_rules! integer_from_metadata {
    ($($target:ty => $expected:literal),* $(,)?) => {$(
        impl<'a> FromMetadata<'a> for $target {
            const EXPECTED: &'static str = $expected;

            fn from_metadata(value: &'a MetadataValue) -> Result<Self, Mismatch> {
                let wide = value.as_integer().ok_or(Mismatch::WrongType)?;
                <$target>::try_from(wide).map_err(|_| Mismatch::OutOfRange)
            }
        }
    )*};
}

integer_from_metadata!(
    u8 => "an integer that fits in u8",
    u16 => "an integer that fits in u16",
    u32 => "an integer that fits in u32",
    u64 => "an integer that fits in u64",
    usize => "an integer that fits in usize",
    i32 => "an integer that fits in i32",
    i64 => "an integer that fits in i64",
);

/// Narrows an `f64` to `f32`, refusing finite values beyond the `f32` range.
/// Rounding within the range is accepted: that is what storing as f32 would do.
fn narrow_to_f32(value: f64) -> Result<f32, Mismatch> {
    let narrowed = value as f32;
    if value.is_finite() && narrowed.is_infinite() {
        Err(Mismatch::OutOfRange)
    } else {
        Ok(narrowed)
    }
}

impl<'a> FromMetadata<'a> for f32 {
    const EXPECTED: &'static str = "an f32 or f64 number";

    fn from_metadata(value: &'a MetadataValue) -> Result<Self, Mismatch> {
        match *value {
            MetadataValue::F32(v) => Ok(v),
            MetadataValue::F64(v) => narrow_to_f32(v),
            _ => Err(Mismatch::WrongType),
        }
    }
}

impl<'a> FromMetadata<'a> for f64 {
    const EXPECTED: &'static str = "an f32 or f64 number";

    fn from_metadata(value: &'a MetadataValue) -> Result<Self, Mismatch> {
        match *value {
            MetadataValue::F32(v) => Ok(v.into()),
            MetadataValue::F64(v) => Ok(v),
            _ => Err(Mismatch::WrongType),
        }
    }
}

impl<'a> FromMetadata<'a> for bool {
    const EXPECTED: &'static str = "a bool";

    fn from_metadata(value: &'a MetadataValue) -> Result<Self, Mismatch> {
        match *value {
            MetadataValue::Bool(v) => Ok(v),
            _ => Err(Mismatch::WrongType),
        }
    }
}

impl<'a> FromMetadata<'a> for &'a str {
    const EXPECTED: &'static str = "a string";

    fn from_metadata(value: &'a MetadataValue) -> Result<Self, Mismatch> {
        match value {
            MetadataValue::String(text) => Ok(text),
            _ => Err(Mismatch::WrongType),
        }
    }
}

impl<'a> FromMetadata<'a> for &'a MetadataArray {
    const EXPECTED: &'static str = "an array";

    fn from_metadata(value: &'a MetadataValue) -> Result<Self, Mismatch> {
        match value {
            MetadataValue::Array(array) => Ok(array),
            _ => Err(Mismatch::WrongType),
        }
    }
}

impl<'a> FromMetadata<'a> for &'a [String] {
    const EXPECTED: &'static str = "an array of strings";

    fn from_metadata(value: &'a MetadataValue) -> Result<Self, Mismatch> {
        match value {
            MetadataValue::Array(MetadataArray::String(strings)) => Ok(strings),
            _ => Err(Mismatch::WrongType),
        }
    }
}

impl<'a> FromMetadata<'a> for Vec<f32> {
    const EXPECTED: &'static str = "an array of f32 or f64 numbers";

    fn from_metadata(value: &'a MetadataValue) -> Result<Self, Mismatch> {
        match value {
            MetadataValue::Array(MetadataArray::F32(values)) => Ok(values.clone()),
            MetadataValue::Array(MetadataArray::F64(values)) => values.iter().map(|&v| narrow_to_f32(v)).collect(),
            _ => Err(Mismatch::WrongType),
        }
    }
}

macro_rules! integer_vec_from_metadata {
    ($($element:ty => $expected:literal),* $(,)?) => {$(
        impl<'a> FromMetadata<'a> for Vec<$element> {
            const EXPECTED: &'static str = $expected;

            fn from_metadata(value: &'a MetadataValue) -> Result<Self, Mismatch> {
                let MetadataValue::Array(array) = value else {
                    return Err(Mismatch::WrongType);
                };
                let wide = array.integers().ok_or(Mismatch::WrongType)?;
                wide.into_iter()
                    .map(|v| <$element>::try_from(v).map_err(|_| Mismatch::OutOfRange))
                    .collect()
            }
        }
    )*};
}

integer_vec_from_metadata!(
    i32 => "an array of integers that fit in i32",
    u32 => "an array of integers that fit in u32",
    i64 => "an array of integers that fit in i64",
    u64 => "an array of integers that fit in u64",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_convert_across_widths_when_they_fit() {
        assert_eq!(u32::from_metadata(&MetadataValue::U8(7)), Ok(7));
        assert_eq!(u32::from_metadata(&MetadataValue::I64(4_000_000_000)), Ok(4_000_000_000));
        assert_eq!(u32::from_metadata(&MetadataValue::I32(-1)), Err(Mismatch::OutOfRange));
        assert_eq!(u32::from_metadata(&MetadataValue::U64(1 << 32)), Err(Mismatch::OutOfRange));
        assert_eq!(i32::from_metadata(&MetadataValue::I8(-3)), Ok(-3));
        assert_eq!(u32::from_metadata(&MetadataValue::F32(1.0)), Err(Mismatch::WrongType));
    }

    #[test]
    fn floats_accept_both_widths() {
        assert_eq!(f32::from_metadata(&MetadataValue::F64(0.5)), Ok(0.5));
        assert_eq!(f64::from_metadata(&MetadataValue::F32(0.25)), Ok(0.25));
        assert_eq!(f32::from_metadata(&MetadataValue::F64(1e300)), Err(Mismatch::OutOfRange));
        assert_eq!(f32::from_metadata(&MetadataValue::I32(1)), Err(Mismatch::WrongType));
    }

    #[test]
    fn arrays_convert_elementwise() {
        let ints = MetadataValue::Array(MetadataArray::I64(vec![-2, 5]));
        assert_eq!(Vec::<i32>::from_metadata(&ints), Ok(vec![-2, 5]));
        assert_eq!(Vec::<u32>::from_metadata(&ints), Err(Mismatch::OutOfRange));
        let doubles = MetadataValue::Array(MetadataArray::F64(vec![1.5, -2.0]));
        assert_eq!(Vec::<f32>::from_metadata(&doubles), Ok(vec![1.5, -2.0]));
        let strings = MetadataValue::Array(MetadataArray::String(vec!["a".into()]));
        assert_eq!(<&[String]>::from_metadata(&strings), Ok(&["a".to_string()][..]));
        assert_eq!(Vec::<f32>::from_metadata(&strings), Err(Mismatch::WrongType));
    }
}
