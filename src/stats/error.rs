//! The single error type of the statistics module.
//!
//! Every variant names the offending input (by the label the caller gave it), the
//! position or value at fault, and what to change so the computation can run.

use thiserror::Error;

/// Why a statistic could not be computed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum StatsError {
    /// A value was NaN or infinite.
    #[error(
        "input `{input}` has a non-finite value ({value}) at position {index}; \
         remove or repair NaN/infinite entries (e.g. a failed evaluation run) before computing statistics"
    )]
    NonFinite {
        /// Label of the input.
        input: String,
        /// Zero-based position of the bad value.
        index: usize,
        /// The bad value itself.
        value: f64,
    },

    /// Fewer observations than the statistic needs.
    #[error(
        "input `{input}` has {actual} value(s) but at least {required} are needed; \
         add more observations (seeds, documents, evaluation sets)"
    )]
    TooFewValues {
        /// Label of the input.
        input: String,
        /// Minimum count the statistic needs.
        required: usize,
        /// Count that was supplied.
        actual: usize,
    },

    /// Two inputs that must be paired element by element have different lengths.
    #[error(
        "paired inputs `{first}` ({first_len} values) and `{second}` ({second_len} values) differ in length; \
         pair them by the same documents/examples/seeds so both have one value per unit"
    )]
    LengthMismatch {
        /// Label of the first input.
        first: String,
        /// Length of the first input.
        first_len: usize,
        /// Label of the second input.
        second: String,
        /// Length of the second input.
        second_len: usize,
    },

    /// A scalar parameter lies outside its allowed range.
    #[error("{parameter} = {value} is outside {allowed}; choose a value inside that range")]
    OutOfRange {
        /// Name of the parameter (e.g. "alpha").
        parameter: &'static str,
        /// The rejected value.
        value: f64,
        /// Human-readable description of the allowed range.
        allowed: &'static str,
    },

    /// A p-value list entry lies outside [0, 1].
    #[error(
        "input `{input}` has p-value {value} at position {index}, outside [0, 1]; \
         pass raw p-values, not test statistics or log-p-values"
    )]
    InvalidPValue {
        /// Label of the input.
        input: String,
        /// Zero-based position of the bad value.
        index: usize,
        /// The bad value.
        value: f64,
    },

    /// A row of a block design has a different number of treatments than the first row.
    #[error(
        "input `{input}`: block {block} has {actual} treatment value(s) but block 0 has {expected}; \
         every block (evaluation set) needs one value per treatment (calibration language)"
    )]
    RaggedBlocks {
        /// Label of the input.
        input: String,
        /// Zero-based index of the offending block.
        block: usize,
        /// Treatment count of block 0.
        expected: usize,
        /// Treatment count of the offending block.
        actual: usize,
    },

    /// All values are identical, so a scale-based statistic is undefined.
    #[error(
        "input `{input}` has zero spread (every value equals {value}); {what} is undefined; \
         check that the runs really differ (different seeds/models) or report the mean alone"
    )]
    ZeroVariance {
        /// Label of the input.
        input: String,
        /// The common value.
        value: f64,
        /// The statistic that could not be formed.
        what: &'static str,
    },

    /// Every paired difference is zero, so a signed-rank test has nothing to rank.
    #[error(
        "input `{input}`: all {count} paired differences are zero, so the Wilcoxon test has no data \
         (zeros are dropped, Wilcoxon's method); the two conditions gave identical results, report that instead"
    )]
    AllDifferencesZero {
        /// Label of the input.
        input: String,
        /// Number of pairs, all with zero difference.
        count: usize,
    },

    /// Every block ranks all treatments as tied, so the Friedman statistic is 0/0.
    #[error(
        "input `{input}`: every block has all treatments tied, so the Friedman test has no information; \
         check that the treatment columns are not copies of each other"
    )]
    AllBlocksTied {
        /// Label of the input.
        input: String,
    },

    /// An integer parameter lies outside its allowed range.
    #[error("{parameter} = {value} is not allowed: {requirement}")]
    InvalidCount {
        /// Name of the parameter (e.g. "resamples").
        parameter: &'static str,
        /// The rejected value.
        value: usize,
        /// What the value must satisfy, and a typical choice.
        requirement: &'static str,
    },
}
