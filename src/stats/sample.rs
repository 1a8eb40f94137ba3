//! Validated numeric inputs: a sample of finite values and paired samples.
//!
//! Checking finiteness and size once, at construction, lets every statistic
//! downstream assume clean data instead of re-validating (or silently producing NaN).
//! Each input carries a caller-chosen label so that errors can say which one is wrong.

use super::error::StatsError;

/// Minimum size for anything with a sample standard deviation (n - 1 > 0).
const MIN_SAMPLE_SIZE: usize = 2;

fn check_all_finite(label: &str, values: &[f64]) -> Result<(), StatsError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(StatsError::NonFinite { input: label.to_owned(), index, value: values[index] }),
        None => Ok(()),
    }
}

fn check_min_len(label: &str, len: usize, required: usize) -> Result<(), StatsError> {
    if len < required {
        Err(StatsError::TooFewValues { input: label.to_owned(), required, actual: len })
    } else {
        Ok(())
    }
}

/// At least two finite observations (e.g. one metric across seeds).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    label: String,
    values: Vec<f64>,
}

impl Sample {
    /// Validates `values`; `label` names the input in error messages.
    pub fn new(label: &str, values: Vec<f64>) -> Result<Self, StatsError> {
        check_all_finite(label, &values)?;
        check_min_len(label, values.len(), MIN_SAMPLE_SIZE)?;
        Ok(Sample { label: label.to_owned(), values })
    }

    /// The label given at construction.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The observations, in input order.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Number of observations (always at least 2).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Always false; present because `len` is.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Two equally long finite samples measured on the same units (documents,
/// examples, seeds), with at least two pairs. Differences are `first - second`.
#[derive(Debug, Clone, PartialEq)]
pub struct PairedSamples {
    label: String,
    first: Vec<f64>,
    second: Vec<f64>,
    differences: Vec<f64>,
}

impl PairedSamples {
    /// Validates the pair of samples; the labels name them in error messages.
    pub fn new(first_label: &str, first: Vec<f64>, second_label: &str, second: Vec<f64>) -> Result<Self, StatsError> {
        check_all_finite(first_label, &first)?;
        check_all_finite(second_label, &second)?;
        if first.len() != second.len() {
            return Err(StatsError::LengthMismatch {
                first: first_label.to_owned(),
                first_len: first.len(),
                second: second_label.to_owned(),
                second_len: second.len(),
            });
        }
        let label = format!("{first_label} - {second_label}");
        check_min_len(&label, first.len(), MIN_SAMPLE_SIZE)?;
        let differences: Vec<f64> = first.iter().zip(&second).map(|(a, b)| a - b).collect();
        // Two finite values can still overflow when subtracted (e.g. 1e308 - -1e308).
        check_all_finite(&label, &differences)?;
        Ok(PairedSamples { label, first, second, differences })
    }

    /// Builds paired samples whose differences are exactly `differences`
    /// (the second sample is all zeros). Useful when only differences are stored.
    pub fn from_differences(label: &str, differences: Vec<f64>) -> Result<Self, StatsError> {
        let zeros = vec![0.0; differences.len()];
        let mut pairs = PairedSamples::new(label, differences, "zero baseline", zeros)?;
        pairs.label = label.to_owned();
        Ok(pairs)
    }

    /// A label for the differences, `"first - second"`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The first sample.
    pub fn first(&self) -> &[f64] {
        &self.first
    }

    /// The second sample.
    pub fn second(&self) -> &[f64] {
        &self.second
    }

    /// Per-unit differences `first[i] - second[i]`.
    pub fn differences(&self) -> &[f64] {
        &self.differences
    }

    /// The differences as a validated [`Sample`].
    pub fn differences_sample(&self) -> Sample {
        Sample { label: self.label.clone(), values: self.differences.clone() }
    }

    /// Number of pairs (always at least 2).
    pub fn len(&self) -> usize {
        self.differences.len()
    }

    /// Always false; present because `len` is.
    pub fn is_empty(&self) -> bool {
        self.differences.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_rejects_nan_and_names_position() {
        let err = Sample::new("bpb", vec![1.0, f64::NAN, 2.0]).unwrap_err();
        assert!(matches!(
            &err,
            StatsError::NonFinite { input, index: 1, value } if input == "bpb" && value.is_nan()
        ));
        let message = err.to_string();
        assert!(message.contains("`bpb`") && message.contains("position 1"), "{message}");
    }

    #[test]
    fn sample_needs_two_values() {
        let err = Sample::new("acc", vec![0.5]).unwrap_err();
        assert!(matches!(err, StatsError::TooFewValues { required: 2, actual: 1, .. }));
    }

    #[test]
    fn paired_rejects_length_mismatch_and_overflowing_difference() {
        let err = PairedSamples::new("a", vec![1.0, 2.0], "b", vec![1.0]).unwrap_err();
        assert!(matches!(err, StatsError::LengthMismatch { first_len: 2, second_len: 1, .. }));
        let err = PairedSamples::new("a", vec![1e308, 0.0], "b", vec![-1e308, 0.0]).unwrap_err();
        assert!(matches!(err, StatsError::NonFinite { index: 0, .. }));
    }

    #[test]
    fn differences_are_first_minus_second() {
        let pairs = PairedSamples::new("a", vec![3.0, 1.0], "b", vec![1.0, 4.0]).unwrap();
        assert_eq!(pairs.differences(), &[2.0, -3.0]);
        assert_eq!(pairs.label(), "a - b");
    }
}
