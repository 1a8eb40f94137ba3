//! Friedman test: do k treatments (calibration languages) differ across N
//! blocks (evaluation sets)?
//!
//! Each block is ranked on its own (average ranks for ties), so differences in
//! difficulty between evaluation sets cancel (Friedman 1937). With R_j the rank
//! sum of treatment j and T = Σ_blocks Σ_ties (t³ - t),
//!
//!   χ²_F = [12/(N k (k+1)) Σ_j R_j² - 3 N (k+1)] / [1 - T/(N k (k² - 1))],
//!
//! referred to χ² with k - 1 degrees of freedom (the tie-corrected form SciPy's
//! `friedmanchisquare` uses). Average ranks R_j / N feed the Nemenyi post-hoc
//! test and critical-difference diagrams (Demšar 2006), where rank 1 is best.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF};

use super::error::StatsError;
use super::ranks::average_ranks;

/// Which end of the scale is better, so that rank 1 means "best".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RankDirection {
    /// Smaller is better (NLL, bits per byte, perplexity).
    LowerIsBetter,
    /// Larger is better (accuracy).
    HigherIsBetter,
}

/// A complete block design: N ≥ 2 blocks, each with one finite value for each
/// of k ≥ 2 treatments, stored row-major (block by block).
#[derive(Debug, Clone, PartialEq)]
pub struct BlockDesign {
    label: String,
    treatments: usize,
    values: Vec<f64>,
}

impl BlockDesign {
    /// Validates `blocks[b][t]` = value of treatment t on block b.
    pub fn new(label: &str, blocks: Vec<Vec<f64>>) -> Result<Self, StatsError> {
        if blocks.len() < 2 {
            return Err(StatsError::TooFewValues { input: format!("{label} (blocks)"), required: 2, actual: blocks.len() });
        }
        let treatments = blocks[0].len();
        if treatments < 2 {
            return Err(StatsError::TooFewValues { input: format!("{label} (treatments per block)"), required: 2, actual: treatments });
        }
        let mut values = Vec::with_capacity(blocks.len() * treatments);
        for (block, row) in blocks.iter().enumerate() {
            if row.len() != treatments {
                return Err(StatsError::RaggedBlocks { input: label.to_owned(), block, expected: treatments, actual: row.len() });
            }
            if let Some(t) = row.iter().position(|v| !v.is_finite()) {
                return Err(StatsError::NonFinite { input: format!("{label} (block {block})"), index: t, value: row[t] });
            }
            values.extend_from_slice(row);
        }
        Ok(BlockDesign { label: label.to_owned(), treatments, values })
    }

    /// Number of blocks N.
    pub fn blocks(&self) -> usize {
        self.values.len() / self.treatments
    }

    /// Number of treatments k.
    pub fn treatments(&self) -> usize {
        self.treatments
    }

    fn rows(&self) -> impl Iterator<Item = &[f64]> {
        self.values.chunks_exact(self.treatments)
    }
}

/// Result of the Friedman test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FriedmanTest {
    /// Tie-corrected χ²_F.
    pub statistic: f64,
    /// k - 1.
    pub degrees_of_freedom: usize,
    /// Upper-tail χ² probability of the statistic.
    pub p_value: f64,
    /// Mean rank of each treatment over blocks (1 = best under `direction`).
    pub average_ranks: Vec<f64>,
    /// Number of blocks N.
    pub blocks: usize,
    /// Number of treatments k.
    pub treatments: usize,
    /// Direction used for ranking.
    pub direction: RankDirection,
}

/// Friedman test of `design`; fails if every block ties all treatments.
pub fn friedman_test(design: &BlockDesign, direction: RankDirection) -> Result<FriedmanTest, StatsError> {
    let k = design.treatments();
    let n = design.blocks();
    let mut rank_sums = vec![0.0; k];
    let mut tie_term = 0.0;
    for row in design.rows() {
        let oriented: Vec<f64> = match direction {
            RankDirection::LowerIsBetter => row.to_vec(),
            RankDirection::HigherIsBetter => row.iter().map(|v| -v).collect(),
        };
        let ranking = average_ranks(&oriented);
        for (sum, rank) in rank_sums.iter_mut().zip(&ranking.ranks) {
            *sum += rank;
        }
        tie_term += ranking.tie_term();
    }
    let (kf, nf) = (k as f64, n as f64);
    let tie_correction = 1.0 - tie_term / (kf * (kf * kf - 1.0) * nf);
    if tie_correction <= 0.0 {
        return Err(StatsError::AllBlocksTied { input: design.label.clone() });
    }
    let sum_of_squares: f64 = rank_sums.iter().map(|r| r * r).sum();
    let statistic = (12.0 / (kf * nf * (kf + 1.0)) * sum_of_squares - 3.0 * nf * (kf + 1.0)) / tie_correction;
    let chi_squared = ChiSquared::new(kf - 1.0).expect("k >= 2 gives positive degrees of freedom");
    Ok(FriedmanTest {
        statistic,
        degrees_of_freedom: k - 1,
        p_value: chi_squared.sf(statistic.max(0.0)),
        average_ranks: rank_sums.iter().map(|r| r / nf).collect(),
        blocks: n,
        treatments: k,
        direction,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    // Data sets and reference values: scripts/stats_reference.py, section
    // "Friedman" (scipy.stats.friedmanchisquare, scipy.stats.rankdata).
    pub(crate) fn f1() -> BlockDesign {
        BlockDesign::new(
            "F1",
            vec![
                vec![3.1, 2.9, 3.4, 3.0],
                vec![2.5, 2.5, 2.8, 2.6],
                vec![4.0, 3.7, 4.1, 3.7],
                vec![1.9, 1.8, 2.2, 2.0],
                vec![3.3, 3.2, 3.3, 3.5],
                vec![2.7, 2.4, 3.0, 2.6],
            ],
        )
        .unwrap()
    }

    pub(crate) fn f2() -> BlockDesign {
        BlockDesign::new(
            "F2",
            vec![
                vec![0.61, 0.58, 0.66, 0.60, 0.55],
                vec![0.72, 0.70, 0.75, 0.69, 0.66],
                vec![0.55, 0.57, 0.59, 0.54, 0.50],
                vec![0.81, 0.77, 0.84, 0.78, 0.76],
                vec![0.47, 0.49, 0.52, 0.46, 0.44],
                vec![0.66, 0.63, 0.68, 0.65, 0.61],
                vec![0.59, 0.60, 0.64, 0.56, 0.57],
                vec![0.70, 0.68, 0.71, 0.67, 0.62],
                vec![0.52, 0.50, 0.58, 0.53, 0.49],
                vec![0.77, 0.74, 0.79, 0.75, 0.72],
            ],
        )
        .unwrap()
    }

    fn assert_ranks(actual: &[f64], expected: &[f64]) {
        for (a, e) in actual.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{actual:?} vs {expected:?}");
        }
    }

    #[test]
    fn statistic_and_ranks_match_scipy() {
        // Statistic: closed form, 1e-10. p-value: χ² survival function; statrs
        // (regularised incomplete gamma) and SciPy agree to ~1e-14 relative, so
        // we check 1e-9 relative, which also covers the tiny F2 p-value.
        let t = friedman_test(&f1(), RankDirection::LowerIsBetter).unwrap();
        assert!((t.statistic - 12.684210526315802).abs() < 1e-10, "{}", t.statistic);
        assert!((t.p_value / 0.005371755791967822 - 1.0).abs() < 1e-9, "{}", t.p_value);
        assert_eq!(t.degrees_of_freedom, 3);
        assert_ranks(&t.average_ranks, &[2.5, 1.1666666666666667, 3.75, 2.5833333333333335]);

        let t = friedman_test(&f2(), RankDirection::LowerIsBetter).unwrap();
        assert!((t.statistic - 33.03999999999999).abs() < 1e-10, "{}", t.statistic);
        assert!((t.p_value / 1.1721663799250748e-06 - 1.0).abs() < 1e-9, "{}", t.p_value);
        assert_ranks(&t.average_ranks, &[3.6, 2.8, 5.0, 2.5, 1.1]);
    }

    #[test]
    fn direction_mirrors_ranks_but_not_statistic() {
        let low = friedman_test(&f1(), RankDirection::LowerIsBetter).unwrap();
        let high = friedman_test(&f1(), RankDirection::HigherIsBetter).unwrap();
        assert!((low.statistic - high.statistic).abs() < 1e-12);
        for (l, h) in low.average_ranks.iter().zip(&high.average_ranks) {
            assert!((l + h - 5.0).abs() < 1e-12); // r ↦ k + 1 - r
        }
    }

    #[test]
    fn invalid_designs_are_rejected() {
        let ragged = BlockDesign::new("x", vec![vec![1.0, 2.0], vec![1.0]]);
        assert!(matches!(ragged, Err(StatsError::RaggedBlocks { block: 1, .. })));
        let one_block = BlockDesign::new("x", vec![vec![1.0, 2.0]]);
        assert!(matches!(one_block, Err(StatsError::TooFewValues { .. })));
        let tied = BlockDesign::new("x", vec![vec![1.0, 1.0], vec![2.0, 2.0]]).unwrap();
        assert!(matches!(friedman_test(&tied, RankDirection::LowerIsBetter), Err(StatsError::AllBlocksTied { .. })));
    }
}
