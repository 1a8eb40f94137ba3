//! What the header parser knows about the file it is reading, so low-level
//! failures can be reported with the file name and length.

use std::path::Path;

use super::cursor::OutOfBytes;
use super::error::GgufError;

/// The file being parsed: its name for messages and its length for bounds.
#[derive(Debug, Clone, Copy)]
pub(super) struct ParseContext<'p> {
    pub path: &'p Path,
    pub file_len: u64,
}

impl<'p> ParseContext<'p> {
    /// A short read while reading `what`.
    pub fn truncated(&self, what: String, shortfall: OutOfBytes) -> GgufError {
        GgufError::Truncated {
            path: self.path.to_path_buf(),
            what,
            offset: shortfall.offset,
            needed: shortfall.needed,
            file_len: self.file_len,
        }
    }

    /// A value no valid file can contain, found while reading `what`.
    pub fn corrupt(&self, what: String, offset: u64, detail: String) -> GgufError {
        GgufError::Corrupt { path: self.path.to_path_buf(), what, offset, detail }
    }
}
