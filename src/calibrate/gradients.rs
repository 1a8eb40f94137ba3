//! What SNIP and GraSP measure on the calibration set: the gradient of the mean next-token
//! loss over every window with respect to every prunable weight, and for GraSP the
//! Hessian-gradient product, from the model's own reverse pass ([`crate::model::gradient`]).
//! The windows are those the other methods calibrate on; the whole model stays dense while the
//! gradients are taken (SNIP and GraSP score the dense model once, like one-shot Wanda).

use super::{CalibrationError, CalibrationSet};
use crate::model::gradient::{DecoderWeights, Gradients, GRASP_DELTA};
use crate::model::ModelDir;

/// The model's weights (read once, reused to build the masks) and its gradients.
pub struct GradientSaliency {
    pub weights: DecoderWeights<f32>,
    pub gradient: Gradients<f32>,
    /// `H g`, when GraSP asked for it.
    pub hessian_gradient: Option<Gradients<f32>>,
    /// Seconds spent on `g` (one forward and backward of the set) and on `H g` (two more).
    pub gradient_s: f64,
    pub hessian_gradient_s: f64,
}

/// Gradients of `model`'s loss on `set`; with `hessian`, also `H g` (GraSP). `on_stage(block,
/// stage)` is told which block each backward reaches.
pub fn collect_gradients(
    model: &ModelDir,
    set: &CalibrationSet,
    hessian: bool,
    mut on_stage: impl FnMut(usize, &str),
) -> Result<GradientSaliency, CalibrationError> {
    if set.windows.is_empty() {
        return Err(CalibrationError::Invalid("SNIP and GraSP need calibration windows: give --calib and --samples >= 1".into()));
    }
    let weights = DecoderWeights::<f32>::load(model)?;
    let t0 = std::time::Instant::now();
    let gradient = weights.loss_and_gradients(&set.windows, |k| on_stage(k, "gradient"));
    let gradient_s = t0.elapsed().as_secs_f64();
    let t1 = std::time::Instant::now();
    let hessian_gradient = hessian.then(|| {
        weights.hessian_gradient_product(&set.windows, &gradient, GRASP_DELTA, |pass, k| on_stage(k, &format!("H g: gradient at {pass}")))
    });
    let hessian_gradient_s = t1.elapsed().as_secs_f64();
    Ok(GradientSaliency { weights, gradient, hessian_gradient, gradient_s, hessian_gradient_s })
}
