//! Everything that can go wrong while resolving, loading, scoring or fetching a task.
//!
//! Each message names the thing at fault (task, language, file and line, URL, value) and
//! ends with what to do about it, because these errors reach people running the CLI.

use std::path::PathBuf;

/// An error from the downstream-task module.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The task name matches no known task.
    #[error("unknown task '{given}': {hint}known: {known}")]
    UnknownTask {
        /// What the user typed.
        given: String,
        /// "did you mean 'x'? " or empty.
        hint: String,
        /// Every known task name, comma-separated.
        known: String,
    },

    /// The task exists but not in this language.
    #[error("task '{task}' has no language '{given}': it has {available}; pass one of these (FLORES codes such as deu_Latn and short codes such as de both work)")]
    UnknownLanguage {
        /// Task name.
        task: String,
        /// What the user typed.
        given: String,
        /// The task's languages as "code (flores)" pairs.
        available: String,
    },

    /// A language pair was expected ("deu-eng") and something else was given.
    #[error("task '{task}' needs a language pair such as '{example}', got '{given}'; write the two languages joined by '-', source first")]
    NotAPair {
        /// Task name.
        task: String,
        /// What the user typed.
        given: String,
        /// A valid pair for this task.
        example: String,
    },

    /// The task has no data for the requested split.
    #[error("task '{task}' has no '{split}' split: it has {available}; pick one of these")]
    MissingSplit {
        /// Task name.
        task: String,
        /// Requested split.
        split: String,
        /// Splits the task has.
        available: String,
    },

    /// A split name that is not train/dev/test.
    #[error("unknown split '{given}': use train, dev (also: val, validation) or test")]
    UnknownSplit {
        /// What the user typed.
        given: String,
    },

    /// A data file could not be opened or read.
    #[error("cannot read data file {path}: {source}; run `polyprune data fetch {task}` or copy the file there by hand")]
    MissingFile {
        /// File that was looked for.
        path: PathBuf,
        /// Task the file belongs to.
        task: String,
        /// Why it failed.
        source: std::io::Error,
    },

    /// A line or record of a data file is not what the task's format needs.
    #[error("{path}, line {line}: {problem}; the file is damaged or in another format: replace it with a fresh copy (`polyprune data fetch {task}` where the task has a download)")]
    BadRecord {
        /// File at fault.
        path: PathBuf,
        /// 1-based line number (for multi-line JSON arrays: the record's 1-based position).
        line: usize,
        /// Task the file belongs to.
        task: String,
        /// What is wrong with the record.
        problem: String,
    },

    /// A file has fewer usable records than the task needs.
    #[error("{path}: {problem}; replace it with a complete copy (`polyprune data fetch {task}` where the task has a download)")]
    TooFewRecords {
        /// File at fault.
        path: PathBuf,
        /// Task the file belongs to.
        task: String,
        /// What is missing.
        problem: String,
    },

    /// More few-shot demonstrations were asked for than the pool holds.
    #[error(
        "task '{task}': {shots} few-shot examples asked for but only {available} are available in the '{split}' split; ask for fewer shots"
    )]
    NotEnoughShots {
        /// Task name.
        task: String,
        /// Shots asked for.
        shots: usize,
        /// Candidates available.
        available: usize,
        /// Split they are drawn from.
        split: String,
    },

    /// The model returned a different number of scores than the example has choices.
    #[error("example {id}: got {outcomes} scores for {choices} choices; score every choice of the example once, in order")]
    OutcomeCount {
        /// Example id.
        id: String,
        /// Number of scores given.
        outcomes: usize,
        /// Number of choices in the example.
        choices: usize,
    },

    /// The model returned a log-likelihood that is NaN, +inf, or positive.
    #[error("example {id}, choice {index}: log-likelihood {value} is not a finite number <= 0; check the model's output for this request")]
    BadLogLikelihood {
        /// Example id.
        id: String,
        /// Choice index.
        index: usize,
        /// The value received.
        value: f64,
    },

    /// A metric name that is not known.
    #[error("unknown metric '{given}': known metrics are {known}")]
    UnknownMetric {
        /// What was given.
        given: String,
        /// Known metric names.
        known: String,
    },

    /// A metric that the records cannot provide (e.g. exact_match on choice records).
    #[error("metric '{metric}' does not apply to {kind} records; use one of {applicable}")]
    MetricNotApplicable {
        /// Metric asked for.
        metric: String,
        /// Kind of record.
        kind: String,
        /// Metrics that apply.
        applicable: String,
    },

    /// The task has no public download.
    #[error("task '{task}' has no automatic download; get its files from their publisher and place them under {dir} as: {layout}")]
    NoDownload {
        /// Task name.
        task: String,
        /// Data directory.
        dir: PathBuf,
        /// Expected file layout.
        layout: String,
    },

    /// The network request failed before an HTTP answer came back.
    #[error("could not reach {url}: {reason}; copy the files into {dir} by hand or set POLYPRUNE_DATA_MIRROR=<base url>")]
    Unreachable {
        /// URL tried.
        url: String,
        /// Transport error.
        reason: String,
        /// Where the files belong.
        dir: PathBuf,
    },

    /// The server answered with an HTTP error status.
    #[error("{url} answered HTTP {status}; the file may have moved: copy it into {dir} by hand or set POLYPRUNE_DATA_MIRROR=<base url>")]
    HttpStatus {
        /// URL tried.
        url: String,
        /// Status code.
        status: u16,
        /// Where the files belong.
        dir: PathBuf,
    },

    /// The downloaded bytes do not have the pinned SHA-256.
    #[error("checksum mismatch for {url}: expected sha256 {expected}, got {actual}; the download was corrupted or the upstream file changed: retry, or put a verified copy at {path}")]
    ChecksumMismatch {
        /// URL downloaded.
        url: String,
        /// Pinned digest.
        expected: String,
        /// Digest of what arrived.
        actual: String,
        /// Where the file belongs.
        path: PathBuf,
    },

    /// Writing a downloaded file failed.
    #[error("could not write {path}: {source}; check that the directory is writable and the disk has room")]
    Write {
        /// File being written.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// Shorthand used throughout the module.
pub type Result<T> = std::result::Result<T, TaskError>;
