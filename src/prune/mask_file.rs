//! A compact binary file format for one [`Mask`], with atomic writes.
//!
//! Layout (all integers little-endian):
//!
//! | offset | size | field                                                   |
//! |--------|------|---------------------------------------------------------|
//! | 0      | 8    | magic `PPRNMASK`                                        |
//! | 8      | 4    | format version, u32, currently 1                        |
//! | 12     | 4    | reserved, u32, must be 0                                |
//! | 16     | 8    | rows, u64                                               |
//! | 24     | 8    | cols, u64                                               |
//! | 32     | 8*w  | the mask's `w = ceil(rows*cols/64)` words, u64 each     |
//!
//! The words are exactly [`Mask::words`] (row-major, bit set = kept). A file is valid only if its
//! length is exactly `32 + 8*w` and the unused bits of the last word are zero, so truncation,
//! appended garbage and most header damage are detected. Writes go to a temporary file in the
//! same directory that is synced and then renamed over the target, so a crash never leaves a
//! half-written mask under the real name.

use std::fs;
use std::path::Path;

use super::error::PruneError;
use super::mask::Mask;

/// First eight bytes of every mask file.
pub const MASK_MAGIC: [u8; 8] = *b"PPRNMASK";
/// The format version this code writes and reads.
pub const MASK_FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 32;

/// Serialises a mask into the file format described in the module documentation.
pub fn encode_mask(mask: &Mask) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_LEN + 8 * mask.words().len());
    bytes.extend_from_slice(&MASK_MAGIC);
    bytes.extend_from_slice(&MASK_FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&(mask.rows() as u64).to_le_bytes());
    bytes.extend_from_slice(&(mask.cols() as u64).to_le_bytes());
    for word in mask.words() {
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    bytes
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    let mut raw = [0u8; 4];
    raw.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(raw)
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(raw)
}

/// Parses the file format; `path` is only used to name the source in errors.
pub fn decode_mask(bytes: &[u8], path: &Path) -> Result<Mask, PruneError> {
    let corrupt = |reason: String| PruneError::CorruptMaskFile { path: path.to_path_buf(), reason };
    if bytes.len() < HEADER_LEN {
        return Err(corrupt(format!("it has {} bytes, fewer than the {HEADER_LEN}-byte header", bytes.len())));
    }
    if bytes[..8] != MASK_MAGIC {
        return Err(corrupt("it does not start with the mask magic 'PPRNMASK'".into()));
    }
    let version = u32_at(bytes, 8);
    if version != MASK_FORMAT_VERSION {
        return Err(corrupt(format!("format version {version} is not the supported version {MASK_FORMAT_VERSION}")));
    }
    if u32_at(bytes, 12) != 0 {
        return Err(corrupt("the reserved header field is not zero".into()));
    }
    let rows = usize::try_from(u64_at(bytes, 16));
    let cols = usize::try_from(u64_at(bytes, 24));
    let (rows, cols) = match (rows, cols) {
        (Ok(r), Ok(c)) => (r, c),
        _ => return Err(corrupt("rows or cols do not fit this machine's address size".into())),
    };
    let word_count = rows.checked_mul(cols).map(|bits| bits.div_ceil(64)).ok_or_else(|| corrupt(format!("{rows} x {cols} overflows")))?;
    let expected_len = word_count.checked_mul(8).and_then(|b| b.checked_add(HEADER_LEN));
    if expected_len != Some(bytes.len()) {
        return Err(corrupt(format!(
            "a {rows} x {cols} mask needs {} bytes but the file has {}",
            expected_len.map_or_else(|| "too many".to_string(), |n| n.to_string()),
            bytes.len()
        )));
    }
    let words: Vec<u64> = bytes[HEADER_LEN..].chunks_exact(8).map(|chunk| u64_at(chunk, 0)).collect();
    Mask::from_words(rows, cols, words).ok_or_else(|| corrupt("bits beyond the last weight are set".into()))
}

/// Writes `mask` to `path` atomically (see [`crate::util::write_atomic`]).
pub fn write_mask(mask: &Mask, path: &Path) -> Result<(), PruneError> {
    crate::util::write_atomic(path, &encode_mask(mask)).map_err(|source| PruneError::MaskIo {
        action: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a mask written by [`write_mask`], rejecting corrupt files.
pub fn read_mask(path: &Path) -> Result<Mask, PruneError> {
    let bytes = fs::read(path).map_err(|source| PruneError::MaskIo { action: "read", path: path.to_path_buf(), source })?;
    decode_mask(&bytes, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_mask() -> Mask {
        let mut mask = Mask::all_kept(5, 29);
        for i in (0..145).filter(|i| i % 5 == 2 || i % 11 == 0) {
            mask.set(i / 29, i % 29, false);
        }
        mask
    }

    #[test]
    fn encoding_matches_the_documented_layout() {
        let mask = sample_mask();
        let bytes = encode_mask(&mask);
        // 145 bits -> 3 words -> 32 + 24 bytes.
        assert_eq!(bytes.len(), 56);
        assert_eq!(&bytes[..8], b"PPRNMASK");
        assert_eq!(bytes[8..12], [1, 0, 0, 0]);
        assert_eq!(bytes[16..24], 5u64.to_le_bytes());
        assert_eq!(bytes[24..32], 29u64.to_le_bytes());
        // Element (0, 0) is pruned (0 % 11 == 0) and (0, 1) kept: lowest bits of byte 32 are 0, 1.
        assert_eq!(bytes[32] & 0b11, 0b10);
    }

    #[test]
    fn file_round_trip_preserves_every_bit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("layer.mask");
        let mask = sample_mask();
        write_mask(&mask, &path).unwrap();
        assert_eq!(read_mask(&path).unwrap(), mask);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn corrupt_files_are_rejected() {
        let good = encode_mask(&sample_mask());
        let path = Path::new("test.mask");
        let mut bad_magic = good.clone();
        bad_magic[0] = b'X';
        let mut bad_version = good.clone();
        bad_version[8] = 2;
        let mut bad_padding = good.clone();
        *bad_padding.last_mut().unwrap() = 0x80;
        let mut longer = good.clone();
        longer.push(0);
        for (name, bytes) in [
            ("magic", bad_magic),
            ("version", bad_version),
            ("padding", bad_padding),
            ("truncated", good[..good.len() - 1].to_vec()),
            ("short header", good[..10].to_vec()),
            ("trailing byte", longer),
        ] {
            let err = decode_mask(&bytes, path).unwrap_err();
            assert!(matches!(err, PruneError::CorruptMaskFile { .. }), "{name}: {err}");
            assert!(err.to_string().contains("test.mask"));
        }
        let missing = read_mask(Path::new("/nonexistent/dir/x.mask")).unwrap_err();
        assert!(matches!(missing, PruneError::MaskIo { action: "read", .. }));
    }
}
