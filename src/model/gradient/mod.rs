//! Gradients of the language-modelling loss with respect to every prunable weight, by a
//! hand-written reverse pass over the decoder (what SNIP and GraSP need; ONNX Runtime only runs
//! forward graphs).
//!
//! The loss is the mean next-token cross-entropy over every predicted position of a set of
//! windows: `L = -(1/N) sum_{w,t} log p(w[t+1] | w[..=t])`, with `N` the number of predictions.
//! The pass mirrors the graph of [`crate::model::decoder`] operation by operation
//! (`block.rs`, `ops.rs`), for every switch of [`DecoderSpec`]:
//!
//! 1. forward: embed (times the embedding scale), then each block in turn; only each block's
//!    *input* is kept, `blocks + 1` arrays of `[T, d]` per window;
//! 2. the head: final norm, output layer (tied or not, logits scaled where the model says),
//!    log-softmax and the targets, in
//!    chunks of [`HEAD_ROWS`] rows so that no `T x vocab` matrix exists; gives `dL/dx` at the
//!    last block's output;
//! 3. blocks from the top: each block's forward is recomputed from its saved input (its tape
//!    lives only while that block is differentiated), then run backward, which accumulates the
//!    seven linear weights' gradients over all windows and hands `dL/dx` to the block below.
//!
//! Memory is the saved block inputs plus one block's tape per worker thread; windows run in
//! parallel (rayon), each block's gradients summed across threads.
//!
//! The code is generic over the float type: f32 for models, f64 for the finite-difference
//! checks, which are only tight in double precision.

mod block;
mod ops;
pub mod seq2seq;
mod streamed;

pub use streamed::{BlockGradientStore, GradientBlocks, StreamedWeights};

use std::sync::Arc;

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, ArrayView2};
use rayon::prelude::*;

use super::decoder::{DecoderSpec, LinearLayer, Role};
use super::weights::WeightStore;
use super::{ModelDir, ModelError};

/// The float types the pass runs in.
pub trait Real:
    ndarray::LinalgScalar
    + ndarray::ScalarOperand
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + num_traits::Float
    + num_traits::FromPrimitive
    + Send
    + Sync
    + std::iter::Sum
    + std::fmt::Debug
{
}
impl Real for f32 {}
impl Real for f64 {}

/// GraSP's default finite-difference step: the prunable weights move by this fraction of their
/// norm. In float32 it balances the `O(delta^2)` truncation against the round-off of the two
/// gradients divided by `2 eps`. Against PyTorch's exact `H g` on the tiny Llama / Qwen2
/// fixtures (worst entry error relative to the layer's largest entry), float32 gives
/// 5.8e-2 / 1.6e-1 at delta 1e-3, 5.4e-3 / 1.6e-2 at 3e-4, 6.4e-4 / 1.8e-3 at 1e-4,
/// 4.8e-4 / 5.8e-4 at 3e-5 and 1.3e-3 / 3.1e-3 at 1e-5 (round-off takes over), while float64
/// keeps falling as delta^2 (6e-6 / 1.8e-5 at 1e-5).
pub const GRASP_DELTA: f64 = 5e-5;

/// Rows of the output layer computed at once: 128 x 262,144 logits is 128 MiB in f32.
pub const HEAD_ROWS: usize = 128;

/// Cosine and sine tables of one rotary base, shared by the blocks using it.
type RopeTables<F> = (super::rope::Rotary, Arc<Array2<F>>, Arc<Array2<F>>);

/// One block's weights, linear layers `[in, out]` as the graph multiplies them.
#[derive(Clone)]
pub struct BlockWeights<F> {
    pub attn_norm: Array1<F>,
    /// The linear layers in `DecoderSpec::linear_layers_of_block` order (q, k, v or the fused
    /// qkv, o, gate when gated, up, down), with their roles and biases.
    pub linear: Vec<Array2<F>>,
    pub roles: Vec<Role>,
    pub bias: Vec<Option<Array1<F>>>,
    /// Biases of the two norms (BLOOM's LayerNorms), `None` without.
    pub attn_norm_bias: Option<Array1<F>>,
    pub ffn_norm_bias: Option<Array1<F>>,
    /// Per-head RMS norm gains of queries and keys.
    pub qk_norm: Option<(Array1<F>, Array1<F>)>,
    /// Post-attention and post-MLP norm gains.
    pub sandwich: Option<(Array1<F>, Array1<F>)>,
    /// `None` in a parallel (Command-R) block, whose MLP reads the attention's norm.
    pub ffn_norm: Option<Array1<F>>,
    /// Rotary tables (empty with ALiBi, which has none).
    cos: Arc<Array2<F>>,
    sin: Arc<Array2<F>>,
}

impl<F> BlockWeights<F> {
    /// Where the layer of `role` sits in `linear`.
    pub fn slot(&self, role: Role) -> usize {
        self.roles.iter().position(|r| *r == role).unwrap_or_else(|| panic!("the block has no {} layer", role.as_str()))
    }
}

/// The whole decoder's weights in memory.
#[derive(Clone)]
pub struct DecoderWeights<F> {
    pub spec: DecoderSpec,
    /// `[vocab, d]`.
    pub embed: Array2<F>,
    /// The norm on the embeddings (weight, bias), when the model has one (BLOOM).
    pub embed_norm: Option<(Array1<F>, Option<Array1<F>>)>,
    pub blocks: Vec<BlockWeights<F>>,
    pub output_norm: Array1<F>,
    pub output_norm_bias: Option<Array1<F>>,
    /// `[vocab, d]`; `None` when the output layer is the embedding (tied).
    pub output: Option<Array2<F>>,
}

/// Gradients of one block's linear weights, `[in, out]` like the weights, in their order.
#[derive(Clone, Debug)]
pub struct BlockGrads<F> {
    pub linear: Vec<Array2<F>>,
    pub roles: Vec<Role>,
}

impl<F: Real> BlockGrads<F> {
    fn zeros_like(w: &BlockWeights<F>) -> Self {
        BlockGrads { linear: w.linear.iter().map(|m| Array2::zeros(m.raw_dim())).collect(), roles: w.roles.clone() }
    }

    fn of_mut(&mut self, role: Role) -> &mut Array2<F> {
        let i = self.roles.iter().position(|r| *r == role).expect("the block has this layer");
        &mut self.linear[i]
    }

    fn add(mut self, other: BlockGrads<F>) -> Self {
        for (a, b) in self.linear.iter_mut().zip(other.linear) {
            *a += &b;
        }
        self
    }
}

/// The loss and its gradient with respect to every prunable weight.
#[derive(Clone, Debug)]
pub struct Gradients<F> {
    /// Mean next-token negative log-likelihood (nats).
    pub loss: f64,
    /// Predicted positions the mean is over.
    pub predictions: usize,
    pub blocks: Vec<BlockGrads<F>>,
}

impl<F: Real> Gradients<F> {
    /// The gradient of one linear layer, `[in, out]`.
    pub fn of(&self, layer: &LinearLayer) -> Option<&Array2<F>> {
        let b = self.blocks.get(layer.block)?;
        b.roles.iter().position(|r| *r == layer.role).map(|index| &b.linear[index])
    }

    /// Euclidean norm over every prunable weight's gradient.
    pub fn norm(&self) -> f64 {
        sum_squares(self.blocks.iter().flat_map(|b| b.linear.iter())).sqrt()
    }
}

/// The decoder spec the passes need from an imported model's card.
pub(super) fn decoder_spec(model: &ModelDir) -> Result<DecoderSpec, ModelError> {
    model.card.spec.clone().ok_or_else(|| ModelError::Unusable {
        path: model.dir.clone(),
        reason: "gradients need an imported model (its card.json has a decoder spec); import the GGUF file with `polyprune model import`"
            .into(),
    })
}

/// A stored vector, in the pass's float type.
pub(super) fn read_vector<F: Real>(read: &impl Fn(&str) -> Result<Vec<f32>, ModelError>, name: &str) -> Result<Array1<F>, ModelError> {
    Ok(read(name)?.into_iter().map(|v| cast(f64::from(v))).collect())
}

/// A stored `rows x cols` matrix (row-major), in the pass's float type.
pub(super) fn read_matrix<F: Real>(
    read: &impl Fn(&str) -> Result<Vec<f32>, ModelError>,
    name: &str,
    rows: usize,
    cols: usize,
) -> Result<Array2<F>, ModelError> {
    let data: Vec<F> = read(name)?.into_iter().map(|v| cast(f64::from(v))).collect();
    Array2::from_shape_vec((rows, cols), data).map_err(|_| ModelError::Unusable {
        path: name.into(),
        reason: format!("tensor '{name}' does not hold {rows} x {cols} values; re-import the model"),
    })
}

pub(crate) fn sum_squares<'a, F: Real + 'a>(mats: impl Iterator<Item = &'a Array2<F>>) -> f64 {
    mats.map(|m| m.iter().map(|v| v.to_f64().unwrap_or(0.0).powi(2)).sum::<f64>()).sum()
}

fn cast<F: Real>(v: f64) -> F {
    F::from_f64(v).expect("f64 constant fits")
}

impl<F: Real> DecoderWeights<F> {
    /// Reads an imported model's weights (its card must carry the decoder spec).
    pub fn load(model: &ModelDir) -> Result<Self, ModelError> {
        let spec = decoder_spec(model)?;
        let store = WeightStore::open(&model.dir, &model.card.graph)?;
        Self::from_reader(spec, |name| store.read(name))
    }

    /// Builds the weights from a reader of stored tensors (row-major, the graph's layout).
    pub fn from_reader(spec: DecoderSpec, read: impl Fn(&str) -> Result<Vec<f32>, ModelError>) -> Result<Self, ModelError> {
        let vector = |name: &str| read_vector(&read, name);
        let matrix = |name: &str, rows: usize, cols: usize| read_matrix(&read, name, rows, cols);
        let mut tables: Vec<RopeTables<F>> = Vec::new();
        let blocks = (0..spec.blocks).map(|i| block_from_reader(&spec, i, &read, &mut tables)).collect::<Result<Vec<_>, _>>()?;
        let norm_bias = |stem: &str| -> Result<Option<Array1<F>>, ModelError> {
            if spec.gpt.norm_bias {
                Ok(Some(vector(&format!("{stem}.bias"))?))
            } else {
                Ok(None)
            }
        };
        let embed = matrix("token_embd.weight", spec.vocab_size, spec.d_model)?;
        let output = if spec.tied_output { None } else { Some(matrix("output.weight", spec.vocab_size, spec.d_model)?) };
        let output_norm = vector("output_norm.weight")?;
        let output_norm_bias = norm_bias("output_norm")?;
        let embed_norm = if spec.gpt.embed_norm { Some((vector("token_embd_norm.weight")?, norm_bias("token_embd_norm")?)) } else { None };
        Ok(DecoderWeights { spec, embed, embed_norm, blocks, output_norm, output_norm_bias, output })
    }

    fn output_layer(&self) -> &Array2<F> {
        self.output.as_ref().unwrap_or(&self.embed)
    }

    /// Euclidean norm over every prunable weight.
    pub fn prunable_norm(&self) -> f64 {
        sum_squares(self.blocks.iter().flat_map(|b| b.linear.iter())).sqrt()
    }

    /// `w += step * direction` on every prunable weight (GraSP's perturbation).
    pub fn step_prunable(&mut self, direction: &Gradients<F>, step: F) {
        for (b, g) in self.blocks.iter_mut().zip(&direction.blocks) {
            for (w, d) in b.linear.iter_mut().zip(&g.linear) {
                w.scaled_add(step, d);
            }
        }
    }

    /// A window's embeddings `[T, d]`.
    fn embed_window(&self, ids: &[u32]) -> Array2<F> {
        embed_window(&self.spec, &self.embed, self.embed_norm.as_ref(), ids)
    }

    /// Log-probabilities of each window's next tokens (`[T-1]` per window), the forward alone:
    /// what the checks compare with the runtime's `token_logprobs`.
    pub fn next_token_logprobs(&self, windows: &[Vec<u32>]) -> Vec<Vec<f64>> {
        windows
            .par_iter()
            .map(|ids| {
                let mut x = self.embed_window(ids);
                for (i, w) in self.blocks.iter().enumerate() {
                    x = block::forward(&self.spec, i, w, x.view()).out;
                }
                self.head(x.view(), ids, F::zero()).1
            })
            .collect()
    }

    /// The head on one window's last hidden states: `(dL/dx, log p(next) per position)` with
    /// `dL/dx` for a loss of `-scale * sum log p` (0 when `scale` is 0).
    fn head(&self, x: ArrayView2<F>, ids: &[u32], scale: F) -> (Array2<F>, Vec<f64>) {
        let head = HeadWeights { norm: &self.output_norm, norm_bias: self.output_norm_bias.as_ref(), output: self.output_layer() };
        head.run(&self.spec, x, ids, scale)
    }

    /// The mean next-token loss over `windows` and its gradient with respect to every prunable
    /// weight. `on_block(k)` is called as block `k`'s backward starts (top block first).
    pub fn loss_and_gradients(&self, windows: &[Vec<u32>], on_block: impl FnMut(usize)) -> Gradients<F> {
        loss_and_gradients(self, windows, on_block).expect("weights in memory are always at hand")
    }

    /// GraSP's Hessian-gradient product `H g` by a central difference of gradients,
    /// `(grad L(w + eps g) - grad L(w - eps g)) / (2 eps)` with `eps = delta ||w|| / ||g||`, so
    /// that the step moves the prunable weights by the fraction `delta` of their norm (`H` is
    /// the Hessian over the prunable weights). The error is `O(eps^2)` from the third
    /// derivative plus the float round-off of the two gradients divided by `2 eps`;
    /// `tests/gradients.rs` bounds both on the fixtures against PyTorch's double backward.
    pub fn hessian_gradient_product(
        &self,
        windows: &[Vec<u32>],
        g: &Gradients<F>,
        delta: f64,
        mut on_pass: impl FnMut(&str, usize),
    ) -> Gradients<F> {
        let eps = delta * self.prunable_norm() / g.norm().max(f64::MIN_POSITIVE);
        let mut shifted = self.clone();
        shifted.step_prunable(g, cast(eps));
        let plus = shifted.loss_and_gradients(windows, |k| on_pass("w + eps g", k));
        shifted = self.clone();
        shifted.step_prunable(g, cast(-eps));
        let minus = shifted.loss_and_gradients(windows, |k| on_pass("w - eps g", k));
        drop(shifted);
        central_difference(plus, minus, eps)
    }
}

/// A window's embeddings `[T, d]` from the embedding matrix and its norm (when the model has one).
fn embed_window<F: Real>(
    spec: &DecoderSpec,
    embed: &Array2<F>,
    embed_norm: Option<&(Array1<F>, Option<Array1<F>>)>,
    ids: &[u32],
) -> Array2<F> {
    let scale = spec.embed_scale.map(|s| cast::<F>(f64::from(s))).unwrap_or(F::one());
    let mut x = Array2::zeros((ids.len(), spec.d_model));
    for (mut row, &id) in x.rows_mut().into_iter().zip(ids) {
        row.assign(&embed.row(id as usize));
        row.mapv_inplace(|v| v * scale);
    }
    match embed_norm {
        Some((w, b)) => {
            let eps = cast::<F>(f64::from(spec.norm_eps));
            ops::with_bias(ops::norm(spec.norm, x.view(), w.view(), eps).0, b.as_ref())
        }
        None => x,
    }
}

/// The output layer's weights: the final norm (and its bias) and the `[vocab, d]` matrix.
struct HeadWeights<'a, F> {
    norm: &'a Array1<F>,
    norm_bias: Option<&'a Array1<F>>,
    output: &'a Array2<F>,
}

impl<F: Real> HeadWeights<'_, F> {
    /// The head on one window's last hidden states: `(dL/dx, log p(next) per position)` with
    /// `dL/dx` for a loss of `-scale * sum log p` (0 when `scale` is 0).
    fn run(&self, spec: &DecoderSpec, x: ArrayView2<F>, ids: &[u32], scale: F) -> (Array2<F>, Vec<f64>) {
        let eps = cast::<F>(f64::from(spec.norm_eps));
        let out_w = self.output;
        let predicted = ids.len().saturating_sub(1);
        let mut dx = Array2::zeros(x.raw_dim());
        let mut logprobs = Vec::with_capacity(predicted);
        let mut start = 0;
        while start < predicted {
            let end = (start + HEAD_ROWS).min(predicted);
            let xs = x.slice(s![start..end, ..]);
            let (h, r) = ops::norm(spec.norm, xs, self.norm.view(), eps);
            // The bias moves the norm's output, not its derivative.
            let h = ops::with_bias(h, self.norm_bias);
            let logit_scale = cast::<F>(f64::from(spec.logit_scale.unwrap_or(1.0)));
            let mut logits = h.dot(&out_w.t());
            if spec.logit_scale.is_some() {
                logits *= logit_scale;
            }
            ops::cross_entropy_rows(&mut logits, |row| ids[start + row + 1] as usize, scale, &mut logprobs);
            if scale != F::zero() {
                let mut dh = Array2::zeros(h.raw_dim());
                general_mat_mul(logit_scale, &logits, out_w, F::zero(), &mut dh);
                let d = ops::norm_backward(spec.norm, xs, &r, self.norm.view(), dh.view());
                dx.slice_mut(s![start..end, ..]).assign(&d);
            }
            start = end;
        }
        (dx, logprobs)
    }
}

/// `(plus - minus) / (2 eps)` per gradient entry: `H g` from the gradients at `w +- eps g`.
fn central_difference<F: Real>(plus: Gradients<F>, minus: Gradients<F>, eps: f64) -> Gradients<F> {
    let blocks = plus.blocks.into_iter().zip(minus.blocks).map(|(p, m)| central_difference_block(p, m, eps)).collect();
    // The loss at `w` itself is not recomputed: the mean of the two equals it to O(eps^2).
    Gradients { loss: 0.5 * (plus.loss + minus.loss), predictions: plus.predictions, blocks }
}

/// One block of [`central_difference`].
fn central_difference_block<F: Real>(plus: BlockGrads<F>, minus: BlockGrads<F>, eps: f64) -> BlockGrads<F> {
    let inv = cast::<F>(1.0 / (2.0 * eps));
    BlockGrads { linear: plus.linear.into_iter().zip(minus.linear).map(|(a, b)| (a - b) * inv).collect(), roles: plus.roles }
}

/// What the head gives back for one window: `dL/dx` at the last block's output and
/// `log p(next)` per position.
type HeadOutput<F> = (Array2<F>, Vec<f64>);

/// Where a pass reads its weights: [`DecoderWeights`] (all in memory) or
/// [`StreamedWeights`] (one part at a time from the model folder).
trait PassWeights<F: Real> {
    fn spec(&self) -> &DecoderSpec;
    /// Every window's embeddings `[T, d]`.
    fn embedded(&self, windows: &[Vec<u32>]) -> Result<Vec<Array2<F>>, ModelError>;
    /// Block `i`'s weights, held while the caller holds them.
    fn block(&self, i: usize) -> Result<std::borrow::Cow<'_, BlockWeights<F>>, ModelError>;
    /// The head on every window's last hidden states (`top[w]`): `(dL/dx, log p(next))` per
    /// window for a loss of `-scale * sum log p`.
    fn heads(&self, top: &[Array2<F>], windows: &[Vec<u32>], scale: F) -> Result<Vec<HeadOutput<F>>, ModelError>;
}

impl<F: Real> PassWeights<F> for DecoderWeights<F> {
    fn spec(&self) -> &DecoderSpec {
        &self.spec
    }
    fn embedded(&self, windows: &[Vec<u32>]) -> Result<Vec<Array2<F>>, ModelError> {
        Ok(windows.par_iter().map(|ids| self.embed_window(ids)).collect())
    }
    fn block(&self, i: usize) -> Result<std::borrow::Cow<'_, BlockWeights<F>>, ModelError> {
        Ok(std::borrow::Cow::Borrowed(&self.blocks[i]))
    }
    fn heads(&self, top: &[Array2<F>], windows: &[Vec<u32>], scale: F) -> Result<Vec<HeadOutput<F>>, ModelError> {
        Ok(top.par_iter().zip(windows).map(|(x, ids)| self.head(x.view(), ids, scale)).collect())
    }
}

/// The mean next-token loss over `windows` and its gradient with respect to every prunable
/// weight, reading the weights from `weights`. `on_block(k)` is called as block `k`'s backward starts (top block first).
fn loss_and_gradients<F: Real>(
    weights: &impl PassWeights<F>,
    windows: &[Vec<u32>],
    on_block: impl FnMut(usize),
) -> Result<Gradients<F>, ModelError> {
    let mut grads = Vec::with_capacity(weights.spec().blocks);
    let loss = loss_and_gradients_each(weights, windows, on_block, |_, g| {
        grads.push(g);
        Ok(())
    })?;
    grads.reverse();
    Ok(Gradients { loss: loss.loss, predictions: loss.predictions, blocks: grads })
}

/// The loss of a pass whose gradients went elsewhere block by block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PassLoss {
    /// Mean next-token negative log-likelihood (nats).
    pub loss: f64,
    /// Predicted positions the mean is over.
    pub predictions: usize,
}

/// [`loss_and_gradients`], handing each block's gradients to `keep(k, g)` as soon as block `k`
/// is differentiated (top block first), after its weights are dropped: a caller that writes
/// them to disk holds one block's gradients at a time, not the model's.
fn loss_and_gradients_each<F: Real>(
    weights: &impl PassWeights<F>,
    windows: &[Vec<u32>],
    mut on_block: impl FnMut(usize),
    mut keep: impl FnMut(usize, BlockGrads<F>) -> Result<(), ModelError>,
) -> Result<PassLoss, ModelError> {
    let spec = weights.spec();
    let predictions: usize = windows.iter().map(|w| w.len().saturating_sub(1)).sum();
    let scale = cast::<F>(1.0 / predictions.max(1) as f64);
    // inputs[k][w]: block k's input for window w; inputs[blocks] is the last output.
    let mut inputs: Vec<Vec<Array2<F>>> = vec![weights.embedded(windows)?];
    for i in 0..spec.blocks {
        let w = weights.block(i)?;
        let next = inputs[i].par_iter().map(|x| block::forward(spec, i, &w, x.view()).out).collect();
        inputs.push(next);
    }
    let top = inputs.pop().expect("embeddings at least");
    let heads = weights.heads(&top, windows, scale)?;
    drop(top);
    let loss = -heads.iter().flat_map(|(_, lp)| lp.iter()).sum::<f64>() / predictions.max(1) as f64;
    let mut d: Vec<Array2<F>> = heads.into_iter().map(|(dx, _)| dx).collect();
    for i in (0..spec.blocks).rev() {
        on_block(i);
        let xs = inputs.pop().expect("one saved input per block");
        let (dxs, g) = block_backward(spec, i, &*weights.block(i)?, &xs, &d);
        d = dxs;
        keep(i, g)?;
    }
    Ok(PassLoss { loss, predictions })
}

/// Block `i`'s backward over every window: `dL/dx` at its inputs and its weights' gradients,
/// summed over the windows (each worker sums its own, then the sums are added).
fn block_backward<F: Real>(
    spec: &DecoderSpec,
    i: usize,
    w: &BlockWeights<F>,
    xs: &[Array2<F>],
    d: &[Array2<F>],
) -> (Vec<Array2<F>>, BlockGrads<F>) {
    xs.par_iter()
        .zip(d.par_iter())
        .fold(
            || (Vec::new(), BlockGrads::zeros_like(w)),
            |(mut dxs, mut g), (x, dout)| {
                let tape = block::forward(spec, i, w, x.view());
                dxs.push(block::backward(spec, w, x.view(), &tape, dout.view(), &mut g));
                (dxs, g)
            },
        )
        .reduce(
            || (Vec::new(), BlockGrads::zeros_like(w)),
            |(mut a, ga), (b, gb)| {
                a.extend(b);
                (a, ga.add(gb))
            },
        )
}

/// Block `i`'s weights from a reader of stored tensors, the rotary tables shared through
/// `tables` (made on first use of each rotary embedding).
fn block_from_reader<F: Real>(
    spec: &DecoderSpec,
    i: usize,
    read: &impl Fn(&str) -> Result<Vec<f32>, ModelError>,
    tables: &mut Vec<RopeTables<F>>,
) -> Result<BlockWeights<F>, ModelError> {
    let vector = |name: &str| read_vector(read, name);
    let matrix = |name: &str, rows: usize, cols: usize| read_matrix(read, name, rows, cols);
    let no_table = Arc::new(Array2::zeros((0, 0)));
    let norm_bias = |stem: &str| -> Result<Option<Array1<F>>, ModelError> {
        if spec.gpt.norm_bias {
            Ok(Some(vector(&format!("{stem}.bias"))?))
        } else {
            Ok(None)
        }
    };
    let p = |n: &str| format!("blk.{i}.{n}");
    let (cos, sin) = if spec.gpt.alibi {
        (no_table.clone(), no_table.clone())
    } else {
        let rotary = spec.rotary(i);
        if !tables.iter().any(|(r, _, _)| *r == rotary) {
            let (cos, sin) = ops::rope_tables::<F>(&rotary, spec.head_dim, spec.max_positions);
            tables.push((rotary.clone(), Arc::new(cos), Arc::new(sin)));
        }
        let (_, cos, sin) = tables.iter().find(|(r, _, _)| *r == rotary).expect("table just made");
        (cos.clone(), sin.clone())
    };
    let layers = spec.linear_layers_of_block(i);
    let bias = layers.iter().map(|l| spec.bias_of(l).map(|b| vector(&b)).transpose()).collect::<Result<Vec<_>, _>>()?;
    let linear = layers
        .iter()
        .map(|l| {
            if l.transposed {
                return Err(ModelError::Unusable { path: l.name.clone().into(), reason: "transposed weights are not supported".into() });
            }
            matrix(&l.name, l.shape[0], l.shape[1])
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(BlockWeights {
        attn_norm: vector(&p("attn_norm.weight"))?,
        linear,
        roles: layers.iter().map(|l| l.role).collect(),
        bias,
        attn_norm_bias: norm_bias(&p("attn_norm"))?,
        ffn_norm_bias: if spec.parallel_block { None } else { norm_bias(&p("ffn_norm"))? },
        qk_norm: if spec.qk_norm { Some((vector(&p("attn_q_norm.weight"))?, vector(&p("attn_k_norm.weight"))?)) } else { None },
        sandwich: if spec.sandwich_norms {
            Some((vector(&p("post_attention_norm.weight"))?, vector(&p("post_ffw_norm.weight"))?))
        } else {
            None
        },
        ffn_norm: if spec.parallel_block { None } else { Some(vector(&p("ffn_norm.weight"))?) },
        cos,
        sin,
    })
}

/// `[in, out]` (graph layout) to `[out][in]` rows (the layout the pruning maths uses), in f32.
pub fn rows_of<F: Real>(m: &Array2<F>) -> Vec<f32> {
    m.t().iter().map(|v| v.to_f32().unwrap_or(f32::NAN)).collect()
}

#[cfg(test)]
mod tests;
