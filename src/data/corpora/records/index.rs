//! The per-shard document index: one pass over a shard records where each document is, how long
//! it is and which split its text falls in, so that later draws read only the documents they
//! choose. Cached beside the shard as `<shard>.polyprune-index`: a one-line JSON header (the
//! shard's size and modification time, the field, the counts) followed by 28 bytes per
//! document, little-endian: line or row (u64), byte offset (u64), split key (u64), text bytes
//! (u32). A header that does not match the shard or the field means a rebuild.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::{jsonl, parquet, Record, RecordFormat};
use crate::data::corpora::split_rule::SplitRule;
use crate::data::{DataError, DataResult};

/// Suffix of the cache file beside each shard.
const INDEX_SUFFIX: &str = ".polyprune-index";
/// Bumped whenever the layout or the meaning of an entry changes.
const INDEX_VERSION: u32 = 1;
const ENTRY_BYTES: usize = 28;

/// Where one document of a shard is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    /// 1-based line (JSON lines) or 0-based row (Parquet).
    pub ordinal: u64,
    /// Byte offset of the line in the decompressed stream (0 for Parquet).
    pub offset: u64,
    /// [`SplitRule::text_key`] of the text.
    pub key: u64,
    /// UTF-8 bytes of the text (saturating; only a sampling weight).
    pub bytes: u32,
}

/// The first record without a usable text, kept so that a cached index still reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct BadRecord {
    /// `line N` or `row N`.
    pub location: String,
    pub problem: String,
}

/// Every document of one shard, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ShardIndex {
    pub entries: Vec<Entry>,
    /// Records without a usable text.
    pub skipped: u64,
    pub first_bad: Option<BadRecord>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Header {
    version: u32,
    size: u64,
    modified_ns: u128,
    format: String,
    field: String,
    documents: usize,
    skipped: u64,
    first_bad: Option<BadRecord>,
}

/// Whether `path` is an index file (so that a glob such as `data/*` does not read them as shards).
pub(super) fn is_index_file(path: &Path) -> bool {
    path.to_string_lossy().ends_with(INDEX_SUFFIX)
}

fn index_path(shard: &Path) -> PathBuf {
    let mut name = shard.as_os_str().to_owned();
    name.push(INDEX_SUFFIX);
    PathBuf::from(name)
}

/// The index of `shard`, from the cache when it still describes the shard, else built (and
/// cached where the folder is writable).
pub(super) fn load_or_build(shard: &Path, format: RecordFormat, field: &str) -> DataResult<ShardIndex> {
    let metadata = std::fs::metadata(shard).map_err(|e| DataError::io(shard, e))?;
    let modified_ns = metadata.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    let expected = |documents: usize, skipped: u64, first_bad: Option<BadRecord>| Header {
        version: INDEX_VERSION,
        size: metadata.len(),
        modified_ns,
        format: format.name().to_string(),
        field: field.to_string(),
        documents,
        skipped,
        first_bad,
    };
    let cache = index_path(shard);
    if let Some(index) = std::fs::read(&cache).ok().and_then(|bytes| decode(&bytes)) {
        let (header, index) = index;
        if header == expected(index.entries.len(), index.skipped, index.first_bad.clone()) {
            return Ok(index);
        }
    }
    let index = build(shard, format, field)?;
    let header = expected(index.entries.len(), index.skipped, index.first_bad.clone());
    // A cache only: a read-only data folder costs a rebuild per run, not a failure.
    let _ = crate::util::write_atomic(&cache, &encode(&header, &index));
    Ok(index)
}

/// One pass over the shard.
fn build(shard: &Path, format: RecordFormat, field: &str) -> DataResult<ShardIndex> {
    let mut index = ShardIndex { entries: Vec::new(), skipped: 0, first_bad: None };
    let mut visit = |record: Record| {
        match record.text {
            Ok(Some(text)) => index.entries.push(Entry {
                ordinal: record.ordinal,
                offset: record.offset,
                key: SplitRule::text_key(&text),
                bytes: u32::try_from(text.len()).unwrap_or(u32::MAX),
            }),
            Ok(None) => {}
            Err(problem) => {
                index.skipped += 1;
                if index.first_bad.is_none() {
                    index.first_bad = Some(BadRecord { location: format!("{} {}", format.unit(), record.ordinal), problem });
                }
            }
        }
        true
    };
    match format {
        RecordFormat::Jsonl => jsonl::scan(shard, field, &mut visit)?,
        RecordFormat::Parquet => parquet::scan(shard, field, None, &mut visit)?,
    }
    Ok(index)
}

fn encode(header: &Header, index: &ShardIndex) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(header).expect("the header is plain data");
    bytes.push(b'\n');
    bytes.reserve(index.entries.len() * ENTRY_BYTES);
    for e in &index.entries {
        bytes.extend_from_slice(&e.ordinal.to_le_bytes());
        bytes.extend_from_slice(&e.offset.to_le_bytes());
        bytes.extend_from_slice(&e.key.to_le_bytes());
        bytes.extend_from_slice(&e.bytes.to_le_bytes());
    }
    bytes
}

/// The header and index in `bytes`, or `None` for anything but a complete index file.
fn decode(bytes: &[u8]) -> Option<(Header, ShardIndex)> {
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let header: Header = serde_json::from_slice(&bytes[..newline]).ok()?;
    let body = &bytes[newline + 1..];
    if header.version != INDEX_VERSION || body.len() != header.documents * ENTRY_BYTES {
        return None;
    }
    let u64_at = |chunk: &[u8], at: usize| u64::from_le_bytes(chunk[at..at + 8].try_into().expect("8 bytes"));
    let entries = body
        .chunks_exact(ENTRY_BYTES)
        .map(|c| Entry {
            ordinal: u64_at(c, 0),
            offset: u64_at(c, 8),
            key: u64_at(c, 16),
            bytes: u32::from_le_bytes(c[24..28].try_into().expect("4 bytes")),
        })
        .collect();
    let index = ShardIndex { entries, skipped: header.skipped, first_bad: header.first_bad.clone() };
    Some((header, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trips_and_rejects_a_short_body() {
        let index = ShardIndex {
            entries: vec![
                Entry { ordinal: 1, offset: 0, key: u64::MAX, bytes: 5 },
                Entry { ordinal: 3, offset: 40, key: 7, bytes: u32::MAX },
            ],
            skipped: 1,
            first_bad: Some(BadRecord { location: "line 2".into(), problem: "is not valid JSON".into() }),
        };
        let header = Header {
            version: INDEX_VERSION,
            size: 99,
            modified_ns: 12,
            format: "jsonl".into(),
            field: "text".into(),
            documents: 2,
            skipped: 1,
            first_bad: index.first_bad.clone(),
        };
        let bytes = encode(&header, &index);
        assert_eq!(bytes.len(), bytes.iter().position(|&b| b == b'\n').unwrap() + 1 + 2 * ENTRY_BYTES);
        assert_eq!(decode(&bytes), Some((header, index)));
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None);
    }
}
