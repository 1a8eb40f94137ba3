//! Statistics for comparing pruned models calibrated on different languages.
//!
//! Pure maths, no I/O. Inputs are validated once into newtypes
//! ([`Sample`], [`PairedSamples`], [`BlockDesign`], [`PValues`], [`Alpha`],
//! [`ConfidenceLevel`], [`Resamples`]); NaN, infinities and too-small inputs are
//! [`StatsError`]s that name the input and say how to fix it.
//!
//! * Across seeds: [`Descriptives`] and the Student-t [`t_interval`]; a plain [`mean`] for
//!   tables that average whatever is there (one seed or several).
//! * Accuracies: Wilson's [`wilson_interval`] for a proportion, inside [0, 1] at any n.
//! * Paired comparisons (same documents/examples under two conditions):
//!   [`bootstrap_mean_difference`] (percentile and BCa, seeded, thread-count
//!   independent), [`sign_flip_test`] (exact for n ≤ 20), [`wilcoxon_signed_rank`],
//!   effect sizes [`cohens_dz`] / [`hedges_gz`], all bundled by [`compare_paired`]
//!   into the flat, serialisable [`PairedComparison`].
//! * Many treatments over many evaluation sets: [`friedman_test`], the
//!   [`nemenyi`] post-hoc test and [`critical_difference_diagram`] data.
//! * Agreement of two rankings: Spearman's [`spearman`].
//! * Families of p-values: [`holm`] and [`benjamini_hochberg`].
//! * Anytime-valid comparisons (look after every example, stop when decided): the
//!   [`BettingConfidenceSequence`] for bounded values (accuracy differences), exact at every
//!   sample size and, for a finite test set sampled without replacement, closing on its mean;
//!   the [`AsymptoticConfidenceSequence`] for unbounded ones (bits-per-byte differences).
//!
//! Reference values for the tests come from `scripts/stats_reference.py`
//! (SciPy and statsmodels).

mod asymptotic_sequence;
mod bca;
mod betting_sequence;
mod bootstrap;
mod cd_diagram;
mod correlation;
mod descriptive;
mod effect_size;
mod error;
mod friedman;
mod interval;
mod margin_decision;
mod multiple_comparisons;
mod nemenyi;
mod normal;
mod paired_summary;
mod permutation;
mod probability;
mod proportion;
mod quantile;
mod ranks;
mod resampling;
mod sample;
mod studentized_range;
mod wilcoxon;

pub use asymptotic_sequence::AsymptoticConfidenceSequence;
pub use betting_sequence::BettingConfidenceSequence;
pub use bootstrap::{bootstrap_mean, bootstrap_mean_difference, BootstrapInterval};
pub use cd_diagram::{critical_difference_diagram, CriticalDifferenceDiagram, RankedTreatment};
pub use correlation::spearman;
pub use descriptive::{mean, t_interval, Descriptives};
pub use effect_size::{cohens_dz, hedges_correction, hedges_gz};
pub use error::StatsError;
pub use friedman::{friedman_test, BlockDesign, FriedmanTest, RankDirection};
pub use interval::ConfidenceInterval;
pub use margin_decision::Decision;
pub use multiple_comparisons::{benjamini_hochberg, holm, AdjustedPValues, Adjustment, PValues};
pub use nemenyi::{critical_difference, nemenyi, NemenyiTest};
pub use paired_summary::{compare_paired, ComparisonConfig, PairedComparison};
pub use permutation::{sign_flip_test, PermutationMethod, PermutationTest, EXACT_ENUMERATION_MAX_PAIRS};
pub use probability::{Alpha, ConfidenceLevel};
pub use proportion::wilson_interval;
pub use resampling::{Resamples, ResamplingConfig};
pub use sample::{PairedSamples, Sample};
pub use studentized_range::{nemenyi_q, studentized_range_cdf, studentized_range_critical_value};
pub use wilcoxon::{
    wilcoxon_signed_rank, ContinuityCorrection, WilcoxonMethod, WilcoxonTest, EXACT_CONDITIONAL_MAX_PAIRS, EXACT_MAX_PAIRS,
};
