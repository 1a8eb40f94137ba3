//! [`Mask`]: which weights of a layer survive pruning, one bit per weight.
//!
//! Bits are packed into `u64` words in row-major order of the `[out][in]` weight: element
//! `(row, col)` has flat index `i = row * cols + col` and lives in bit `i % 64` of word `i / 64`
//! (least significant bit first). A set bit means the weight is KEPT. Rows are not padded, so a
//! mask costs `ceil(rows * cols / 64)` words; the unused high bits of the last word are always
//! zero, which lets equality and the file format compare words directly.

use super::error::PruneError;
use super::sparsity::NmPattern;

const BITS: usize = u64::BITS as usize;

/// A bit-packed keep/prune mask for a `rows x cols` weight matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    rows: usize,
    cols: usize,
    words: Vec<u64>,
}

/// Where a mask breaks an N:M pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NmViolation {
    /// The row width is not a multiple of M, so the groups are not defined.
    WidthNotMultiple {
        /// Mask columns.
        cols: usize,
        /// Group width.
        m: usize,
    },
    /// A group keeps more than M - N weights.
    Group {
        /// Row of the group.
        row: usize,
        /// First column of the group.
        first_col: usize,
        /// How many weights of the group are pruned (fewer than N).
        pruned: usize,
    },
}

impl Mask {
    /// A mask that keeps every weight.
    pub fn all_kept(rows: usize, cols: usize) -> Self {
        let len = rows * cols;
        let mut words = vec![u64::MAX; len.div_ceil(BITS)];
        let tail = len % BITS;
        if tail != 0 {
            if let Some(last) = words.last_mut() {
                *last = (1u64 << tail) - 1;
            }
        }
        Self { rows, cols, words }
    }

    /// A mask that prunes every weight.
    pub fn all_pruned(rows: usize, cols: usize) -> Self {
        Self { rows, cols, words: vec![0; (rows * cols).div_ceil(BITS)] }
    }

    /// Builds a mask from its packed words, checking the word count and that unused bits are
    /// zero; `None` if either fails (the caller turns that into a meaningful error).
    pub(super) fn from_words(rows: usize, cols: usize, words: Vec<u64>) -> Option<Self> {
        let len = rows.checked_mul(cols)?;
        if words.len() != len.div_ceil(BITS) {
            return None;
        }
        let tail = len % BITS;
        if tail != 0 && words.last().is_some_and(|w| w >> tail != 0) {
            return None;
        }
        Some(Self { rows, cols, words })
    }

    /// Number of rows (outputs).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (inputs).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Number of weights covered, `rows * cols`.
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    /// True for a mask over zero weights.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The packed words (see the module documentation for the layout).
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    fn flat_index(&self, row: usize, col: usize) -> usize {
        assert!(row < self.rows && col < self.cols, "mask index ({row}, {col}) outside {} x {}", self.rows, self.cols);
        row * self.cols + col
    }

    fn bit(&self, index: usize) -> bool {
        self.words[index / BITS] >> (index % BITS) & 1 == 1
    }

    /// Whether weight `(row, col)` is kept. Panics if the index is outside the mask.
    pub fn get(&self, row: usize, col: usize) -> bool {
        self.bit(self.flat_index(row, col))
    }

    /// Marks weight `(row, col)` as kept (`true`) or pruned. Panics if outside the mask.
    pub fn set(&mut self, row: usize, col: usize, kept: bool) {
        let index = self.flat_index(row, col);
        let word = &mut self.words[index / BITS];
        let bit = 1u64 << (index % BITS);
        if kept {
            *word |= bit;
        } else {
            *word &= !bit;
        }
    }

    /// Number of kept weights.
    pub fn count_kept(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Number of pruned weights.
    pub fn count_pruned(&self) -> usize {
        self.len() - self.count_kept()
    }

    /// Number of pruned weights in one row.
    pub fn count_pruned_in_row(&self, row: usize) -> usize {
        (0..self.cols).filter(|&col| !self.get(row, col)).count()
    }

    /// Zeroes every pruned weight of a row-major `[rows][cols]` matrix in place.
    pub fn apply(&self, weights: &mut [f32]) -> Result<(), PruneError> {
        if weights.len() != self.len() {
            return Err(PruneError::MaskShape { rows: self.rows, cols: self.cols, what: "a weight matrix", len: weights.len() });
        }
        for (chunk, &word) in weights.chunks_mut(BITS).zip(&self.words) {
            if word == u64::MAX {
                continue;
            }
            for (bit, value) in chunk.iter_mut().enumerate() {
                if word >> bit & 1 == 0 {
                    *value = 0.0;
                }
            }
        }
        Ok(())
    }

    /// The first place (row-major) where the mask fails the N:M pattern, or `None` if every group
    /// of `m` consecutive columns in every row has at least `n` pruned weights (at most `m - n`
    /// non-zeros, which is what N:M sparse hardware requires).
    pub fn first_nm_violation(&self, nm: NmPattern) -> Option<NmViolation> {
        let m = nm.m();
        if !self.cols.is_multiple_of(m) {
            return Some(NmViolation::WidthNotMultiple { cols: self.cols, m });
        }
        for row in 0..self.rows {
            for first_col in (0..self.cols).step_by(m) {
                let pruned = (first_col..first_col + m).filter(|&c| !self.get(row, c)).count();
                if pruned < nm.n() {
                    return Some(NmViolation::Group { row, first_col, pruned });
                }
            }
        }
        None
    }

    /// True when [`Mask::first_nm_violation`] finds nothing.
    pub fn is_nm_valid(&self, nm: NmPattern) -> bool {
        self.first_nm_violation(nm).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_and_counts_agree_with_a_bool_vector() {
        // 3 x 37 = 111 bits: spans two words with a partial tail.
        let (rows, cols) = (3, 37);
        let mut mask = Mask::all_kept(rows, cols);
        assert_eq!(mask.count_kept(), 111);
        let mut expected = vec![true; rows * cols];
        for i in (0..rows * cols).filter(|i| i % 3 == 0 || i % 7 == 0) {
            mask.set(i / cols, i % cols, false);
            expected[i] = false;
        }
        mask.set(2, 36, true);
        expected[2 * 37 + 36] = true;
        for (i, &kept) in expected.iter().enumerate() {
            assert_eq!(mask.get(i / cols, i % cols), kept, "index {i}");
        }
        assert_eq!(mask.count_kept(), expected.iter().filter(|&&k| k).count());
        assert_eq!(mask.count_pruned() + mask.count_kept(), 111);
        assert_eq!(mask.count_pruned_in_row(0), (0..37).filter(|i| !expected[*i]).count());
        // Unused high bits stay zero, so all_kept over 111 bits has exactly 111 ones.
        assert_eq!(mask.words()[1] >> (111 - 64), 0);
    }

    #[test]
    fn apply_zeroes_exactly_the_pruned_weights() {
        let mut mask = Mask::all_kept(2, 3);
        mask.set(0, 1, false);
        mask.set(1, 2, false);
        let mut w = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        mask.apply(&mut w).unwrap();
        assert_eq!(w, vec![1.0, 0.0, 3.0, 4.0, 5.0, 0.0]);
        assert!(matches!(mask.apply(&mut [0.0; 5]), Err(PruneError::MaskShape { len: 5, .. })));
    }

    #[test]
    fn nm_check_finds_a_broken_group() {
        let nm = NmPattern::new(2, 4).unwrap();
        let mut mask = Mask::all_kept(2, 8);
        for row in 0..2 {
            for group in [0, 4] {
                mask.set(row, group, false);
                mask.set(row, group + 3, false);
            }
        }
        assert!(mask.is_nm_valid(nm));
        mask.set(1, 7, true);
        assert_eq!(mask.first_nm_violation(nm), Some(NmViolation::Group { row: 1, first_col: 4, pruned: 1 }));
        assert_eq!(Mask::all_pruned(1, 6).first_nm_violation(nm), Some(NmViolation::WidthNotMultiple { cols: 6, m: 4 }));
    }

    #[test]
    fn from_words_rejects_bad_lengths_and_padding() {
        assert!(Mask::from_words(1, 65, vec![0, 1]).is_some());
        assert!(Mask::from_words(1, 65, vec![0]).is_none());
        assert!(Mask::from_words(1, 65, vec![0, 2]).is_none());
    }
}
