//! Languages and the text written in them.
//!
//! [`languages`] holds the one table of languages and every code the project's sources and
//! benchmarks use for them; [`corpora`] loads calibration and evaluation text per language from
//! FLORES/SIB-200, the Debian Administrator's Handbook, the Universal Declaration of Human
//! Rights, or local text, JSON-lines and Parquet files, with calibration and evaluation disjoint by
//! construction. Everything that can fail returns a [`DataError`] that names the culprit and the
//! fix.

pub mod corpora;
pub mod error;
pub mod languages;

pub use self::corpora::{
    with_record_options, CorpusSplit, CorpusStats, Document, FileFormat, RecordFormat, RecordSource, SourceLocations, SourceText,
    SplitRule, Take, TextRegistry, TextReport, TextSource,
};
pub use self::error::{DataError, DataResult};
pub use self::languages::{Benchmark, Language, Script};
