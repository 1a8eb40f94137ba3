//! Reading whole text files as UTF-8, with errors that name the file and the offending line.

use std::path::Path;

use super::{DataError, DataResult};

/// The content of `path`, which must be UTF-8 (a leading byte-order mark is dropped).
pub(crate) fn read_utf8(path: &Path) -> DataResult<String> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        DataError::NotUtf8 { path: path.to_path_buf(), line: 1 + valid.iter().filter(|&&b| b == b'\n').count() }
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_files::TempFile;
    use super::*;

    #[test]
    fn invalid_utf8_error_names_the_line() {
        let file = TempFile::with_bytes("latin1.txt", b"ok\nstill ok\ncaf\xe9\n");
        let message = read_utf8(file.path()).unwrap_err().to_string();
        assert!(message.contains("latin1.txt line 3 is not valid UTF-8"), "{message}");
    }

    #[test]
    fn byte_order_mark_is_dropped() {
        let file = TempFile::with_bytes("bom.txt", "\u{feff}hello".as_bytes());
        assert_eq!(read_utf8(file.path()).unwrap(), "hello");
    }

    #[test]
    fn missing_file_error_names_the_path() {
        let message = read_utf8(Path::new("/nonexistent/polyprune.txt")).unwrap_err().to_string();
        assert!(message.starts_with("could not read /nonexistent/polyprune.txt: "), "{message}");
    }
}
