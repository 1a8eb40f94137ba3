//! Deterministic assignment of documents to the calibration or the evaluation split.
//!
//! A document goes to evaluation exactly when the first 8 bytes of
//! SHA-256("polyprune-split-v1\0" ‖ key), read as a big-endian integer h, satisfy
//! h < ⌊share · 2⁶⁴⌋. The assignment is a pure function of the key, so no key can land in both
//! splits: the splits are disjoint by construction, stable across runs, machines and Rust
//! versions (unlike `std`'s hasher), and reproducible outside Rust
//! (`scripts/data_split_reference.py`). Sources choose the key: the handbook and the
//! declaration use the document id, which is the same in every language, so a chapter or
//! article is held out in all languages at once and the evaluation sets stay parallel.

use sha2::{Digest, Sha256};

use super::CorpusSplit;
use super::{DataError, DataResult};

/// Domain separator, versioned so that a future change of rule cannot silently reuse old
/// assignments.
const DOMAIN: &[u8] = b"polyprune-split-v1\0";

/// How large a share of documents goes to evaluation; validated to lie strictly in (0, 1), so
/// neither split can be empty by configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitRule {
    evaluation_share: f64,
    /// ⌊share · 2⁶⁴⌋, precomputed.
    threshold: u64,
}

impl SplitRule {
    /// The default evaluation share: a fifth of the documents.
    pub const DEFAULT_EVALUATION_SHARE: f64 = 0.2;

    /// A rule sending about `evaluation_share` of the documents to evaluation.
    pub fn new(evaluation_share: f64) -> DataResult<SplitRule> {
        if !(evaluation_share > 0.0 && evaluation_share < 1.0) {
            return Err(DataError::InvalidEvaluationShare { value: evaluation_share });
        }
        // 2^64 as f64 is exact; the product truncates like Python's int(share * 2**64).
        let threshold = (evaluation_share * 18_446_744_073_709_551_616.0) as u64;
        Ok(SplitRule { evaluation_share, threshold })
    }

    /// The share this rule was built with.
    pub fn evaluation_share(&self) -> f64 {
        self.evaluation_share
    }

    /// The split of the document with this key.
    pub fn assign(&self, key: &str) -> CorpusSplit {
        self.assign_hash(key_hash(key))
    }

    /// The 64-bit hash [`SplitRule::assign`] compares, for sources that store it in an index
    /// instead of keeping the key.
    pub(crate) fn text_key(key: &str) -> u64 {
        key_hash(key)
    }

    /// The split of the document whose key hashes to `hash` (see [`SplitRule::text_key`]).
    pub(crate) fn assign_hash(&self, hash: u64) -> CorpusSplit {
        if hash < self.threshold {
            CorpusSplit::Evaluation
        } else {
            CorpusSplit::Calibration
        }
    }
}

impl Default for SplitRule {
    fn default() -> Self {
        SplitRule::new(Self::DEFAULT_EVALUATION_SHARE).expect("the default share lies in (0, 1)")
    }
}

/// First 8 bytes of SHA-256(DOMAIN ‖ key), big-endian.
fn key_hash(key: &str) -> u64 {
    let digest = Sha256::new().chain_update(DOMAIN).chain_update(key.as_bytes()).finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_python_hashlib() {
        // Pinned from scripts/data_split_reference.py (hashlib.sha256); exact integers.
        assert_eq!(key_hash("article-01"), 0x3bbf_61df_3692_7ff9);
        assert_eq!(key_hash("sect.apt-get"), 0x446d_eb91_e5af_b354);
        assert_eq!(key_hash("Kifungu cha 1 – ü 中文"), 0x7151_6ecd_5d97_fb58);
    }

    #[test]
    fn rejects_shares_outside_the_open_unit_interval() {
        for bad in [0.0, 1.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
            assert!(SplitRule::new(bad).is_err(), "{bad}");
        }
        let message = SplitRule::new(1.0).unwrap_err().to_string();
        assert!(message.contains("evaluation share 1 is not strictly between 0 and 1"), "{message}");
    }

    #[test]
    fn assignment_is_deterministic_and_near_the_share() {
        let rule = SplitRule::new(0.25).unwrap();
        let keys: Vec<String> = (0..4000).map(|i| format!("doc-{i}")).collect();
        let evaluation = keys.iter().filter(|k| rule.assign(k) == CorpusSplit::Evaluation).count();
        // Binomial(4000, 0.25): sd = sqrt(4000·0.25·0.75) ≈ 27.4; ±5 sd = ±137 never fails by
        // chance for a fixed hash, but would catch a wrong threshold (e.g. share inverted).
        assert!((1000 - 137..=1000 + 137).contains(&evaluation), "{evaluation}");
        assert!(keys.iter().all(|k| rule.assign(k) == rule.assign(k)));
    }
}
