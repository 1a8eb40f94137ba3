//! JSON lines, plain or gzip/zstd-compressed, one object per line with the text in a named
//! field (the layout of mC4 and CulturaX shards), read line by line from a stream.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use super::index::Entry;
use super::{non_blank, Record, RecordText};
use crate::data::{DataError, DataResult};

/// How the bytes of a file are compressed, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Plain,
    Gzip,
    Zstd,
}

impl Codec {
    fn of(path: &Path) -> Codec {
        let name = path.to_string_lossy().to_ascii_lowercase();
        if name.ends_with(".gz") {
            Codec::Gzip
        } else if name.ends_with(".zst") || name.ends_with(".zstd") {
            Codec::Zstd
        } else {
            Codec::Plain
        }
    }

    /// The command-line tool that tests such a file, as named in messages.
    fn tool(self) -> &'static str {
        match self {
            Codec::Plain => "cat",
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
        }
    }
}

/// The decompressed lines of `path`, buffered.
fn open(path: &Path, codec: Codec) -> DataResult<Box<dyn BufRead>> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    const BUFFER: usize = 1 << 16;
    Ok(match codec {
        Codec::Plain => Box::new(BufReader::with_capacity(BUFFER, file)),
        // Several gzip members one after another are one valid file (`cat a.gz b.gz`).
        Codec::Gzip => Box::new(BufReader::with_capacity(BUFFER, flate2::read::MultiGzDecoder::new(file))),
        Codec::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(file).map_err(|e| DataError::io(path, e))?;
            Box::new(BufReader::with_capacity(BUFFER, decoder))
        }
    })
}

/// Calls `visit` with every line of `path` in order until it returns `false`.
pub(super) fn scan(path: &Path, field: &str, visit: &mut dyn FnMut(Record) -> bool) -> DataResult<()> {
    let codec = Codec::of(path);
    let mut reader = open(path, codec)?;
    let mut line = Vec::new();
    let (mut number, mut offset) = (0u64, 0u64);
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line).map_err(|e| broken(path, codec, number, e))?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        let record = Record { ordinal: number, offset, text: line_text(&line, field) };
        offset += read as u64;
        if !visit(record) {
            return Ok(());
        }
    }
}

/// The texts of `wanted` (ascending lines of `path`, all known to hold a text): by seeking in a
/// plain file, else by decompressing up to the last wanted line.
pub(super) fn read_entries(path: &Path, field: &str, wanted: &[Entry]) -> DataResult<Vec<String>> {
    let codec = Codec::of(path);
    let mut texts = Vec::with_capacity(wanted.len());
    if codec == Codec::Plain {
        let mut file = BufReader::new(File::open(path).map_err(|e| DataError::io(path, e))?);
        let mut line = Vec::new();
        for entry in wanted {
            line.clear();
            file.seek(SeekFrom::Start(entry.offset)).map_err(|e| DataError::io(path, e))?;
            file.read_until(b'\n', &mut line).map_err(|e| DataError::io(path, e))?;
            texts.push(indexed_text(path, entry.ordinal, line_text(&line, field))?);
        }
        return Ok(texts);
    }
    let mut next = wanted.iter().peekable();
    let mut failure = None;
    scan(path, field, &mut |record| {
        if next.peek().is_some_and(|e| e.ordinal == record.ordinal) {
            next.next();
            match indexed_text(path, record.ordinal, record.text) {
                Ok(text) => texts.push(text),
                Err(e) => failure = Some(e),
            }
        }
        failure.is_none() && next.peek().is_some()
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(texts),
    }
}

/// The text of a line the index says holds one.
fn indexed_text(path: &Path, line: u64, text: RecordText) -> DataResult<String> {
    match text {
        Ok(Some(text)) => Ok(text),
        _ => Err(DataError::MalformedFile { path: path.to_path_buf(), problem: format!("line {line} changed since it was indexed") }),
    }
}

fn broken(path: &Path, codec: Codec, line: u64, error: std::io::Error) -> DataError {
    match codec {
        Codec::Plain => DataError::io(path, error),
        Codec::Gzip | Codec::Zstd => {
            DataError::BrokenStream { path: path.to_path_buf(), codec: codec.tool(), line, problem: error.to_string() }
        }
    }
}

/// The text in `field` of one line: `Ok(None)` for a blank line or a blank text, `Err` with
/// the problem for anything that is not an object with a string there.
fn line_text(line: &[u8], field: &str) -> RecordText {
    let line = std::str::from_utf8(line).map_err(|_| "is not valid UTF-8".to_string())?;
    let line = line.trim_end_matches(['\n', '\r']);
    if line.trim().is_empty() {
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| format!("is not valid JSON ({} at column {}); each line must be one JSON object", classify(&e), e.column()))?;
    let serde_json::Value::Object(mut object) = value else {
        return Err(format!("holds {}, not a JSON object; each line must be one JSON object", json_kind(&value)));
    };
    match object.remove(field) {
        Some(serde_json::Value::String(text)) => Ok(non_blank(text)),
        Some(other) => Err(format!("field '{field}' holds {}, not a string", json_kind(&other))),
        None => {
            let keys: Vec<&str> = object.keys().map(String::as_str).collect();
            Err(format!("has no field '{field}' (fields: {})", keys.join(", ")))
        }
    }
}

fn classify(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Eof => "ends early",
        _ => "syntax error",
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_text_reads_the_field_and_names_each_problem() {
        assert_eq!(line_text(b"{\"text\": \"caf\\u00e9\", \"url\": \"u\"}\r\n", "text"), Ok(Some("café".to_string())));
        assert_eq!(line_text(b"   \n", "text"), Ok(None));
        assert_eq!(line_text(b"{\"text\": \"  \"}", "text"), Ok(None));
        assert_eq!(line_text(b"{\"text\": 3}", "text"), Err("field 'text' holds a number, not a string".to_string()));
        assert_eq!(line_text(b"{\"text\": null}", "text"), Err("field 'text' holds null, not a string".to_string()));
        assert_eq!(line_text(b"{\"url\": \"u\", \"id\": 1}", "text"), Err("has no field 'text' (fields: id, url)".to_string()));
        assert_eq!(line_text(b"[1, 2]", "text"), Err("holds an array, not a JSON object; each line must be one JSON object".to_string()));
        assert_eq!(
            line_text(b"{\"text\": \"cut", "text"),
            Err("is not valid JSON (ends early at column 13); each line must be one JSON object".to_string())
        );
        assert_eq!(line_text(b"caf\xe9", "text"), Err("is not valid UTF-8".to_string()));
    }

    #[test]
    fn codec_follows_the_file_name() {
        assert_eq!(Codec::of(Path::new("c4-de.tfrecord-00000-of-01024.json.gz")), Codec::Gzip);
        assert_eq!(Codec::of(Path::new("de_part_00000.jsonl.zst")), Codec::Zstd);
        assert_eq!(Codec::of(Path::new("d.jsonl")), Codec::Plain);
    }
}
