//! How much to prune and in which shape: [`Sparsity`], [`Pattern`] and their validated
//! combination [`SparsityTarget`].
//!
//! An N:M pattern (Mishra et al. 2021, "Accelerating Sparse Deep Neural Networks") prunes N of
//! every M consecutive inputs of a row, so it fixes the sparsity at N/M. Rather than carrying a
//! sparsity and a pattern that might disagree, pruning methods take a [`SparsityTarget`], which
//! can only be built from a consistent pair.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::PruneError;

/// Largest difference between a requested sparsity and N/M that still counts as "the same".
/// Users type 0.3333 for 1:3; anything closer than this to N/M is taken to mean N/M.
const SPARSITY_MATCH_TOLERANCE: f64 = 1e-4;

/// Fraction of weights to remove, validated to lie in `[0, 1)`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Sparsity(f64);

impl Sparsity {
    /// Validates `value` as a sparsity; NaN, negatives and values >= 1 are errors.
    pub fn new(value: f64) -> Result<Self, PruneError> {
        // `contains` is false for NaN, so NaN is rejected here too.
        if (0.0..1.0).contains(&value) {
            Ok(Self(value))
        } else {
            Err(PruneError::InvalidSparsity { value })
        }
    }

    /// The fraction as a number in `[0, 1)`.
    pub fn get(self) -> f64 {
        self.0
    }

    /// How many of `total` elements this sparsity prunes: `floor(sparsity * total)`.
    ///
    /// The product is formed in f64, which is exact for the sizes of real layers (< 2^53).
    pub fn pruned_count(self, total: usize) -> usize {
        // floor of a value in [0, total) always fits back into usize.
        (self.0 * total as f64).floor() as usize
    }
}

impl TryFrom<f64> for Sparsity {
    type Error = PruneError;
    fn try_from(value: f64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Sparsity> for f64 {
    fn from(s: Sparsity) -> f64 {
        s.0
    }
}

impl fmt::Display for Sparsity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A valid N:M pattern: `n` of every `m` consecutive inputs in a row are pruned, `0 <= n < m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NmPattern {
    n: usize,
    m: usize,
}

impl NmPattern {
    /// Validates `n < m` (which also implies `m > 0`).
    pub fn new(n: usize, m: usize) -> Result<Self, PruneError> {
        if m == 0 {
            return Err(PruneError::InvalidPattern { text: format!("{n}:{m}"), reason: "the group width M must be positive".into() });
        }
        if n >= m {
            return Err(PruneError::InvalidPattern {
                text: format!("{n}:{m}"),
                reason: "N must be smaller than M, otherwise whole groups are removed".into(),
            });
        }
        Ok(Self { n, m })
    }

    /// Pruned inputs per group.
    pub fn n(self) -> usize {
        self.n
    }

    /// Group width.
    pub fn m(self) -> usize {
        self.m
    }

    /// The sparsity this pattern implies, `n / m`.
    pub fn implied_sparsity(self) -> f64 {
        self.n as f64 / self.m as f64
    }
}

impl fmt::Display for NmPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.n, self.m)
    }
}

/// Shape of the sparsity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Pattern {
    /// Any weights may be pruned (the scope depends on the method).
    Unstructured,
    /// N of every M consecutive inputs of each row are pruned.
    NM(NmPattern),
}

impl FromStr for Pattern {
    type Err = PruneError;

    /// Parses `"unstructured"` (any case) or `"N:M"`, e.g. `"2:4"`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("unstructured") {
            return Ok(Pattern::Unstructured);
        }
        let invalid = |reason: &str| PruneError::InvalidPattern { text: text.to_string(), reason: reason.to_string() };
        let (n_text, m_text) = trimmed.split_once(':').ok_or_else(|| invalid("expected 'unstructured' or two numbers separated by ':'"))?;
        let n: usize = n_text.trim().parse().map_err(|_| invalid("N is not a non-negative integer"))?;
        let m: usize = m_text.trim().parse().map_err(|_| invalid("M is not a non-negative integer"))?;
        NmPattern::new(n, m).map(Pattern::NM).map_err(|_| invalid("N must be smaller than M and M must be positive"))
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Unstructured => f.write_str("unstructured"),
            Pattern::NM(nm) => nm.fmt(f),
        }
    }
}

impl TryFrom<String> for Pattern {
    type Error = PruneError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Pattern> for String {
    fn from(p: Pattern) -> String {
        p.to_string()
    }
}

/// A consistent request: either an unstructured sparsity, or an N:M pattern (whose sparsity is
/// N/M by construction). This is what every pruning method takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SparsityTarget {
    /// Remove a fraction of the weights anywhere the method's scope allows.
    Unstructured(Sparsity),
    /// Remove N of every M consecutive inputs in each row.
    NM(NmPattern),
}

impl SparsityTarget {
    /// Combines a requested sparsity and pattern. For N:M patterns the sparsity may be omitted;
    /// if given it must equal N/M (within 1e-4, so that 0.3333 means 1:3), else it is an error.
    pub fn new(sparsity: Option<Sparsity>, pattern: Pattern) -> Result<Self, PruneError> {
        match (pattern, sparsity) {
            (Pattern::Unstructured, Some(s)) => Ok(Self::Unstructured(s)),
            (Pattern::Unstructured, None) => Err(PruneError::MissingSparsity),
            (Pattern::NM(nm), None) => Ok(Self::NM(nm)),
            (Pattern::NM(nm), Some(s)) => {
                if (s.get() - nm.implied_sparsity()).abs() <= SPARSITY_MATCH_TOLERANCE {
                    Ok(Self::NM(nm))
                } else {
                    Err(PruneError::SparsityConflictsWithPattern { n: nm.n, m: nm.m, implied: nm.implied_sparsity(), requested: s.get() })
                }
            }
        }
    }

    /// The requested fraction of pruned weights (N/M for N:M patterns).
    pub fn sparsity(self) -> f64 {
        match self {
            Self::Unstructured(s) => s.get(),
            Self::NM(nm) => nm.implied_sparsity(),
        }
    }

    /// The pattern part of the request.
    pub fn pattern(self) -> Pattern {
        match self {
            Self::Unstructured(_) => Pattern::Unstructured,
            Self::NM(nm) => Pattern::NM(nm),
        }
    }
}

impl fmt::Display for SparsityTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unstructured(s) => write!(f, "{s} unstructured"),
            Self::NM(nm) => write!(f, "{nm}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparsity_rejects_values_outside_unit_interval() {
        for bad in [1.3, -0.1, f64::NAN, 1.0, f64::INFINITY] {
            assert!(matches!(Sparsity::new(bad), Err(PruneError::InvalidSparsity { .. })), "{bad} accepted");
        }
        for good in [0.0, 0.5, 0.999] {
            assert_eq!(Sparsity::new(good).unwrap().get(), good);
        }
    }

    #[test]
    fn pruned_count_is_floor_of_product() {
        let s = Sparsity::new(0.3).unwrap();
        // 0.3 * 10 = 3.0000000000000004 in f64 and 0.3 * 7 = 2.1: floors are 3 and 2.
        assert_eq!(s.pruned_count(10), 3);
        assert_eq!(s.pruned_count(7), 2);
        assert_eq!(Sparsity::new(0.0).unwrap().pruned_count(1000), 0);
        assert_eq!(Sparsity::new(0.5).unwrap().pruned_count(4096), 2048);
    }

    #[test]
    fn pattern_parses_and_validates() {
        assert_eq!("2:4".parse::<Pattern>().unwrap(), Pattern::NM(NmPattern::new(2, 4).unwrap()));
        assert_eq!(" 4 : 8 ".parse::<Pattern>().unwrap().to_string(), "4:8");
        assert_eq!("Unstructured".parse::<Pattern>().unwrap(), Pattern::Unstructured);
        for bad in ["4:4", "5:4", "1:0", "2-4", "a:4", "2:", ""] {
            assert!(bad.parse::<Pattern>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn nm_pattern_fixes_the_sparsity() {
        let two_four: Pattern = "2:4".parse().unwrap();
        let err = SparsityTarget::new(Some(Sparsity::new(0.3).unwrap()), two_four).unwrap_err();
        assert!(matches!(err, PruneError::SparsityConflictsWithPattern { n: 2, m: 4, .. }));
        let ok = SparsityTarget::new(Some(Sparsity::new(0.5).unwrap()), two_four).unwrap();
        assert_eq!(ok.sparsity(), 0.5);
        assert_eq!(SparsityTarget::new(None, two_four).unwrap().sparsity(), 0.5);
        let third = SparsityTarget::new(Some(Sparsity::new(0.3333).unwrap()), "1:3".parse().unwrap());
        assert!(third.is_ok());
        assert!(SparsityTarget::new(None, Pattern::Unstructured).is_err());
    }

    #[test]
    fn serde_round_trip_validates() {
        let p: Pattern = serde_json::from_str("\"2:4\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"2:4\"");
        assert!(serde_json::from_str::<Pattern>("\"4:2\"").is_err());
        assert!(serde_json::from_str::<Sparsity>("1.5").is_err());
        assert_eq!(serde_json::from_str::<Sparsity>("0.25").unwrap().get(), 0.25);
    }
}
