//! Fixed facts of the GGUF container format and the validated header scalars.
//!
//! Layout (GGUF spec, versions 2 and 3, little-endian):
//! `magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count |
//!  kv_count x (string key, u32 value_type, value) |
//!  tensor_count x (string name, u32 n_dims, u64 dims[n_dims], u32 ggml_type, u64 offset) |
//!  padding to `general.alignment` | tensor data`.
//! A string is a `u64` byte length followed by UTF-8 bytes. Version 1 used
//! 32-bit counts and lengths and is not supported; version 3 only added
//! big-endian files, which are recognised by their implausible version number.

use std::fmt;

/// The four bytes every GGUF file starts with.
pub const MAGIC: [u8; 4] = *b"GGUF";

/// Metadata key that overrides the data alignment.
pub const ALIGNMENT_KEY: &str = "general.alignment";

/// A supported container version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgufVersion {
    V2,
    V3,
}

impl GgufVersion {
    /// Maps the header's version field; `None` for unsupported versions.
    pub fn from_number(number: u32) -> Option<Self> {
        match number {
            2 => Some(Self::V2),
            3 => Some(Self::V3),
            _ => None,
        }
    }

    /// The version number as written in the header.
    pub fn number(self) -> u32 {
        match self {
            Self::V2 => 2,
            Self::V3 => 3,
        }
    }
}

impl fmt::Display for GgufVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.number())
    }
}

/// The data-section alignment: a non-zero power of two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alignment(u64);

impl Alignment {
    /// Alignment used when the file does not set `general.alignment`.
    pub const DEFAULT: Alignment = Alignment(32);

    /// Accepts only non-zero powers of two (which is what makes padding arithmetic valid).
    pub fn new(bytes: u64) -> Option<Self> {
        bytes.is_power_of_two().then_some(Self(bytes))
    }

    /// The alignment in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_powers_of_two_are_alignments() {
        assert_eq!(Alignment::new(0), None);
        assert_eq!(Alignment::new(48), None);
        assert_eq!(Alignment::new(64).map(Alignment::bytes), Some(64));
        assert_eq!(Alignment::DEFAULT.bytes(), 32);
    }

    #[test]
    fn only_versions_two_and_three_are_supported() {
        assert_eq!(GgufVersion::from_number(1), None);
        assert_eq!(GgufVersion::from_number(2), Some(GgufVersion::V2));
        assert_eq!(GgufVersion::from_number(3).map(GgufVersion::number), Some(3));
        // A big-endian v3 header read as little-endian.
        assert_eq!(GgufVersion::from_number(3u32.swap_bytes()), None);
    }
}
