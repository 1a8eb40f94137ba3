//! The one error type of the `data` module.
//!
//! Every message names the thing that is wrong (language code, file, line, key, value) and says
//! what to do about it, because these errors end up in front of a person running the benchmark
//! from the command line, not in front of a programmer with a debugger.

use std::path::PathBuf;

/// Everything that can go wrong while naming languages or loading text.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A language name that matches no row of the language table.
    #[error("unknown language '{input}': did you mean '{suggestion}'? (known: {known})")]
    UnknownLanguage { input: String, suggestion: String, known: String },

    /// A benchmark's own language code (e.g. XWinograd's `jp`) that the table does not list.
    #[error(
        "{benchmark} has no language with code '{code}' in the language table; \
         known {benchmark} codes: {known}. Check the code, or add the language's row to \
         data/languages/table.rs"
    )]
    UnknownBenchmarkCode { benchmark: String, code: String, known: String },

    /// A `--source` value that names no text source.
    #[error(
        "unknown text source '{spec}'; use one of: handbook, udhr, flores, flores:<root>, \
         file:<path>, lines:<path>, jsonl[.<field>][+skip-bad-lines]:<path or glob>, \
         parquet[.<column>][+skip-bad-lines]:<path or glob>"
    )]
    UnknownSource { spec: String },

    /// A source that exists but holds no text in the requested language.
    #[error("source '{source_name}' has no text for {language}; available: {available}{hint}")]
    SourceLacksLanguage {
        source_name: String,
        language: String,
        available: String,
        /// Either empty or `"; try --source <other>"`.
        hint: String,
    },

    /// A source whose files are not on this machine.
    #[error("{what} not found at {path}; {fix}")]
    SourceNotInstalled { what: String, path: PathBuf, fix: String },

    /// An I/O failure on a file or folder that should be readable.
    #[error("could not read {path}: {source}; check that it exists and is readable")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A text file that is not valid UTF-8.
    #[error(
        "{path} line {line} is not valid UTF-8; convert the file to UTF-8 \
         (for example with `iconv -t UTF-8`)"
    )]
    NotUtf8 { path: PathBuf, line: usize },

    /// A malformed row of a FLORES/SIB-200 TSV file.
    #[error("{path} line {line}: {problem}; expected the SIB-200 columns index_id<TAB>category<TAB>text")]
    BadTsvRow { path: PathBuf, line: usize, problem: String },

    /// A line of a JSON-lines file or a row of a Parquet file without a usable text
    /// (`location` is `line N` or `row N`).
    #[error("{path} {location}: {problem}; {fix}, or pass --skip-bad-lines to skip and count such {unit}s")]
    BadRecord { path: PathBuf, location: String, problem: String, fix: String, unit: &'static str },

    /// A compressed stream that ends early or is damaged.
    #[error(
        "{path}: the {codec} stream breaks off after line {line} ({problem}); the file is truncated \
         or damaged: download it again (`{codec} -t {path}` checks a copy)"
    )]
    BrokenStream { path: PathBuf, codec: &'static str, line: u64, problem: String },

    /// A Parquet file without the text column.
    #[error(
        "{path} has no column '{field}' (columns: {columns}); name the text column with \
         --text-field <column> (parquet.<column>:<path> in a source name)"
    )]
    MissingColumn { path: PathBuf, field: String, columns: String },

    /// A Parquet column that does not hold strings.
    #[error("{path}: column '{field}' holds {physical} values, not strings; name the text column with --text-field <column>")]
    NotATextColumn { path: PathBuf, field: String, physical: String },

    /// A file that the Parquet reader cannot read.
    #[error("{path} is not a readable Parquet file ({problem}); check that the download is complete")]
    BadParquet { path: PathBuf, problem: String },

    /// A path or glob of a `jsonl:`/`parquet:` source that matches no file.
    #[error(
        "no file matches '{pattern}'; check the path (a glob such as data/c4-de.*.json.gz is expanded by polyprune, quote it in the shell)"
    )]
    NoMatchingFiles { pattern: String },

    /// `--text-field`/`--skip-bad-lines` given with a source that is not JSON lines or Parquet.
    #[error("--text-field and --skip-bad-lines apply to jsonl: and parquet: sources, not to '{spec}'; drop them or name such a source")]
    RecordOptionsWithoutRecords { spec: String },

    /// A source file (handbook page, declaration) whose structure is not the one expected.
    #[error("{path} is not in the expected format: {problem}; reinstall the source with `make data`")]
    MalformedFile { path: PathBuf, problem: String },

    /// A file or source that parsed but held no text at all.
    #[error("{path} contains no text for the {split} split; check that it is the file you meant")]
    NoText { path: PathBuf, split: String },

    /// Train and test files that share a sentence id, which would leak evaluation text into
    /// calibration.
    #[error(
        "{calibration} and {evaluation} both contain index_id {id}, so calibration and evaluation \
         would overlap; the SIB-200 copy is damaged: fetch it again"
    )]
    SplitOverlap { calibration: PathBuf, evaluation: PathBuf, id: String },

    /// An evaluation share outside the open interval (0, 1).
    #[error("evaluation share {value} is not strictly between 0 and 1; pick e.g. 0.2")]
    InvalidEvaluationShare { value: f64 },
}

/// Shorthand used throughout the module.
pub type DataResult<T> = Result<T, DataError>;

impl DataError {
    /// Wraps an I/O error together with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io { path: path.into(), source }
    }
}
