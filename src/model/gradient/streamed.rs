//! The reverse pass with one part of the model in memory at a time, for models streamed under
//! a memory budget ([`crate::model::memory`]).
//!
//! The pass is the same as on [`DecoderWeights`] (the same functions on the same values, in
//! the same order), but each part is read from the model folder when its turn comes and
//! dropped after: the embedding for the forward's start; each block for its forward, and again
//! for its backward (its weights widened to the pass's float type only then: a 16-bit folder
//! stays 16-bit on disk and in the page cache until its block runs); the output layer for the
//! head. What stays is what the resident pass keeps besides its weights: every block's input
//! per window, one block's tape per worker, and the gradients. Reading each block twice (three
//! times with GraSP's norm) is the price.

use std::borrow::Cow;
use std::cell::RefCell;

use ndarray::{Array1, Array2};
use rayon::prelude::*;

use super::{
    block_from_reader, cast, embed_window, loss_and_gradients, sum_squares, BlockGrads, BlockWeights, Gradients, HeadOutput, HeadWeights,
    PassWeights, Real, RopeTables,
};
use crate::model::decoder::DecoderSpec;
use crate::model::weights::WeightStore;
use crate::model::{ModelDir, ModelError};

/// Reads a stored tensor by name (row-major, the graph's layout), widened to f32.
type Reader = Box<dyn Fn(&str) -> Result<Vec<f32>, ModelError> + Send + Sync>;

/// A decoder whose weights stay in the model folder until the pass needs them.
pub struct StreamedWeights {
    pub spec: DecoderSpec,
    read: Reader,
}

/// The weights one pass reads: the folder's, or those moved by `step * direction` on every
/// prunable weight (GraSP's perturbed passes), as [`DecoderWeights::step_prunable`] moves them.
struct Pass<'a, F> {
    weights: &'a StreamedWeights,
    step: Option<(&'a Gradients<F>, F)>,
    /// Rotary tables, made on the first block that uses each (small: positions x head_dim).
    tables: RefCell<Vec<RopeTables<F>>>,
}

impl StreamedWeights {
    /// A decoder read through `read` (the names of [`DecoderSpec::weight_shapes`]).
    pub fn new(spec: DecoderSpec, read: impl Fn(&str) -> Result<Vec<f32>, ModelError> + Send + Sync + 'static) -> Self {
        StreamedWeights { spec, read: Box::new(read) }
    }

    /// An imported model's weights, left in its folder (its card must carry the decoder spec).
    pub fn open(model: &ModelDir) -> Result<Self, ModelError> {
        let spec = super::decoder_spec(model)?;
        let store = WeightStore::open(&model.dir, &model.card.graph)?;
        Ok(Self::new(spec, move |name| store.read(name)))
    }

    fn pass<'a, F: Real>(&'a self, step: Option<(&'a Gradients<F>, F)>) -> Pass<'a, F> {
        Pass { weights: self, step, tables: RefCell::new(Vec::new()) }
    }

    fn vector<F: Real>(&self, name: &str) -> Result<Array1<F>, ModelError> {
        Ok((self.read)(name)?.into_iter().map(|v| cast(f64::from(v))).collect())
    }

    /// A `[vocab, d]` matrix (the embedding or the output layer).
    fn table<F: Real>(&self, name: &str) -> Result<Array2<F>, ModelError> {
        let (rows, cols) = (self.spec.vocab_size, self.spec.d_model);
        let data: Vec<F> = (self.read)(name)?.into_iter().map(|v| cast(f64::from(v))).collect();
        Array2::from_shape_vec((rows, cols), data).map_err(|_| ModelError::Unusable {
            path: name.into(),
            reason: format!("tensor '{name}' does not hold {rows} x {cols} values; re-import the model"),
        })
    }

    fn norm_bias<F: Real>(&self, stem: &str) -> Result<Option<Array1<F>>, ModelError> {
        if self.spec.gpt.norm_bias {
            Ok(Some(self.vector(&format!("{stem}.bias"))?))
        } else {
            Ok(None)
        }
    }

    /// [`DecoderWeights::loss_and_gradients`], one part in memory at a time.
    pub fn loss_and_gradients<F: Real>(&self, windows: &[Vec<u32>], on_block: impl FnMut(usize)) -> Result<Gradients<F>, ModelError> {
        loss_and_gradients(&self.pass::<F>(None), windows, on_block)
    }

    /// [`DecoderWeights::prunable_norm`], reading one block at a time.
    pub fn prunable_norm<F: Real>(&self) -> Result<f64, ModelError> {
        let pass = self.pass::<F>(None);
        let mut per_matrix = Vec::new();
        for i in 0..self.spec.blocks {
            let b = pass.block(i)?;
            per_matrix.extend(b.linear.iter().map(|m| sum_squares(std::iter::once(m))));
        }
        // The resident norm sums the same per-matrix sums in the same order.
        Ok(per_matrix.into_iter().sum::<f64>().sqrt())
    }

    /// [`DecoderWeights::hessian_gradient_product`], one part in memory at a time: the two
    /// perturbed passes move each block's weights as the block is read.
    pub fn hessian_gradient_product<F: Real>(
        &self,
        windows: &[Vec<u32>],
        g: &Gradients<F>,
        delta: f64,
        mut on_pass: impl FnMut(&str, usize),
    ) -> Result<Gradients<F>, ModelError> {
        let eps = delta * self.prunable_norm::<F>()? / g.norm().max(f64::MIN_POSITIVE);
        let plus = loss_and_gradients(&self.pass(Some((g, cast(eps)))), windows, |k| on_pass("w + eps g", k))?;
        let minus = loss_and_gradients(&self.pass(Some((g, cast(-eps)))), windows, |k| on_pass("w - eps g", k))?;
        Ok(super::central_difference(plus, minus, eps))
    }
}

impl<F: Real> PassWeights<F> for Pass<'_, F> {
    fn spec(&self) -> &DecoderSpec {
        &self.weights.spec
    }

    fn embedded(&self, windows: &[Vec<u32>]) -> Result<Vec<Array2<F>>, ModelError> {
        let w = self.weights;
        let embed = w.table::<F>("token_embd.weight")?;
        let norm = if w.spec.gpt.embed_norm { Some((w.vector("token_embd_norm.weight")?, w.norm_bias("token_embd_norm")?)) } else { None };
        Ok(windows.par_iter().map(|ids| embed_window(&w.spec, &embed, norm.as_ref(), ids)).collect())
    }

    fn block(&self, i: usize) -> Result<Cow<'_, BlockWeights<F>>, ModelError> {
        let mut b = block_from_reader(&self.weights.spec, i, &self.weights.read, &mut self.tables.borrow_mut())?;
        if let Some((direction, step)) = self.step {
            let g: &BlockGrads<F> = &direction.blocks[i];
            for (w, d) in b.linear.iter_mut().zip(&g.linear) {
                w.scaled_add(step, d);
            }
        }
        Ok(Cow::Owned(b))
    }

    fn heads(&self, top: &[Array2<F>], windows: &[Vec<u32>], scale: F) -> Result<Vec<HeadOutput<F>>, ModelError> {
        let w = self.weights;
        let output = w.table::<F>(if w.spec.tied_output { "token_embd.weight" } else { "output.weight" })?;
        let (norm, norm_bias) = (w.vector::<F>("output_norm.weight")?, w.norm_bias::<F>("output_norm")?);
        let head = HeadWeights { norm: &norm, norm_bias: norm_bias.as_ref(), output: &output };
        Ok(top.par_iter().zip(windows).map(|(x, ids)| head.run(&w.spec, x.view(), ids, scale)).collect())
    }
}
