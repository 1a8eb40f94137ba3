//! [`LinearWeight`]: the weight matrix of one linear layer, as the pruning methods see it.
//!
//! Layout follows PyTorch's `nn.Linear`: `y = W x`, `W` stored row-major as `[out][in]`, so a row
//! is one output and a column is one input channel. Input-channel statistics (Wanda's norms,
//! SparseGPT's Hessian) therefore index columns.

use super::error::PruneError;

/// A validated, finite, row-major `[out_features][in_features]` weight matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearWeight {
    out_features: usize,
    in_features: usize,
    data: Vec<f32>,
}

impl LinearWeight {
    /// Checks that `data` has `out_features * in_features` finite values; `layer` names the layer
    /// in the error.
    pub fn new(layer: &str, out_features: usize, in_features: usize, data: Vec<f32>) -> Result<Self, PruneError> {
        let expected = out_features.checked_mul(in_features);
        if expected != Some(data.len()) {
            return Err(PruneError::WeightShape {
                layer: layer.to_string(),
                out_features,
                in_features,
                expected: expected.unwrap_or(usize::MAX),
                len: data.len(),
            });
        }
        if let Some(index) = data.iter().position(|v| !v.is_finite()) {
            return Err(PruneError::NonFiniteWeight {
                layer: layer.to_string(),
                row: index / in_features,
                col: index % in_features,
                value: data[index],
            });
        }
        Ok(Self { out_features, in_features, data })
    }

    /// Number of outputs (rows).
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// Number of inputs (columns).
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// Row-major values.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// One output row.
    pub fn row(&self, row: usize) -> &[f32] {
        &self.data[row * self.in_features..(row + 1) * self.in_features]
    }

    /// Gives back the row-major values.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_wrong_length_and_non_finite_values() {
        let err = LinearWeight::new("fc", 2, 3, vec![0.0; 5]).unwrap_err();
        assert!(matches!(err, PruneError::WeightShape { expected: 6, len: 5, .. }));
        let mut data = vec![1.0; 6];
        data[4] = f32::NAN;
        let err = LinearWeight::new("fc", 2, 3, data).unwrap_err();
        assert!(matches!(err, PruneError::NonFiniteWeight { row: 1, col: 1, .. }));
        assert!(err.to_string().contains("'fc'"));
        let w = LinearWeight::new("fc", 2, 3, vec![0., 1., 2., 3., 4., 5.]).unwrap();
        assert_eq!(w.row(1), &[3.0, 4.0, 5.0]);
    }
}
