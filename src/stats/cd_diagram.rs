//! Data for a critical-difference diagram (Demšar 2006, Fig. 1).
//!
//! The diagram places treatments on an axis of average rank and joins by a bar
//! every maximal group whose ranks lie within one critical difference of each
//! other, i.e. groups that the Nemenyi test cannot tell apart. Sorted by rank,
//! such groups are contiguous runs; a run starting at position i extends to the
//! last j with R̄_j - R̄_i ≤ CD, and runs contained in an earlier run are dropped.
//! Runs of a single treatment get no bar and are omitted.

use serde::{Deserialize, Serialize};

use super::nemenyi::NemenyiTest;

/// One treatment's position on the diagram axis.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RankedTreatment {
    /// Index of the treatment (column of the block design).
    pub treatment: usize,
    /// Its average rank (1 = best).
    pub average_rank: f64,
}

/// Everything needed to draw a critical-difference diagram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriticalDifferenceDiagram {
    /// Length of the CD bar, in rank units.
    pub critical_difference: f64,
    /// Treatments from best to worst average rank (ties keep index order).
    pub ranked: Vec<RankedTreatment>,
    /// Maximal groups (≥ 2 members) of mutually non-significantly-different
    /// treatments, each listed best to worst; groups ordered by their best member.
    pub cliques: Vec<Vec<usize>>,
}

/// Builds the diagram data from a Nemenyi test.
pub fn critical_difference_diagram(nemenyi: &NemenyiTest) -> CriticalDifferenceDiagram {
    let mut ranked: Vec<RankedTreatment> =
        nemenyi.average_ranks.iter().enumerate().map(|(treatment, &average_rank)| RankedTreatment { treatment, average_rank }).collect();
    // Stable sort: equal ranks keep index order, so the output is deterministic.
    ranked.sort_by(|a, b| a.average_rank.total_cmp(&b.average_rank));
    let cliques = maximal_runs(&ranked, nemenyi.critical_difference);
    CriticalDifferenceDiagram { critical_difference: nemenyi.critical_difference, ranked, cliques }
}

fn maximal_runs(ranked: &[RankedTreatment], cd: f64) -> Vec<Vec<usize>> {
    let mut cliques = Vec::new();
    let mut furthest_end_so_far = 0;
    for start in 0..ranked.len() {
        let mut end = start;
        while end + 1 < ranked.len() && ranked[end + 1].average_rank - ranked[start].average_rank <= cd {
            end += 1;
        }
        // Ends never decrease with the start, so a run is inside an earlier one
        // exactly when it does not reach further than the furthest end so far.
        if end > start && (cliques.is_empty() || end > furthest_end_so_far) {
            cliques.push(ranked[start..=end].iter().map(|r| r.treatment).collect());
            furthest_end_so_far = end;
        }
    }
    cliques
}

#[cfg(test)]
mod tests {
    use super::super::probability::Alpha;
    use super::*;

    fn nemenyi_with(ranks: &[f64], cd: f64) -> NemenyiTest {
        NemenyiTest {
            alpha: Alpha::FIVE_PERCENT,
            q_alpha: f64::NAN,
            critical_difference: cd,
            average_ranks: ranks.to_vec(),
            significantly_different: vec![],
        }
    }

    /// Independent definition: all sets S (over treatment indices) such that
    /// every pair in S is within CD and no treatment can be added; size ≥ 2.
    fn brute_force_cliques(ranks: &[f64], cd: f64) -> Vec<Vec<usize>> {
        let k = ranks.len();
        let close = |i: usize, j: usize| (ranks[i] - ranks[j]).abs() <= cd;
        let mut found = Vec::new();
        for mask in 1u32..(1 << k) {
            let members: Vec<usize> = (0..k).filter(|i| mask >> i & 1 == 1).collect();
            let pairwise = members.iter().all(|&i| members.iter().all(|&j| close(i, j)));
            let maximal = (0..k).all(|x| members.contains(&x) || !members.iter().all(|&m| close(x, m)));
            if members.len() >= 2 && pairwise && maximal {
                let mut sorted = members.clone();
                sorted.sort_by(|&a, &b| ranks[a].total_cmp(&ranks[b]).then(a.cmp(&b)));
                found.push(sorted);
            }
        }
        found.sort_by(|a, b| ranks[a[0]].total_cmp(&ranks[b[0]]));
        found
    }

    #[test]
    fn cliques_of_reference_design_f2() {
        // F2 average ranks and CD(5 %) from the reference script.
        let n = nemenyi_with(&[3.6, 2.8, 5.0, 2.5, 1.1], 1.9288277551893116);
        let diagram = critical_difference_diagram(&n);
        let order: Vec<usize> = diagram.ranked.iter().map(|r| r.treatment).collect();
        assert_eq!(order, vec![4, 3, 1, 0, 2]);
        assert_eq!(diagram.cliques, vec![vec![4, 3, 1], vec![3, 1, 0], vec![0, 2]]);
    }

    #[test]
    fn cliques_match_brute_force_on_pseudo_random_ranks() {
        let mut state: u64 = 99;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for k in 2..9 {
            for _ in 0..30 {
                // Quarter-rank grid so exact ties and gaps equal to CD both occur.
                let ranks: Vec<f64> = (0..k).map(|_| 1.0 + (next() * 4.0 * k as f64).floor() / 4.0).collect();
                let cd = (next() * 8.0).floor() / 4.0;
                let fast = critical_difference_diagram(&nemenyi_with(&ranks, cd)).cliques;
                assert_eq!(fast, brute_force_cliques(&ranks, cd), "ranks {ranks:?} cd {cd}");
            }
        }
    }

    #[test]
    fn all_far_apart_gives_no_bars_and_all_close_gives_one() {
        let far = critical_difference_diagram(&nemenyi_with(&[1.0, 2.0, 3.0], 0.5));
        assert!(far.cliques.is_empty());
        let close = critical_difference_diagram(&nemenyi_with(&[1.0, 2.0, 3.0], 2.0));
        assert_eq!(close.cliques, vec![vec![0, 1, 2]]);
    }
}
