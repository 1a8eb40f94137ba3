//! How much a weight change moves a layer's outputs on one language's inputs, from that
//! language's calibration statistics alone.
//!
//! For a linear layer `y = W x` and a change `D = W' - W` (a mask, and for SparseGPT the
//! optimal-brain-surgeon update), the squared output change summed over tokens `X` (`n x d`) is
//! `||D X^T||_F^2 = tr(D G D^T) = <D^T D, G>` with `G = X^T X`, the Gram matrix that the
//! calibration statistics already hold. So once `D^T D` is formed (`rows x d^2` work), each
//! language costs only a `d^2` inner product with its own Gram matrix: the layer error of one
//! pruned layer on every target language, without running the model on any of them.
//! The same product with `W` itself gives the output's own energy, which makes the error
//! relative and so comparable across layers and languages.

use faer::{Accum, Mat, MatRef};

use super::statistics::{lower_gram, InputStatistics};

/// `M^T M` (lower triangle) of a row-major `rows x cols` matrix `M`.
#[derive(Debug, Clone)]
pub struct ColumnGram {
    lower: Mat<f64>,
}

impl ColumnGram {
    /// `M^T M` for `M` given row-major, computed in f64.
    pub fn of(matrix: &[f64], rows: usize, cols: usize) -> ColumnGram {
        let m = MatRef::from_row_major_slice(matrix, rows, cols);
        let mut lower = Mat::<f64>::zeros(cols, cols);
        lower_gram(lower.as_mut(), Accum::Replace, m);
        ColumnGram { lower }
    }

    /// `D^T D` for the change `D = changed - original` of a row-major `rows x cols` weight.
    pub fn of_change(original: &[f32], changed: &[f32], rows: usize, cols: usize) -> ColumnGram {
        let d: Vec<f64> = original.iter().zip(changed).map(|(&w, &v)| f64::from(v) - f64::from(w)).collect();
        ColumnGram::of(&d, rows, cols)
    }

    /// `||M x||^2` summed over the tokens behind `statistics` and divided by their number:
    /// the mean squared output of `M` on those inputs. `None` when the statistics hold no Gram
    /// matrix or no tokens, or their width differs.
    pub fn mean_squared_output(&self, statistics: &InputStatistics) -> Option<f64> {
        if statistics.tokens() == 0 || statistics.width() != self.lower.nrows() {
            return None;
        }
        Some(statistics.gram_inner_product(self.lower.as_ref())? / statistics.tokens() as f64)
    }
}
