//! Planning a run within a memory budget (`--max-memory`, `[study] max_memory`).
//!
//! From the card alone (shapes and the weights' stored type) the plan estimates what each way
//! of running needs at its peak and picks the first that fits:
//! * **resident**: every weight in f32 (the CPU computes in f32; a 16-bit folder also keeps
//!   its mapped 16-bit bytes, and the output layer's session widens its own copy), plus one
//!   batch of activations and one chunk of output-layer rows;
//! * **streamed**: one part (embedding, a block, or the output layer) at a time, plus the
//!   activations and the hidden states the batches carry from part to part. An output layer
//!   that alone exceeds the budget runs in vocabulary slices (`eval::scorer`'s streamed
//!   head), as few as fit.
//!
//! When even the largest part with its activations exceeds the budget the plan refuses before
//! any work, naming the part and the budget it would need. The estimates are upper-bound
//! style (measured peaks are in README's "Memory" section); a command prints its plan.

use serde::Serialize;

use super::card::ModelCard;
use crate::runtime::FloatType;

/// Rows the output layer runs at once (the scorer's chunk, `eval::scorer::HEAD_ROWS`).
const HEAD_ROWS: u64 = 64;
/// Room for the runtime library, the tokenizer and the process itself.
const BASE_BYTES: u64 = 400 << 20;
/// The fewest vocabulary rows a slice of the output layer has: below this a slice's session
/// costs more to build than its product takes to run.
pub const HEAD_SLICE_MIN_ROWS: usize = 1024;

/// How a model runs under a budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Residency {
    /// All weights loaded once (the key/value-cache graphs).
    Resident,
    /// One part at a time (see `eval::scorer`'s streamed path).
    Streamed,
}

/// One part's estimated peak.
#[derive(Clone, Debug, Serialize)]
pub struct PartNeed {
    pub part: String,
    /// Its weights as the runtime holds them.
    pub weight_bytes: u64,
    /// Its peak with activations and the carried hidden states.
    pub peak_bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct MemoryPlan {
    pub budget_bytes: u64,
    /// Where the budget came from ("--max-memory", "free memory", ...).
    pub budget_source: String,
    pub dtype: FloatType,
    pub residency: Residency,
    /// Tokens per runtime call (batch x padded length).
    pub batch_tokens: usize,
    /// The estimated peak on the chosen path at `batch_tokens`.
    pub peak_bytes: u64,
    pub resident_bytes: u64,
    /// The streamed path's peak: its largest part.
    pub streamed_bytes: u64,
    pub largest_part: PartNeed,
    /// The vocabulary slices the streamed path's output layer runs in (1: whole).
    pub head_slices: usize,
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("{what} is not a size: give bytes or a number with a unit, e.g. 6GiB, 512MiB, 8G")]
    BadSize { what: String },
    #[error(
        "the memory budget {budget} ({source_name}) is too small for {model}: its largest part, {part}, needs {need} with its activations even when the model runs one block at a time; give --max-memory {need} or more (or [study] max_memory)"
    )]
    TooSmall { budget: String, source_name: String, model: String, part: String, need: String },
    #[error(
        "the memory budget {} ({}) is too small to prune {}: {} needs {} even with one block's weights resident and the pruned weights spilled to disk; give --max-memory {} or more, or fewer calibration windows (--samples, --seqlen)",
        .0.budget, .0.source_name, .0.model, .0.part, .0.need, .0.need
    )]
    PruneTooSmall(Box<PruneShortfall>),
    #[error(
        "the memory budget {} ({}) is too small for the pruning-error analysis of {}: {} needs {} even with one block's weights and Gram matrices in memory; give --max-memory {} or more, or fewer or shorter evaluation windows (--windows, --seqlen)",
        .0.budget, .0.source_name, .0.model, .0.part, .0.need, .0.need
    )]
    ErrorAnalysisTooSmall(Box<PruneShortfall>),
    #[error("{model} has no decoder spec in its card, so its memory cannot be planned; re-import it with `polyprune model import`")]
    NoSpec { model: String },
}

/// What [`MemoryError::PruneTooSmall`] names (boxed: every result carrying a memory error pays
/// for its size).
#[derive(Clone, Debug)]
pub struct PruneShortfall {
    pub budget: String,
    pub source_name: String,
    pub model: String,
    pub part: String,
    pub need: String,
}

/// `6GiB`, `512MiB`, `8G` (decimal), `1.5GiB` or plain bytes.
pub fn parse_size(text: &str) -> Result<u64, MemoryError> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || MemoryError::BadSize { what: format!("'{text}'") };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024f64.powi(2),
        "gib" => 1024f64.powi(3),
        "tib" => 1024f64.powi(4),
        _ => return Err(bad()),
    };
    let bytes = value * scale;
    if !bytes.is_finite() || bytes < 1.0 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// Bytes as a person reads them (GiB with two decimals, or MiB).
pub fn human(bytes: u64) -> String {
    let gib = bytes as f64 / (1u64 << 30) as f64;
    if gib >= 1.0 {
        format!("{gib:.2} GiB")
    } else {
        format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

/// The memory this machine has available now (`MemAvailable`), the default budget.
pub fn free_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The plan for running `card`'s model on `batch_tokens`-token batches of at most `context`
/// tokens per sequence within `budget` bytes, carrying `carried_tokens` token positions of
/// hidden states between parts (all batches of one call).
pub fn plan(
    card: &ModelCard,
    budget: u64,
    budget_source: &str,
    batch_tokens: usize,
    context: usize,
    carried_tokens: usize,
) -> Result<MemoryPlan, MemoryError> {
    plan_sliced_for(card, budget, budget_source, batch_tokens, context, carried_tokens, budget)
}

/// [`plan`] with the output layer sliced to fit `slicing_budget` (the budget itself, or the
/// real budget while [`plan_within_budget`] asks what a batch would need without one).
fn plan_sliced_for(
    card: &ModelCard,
    budget: u64,
    budget_source: &str,
    batch_tokens: usize,
    context: usize,
    carried_tokens: usize,
    slicing_budget: u64,
) -> Result<MemoryPlan, MemoryError> {
    let spec = card.spec.as_ref().ok_or_else(|| MemoryError::NoSpec { model: card.name.clone() })?;
    let dtype = card.matrix_type();
    // What the runtime holds for a weight: f32, plus the mapped 16-bit bytes of a 16-bit folder.
    let held = |dims: &[usize]| -> u64 {
        let n: u64 = dims.iter().map(|&d| d as u64).product();
        if dims.len() == 2 && dtype != FloatType::F32 {
            n * 4 + n * dtype.bytes() as u64
        } else {
            n * 4
        }
    };
    let shapes = spec.weight_shapes();
    let of = |pred: &dyn Fn(&str) -> bool| -> u64 { shapes.iter().filter(|(n, _)| pred(n)).map(|(_, d)| held(d)).sum() };
    let (d, f, heads, vocab) = (spec.d_model as u64, spec.ffn_dim as u64, spec.n_heads as u64, spec.vocab_size as u64);
    let (tokens, context) = (batch_tokens as u64, context.max(1) as u64);
    // One batch in a block: the residual, norms, q/k/v/o and taps (~12 d), the MLP (3 ffn),
    // attention scores and probabilities (2 heads x context per token), in f32.
    let block_activations = tokens * (12 * d + 3 * f + 2 * heads * context) * 4;
    let carried = carried_tokens as u64 * d * 4;
    let table = vocab * d;
    // The embedding gathers rows of the stored table and widens only them. The output
    // layer's session holds an f32 matrix as it is (Gemma 3 270M streamed peaks below its
    // resident run), but a 16-bit one as two f32 copies beside the stored bytes (measured on
    // Llama-3 8B: 4.20 GiB anonymous and 1.01 GiB mapped for its 0.98 GiB bf16 matrix).
    let embed = table * dtype.bytes() as u64;
    let output = if dtype == FloatType::F32 { table * 4 } else { table * (8 + dtype.bytes() as u64) };
    let head_slices = head_slices(output, vocab, slicing_budget, 2 * carried);
    let slice_rows = vocab.div_ceil(head_slices as u64);
    let head_activations = HEAD_ROWS * slice_rows * 4 * 3;
    let mut parts = vec![PartNeed { part: "embedding".into(), weight_bytes: embed, peak_bytes: 0 }];
    for i in 0..spec.blocks {
        let prefix = format!("blk.{i}.");
        parts.push(PartNeed { part: format!("block {i}"), weight_bytes: of(&|n| n.starts_with(&prefix)), peak_bytes: 0 });
    }
    let head_part =
        if head_slices == 1 { "output layer".to_string() } else { format!("output layer (one of {head_slices} vocabulary slices)") };
    parts.push(PartNeed { part: head_part, weight_bytes: output.div_ceil(head_slices as u64), peak_bytes: 0 });
    let last = parts.len() - 1;
    // The embedding only gathers rows: its output (and the ids) are all it allocates.
    let embed_activations = tokens * d * 4 * 2;
    for (k, p) in parts.iter_mut().enumerate() {
        let act = match k {
            0 => embed_activations,
            k if k == last => head_activations,
            _ => block_activations,
        };
        // Two copies of the carried hidden states exist while a part turns inputs into outputs.
        p.peak_bytes = BASE_BYTES + p.weight_bytes + act + 2 * carried;
    }
    let largest = parts.iter().max_by_key(|p| p.peak_bytes).expect("a model has parts").clone();
    let all_weights: u64 = shapes.iter().map(|(_, d)| held(d)).sum();
    // A 16-bit folder's output-layer session widens the output matrix again (its own copy;
    // the resident path runs it whole).
    let head_copy = if dtype != FloatType::F32 { table * (4 + dtype.bytes() as u64) } else { 0 };
    let resident = BASE_BYTES + all_weights + head_copy + block_activations.max(HEAD_ROWS * vocab * 4 * 3);
    let residency = if resident <= budget {
        Residency::Resident
    } else if largest.peak_bytes <= budget {
        Residency::Streamed
    } else {
        return Err(MemoryError::TooSmall {
            budget: human(budget),
            source_name: budget_source.to_string(),
            model: card.name.clone(),
            part: largest.part.clone(),
            need: human(largest.peak_bytes),
        });
    };
    Ok(MemoryPlan {
        budget_bytes: budget,
        budget_source: budget_source.to_string(),
        dtype,
        residency,
        batch_tokens,
        peak_bytes: if residency == Residency::Resident { resident } else { largest.peak_bytes },
        resident_bytes: resident,
        streamed_bytes: largest.peak_bytes,
        largest_part: largest,
        head_slices,
    })
}

/// The fewest vocabulary slices whose output-layer part (`output` bytes whole, besides the
/// `carried` hidden states) fits `budget`; the most slices allowed when none does (the part
/// then names the shortfall).
fn head_slices(output: u64, vocab: u64, budget: u64, carried: u64) -> usize {
    let most = vocab.div_ceil(HEAD_SLICE_MIN_ROWS as u64).max(1);
    let need = |s: u64| BASE_BYTES + output.div_ceil(s) + HEAD_ROWS * vocab.div_ceil(s) * 4 * 3 + carried;
    (1..=most).find(|&s| need(s) <= budget).unwrap_or(most) as usize
}

/// Tokens per runtime call when the budget leaves room for them: the scorer's default batch
/// (`eval::scorer`'s 2048, measured there as the knee of throughput against peak memory).
pub const MAX_BATCH_TOKENS: usize = 2048;

/// [`plan`] with the batch size derived from the budget: the path is chosen by what it needs
/// with the smallest batch that still runs a whole `context`-token window (a sequence is
/// never split across calls; the plan's needs and a refusal are at that batch), and the batch
/// is then the most tokens, up to
/// [`MAX_BATCH_TOKENS`] (or one window when that is longer), whose peak on that path stays
/// within the budget. Every estimate grows with the batch, so the largest fitting batch is
/// found by bisection over [`plan`] itself.
pub fn plan_within_budget(
    card: &ModelCard,
    budget: u64,
    budget_source: &str,
    context: usize,
    carried_tokens: usize,
) -> Result<MemoryPlan, MemoryError> {
    let least = context.max(1);
    let at_least = plan(card, budget, budget_source, least, context, carried_tokens)?;
    let need = |tokens: usize| -> Result<u64, MemoryError> {
        let p = plan_sliced_for(card, u64::MAX, budget_source, tokens, context, carried_tokens, budget)?;
        Ok(match at_least.residency {
            Residency::Resident => p.resident_bytes,
            Residency::Streamed => p.streamed_bytes,
        })
    };
    // The largest batch in [least, most] whose need fits (`least` fits: the plan chose it).
    let (mut fits, mut most) = (least, MAX_BATCH_TOKENS.max(least));
    while fits < most {
        let mid = fits + (most - fits).div_ceil(2);
        if need(mid)? <= budget {
            fits = mid;
        } else {
            most = mid - 1;
        }
    }
    let peak_bytes = need(fits)?;
    Ok(MemoryPlan { batch_tokens: fits, peak_bytes, ..at_least })
}

/// What pruning a model block by block needs (`prune`'s calibration and solve).
#[derive(Clone, Debug, Serialize)]
pub struct PrunePlan {
    pub budget_bytes: u64,
    pub budget_source: String,
    /// The largest estimate over the blocks: the statistics pass (the block's weights, one
    /// batch's activations, the statistics) or the solve of its largest layer (statistics,
    /// the layer's copies, SparseGPT's d_in^2 f64 factor, the block's replacements).
    pub peak_bytes: u64,
    /// Where that peak is ("block 31, blk.31.ffn_down.weight's solve").
    pub peak_part: String,
    /// Every pruned layer's replacement weights in f32: what a run holds when it keeps them.
    pub all_replacements_bytes: u64,
    /// The masks of every pruned layer (one bit per weight), held to the end.
    pub masks_bytes: u64,
    /// Whether each block's replacements go to a spill file when it is done.
    pub spill: bool,
}

/// Calibration shape for [`prune_plan`]: windows of `seqlen` tokens, `batch` per call.
#[derive(Clone, Copy, Debug)]
pub struct CalibrationShape {
    pub windows: usize,
    pub seqlen: usize,
    pub batch: usize,
}

/// What a run's methods measure on the calibration set, for [`prune_plan`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneNeeds {
    /// SparseGPT's Gram matrices (else Wanda's input norms, when calibrated at all).
    pub gram: bool,
    /// SNIP or GraSP: the model's reverse pass and its gradients.
    pub gradients: bool,
    /// GraSP: `H g` besides, two more reverse passes at perturbed weights.
    pub hessian_gradient: bool,
    /// A gradient method ranks all layers at once (global scope).
    pub global_scores: bool,
}

/// The plan for pruning the layers `selected` picks with calibration `shape` (none for
/// Magnitude) within `budget`, measuring what `needs` says. `streamed`: the model is evaluated
/// streamed (so its replacements must not stay in memory). Refuses when one block's peak
/// exceeds the budget.
pub fn prune_plan(
    card: &ModelCard,
    budget: u64,
    budget_source: &str,
    shape: Option<CalibrationShape>,
    needs: PruneNeeds,
    streamed: bool,
    selected: impl Fn(&super::LinearLayer) -> bool,
) -> Result<PrunePlan, MemoryError> {
    let gram = needs.gram;
    let spec = card.spec.as_ref().ok_or_else(|| MemoryError::NoSpec { model: card.name.clone() })?;
    let stored = card.matrix_type().bytes() as u64;
    // A matrix as a session holds it: f32, plus the mapped bytes of a 16-bit folder.
    let held_per_weight = if card.matrix_type() == FloatType::F32 { 4 } else { 4 + stored };
    let (d, f, heads) = (spec.d_model as u64, spec.ffn_dim as u64, spec.n_heads as u64);
    let weights = |l: &super::LinearLayer| l.shape[0] as u64 * l.shape[1] as u64;
    let chosen: Vec<&super::LinearLayer> = card.layers.iter().filter(|l| selected(l)).collect();
    let all_replacements: u64 = chosen.iter().map(|l| weights(l) * 4).sum();
    let masks: u64 = chosen.iter().map(|l| weights(l).div_ceil(64) * 8).sum();
    let (carried, activations) = match shape {
        Some(c) => {
            let tokens = (c.batch.max(1).min(c.windows.max(1)) * c.seqlen) as u64;
            let seqlen = c.seqlen as u64;
            // The hidden states of every window, twice while a block turns inputs into outputs.
            (2 * c.windows as u64 * seqlen * d * 4, tokens * (12 * d + 3 * f + 2 * heads * seqlen) * 4)
        }
        None => (0, 0),
    };
    // Two peaks: solving with every statistic of the block held (a run that keeps its
    // replacements in memory), and solving layer by layer with each input's statistics freed
    // after its last layer (a spilling run; `pruned::model`'s `MethodPruner`).
    let (mut kept, mut released) = ((0u64, String::new()), (0u64, String::new()));
    let raise = |peak: &mut (u64, String), bytes: u64, part: &dyn Fn() -> String| {
        if bytes > peak.0 {
            *peak = (bytes, part());
        }
    };
    let statistic = |width: u64| if shape.is_some() { width * 8 + if gram { width * width * 8 } else { 0 } } else { 0 };
    for k in 0..spec.blocks {
        let layers: Vec<&super::LinearLayer> = card.layers.iter().filter(|l| l.block == k).collect();
        let mut widths: Vec<(&str, u64)> = layers.iter().map(|l| (l.input.as_str(), l.shape[0] as u64)).collect();
        widths.sort();
        widths.dedup();
        let statistics: u64 = widths.iter().map(|&(_, w)| statistic(w)).sum();
        let block_held: u64 = layers.iter().map(|l| weights(l) * held_per_weight).sum();
        let pass = BASE_BYTES + block_held + activations + carried + statistics;
        raise(&mut kept, pass, &|| format!("block {k}'s calibration pass"));
        raise(&mut released, pass, &|| format!("block {k}'s calibration pass"));
        let block_chosen: Vec<&&super::LinearLayer> = chosen.iter().filter(|l| l.block == k).collect();
        let replacements: u64 = block_chosen.iter().map(|l| weights(l) * 4).sum();
        for (i, l) in block_chosen.iter().enumerate() {
            // One layer's solve, phase by phase: the stored bytes read, widened and turned to
            // [out][in]; SparseGPT's d_in x d_in f64 factor beside the f32 weights, then its
            // f64 copy of the weights and the result.
            let n = weights(l);
            let d_in = l.shape[0] as u64;
            let read = n * (stored + 4 * 3);
            let layer = if gram { read.max(n * (4 + 8 + 4) + d_in * d_in * 8) } else { read + n * 4 };
            let base = BASE_BYTES + carried + replacements + layer + masks;
            // An input no chosen layer reads is freed with the block, the others after their
            // last chosen layer.
            let live: u64 = widths
                .iter()
                .filter(|(input, _)| {
                    let read_by = |ls: &[&&super::LinearLayer]| ls.iter().any(|c| c.input == *input);
                    !read_by(&block_chosen) || read_by(&block_chosen[i..])
                })
                .map(|&(_, w)| statistic(w))
                .sum();
            raise(&mut kept, base + statistics, &|| format!("block {k}'s solve of {}", l.name));
            raise(&mut released, base + live, &|| format!("block {k}'s solve of {}", l.name));
        }
    }
    // SNIP and GraSP: the spilled path's steps (the reverse pass and the layer-by-layer
    // scoring, one block's weights and gradients at a time), and what the resident path
    // holds instead (every weight and gradient in f32); the resident path runs only when
    // that fits.
    let mut resident_gradients = 0;
    if let (Some(c), true) = (shape, needs.gradients) {
        let gradients = GradientPlan::new(card, spec, c, needs, held_per_weight);
        for (bytes, part) in gradients.peaks(&chosen, masks) {
            raise(&mut released, bytes, &|| part.clone());
        }
        resident_gradients = gradients.resident(all_replacements);
        raise(&mut kept, resident_gradients, &|| "the resident gradient pass (every weight and gradient in f32)".to_string());
    }
    let spill = streamed || kept.0 + all_replacements > budget || resident_gradients > budget;
    let peak = if spill { released } else { kept };
    if peak.0 > budget {
        return Err(MemoryError::PruneTooSmall(Box::new(PruneShortfall {
            budget: human(budget),
            source_name: budget_source.to_string(),
            model: card.name.clone(),
            part: peak.1,
            need: human(peak.0),
        })));
    }
    Ok(PrunePlan {
        budget_bytes: budget,
        budget_source: budget_source.to_string(),
        peak_bytes: peak.0,
        peak_part: peak.1,
        all_replacements_bytes: all_replacements,
        masks_bytes: masks,
        spill,
    })
}

/// The estimates of SNIP's and GraSP's steps (`calibrate::spill_gradients`, then
/// `pruned::spilled_saliency`), all in bytes, with one block's weights resident.
struct GradientPlan<'a> {
    card: &'a ModelCard,
    spec: &'a super::decoder::DecoderSpec,
    needs: PruneNeeds,
    /// Bytes a matrix weight takes read from the folder (f32, plus a 16-bit folder's mapped bytes).
    held_per_weight: u64,
    /// Every block's input per window (and the two `dL/dx` of the block being differentiated),
    /// kept for the whole pass.
    saved: u64,
    /// One window's forward tape in a block (the activations of [`plan`]'s estimate).
    tape: u64,
    /// Windows differentiated at once: one per worker thread.
    workers: u64,
}

impl<'a> GradientPlan<'a> {
    fn new(
        card: &'a ModelCard,
        spec: &'a super::decoder::DecoderSpec,
        c: CalibrationShape,
        needs: PruneNeeds,
        held_per_weight: u64,
    ) -> Self {
        let (d, f, heads, t) = (spec.d_model as u64, spec.ffn_dim as u64, spec.n_heads as u64, c.seqlen as u64);
        let windows = c.windows.max(1) as u64;
        GradientPlan {
            card,
            spec,
            needs,
            held_per_weight,
            saved: (spec.blocks as u64 + 3) * windows * t * d * 4,
            tape: t * (12 * d + 3 * f + 2 * heads * t) * 4,
            workers: windows.min(rayon::current_num_threads() as u64),
        }
    }

    fn block_weights(&self, k: usize) -> u64 {
        self.card.layers.iter().filter(|l| l.block == k).map(|l| l.shape[0] as u64 * l.shape[1] as u64).sum()
    }

    /// Each block's reverse pass (and GraSP's), the output layer's, and each selected layer's
    /// scoring, with where each is.
    fn peaks(&self, chosen: &[&super::LinearLayer], masks: u64) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        let table = self.spec.vocab_size as u64 * self.spec.d_model as u64;
        // The output layer (or embedding) widened to f32 beside its mapped bytes, and each
        // worker's chunk of logits and their gradient.
        let head = BASE_BYTES
            + self.saved
            + table * self.held_per_weight
            + self.workers * 2 * super::gradient::HEAD_ROWS as u64 * self.spec.vocab_size as u64 * 4;
        out.push((head, "the output layer in the reverse pass".to_string()));
        for k in 0..self.spec.blocks {
            let n = self.block_weights(k);
            // Each worker sums its windows' gradients, and the sums are added into fresh
            // zeros: two block-sized accumulators per worker; GraSP's passes also read the
            // block of `g` they step along.
            let direction = if self.needs.hessian_gradient { n * 4 } else { 0 };
            let backward = BASE_BYTES + self.saved + n * self.held_per_weight + direction + self.workers * (2 * n * 4 + self.tape);
            out.push((backward, format!("block {k}'s reverse pass")));
            // Its gradients written out: the block, its bytes, and the file serialised in memory;
            // GraSP's `H g` also reads back the block of the gradients at `w + eps g`.
            let write = BASE_BYTES + self.saved + n * 4 * if self.needs.hessian_gradient { 4 } else { 3 };
            out.push((write, format!("block {k}'s gradients spilled")));
        }
        for l in chosen {
            let n = l.shape[0] as u64 * l.shape[1] as u64;
            let block: u64 = chosen.iter().filter(|o| o.block == l.block).map(|o| o.shape[0] as u64 * o.shape[1] as u64 * 4).sum();
            // The weight read (stored bytes, f32, [out][in] copy), its gradient read back and
            // turned to rows, f64 scores, the masked weights in the stored layout; beside the
            // block's replacements so far and every mask.
            let layer = n * (self.card.matrix_type().bytes() as u64 + 4 * 2 + 4 * 2 + 8 + 4);
            out.push((BASE_BYTES + masks + block + layer, format!("block {}'s scoring of {}", l.block, l.name)));
        }
        out
    }

    /// What the resident gradient path holds: every weight in f32 (read through the folder's
    /// mapped bytes), the gradients (and for GraSP a shifted copy of the model, the two
    /// perturbed gradients and `H g`), then every pruned weight (and with global scope every
    /// score, 8 bytes per weight). Measured on a one-block Llama-3 8B shape in bf16 (SNIP, 2 x
    /// 64 windows): 7.37 GiB peak RSS against 9.1 GiB estimated.
    fn resident(&self, all_replacements: u64) -> u64 {
        let stored = self.card.matrix_type().bytes() as u64;
        let count = |d: &[usize]| d.iter().map(|&x| x as u64).product::<u64>();
        let model: u64 = self.spec.weight_shapes().iter().map(|(_, d)| count(d) * 4).sum();
        let mapped: u64 = self.spec.weight_shapes().iter().filter(|(_, d)| d.len() == 2).map(|(_, d)| count(d) * stored).sum();
        let prunable: u64 = (0..self.spec.blocks).map(|k| self.block_weights(k) * 4).sum();
        let grasp = if self.needs.hessian_gradient { model + 3 * prunable } else { 0 };
        let scores = if self.needs.global_scores { all_replacements * 2 } else { 0 };
        BASE_BYTES + self.saved + model + mapped + prunable + grasp + all_replacements + scores
    }
}

/// The peak of the pruning-error analysis ([`crate::analysis::pruning_error`]) and where it is.
#[derive(Clone, Debug, Serialize)]
pub struct ErrorPlan {
    pub budget_bytes: u64,
    pub peak_bytes: u64,
    pub peak_part: String,
}

/// What the decoder's pruning-error analysis needs, block by block, on `shape`'s windows of one
/// evaluation language (each language's pass is the same size): the block's dense pass (its
/// weights, one batch's activations, every window's hidden states twice) collecting the
/// Gram matrix of each distinct layer input in f64, then each layer's error from those Grams
/// (the dense and one pruned weight in f32, and three `out x in` f64 matrices: the weight,
/// the difference and its product with the Gram). Refuses when one block exceeds `budget`.
pub fn error_plan(card: &ModelCard, budget: u64, budget_source: &str, shape: CalibrationShape) -> Result<ErrorPlan, MemoryError> {
    let spec = card.spec.as_ref().ok_or_else(|| MemoryError::NoSpec { model: card.name.clone() })?;
    let stored = card.matrix_type().bytes() as u64;
    let held_per_weight = if card.matrix_type() == FloatType::F32 { 4 } else { 4 + stored };
    let (d, f, heads, seqlen) = (spec.d_model as u64, spec.ffn_dim as u64, spec.n_heads as u64, shape.seqlen as u64);
    let tokens = (shape.batch.max(1).min(shape.windows.max(1)) as u64) * seqlen;
    let activations = tokens * (12 * d + 3 * f + 2 * heads * seqlen) * 4;
    let carried = 2 * shape.windows as u64 * seqlen * d * 4;
    let mut peak = (0u64, String::new());
    for k in 0..spec.blocks {
        let layers: Vec<&super::LinearLayer> = card.layers.iter().filter(|l| l.block == k).collect();
        let mut widths: Vec<(&str, u64)> = layers.iter().map(|l| (l.input.as_str(), l.shape[0] as u64)).collect();
        widths.sort();
        widths.dedup();
        let grams: u64 = widths.iter().map(|(_, w)| w * w * 8 + w * 8).sum();
        let block_held: u64 = layers.iter().map(|l| l.shape[0] as u64 * l.shape[1] as u64 * held_per_weight).sum();
        let pass = BASE_BYTES + block_held + activations + carried + grams;
        if pass > peak.0 {
            peak = (pass, format!("block {k}'s Gram matrices"));
        }
        for l in layers {
            let n = l.shape[0] as u64 * l.shape[1] as u64;
            let error = BASE_BYTES + carried + grams + n * (stored + 4 + 4 + 4 + 3 * 8);
            if error > peak.0 {
                peak = (error, format!("block {k}'s error of {}", l.name));
            }
        }
    }
    if peak.0 > budget {
        return Err(MemoryError::ErrorAnalysisTooSmall(Box::new(PruneShortfall {
            budget: human(budget),
            source_name: budget_source.to_string(),
            model: card.name.clone(),
            part: peak.1,
            need: human(peak.0),
        })));
    }
    Ok(ErrorPlan { budget_bytes: budget, peak_bytes: peak.0, peak_part: peak.1 })
}

impl std::fmt::Display for PrunePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "prune plan: budget {} ({}); peak ~{} ({}); pruned weights {} in f32{}",
            human(self.budget_bytes),
            self.budget_source,
            human(self.peak_bytes),
            self.peak_part,
            human(self.all_replacements_bytes),
            if self.spill { ", spilled to disk block by block" } else { ", kept in memory" }
        )
    }
}

impl std::fmt::Display for MemoryPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match self.residency {
            Residency::Resident => "resident (every weight loaded once)".to_string(),
            Residency::Streamed if self.head_slices > 1 => {
                format!("streamed (one block's weights resident at a time, the output layer in {} vocabulary slices)", self.head_slices)
            }
            Residency::Streamed => "streamed (one block's weights resident at a time)".to_string(),
        };
        write!(
            f,
            "memory plan: budget {} ({}); weights in {}; resident needs ~{}, streamed ~{} (largest part: {}, weights {}); runs {how}, {} tokens per batch (peak ~{})",
            human(self.budget_bytes),
            self.budget_source,
            self.dtype,
            human(self.resident_bytes),
            human(self.streamed_bytes),
            self.largest_part.part,
            human(self.largest_part.weight_bytes),
            self.batch_tokens,
            human(self.peak_bytes)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WANDA: PruneNeeds = PruneNeeds { gram: false, gradients: false, hessian_gradient: false, global_scores: false };
    const SPARSEGPT: PruneNeeds = PruneNeeds { gram: true, ..WANDA };

    /// A card of Llama-3 8B's shape (`model synth --plan`'s spec) with matrices in `dtype`.
    fn llama_3_8b(dtype: FloatType) -> ModelCard {
        let spec = crate::model::synth::plan("llama-3-8b", None, 8192).unwrap().spec;
        let parts = crate::model::card::Parts { embed: "e".into(), blocks: (0..spec.blocks).map(|i| format!("b{i}")).collect() };
        let source = crate::model::card::SourceFile { file: "x".into(), sha256: "0".into() };
        let tokens = crate::model::import::SpecialTokens { bos: Some(1), eos: Some(2), start: Some(1) };
        let mut card = crate::model::import::decoder_card("llama-3-8b".into(), source, spec, parts, tokens, None);
        card.weight_dtype = crate::model::import::card_dtype(dtype);
        card
    }

    /// Llama-3 8B (hidden 4096, 8 of 32 heads for keys/values, FFN 14336, vocabulary 128256,
    /// untied output) in bf16: a block holds 2x4096^2 + 2x4096x1024 + 3x4096x14336 =
    /// 218,103,808 matrix weights (6 bytes each once widened: the mapped bf16 and its f32
    /// copy) and two 4096-wide f32 norms; the output layer's session holds its 128256x4096
    /// matrix at 10 bytes a weight (two f32 copies and the mapped bf16). With the 64 x 512
    /// carried positions (twice 0.5 GiB) that is 6.37 GiB whole: 8 GiB runs it whole, 6 GiB in
    /// two vocabulary slices, each then the largest part. The embedding gathers bf16 rows: 2
    /// bytes a weight. 2 GiB is refused naming a block, which slices cannot shrink.
    #[test]
    fn llama_3_8b_in_bf16_streams_in_6_gib_with_a_sliced_output_layer_and_is_refused_in_2() {
        let card = llama_3_8b(FloatType::Bf16);
        let output = 128_256u64 * 4096 * 10;
        let carried = 64 * 512 * 4096 * 4;
        let whole = BASE_BYTES + output + 64 * 128_256 * 4 * 3 + 2 * carried;
        assert!(whole > 6 << 30 && whole < 8 << 30, "{}", human(whole));
        let roomy = plan(&card, 8 << 30, "--max-memory", 2048, 512, 64 * 512).unwrap();
        assert_eq!((roomy.residency, roomy.head_slices), (Residency::Streamed, 1), "{roomy}");
        let streamed = plan(&card, 6 << 30, "--max-memory", 2048, 512, 64 * 512).unwrap();
        assert_eq!((streamed.residency, streamed.head_slices), (Residency::Streamed, 2), "{streamed}");
        assert_eq!(streamed.largest_part.part, "output layer (one of 2 vocabulary slices)");
        assert_eq!(streamed.largest_part.weight_bytes, output / 2);
        assert_eq!(streamed.largest_part.peak_bytes, BASE_BYTES + output / 2 + 64 * 64_128 * 4 * 3 + 2 * carried);
        assert!(streamed.to_string().contains("in 2 vocabulary slices"), "{streamed}");
        let err = plan_err(&card, 2 << 30);
        assert!(err.contains("block") && err.contains("2.00 GiB"), "{err}");
        // One block's weights, from the closed form above.
        let block = 218_103_808u64 * 6 + 2 * 4096 * 4;
        let spec = card.spec.as_ref().unwrap();
        let held: u64 = spec
            .weight_shapes()
            .iter()
            .filter(|(n, _)| n.starts_with("blk.0."))
            .map(|(_, d)| d.iter().product::<usize>() as u64 * if d.len() == 2 { 6 } else { 4 })
            .sum();
        assert_eq!(held, block);
        // The same model in f32 resident needs all 8.03e9 weights at 4 bytes: 24 GiB is short.
        let f32_plan = plan(&llama_3_8b(FloatType::F32), 24 << 30, "--max-memory", 2048, 512, 0).unwrap();
        assert!(f32_plan.resident_bytes > 8_030_000_000 * 4, "{f32_plan}");
        assert_eq!(f32_plan.residency, Residency::Streamed);
    }

    /// Llama-3 8B in f32, resident: every weight (8,030,261,248 x 4 bytes) plus one batch's
    /// block activations, `(12 x 4096 + 3 x 14336 + 2 x 32 heads x 512 context) x 4` =
    /// 499,712 bytes per token, once they exceed the head's 64 x 128,256 x 12 bytes. A budget
    /// of the weights plus 1000.5 tokens' worth runs 1000-token batches; one of 3000 tokens'
    /// worth runs the default 2048; one below a 512-token window's need streams.
    #[test]
    fn the_batch_is_the_most_tokens_the_budget_holds() {
        let card = llama_3_8b(FloatType::F32);
        let weights = 8_030_261_248u64 * 4;
        let per_token = (12 * 4096 + 3 * 14336 + 2 * 32 * 512) * 4;
        assert_eq!(per_token, 499_712);
        let budget = BASE_BYTES + weights + 1000 * per_token + per_token / 2;
        let p = plan_within_budget(&card, budget, "--max-memory", 512, 0).unwrap();
        assert_eq!((p.residency, p.batch_tokens), (Residency::Resident, 1000), "{p}");
        assert_eq!(p.peak_bytes, BASE_BYTES + weights + 1000 * per_token);
        // The needs reported are those at one 512-token window, the least the path runs.
        assert_eq!(p.resident_bytes, BASE_BYTES + weights + 512 * per_token);
        let roomy = plan_within_budget(&card, BASE_BYTES + weights + 3000 * per_token, "--max-memory", 512, 0).unwrap();
        assert_eq!((roomy.residency, roomy.batch_tokens), (Residency::Resident, MAX_BATCH_TOKENS));
        let short = plan_within_budget(&card, BASE_BYTES + weights + 511 * per_token, "--max-memory", 512, 0).unwrap();
        assert_eq!(short.residency, Residency::Streamed, "{short}");
        assert!(short.peak_bytes <= short.budget_bytes && short.batch_tokens >= 512, "{short}");
    }

    /// Pruning Llama-3 8B in bf16 (32 blocks of 218,103,808 linear weights) on 4 x 128
    /// windows: its replacements are 4 x 6,979,321,856 bytes in f32, far over 6 GiB, so they
    /// spill; Wanda's peak fits. SparseGPT's peak is the down projection's solve: spilling,
    /// the three 4096-wide Grams are freed by then, leaving its own 14336^2 f64 Gram and one
    /// factor of that size, which fits 6 GiB; 5 GiB is refused naming that layer, and the
    /// budget it names is accepted.
    #[test]
    fn llama_3_8b_prunes_with_spilled_weights_and_sparsegpt_names_the_down_projection() {
        let card = llama_3_8b(FloatType::Bf16);
        let shape = Some(CalibrationShape { windows: 4, seqlen: 128, batch: 4 });
        let wanda = prune_plan(&card, 6 << 30, "--max-memory", shape, WANDA, true, |_| true).unwrap();
        assert_eq!(wanda.all_replacements_bytes, 4 * 6_979_321_856);
        assert_eq!(wanda.masks_bytes, 6_979_321_856 / 8);
        assert!(wanda.spill && wanda.peak_bytes < 6 << 30, "{wanda}");
        // Not streamed, a budget that holds everything keeps the replacements in memory.
        assert!(!prune_plan(&card, 64 << 30, "--max-memory", shape, WANDA, false, |_| true).unwrap().spill);
        let sparsegpt = prune_plan(&card, 6 << 30, "--max-memory", shape, SPARSEGPT, true, |_| true).unwrap();
        let (n, d_in) = (4096u64 * 14_336, 14_336u64);
        let gram = d_in * 8 + d_in * d_in * 8;
        let carried = 2 * 4 * 128 * 4096 * 4;
        let solve = n * (4 + 8 + 4) + d_in * d_in * 8;
        let down = BASE_BYTES + carried + 4 * 218_103_808 + solve + 6_979_321_856 / 8 + gram;
        assert_eq!((sparsegpt.peak_bytes, sparsegpt.spill), (down, true), "{sparsegpt}");
        assert!(sparsegpt.peak_part.contains("block 0's solve of blk.0.ffn_down"), "{sparsegpt}");
        // Kept in memory, every Gram of the block is still held at that solve.
        let kept = prune_plan(&card, 64 << 30, "--max-memory", shape, SPARSEGPT, false, |_| true).unwrap();
        assert_eq!((kept.peak_bytes, kept.spill), (down + 3 * (4096 * 8 + 4096 * 4096 * 8), false), "{kept}");
        let err = prune_plan(&card, 5 << 30, "--max-memory", shape, SPARSEGPT, true, |_| true).unwrap_err();
        let MemoryError::PruneTooSmall(shortfall) = &err else { panic!("{err}") };
        let (part, need) = (&shortfall.part, &shortfall.need);
        assert!(part.contains("ffn_down"), "{err}");
        let need_bytes = parse_size(&need.replace(' ', "")).unwrap();
        // The refusal prints GiB to two decimals (5.4 MiB either way).
        assert!(need_bytes.abs_diff(down) < 6 << 20, "{err}");
        let given = prune_plan(&card, need_bytes + (16 << 20), "--max-memory", shape, SPARSEGPT, true, |_| true).unwrap();
        assert!(given.peak_part.contains("ffn_down"), "{given}");
        // Only the first two blocks selected: their replacements only.
        let two = prune_plan(&card, 6 << 30, "--max-memory", shape, WANDA, true, |l| l.block < 2).unwrap();
        assert_eq!(two.all_replacements_bytes, 4 * 2 * 218_103_808);
    }

    /// SNIP on Llama-3 8B in bf16 on 2 x 64 windows: its largest step is a block's reverse
    /// pass, closed form: the block's 218,103,808 weights at 6 bytes, two f32 accumulators of
    /// them per worker (min(2 windows, threads)) with one window's tape each, and every
    /// block's saved input, (32 + 3) x 2 x 64 x 4096 x 4 bytes. A budget a byte short is
    /// refused naming that pass; GraSP needs one block of `g` (4 bytes a weight) more. The
    /// resident path (every weight and gradient in f32, 32+ GB) is over 64 GiB for GraSP, so
    /// it spills there too.
    #[test]
    fn snip_and_grasp_count_a_block_s_reverse_pass() {
        // Four threads, so that both windows are differentiated at once whatever the machine.
        rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap().install(snip_and_grasp_in_four_threads);
    }

    fn snip_and_grasp_in_four_threads() {
        let card = llama_3_8b(FloatType::Bf16);
        let shape = Some(CalibrationShape { windows: 2, seqlen: 64, batch: 2 });
        let snip = PruneNeeds { gradients: true, ..WANDA };
        let grasp = PruneNeeds { hessian_gradient: true, ..snip };
        let n = 218_103_808u64;
        let workers = 2u64.min(rayon::current_num_threads() as u64);
        let tape = 64 * (12 * 4096 + 3 * 14336 + 2 * 32 * 64) * 4;
        let saved = 35 * 2 * 64 * 4096 * 4;
        let backward = BASE_BYTES + saved + n * 6 + workers * (2 * n * 4 + tape);
        let at = |budget: u64, needs: PruneNeeds| prune_plan(&card, budget, "--max-memory", shape, needs, true, |_| true);
        let fits = at(backward, snip).unwrap();
        assert_eq!((fits.peak_bytes, fits.peak_part.as_str()), (backward, "block 0's reverse pass"), "{fits}");
        assert!(fits.spill);
        let err = at(backward - 1, snip).unwrap_err().to_string();
        assert!(err.contains("block 0's reverse pass") && err.contains(&human(backward)), "{err}");
        let g = at(u64::MAX, grasp).unwrap();
        assert_eq!((g.peak_bytes, g.peak_part.as_str()), (backward + n * 4, "block 0's reverse pass"), "{g}");
        // Kept in memory only when the resident gradient path fits: 8.03e9 weights in f32 and
        // 32 x 218,103,808 gradients already exceed 32 GiB.
        let kept = |budget: u64| prune_plan(&card, budget, "--max-memory", shape, snip, false, |_| true).unwrap().spill;
        assert!(kept(32 << 30) && !kept(1 << 40));
    }

    /// The error analysis of Llama-3 8B (bf16) on 8 x 128 windows: the error of the first of
    /// the three 4096 x 14336 layers (the gate projection) dominates, closed form: the
    /// block's 14336^2 f64 Gram beside its three 4096^2 ones (and their f64 sums), every
    /// window's hidden states twice, and the layer's 58,720,256 weights at 2 + 3 x 4 + 3 x 8
    /// bytes. A budget a byte short is refused naming it.
    #[test]
    fn the_error_analysis_counts_a_block_s_grams_and_its_largest_layer() {
        let card = llama_3_8b(FloatType::Bf16);
        let shape = CalibrationShape { windows: 8, seqlen: 128, batch: 4 };
        let grams = 3 * (4096u64 * 4096 * 8 + 4096 * 8) + 14336 * 14336 * 8 + 14336 * 8;
        let need = BASE_BYTES + 2 * 8 * 128 * 4096 * 4 + grams + 58_720_256 * (2 + 12 + 24);
        let fits = error_plan(&card, need, "--max-memory", shape).unwrap();
        assert_eq!((fits.peak_bytes, fits.peak_part.as_str()), (need, "block 0's error of blk.0.ffn_gate.weight"));
        let err = error_plan(&card, need - 1, "--max-memory", shape).unwrap_err().to_string();
        assert!(err.contains("blk.0.ffn_gate.weight") && err.contains(&human(need)) && err.contains("--windows"), "{err}");
    }

    fn plan_err(card: &ModelCard, budget: u64) -> String {
        plan(card, budget, "--max-memory", 2048, 512, 64 * 512).expect_err("refused").to_string()
    }

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse_size("6GiB").unwrap(), 6 << 30);
        assert_eq!(parse_size("512 MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("8G").unwrap(), 8_000_000_000);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        for bad in ["", "six", "6XB", "0", "-1G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
