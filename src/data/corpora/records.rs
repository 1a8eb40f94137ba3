//! JSON-lines and Parquet files as text sources, read as streams: the formats mC4, CulturaX
//! and Hugging Face datasets ship in.
//!
//! Source names: `jsonl[.<field>][+skip-bad-lines]:<path or glob>` and the same with
//! `parquet`. The path may be a glob naming a language's shards (`jsonl:data/c4-de.*.json.gz`);
//! the matched files are read in sorted path order, so the order never depends on the file
//! system. JSON lines may be plain, gzip (`.gz`) or zstd (`.zst`, `.zstd`), one object per line
//! with the text in `<field>` (default `text`); Parquet files are read one row group at a time,
//! the text in the column `<field>`. Document ids are `<file name>:<line>` (1-based, as in an
//! editor) and `<file name>:row<row>` (0-based, as Parquet tools count), so the calibration
//! manifest names the file and line or row of every window's documents.
//!
//! **Split.** As for `file:`, a document goes to calibration or evaluation by the split rule on
//! its *text* ([`SplitRule`]): a pure function of the text, so the splits are disjoint by
//! construction, repeated documents stay on one side, and the split does not depend on the seed
//! or on which other shards are named.
//!
//! **Streaming and uniform sampling.** No shard is ever held in memory. A first pass over each
//! shard records, per document, its line or row, its byte offset (plain JSON lines), its text
//! length and the 64-bit split key of its text; this index is cached beside the shard
//! (`<shard>.polyprune-index`, 28 bytes per document) and reused while the shard's size and
//! modification time and the field name are unchanged (where the folder is read-only the index
//! is rebuilt on every run). A calibration draw asks for a byte budget: when the split holds no
//! more, every document is taken in file order (so a small file gives exactly the documents,
//! and windows, of the same text through `file:`); otherwise K = ⌈budget · M / bytes⌉ of the
//! split's M documents are chosen by a simple random sample without replacement, seeded from
//! the calibration seed, so every document has the same chance K/M whatever its length or
//! position. Only the chosen documents are then read: by seeking to their offsets in plain
//! files, by decompressing up to the last chosen line in compressed ones, and by decoding only
//! the row groups that hold a chosen row in Parquet. Evaluation reads the first documents of
//! its split in file order, as for the other sources.
//!
//! **Bad input.** A line that is not JSON or not an object, a missing field, a value that is
//! not a string (Parquet: a null) is an error naming the file, the line or row and the field;
//! with `+skip-bad-lines` (`--skip-bad-lines`) such records are skipped and counted in the
//! provenance instead. A compressed stream that breaks off and a Parquet file without the
//! column are always errors: no count can describe what is missing.

mod index;
mod jsonl;
mod parquet;

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use self::index::{Entry, ShardIndex};
use super::split_rule::SplitRule;
use super::{CorpusSplit, DataError, DataResult, Document, SourceText, Take, TextReport};

/// The field or column that holds the text when the source name does not say.
pub const DEFAULT_TEXT_FIELD: &str = "text";

/// The modifier that turns bad records from errors into a count.
const SKIP_MODIFIER: &str = "+skip-bad-lines";

/// How each file of a record source is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// One JSON object per line, plain or gzip/zstd-compressed.
    Jsonl,
    /// Apache Parquet, the text in one string column.
    Parquet,
}

impl RecordFormat {
    /// The source-name prefix.
    pub fn name(self) -> &'static str {
        match self {
            RecordFormat::Jsonl => "jsonl",
            RecordFormat::Parquet => "parquet",
        }
    }

    /// What one record is called in messages.
    fn unit(self) -> &'static str {
        match self {
            RecordFormat::Jsonl => "line",
            RecordFormat::Parquet => "row",
        }
    }
}

/// A set of JSON-lines or Parquet files in one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSource {
    /// A path or a glob.
    pub pattern: PathBuf,
    pub format: RecordFormat,
    /// JSON field or Parquet column holding the text.
    pub field: String,
    /// Skip and count records without a usable text instead of failing.
    pub skip_bad_lines: bool,
}

impl RecordSource {
    /// The source that `<written_name>:<pattern>` names, if `written_name` is
    /// `jsonl|parquet[.<field>][+skip-bad-lines]` (the kind case-insensitive, the field as written,
    /// since JSON keys and column names are case-sensitive).
    pub fn parse(written_name: &str, pattern: PathBuf) -> Option<RecordSource> {
        let (head, skip_bad_lines) = match written_name.strip_suffix(SKIP_MODIFIER) {
            Some(head) => (head, true),
            None => (written_name, false),
        };
        let (kind, field) = match head.split_once('.') {
            Some((_, "")) => return None,
            Some((kind, field)) => (kind, field.to_string()),
            None => (head, DEFAULT_TEXT_FIELD.to_string()),
        };
        let format = match kind.to_ascii_lowercase().as_str() {
            "jsonl" => RecordFormat::Jsonl,
            "parquet" => RecordFormat::Parquet,
            _ => return None,
        };
        Some(RecordSource { pattern, format, field, skip_bad_lines })
    }

    /// The source name that [`RecordSource::parse`] turns back into this source.
    pub fn spec(&self) -> String {
        let field = if self.field == DEFAULT_TEXT_FIELD { String::new() } else { format!(".{}", self.field) };
        let skip = if self.skip_bad_lines { SKIP_MODIFIER } else { "" };
        format!("{}{field}{skip}:{}", self.format.name(), self.pattern.display())
    }

    /// The files the pattern matches, in sorted path order.
    pub fn shards(&self) -> DataResult<Vec<PathBuf>> {
        let pattern = self.pattern.to_string_lossy();
        let no_match = || DataError::NoMatchingFiles { pattern: pattern.to_string() };
        if !pattern.contains(['*', '?', '[']) {
            return if self.pattern.is_file() { Ok(vec![self.pattern.clone()]) } else { Err(no_match()) };
        }
        let matches = glob::glob(&pattern).map_err(|_| no_match())?;
        let mut shards: Vec<PathBuf> = matches.filter_map(Result::ok).filter(|p| p.is_file() && !index::is_index_file(p)).collect();
        shards.sort();
        if shards.is_empty() {
            return Err(no_match());
        }
        Ok(shards)
    }

    /// The documents of `split` that `take` asks for, with what was read.
    pub(super) fn read(&self, split: CorpusSplit, rule: &SplitRule, take: Take) -> DataResult<SourceText> {
        let shards = self.shards()?;
        let mut indexes = Vec::with_capacity(shards.len());
        for shard in &shards {
            let index = index::load_or_build(shard, self.format, &self.field)?;
            if let (Some(bad), false) = (&index.first_bad, self.skip_bad_lines) {
                return Err(self.bad_record(shard, &bad.location, &bad.problem));
            }
            indexes.push(index);
        }
        // (shard, position in that shard's index) of every document in the split, in file order.
        let in_split: Vec<(usize, usize)> = indexes
            .iter()
            .enumerate()
            .flat_map(|(s, index)| index.entries.iter().enumerate().map(move |(i, e)| (s, i, e.key)))
            .filter(|&(_, _, key)| rule.assign_hash(key) == split)
            .map(|(s, i, _)| (s, i))
            .collect();
        let bytes = |&(s, i): &(usize, usize)| u64::from(indexes[s].entries[i].bytes);
        let chosen = choose(in_split.len(), in_split.iter().map(bytes).sum(), take);
        let mut documents = Vec::with_capacity(chosen.len());
        for (s, shard) in shards.iter().enumerate() {
            let wanted: Vec<Entry> =
                chosen.iter().map(|&c| in_split[c]).filter(|&(cs, _)| cs == s).map(|(_, i)| indexes[s].entries[i]).collect();
            if wanted.is_empty() {
                continue;
            }
            let texts = self.read_entries(shard, &indexes[s], &wanted)?;
            let name = file_name(shard);
            documents.extend(texts.into_iter().zip(&wanted).map(|(text, e)| Document { id: self.document_id(&name, e.ordinal), text }));
        }
        let report = TextReport {
            language: String::new(),
            source: self.spec(),
            files: shards.iter().map(|p| p.display().to_string()).collect(),
            documents_in_split: in_split.len(),
            documents_read: documents.len(),
            skipped_bad_records: indexes.iter().map(|i| i.skipped).sum(),
        };
        Ok(SourceText { documents, report })
    }

    fn read_entries(&self, shard: &Path, index: &ShardIndex, wanted: &[Entry]) -> DataResult<Vec<String>> {
        let texts = match self.format {
            RecordFormat::Jsonl => jsonl::read_entries(shard, &self.field, wanted)?,
            RecordFormat::Parquet => parquet::read_entries(shard, &self.field, wanted)?,
        };
        // The index was built from this very file (same size and time); a difference means it
        // changed while being read.
        for (text, entry) in texts.iter().zip(wanted) {
            if SplitRule::text_key(text) != entry.key {
                return Err(DataError::MalformedFile {
                    path: shard.to_path_buf(),
                    problem: format!(
                        "{} {} changed since it was indexed ({} documents)",
                        self.format.unit(),
                        entry.ordinal,
                        index.entries.len()
                    ),
                });
            }
        }
        Ok(texts)
    }

    fn document_id(&self, file_name: &str, ordinal: u64) -> String {
        match self.format {
            RecordFormat::Jsonl => format!("{file_name}:{ordinal}"),
            RecordFormat::Parquet => format!("{file_name}:row{ordinal}"),
        }
    }

    fn bad_record(&self, shard: &Path, location: &str, problem: &str) -> DataError {
        // The problems are this module's own words (jsonl.rs, parquet.rs): a missing field or a
        // value of another type is fixed by naming the right field; anything else by the file.
        let about_the_field = problem.starts_with("has no field") || problem.starts_with("field '") || problem.starts_with("column '");
        let fix = if about_the_field {
            format!("name the text field with --text-field <field> ({}.<field>:<path> in a source name)", self.format.name())
        } else {
            "check that the file is JSON lines (one object per line) and complete".to_string()
        };
        DataError::BadRecord {
            path: shard.to_path_buf(),
            location: location.to_string(),
            problem: problem.to_string(),
            fix,
            unit: self.format.unit(),
        }
    }
}

/// `spec` with the text field and the skip flag of the command line applied, or `None` when
/// `spec` is not a record source.
pub fn with_record_options(spec: &str, text_field: Option<&str>, skip_bad_lines: bool) -> Option<String> {
    let (name, pattern) = spec.trim().split_once(':')?;
    let mut source = RecordSource::parse(name, PathBuf::from(pattern.trim()))?;
    if let Some(field) = text_field {
        source.field = field.to_string();
    }
    source.skip_bad_lines |= skip_bad_lines;
    Some(source.spec())
}

/// Positions (ascending) of the documents to read out of `count` in the split holding `bytes`.
fn choose(count: usize, bytes: u64, take: Take) -> Vec<usize> {
    match take {
        Take::All => (0..count).collect(),
        Take::First(n) => (0..count.min(n)).collect(),
        Take::Sample { bytes: budget, .. } if bytes <= budget => (0..count).collect(),
        Take::Sample { bytes: budget, seed } => {
            // K = ⌈budget · M / bytes⌉ documents: about `budget` bytes at the split's mean length.
            let k = ((budget as u128 * count as u128).div_ceil(bytes as u128) as usize).clamp(1, count);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut chosen = rand::seq::index::sample(&mut rng, count, k).into_vec();
            chosen.sort_unstable();
            chosen
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// What one record held: a text, nothing (a blank line, an empty text), or a problem.
pub(super) type RecordText = Result<Option<String>, String>;

/// One record as a scan meets it.
pub(super) struct Record {
    /// 1-based line (JSON lines) or 0-based row (Parquet).
    pub ordinal: u64,
    /// Byte offset of the line in the decompressed stream (0 for Parquet).
    pub offset: u64,
    pub text: RecordText,
}

/// Texts that hold only white space are no documents, as in `file:` sources.
fn non_blank(text: String) -> Option<String> {
    if text.trim().is_empty() {
        None
    } else {
        Some(text)
    }
}

#[cfg(test)]
mod tests;
