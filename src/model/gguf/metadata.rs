//! The key/value metadata of a GGUF file, with typed access.
//!
//! Keys keep their file order (useful when listing them) and are indexed by
//! name. Each typed getter fails with an error that names the file, the key,
//! what was expected and what was found, so a model from an unexpected
//! architecture or converter is diagnosed at the first missing field.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::convert::{FromMetadata, Mismatch};
use super::error::GgufError;
use super::value::{MetadataArray, MetadataValue};

/// All metadata key/value pairs of one file.
#[derive(Debug, Clone)]
pub struct Metadata {
    path: PathBuf,
    entries: Vec<(String, MetadataValue)>,
    index_by_key: HashMap<String, usize>,
}

impl Metadata {
    /// Builds the map, refusing duplicate keys (which make any lookup ambiguous).
    pub(super) fn new(path: &Path, entries: Vec<(String, MetadataValue)>) -> Result<Self, GgufError> {
        let mut index_by_key = HashMap::with_capacity(entries.len());
        for (position, (key, _)) in entries.iter().enumerate() {
            if index_by_key.insert(key.clone(), position).is_some() {
                return Err(GgufError::DuplicateKey { path: path.to_path_buf(), key: key.clone() });
            }
        }
        Ok(Self { path: path.to_path_buf(), entries, index_by_key })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the file has no metadata at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Key/value pairs in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &MetadataValue)> {
        self.entries.iter().map(|(key, value)| (key.as_str(), value))
    }

    /// True when `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.index_by_key.contains_key(key)
    }

    /// The raw value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&MetadataValue> {
        self.index_by_key.get(key).map(|&position| &self.entries[position].1)
    }

    /// The value of `key` converted to `T`; fails when it is absent or does not convert.
    pub fn get_as<'a, T: FromMetadata<'a>>(&'a self, key: &str) -> Result<T, GgufError> {
        self.get_opt(key)?.ok_or_else(|| GgufError::MissingKey { path: self.path.clone(), key: key.to_string() })
    }

    /// Like [`Metadata::get_as`] but an absent key is `Ok(None)`; a present key of
    /// the wrong type is still an error.
    pub fn get_opt<'a, T: FromMetadata<'a>>(&'a self, key: &str) -> Result<Option<T>, GgufError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        T::from_metadata(value).map(Some).map_err(|mismatch| self.conversion_error::<T>(key, value, mismatch))
    }

    fn conversion_error<'a, T: FromMetadata<'a>>(&self, key: &str, value: &MetadataValue, mismatch: Mismatch) -> GgufError {
        let path = self.path.clone();
        let key = key.to_string();
        match mismatch {
            Mismatch::WrongType => GgufError::WrongType { path, key, expected: T::EXPECTED, found: value.describe() },
            Mismatch::OutOfRange => GgufError::ValueOutOfRange { path, key, expected: T::EXPECTED, value: value.describe() },
        }
    }

    /// A string value.
    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        self.get_as(key)
    }

    /// A bool value.
    pub fn get_bool(&self, key: &str) -> Result<bool, GgufError> {
        self.get_as(key)
    }

    /// Any integer value that fits in `u32`.
    pub fn get_u32(&self, key: &str) -> Result<u32, GgufError> {
        self.get_as(key)
    }

    /// Any integer value that fits in `u64`.
    pub fn get_u64(&self, key: &str) -> Result<u64, GgufError> {
        self.get_as(key)
    }

    /// Any integer value that fits in `usize` (counts and sizes).
    pub fn get_usize(&self, key: &str) -> Result<usize, GgufError> {
        self.get_as(key)
    }

    /// Any integer value that fits in `i32`.
    pub fn get_i32(&self, key: &str) -> Result<i32, GgufError> {
        self.get_as(key)
    }

    /// Any integer value that fits in `i64`.
    pub fn get_i64(&self, key: &str) -> Result<i64, GgufError> {
        self.get_as(key)
    }

    /// An `f32` value, or an `f64` value rounded to `f32`.
    pub fn get_f32(&self, key: &str) -> Result<f32, GgufError> {
        self.get_as(key)
    }

    /// An `f32` or `f64` value.
    pub fn get_f64(&self, key: &str) -> Result<f64, GgufError> {
        self.get_as(key)
    }

    /// An array of strings, borrowed.
    pub fn get_str_array(&self, key: &str) -> Result<&[String], GgufError> {
        self.get_as(key)
    }

    /// An array of `f32` (or `f64`, rounded) numbers.
    pub fn get_f32_array(&self, key: &str) -> Result<Vec<f32>, GgufError> {
        self.get_as(key)
    }

    /// An array of integers that all fit in `i32`.
    pub fn get_i32_array(&self, key: &str) -> Result<Vec<i32>, GgufError> {
        self.get_as(key)
    }

    /// An array of integers that all fit in `u32`.
    pub fn get_u32_array(&self, key: &str) -> Result<Vec<u32>, GgufError> {
        self.get_as(key)
    }

    /// Any array, borrowed, for element types without a dedicated getter
    /// (including nested arrays).
    pub fn get_array(&self, key: &str) -> Result<&MetadataArray, GgufError> {
        self.get_as(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Metadata {
        let entries = vec![
            ("arch".to_string(), MetadataValue::String("gemma3".into())),
            ("blocks".to_string(), MetadataValue::U32(18)),
            ("negative".to_string(), MetadataValue::I32(-4)),
            ("eps".to_string(), MetadataValue::F32(1e-6)),
            ("tokens".to_string(), MetadataValue::Array(MetadataArray::String(vec!["<pad>".into(), "a".into()]))),
        ];
        Metadata::new(Path::new("model.gguf"), entries).unwrap()
    }

    #[test]
    fn typed_getters_return_stored_values() {
        let metadata = sample();
        assert_eq!(metadata.get_str("arch").unwrap(), "gemma3");
        assert_eq!(metadata.get_u32("blocks").unwrap(), 18);
        assert_eq!(metadata.get_usize("blocks").unwrap(), 18);
        assert_eq!(metadata.get_i64("negative").unwrap(), -4);
        assert_eq!(metadata.get_f32("eps").unwrap(), 1e-6);
        assert_eq!(metadata.get_str_array("tokens").unwrap(), ["<pad>", "a"]);
        let keys: Vec<&str> = metadata.iter().map(|(key, _)| key).collect();
        assert_eq!(keys, ["arch", "blocks", "negative", "eps", "tokens"]);
    }

    #[test]
    fn missing_key_error_names_file_and_key() {
        let error = sample().get_u32("nope").unwrap_err();
        assert!(matches!(&error, GgufError::MissingKey { key, .. } if key == "nope"));
        let message = error.to_string();
        assert!(message.contains("model.gguf") && message.contains("'nope'"), "{message}");
    }

    #[test]
    fn wrong_type_error_names_expected_and_found() {
        let error = sample().get_u32("arch").unwrap_err();
        match error {
            GgufError::WrongType { key, expected, found, .. } => {
                assert_eq!(key, "arch");
                assert_eq!(expected, "an integer that fits in u32");
                assert_eq!(found, "string \"gemma3\"");
            }
            other => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn negative_into_unsigned_is_out_of_range() {
        let error = sample().get_u32("negative").unwrap_err();
        assert!(matches!(&error, GgufError::ValueOutOfRange { value, .. } if value == "i32 -4"), "{error:?}");
    }

    #[test]
    fn optional_getter_distinguishes_absent_from_wrong() {
        let metadata = sample();
        assert_eq!(metadata.get_opt::<u32>("absent").unwrap(), None);
        assert_eq!(metadata.get_opt::<u32>("blocks").unwrap(), Some(18));
        assert!(metadata.get_opt::<bool>("blocks").is_err());
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let entries = vec![("k".to_string(), MetadataValue::U8(1)), ("k".to_string(), MetadataValue::U8(2))];
        let error = Metadata::new(Path::new("dup.gguf"), entries).unwrap_err();
        assert!(matches!(error, GgufError::DuplicateKey { key, .. } if key == "k"));
    }
}
