//! Nemenyi post-hoc test after a Friedman test (Nemenyi 1963; Demšar 2006).
//!
//! Two treatments differ significantly when their average ranks differ by more
//! than the critical difference CD = q_α √(k(k+1)/(6N)), where q_α is the
//! studentized range critical value for k groups and infinite degrees of
//! freedom divided by √2 (see [`studentized_range`](super::studentized_range)).
//! Because the studentized range controls all k(k-1)/2 comparisons at once,
//! no further multiplicity correction is needed.

use serde::{Deserialize, Serialize};

use super::error::StatsError;
use super::friedman::FriedmanTest;
use super::probability::Alpha;
use super::studentized_range::nemenyi_q;

/// Result of the Nemenyi post-hoc test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NemenyiTest {
    /// Family-wise significance level.
    pub alpha: Alpha,
    /// Studentized-range critical value / √2.
    pub q_alpha: f64,
    /// Critical difference in average rank.
    pub critical_difference: f64,
    /// Average ranks copied from the Friedman test (1 = best).
    pub average_ranks: Vec<f64>,
    /// `significantly_different[i][j]` is true when |R̄_i - R̄_j| > CD; symmetric, false on the diagonal.
    pub significantly_different: Vec<Vec<bool>>,
}

/// Critical difference for `k` treatments over `n` blocks.
pub fn critical_difference(q_alpha: f64, k: usize, n: usize) -> f64 {
    let (k, n) = (k as f64, n as f64);
    q_alpha * (k * (k + 1.0) / (6.0 * n)).sqrt()
}

/// Nemenyi test on the average ranks of a Friedman test.
///
/// Fails only for a hand-built [`FriedmanTest`] with fewer than 2 treatments
/// (average ranks) or fewer than 2 blocks; [`friedman_test`](super::friedman::friedman_test)
/// never produces one.
pub fn nemenyi(friedman: &FriedmanTest, alpha: Alpha) -> Result<NemenyiTest, StatsError> {
    let k = friedman.average_ranks.len();
    if friedman.blocks < 2 {
        return Err(StatsError::InvalidCount {
            parameter: "number of blocks N",
            value: friedman.blocks,
            requirement: "the critical difference needs at least 2 blocks (evaluation sets)",
        });
    }
    let q_alpha = nemenyi_q(alpha, k)?;
    let cd = critical_difference(q_alpha, k, friedman.blocks);
    let ranks = &friedman.average_ranks;
    let significantly_different = ranks.iter().map(|ri| ranks.iter().map(|rj| (ri - rj).abs() > cd).collect()).collect();
    Ok(NemenyiTest { alpha, q_alpha, critical_difference: cd, average_ranks: ranks.clone(), significantly_different })
}

#[cfg(test)]
mod tests {
    use super::super::friedman::tests::{f1, f2};
    use super::super::friedman::{friedman_test, RankDirection};
    use super::*;

    #[test]
    fn critical_differences_match_reference() {
        // CD = scipy studentized_range.ppf(1-α, k, inf)/√2 · sqrt(k(k+1)/(6N)),
        // reference script "Friedman" section; 1e-8 as for the q table.
        let cases = [
            (f1(), Alpha::FIVE_PERCENT, 1.9148432265902373),
            (f1(), Alpha::TEN_PERCENT, 1.7078651155692723),
            (f2(), Alpha::FIVE_PERCENT, 1.9288277551893116),
            (f2(), Alpha::TEN_PERCENT, 1.7391402753515341),
        ];
        for (design, alpha, expected) in cases {
            let friedman = friedman_test(&design, RankDirection::LowerIsBetter).unwrap();
            let test = nemenyi(&friedman, alpha).unwrap();
            assert!((test.critical_difference - expected).abs() < 1e-8, "{}", test.critical_difference);
        }
    }

    #[test]
    fn pairwise_matrix_follows_rank_gaps() {
        // F2 average ranks (3.6, 2.8, 5.0, 2.5, 1.1), CD(5 %) ≈ 1.929: the pairs
        // with gap > CD are (0,4) 2.5, (1,2) 2.2, (2,3) 2.5, (2,4) 3.9.
        let friedman = friedman_test(&f2(), RankDirection::LowerIsBetter).unwrap();
        let test = nemenyi(&friedman, Alpha::FIVE_PERCENT).unwrap();
        let significant = [(0, 4), (1, 2), (2, 3), (2, 4)];
        for i in 0..5 {
            for j in 0..5 {
                let expected = significant.contains(&(i.min(j), i.max(j)));
                assert_eq!(test.significantly_different[i][j], expected, "({i},{j})");
            }
        }
    }

    #[test]
    fn hand_built_degenerate_input_is_an_error_not_a_panic() {
        let mut friedman = friedman_test(&f2(), RankDirection::LowerIsBetter).unwrap();
        friedman.average_ranks.truncate(1);
        assert!(nemenyi(&friedman, Alpha::FIVE_PERCENT).is_err());
        friedman.average_ranks = vec![1.0, 2.0];
        friedman.blocks = 1;
        assert!(nemenyi(&friedman, Alpha::FIVE_PERCENT).is_err());
    }
}
