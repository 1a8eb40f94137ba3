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
//!
//! The gradients need not stay either: the `_into` passes hand each block's gradients to a
//! [`BlockGradientStore`] as the block is done (`prune` under a budget writes them to a spill
//! folder), and GraSP's perturbed passes read the direction `g` back one block at a time.

use std::borrow::Cow;
use std::cell::RefCell;

use ndarray::{Array1, Array2};
use rayon::prelude::*;

use super::{
    block_from_reader, cast, central_difference_block, embed_window, loss_and_gradients, loss_and_gradients_each, sum_squares, BlockGrads,
    BlockWeights, Gradients, HeadOutput, HeadWeights, PassLoss, PassWeights, Real, RopeTables,
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

/// Gradients read one block at a time: in memory ([`Gradients`]) or from a spill folder.
pub trait GradientBlocks<F: Clone> {
    /// Block `i`'s gradients.
    fn block(&self, i: usize) -> Result<Cow<'_, BlockGrads<F>>, ModelError>;
    /// [`Gradients::norm`]: the same per-matrix sums of squares, added in block order.
    fn norm(&self) -> Result<f64, ModelError>;
}

/// Where a pass puts each block's gradients as it finishes them (top block first).
pub trait BlockGradientStore<F: Clone>: GradientBlocks<F> {
    fn put(&mut self, i: usize, g: BlockGrads<F>) -> Result<(), ModelError>;
    /// Block `i` is read no more (a spill file may go).
    fn discard(&mut self, _i: usize) {}
}

impl<F: Real> GradientBlocks<F> for Gradients<F> {
    fn block(&self, i: usize) -> Result<Cow<'_, BlockGrads<F>>, ModelError> {
        self.blocks.get(i).map(Cow::Borrowed).ok_or_else(|| missing_block(i))
    }
    fn norm(&self) -> Result<f64, ModelError> {
        Ok(Gradients::norm(self))
    }
}

/// Blocks in memory, in block order (`None` until put).
impl<F: Real> GradientBlocks<F> for Vec<Option<BlockGrads<F>>> {
    fn block(&self, i: usize) -> Result<Cow<'_, BlockGrads<F>>, ModelError> {
        self.get(i).and_then(Option::as_ref).map(Cow::Borrowed).ok_or_else(|| missing_block(i))
    }
    fn norm(&self) -> Result<f64, ModelError> {
        let blocks = (0..self.len()).map(|i| self.block(i)).collect::<Result<Vec<_>, _>>()?;
        Ok(sum_squares(blocks.iter().flat_map(|b| b.linear.iter())).sqrt())
    }
}

impl<F: Real> BlockGradientStore<F> for Vec<Option<BlockGrads<F>>> {
    fn put(&mut self, i: usize, g: BlockGrads<F>) -> Result<(), ModelError> {
        if self.len() <= i {
            self.resize_with(i + 1, || None);
        }
        self[i] = Some(g);
        Ok(())
    }
}

fn missing_block(i: usize) -> ModelError {
    ModelError::Unusable { path: "gradients".into(), reason: format!("block {i}'s gradients were never computed; this is a bug") }
}

/// The weights one pass reads: the folder's, or those moved by `step * direction` on every
/// prunable weight (GraSP's perturbed passes), as [`DecoderWeights::step_prunable`] moves them.
struct Pass<'a, F> {
    weights: &'a StreamedWeights,
    step: Option<(&'a dyn GradientBlocks<F>, F)>,
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

    fn pass<'a, F: Real>(&'a self, step: Option<(&'a dyn GradientBlocks<F>, F)>) -> Pass<'a, F> {
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
        on_pass: impl FnMut(&str, usize),
    ) -> Result<Gradients<F>, ModelError> {
        let mut plus: Vec<Option<BlockGrads<F>>> = Vec::new();
        let mut out: Vec<Option<BlockGrads<F>>> = Vec::new();
        let loss = self.hessian_gradient_product_into(windows, g, delta, &mut plus, &mut out, on_pass)?;
        let blocks = out.into_iter().enumerate().map(|(i, b)| b.ok_or_else(|| missing_block(i))).collect::<Result<_, _>>()?;
        Ok(Gradients { loss: loss.loss, predictions: loss.predictions, blocks })
    }

    /// [`StreamedWeights::loss_and_gradients`], each block's gradients put into `store` as the
    /// block is done (top block first) instead of kept.
    pub fn loss_and_gradients_into<F: Real>(
        &self,
        windows: &[Vec<u32>],
        on_block: impl FnMut(usize),
        store: &mut impl BlockGradientStore<F>,
    ) -> Result<PassLoss, ModelError> {
        loss_and_gradients_each(&self.pass::<F>(None), windows, on_block, |i, g| store.put(i, g))
    }

    /// [`StreamedWeights::hessian_gradient_product`] with the gradients out of memory: `g` is
    /// read one block at a time, the gradients at `w + eps g` go to `plus` block by block, and
    /// each block of `H g` goes to `out` as the pass at `w - eps g` reaches it (its `plus`
    /// block is then discarded). At most one block of each is in memory.
    pub fn hessian_gradient_product_into<F: Real>(
        &self,
        windows: &[Vec<u32>],
        g: &dyn GradientBlocks<F>,
        delta: f64,
        plus: &mut impl BlockGradientStore<F>,
        out: &mut impl BlockGradientStore<F>,
        mut on_pass: impl FnMut(&str, usize),
    ) -> Result<PassLoss, ModelError> {
        let eps = delta * self.prunable_norm::<F>()? / g.norm()?.max(f64::MIN_POSITIVE);
        let up = loss_and_gradients_each(&self.pass(Some((g, cast(eps)))), windows, |k| on_pass("w + eps g", k), |i, b| plus.put(i, b))?;
        let down = loss_and_gradients_each(
            &self.pass(Some((g, cast(-eps)))),
            windows,
            |k| on_pass("w - eps g", k),
            |i, minus| {
                let sum = central_difference_block(plus.block(i)?.into_owned(), minus, eps);
                plus.discard(i);
                out.put(i, sum)
            },
        )?;
        // As the resident central difference: the mean of the two losses.
        Ok(PassLoss { loss: 0.5 * (up.loss + down.loss), predictions: up.predictions })
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
            let g = direction.block(i)?;
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
