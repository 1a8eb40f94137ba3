//! Ranking with average ranks for ties ("fractional" or "mid" ranks).
//!
//! Tied values share the mean of the ranks they occupy, which keeps rank sums
//! equal to n(n+1)/2. The tie sizes are kept because the variance of rank
//! statistics shrinks by Σ(t³ - t) (Wilcoxon signed-rank, Friedman).

/// 1-based average ranks of some values, and the sizes of their tie groups.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AverageRanks {
    /// Rank of each input value, in input order.
    pub ranks: Vec<f64>,
    /// Size of every group of equal values with more than one member.
    pub tie_sizes: Vec<usize>,
}

impl AverageRanks {
    /// Σ(t³ - t) over tie groups, the tie-correction term.
    pub fn tie_term(&self) -> f64 {
        self.tie_sizes
            .iter()
            .map(|&t| {
                let t = t as f64;
                t * t * t - t
            })
            .sum()
    }

    /// Whether any two values were equal.
    pub fn has_ties(&self) -> bool {
        !self.tie_sizes.is_empty()
    }
}

/// Ranks finite `values` from 1 (smallest) to n, averaging ranks over ties.
pub(crate) fn average_ranks(values: &[f64]) -> AverageRanks {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut tie_sizes = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        // `==` (not total_cmp) so that -0.0 and 0.0 tie, as they are equal numbers.
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end hold ranks start+1..=end; their mean is (start+1+end)/2.
        let shared_rank = (start + 1 + end) as f64 / 2.0;
        for &index in &order[start..end] {
            ranks[index] = shared_rank;
        }
        if end - start > 1 {
            tie_sizes.push(end - start);
        }
        start = end;
    }
    AverageRanks { ranks, tie_sizes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_scipy_rankdata_average() {
        // scipy.stats.rankdata([3, 1, 4, 1, 5, 9, 2, 6, 5]) =
        // [4, 1.5, 5, 1.5, 6.5, 9, 3, 8, 6.5]
        let r = average_ranks(&[3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0]);
        assert_eq!(r.ranks, vec![4.0, 1.5, 5.0, 1.5, 6.5, 9.0, 3.0, 8.0, 6.5]);
        assert_eq!(r.tie_sizes, vec![2, 2]);
        assert_eq!(r.tie_term(), 12.0);
    }

    #[test]
    fn rank_sum_is_triangular_number() {
        let values = [0.2, 0.2, 0.2, -1.0, 7.0, 0.0, -0.0];
        let r = average_ranks(&values);
        assert_eq!(r.ranks.iter().sum::<f64>(), 28.0);
        assert_eq!(r.tie_sizes, vec![2, 3]);
    }
}
