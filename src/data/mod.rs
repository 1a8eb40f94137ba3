//! Languages and the text written in them.
//!
//! [`languages`] holds the one table of languages and every code the project's sources and
//! benchmarks use for them; [`corpora`] loads calibration and evaluation text per language from
//! FLORES/SIB-200, the Debian Administrator's Handbook, the Universal Declaration of Human
//! Rights, or any local text/JSONL file, with calibration and evaluation disjoint by
//! construction. Everything that can fail returns a [`DataError`] that names the culprit and the
//! fix.

pub mod corpora;
pub mod error;
pub mod languages;

pub use self::corpora::{CorpusSplit, CorpusStats, Document, FileFormat, SourceLocations, SplitRule, TextRegistry, TextSource};
pub use self::error::{DataError, DataResult};
pub use self::languages::{Benchmark, Language, Script};
