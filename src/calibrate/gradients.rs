//! What SNIP and GraSP measure on the calibration set: the gradient of the mean next-token
//! loss over every window with respect to every prunable weight, and for GraSP the
//! Hessian-gradient product, from the model's own reverse pass ([`crate::model::gradient`]).
//! The windows are those the other methods calibrate on; the whole model stays dense while the
//! gradients are taken (SNIP and GraSP score the dense model once, like one-shot Wanda).

use std::borrow::Cow;
use std::sync::Arc;

use ndarray::Array2;

use super::{CalibrationError, CalibrationSet};
use crate::model::decoder::DecoderSpec;
use crate::model::gradient::{
    rows_of, sum_squares, BlockGradientStore, BlockGrads, DecoderWeights, GradientBlocks, Gradients, StreamedWeights, GRASP_DELTA,
};
use crate::model::{LinearLayer, ModelDir, ModelError};
use crate::runtime::spill::SpillDir;
use crate::runtime::{FloatType, WeightOverride};

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

/// SNIP's and GraSP's inputs with nothing model-sized in memory (`prune` under a budget that
/// spills): the reverse pass reads one block's weights at a time ([`StreamedWeights`]), and each
/// block's gradients, and GraSP's `H g`, go to the spill folder as the block is done. Layers
/// then read their gradient back one at a time (and their weight from the model folder).
pub struct SpilledSaliency<'a> {
    pub gradient: SpilledGradients<'a>,
    pub hessian_gradient: Option<SpilledGradients<'a>>,
    pub gradient_s: f64,
    pub hessian_gradient_s: f64,
}

/// [`collect_gradients`] with the gradients in `dir` instead of memory: the same values, bit
/// for bit, in one thread (`tests/streamed_gradients.rs`), at the cost of reading each block
/// two more times (four more with GraSP) and writing `g` (and `H g`) to disk in f32.
pub fn spill_gradients<'a>(
    model: &ModelDir,
    set: &CalibrationSet,
    hessian: bool,
    dir: &'a SpillDir,
    mut on_stage: impl FnMut(usize, &str),
) -> Result<SpilledSaliency<'a>, CalibrationError> {
    if set.windows.is_empty() {
        return Err(CalibrationError::Invalid("SNIP and GraSP need calibration windows: give --calib and --samples >= 1".into()));
    }
    let weights = StreamedWeights::open(model)?;
    let t0 = std::time::Instant::now();
    let mut gradient = SpilledGradients::new(dir, "gradient", &weights.spec);
    weights.loss_and_gradients_into::<f32>(&set.windows, |k| on_stage(k, "gradient"), &mut gradient)?;
    let gradient_s = t0.elapsed().as_secs_f64();
    let t1 = std::time::Instant::now();
    let hessian_gradient = if hessian {
        // The gradients at w + eps g wait on disk for the pass at w - eps g, a block at a time.
        let mut plus = SpilledGradients::new(dir, "gradient-plus", &weights.spec);
        let mut product = SpilledGradients::new(dir, "hessian-gradient", &weights.spec);
        weights.hessian_gradient_product_into(&set.windows, &gradient, GRASP_DELTA, &mut plus, &mut product, |pass, k| {
            on_stage(k, &format!("H g: gradient at {pass}"))
        })?;
        Some(product)
    } else {
        None
    };
    let hessian_gradient_s = t1.elapsed().as_secs_f64();
    Ok(SpilledSaliency { gradient, hessian_gradient, gradient_s, hessian_gradient_s })
}

/// Gradients of every block in a spill folder: one safetensors file per block
/// (`<kind>-block-NNN`), each layer's gradient in f32 under the layer's name, in the graph's
/// `[in, out]` layout. Only the file handles and each matrix's sum of squares stay in memory.
pub struct SpilledGradients<'a> {
    dir: &'a SpillDir,
    kind: &'static str,
    /// Each block's layers, as the pass orders its gradients.
    layers: Vec<Vec<LinearLayer>>,
    /// Each block's spilled gradients (in `layers` order), once put.
    files: Vec<Option<Vec<WeightOverride>>>,
    /// Each block's per-matrix sums of squares: the norm GraSP's step needs, without a read.
    squares: Vec<Option<Vec<f64>>>,
}

impl<'a> SpilledGradients<'a> {
    fn new(dir: &'a SpillDir, kind: &'static str, spec: &DecoderSpec) -> Self {
        SpilledGradients {
            dir,
            kind,
            layers: (0..spec.blocks).map(|i| spec.linear_layers_of_block(i)).collect(),
            files: vec![None; spec.blocks],
            squares: vec![None; spec.blocks],
        }
    }

    fn file_name(&self, block: usize) -> String {
        format!("{}-block-{block:03}", self.kind)
    }

    fn unreadable(&self, reason: String) -> ModelError {
        ModelError::Unusable { path: self.dir.path().to_path_buf(), reason }
    }

    /// One layer's gradient as `[out][in]` rows (the layout the pruning maths uses), read back
    /// from its block's file.
    pub fn rows(&self, layer: &LinearLayer) -> Result<Vec<f32>, ModelError> {
        let missing =
            || self.unreadable(format!("no {} gradient of {} was written; the model card and its spec disagree", self.kind, layer.name));
        let spilled = self.files.get(layer.block).and_then(Option::as_ref).ok_or_else(missing)?;
        let o = spilled.iter().find(|o| o.name == layer.name).ok_or_else(missing)?;
        Ok(rows_of(&self.matrix(o)?))
    }

    /// A spilled gradient as the `[in, out]` matrix it was.
    fn matrix(&self, o: &WeightOverride) -> Result<Array2<f32>, ModelError> {
        let values = o.values().map_err(|e| self.unreadable(e.to_string()))?;
        let values = Arc::try_unwrap(values).unwrap_or_else(|shared| (*shared).clone());
        let (rows, cols) = (o.shape[0], o.shape[1]);
        Array2::from_shape_vec((rows, cols), values)
            .map_err(|_| self.unreadable(format!("{} does not hold {rows} x {cols} values", o.name)))
    }
}

impl GradientBlocks<f32> for SpilledGradients<'_> {
    fn block(&self, i: usize) -> Result<Cow<'_, BlockGrads<f32>>, ModelError> {
        let spilled = self
            .files
            .get(i)
            .and_then(Option::as_ref)
            .ok_or_else(|| self.unreadable(format!("block {i}'s {} gradients were never written", self.kind)))?;
        let linear = spilled.iter().map(|o| self.matrix(o)).collect::<Result<Vec<_>, _>>()?;
        Ok(Cow::Owned(BlockGrads { linear, roles: self.layers[i].iter().map(|l| l.role).collect() }))
    }

    fn norm(&self) -> Result<f64, ModelError> {
        let mut all: Vec<f64> = Vec::new();
        for (i, s) in self.squares.iter().enumerate() {
            all.extend(s.as_ref().ok_or_else(|| self.unreadable(format!("block {i}'s {} gradients were never written", self.kind)))?);
        }
        // The resident norm adds the same per-matrix sums in the same (block) order.
        Ok(all.into_iter().sum::<f64>().sqrt())
    }
}

impl BlockGradientStore<f32> for SpilledGradients<'_> {
    fn put(&mut self, i: usize, g: BlockGrads<f32>) -> Result<(), ModelError> {
        let layers = &self.layers[i];
        if g.roles != layers.iter().map(|l| l.role).collect::<Vec<_>>() {
            return Err(self.unreadable(format!("block {i}'s gradients do not match its layers; this is a bug")));
        }
        self.squares[i] = Some(g.linear.iter().map(|m| sum_squares(std::iter::once(m))).collect());
        let overrides: Vec<WeightOverride> = g
            .linear
            .into_iter()
            .zip(layers)
            .map(|(m, l)| WeightOverride::new(l.name.clone(), vec![m.nrows(), m.ncols()], into_row_major(m), FloatType::F32))
            .collect();
        let spilled = self.dir.spill(&self.file_name(i), overrides).map_err(|e| self.unreadable(e.to_string()))?;
        self.files[i] = Some(spilled);
        Ok(())
    }

    fn discard(&mut self, i: usize) {
        if self.files[i].take().is_some() {
            // Best effort: a file left behind goes with the spill folder at the end of the run.
            let _ = std::fs::remove_file(self.dir.path().join(format!("{}.safetensors", self.file_name(i))));
        }
    }
}

impl Drop for SpilledGradients<'_> {
    /// The files go as soon as the gradients are done with (an 8B model's are 28 GB in f32),
    /// not with the spill folder at the end of the run.
    fn drop(&mut self) {
        for i in 0..self.files.len() {
            self.discard(i);
        }
    }
}

/// A matrix's values row-major, without a copy when it already is (every gradient is).
fn into_row_major(m: Array2<f32>) -> Vec<f32> {
    let m = if m.is_standard_layout() { m } else { m.as_standard_layout().into_owned() };
    let n = m.len();
    match m.into_raw_vec_and_offset() {
        (values, None | Some(0)) if values.len() == n => values,
        (values, offset) => {
            let start = offset.unwrap_or(0);
            values[start..start + n].to_vec()
        }
    }
}
