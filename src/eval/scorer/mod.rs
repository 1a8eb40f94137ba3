//! The one scoring path: token ids in, the log-probability of every next token out.
//!
//! The scorer decides how a model is run; callers (perplexity, choices, generation) only say
//! what they want scored. Two ways exist:
//!
//! * **Cached** (models built by polyprune): the body graphs return hidden states and every
//!   block's keys/values; the output layer ([`crate::model::decoder::head_model`]) runs only
//!   on the rows whose next token is scored, [`HEAD_ROWS`] rows at a time, so at most
//!   `HEAD_ROWS x vocab` logits exist at once. A context shared by several continuations runs
//!   once and its cache is broadcast to all of them ([`Scorer::score_continuations`]);
//!   generation feeds one new token per step against the cache ([`Scorer::greedy_step`]).
//! * **Full-sequence** (exported graphs polyprune did not build): each sequence runs whole
//!   through the graph's `token_logprobs`/`argmax` heads, as right-padded batches.
//! * **Streamed** (chosen when the model does not fit the memory budget): the embedding,
//!   each block and the output layer are loaded one at a time and every batch passes a part
//!   before the next part is loaded ([`streamed`]); continuations and generation use per-block
//!   key/value caches there too.
//!
//! Sequences are grouped into right-padded batches of similar length (so padding wastes
//! little). Causal attention keeps padding from reaching real positions, and only real
//! positions are read back.

mod continuations;
mod decode;
mod head;
mod streamed;

pub use continuations::ContinuationGroup;
pub use decode::DecodeBatch;

use tokenizers::Tokenizer;

use crate::model::decoder::{past_name, present_name};
use crate::model::decoder::{KEY_POSITIONS, PAST_ROWS};
use crate::model::import::{ensure_cached_graphs, CONTINUATION_GRAPH_FILE, HEAD_GRAPH_FILE, PREFIX_GRAPH_FILE};
use crate::model::memory::{self, MemoryError, MemoryPlan, Residency};
use crate::model::{graph, ModelDir, ModelError};
use crate::runtime::{Arena, Graph, GraphSource, Input, OutputView, RuntimeError, RuntimeOptions, SharedWeights, Value, WeightOverride};

/// Rows the output layer runs at once on the cached path: bounds the `rows x vocab` logits
/// (and their log-softmax) inside the runtime, 64 MiB each for a 262,144-token vocabulary.
/// Smaller chunks cost one more read of the output matrix per 64 scored rows; with 256 rows
/// the logits alone were 0.5 GiB of `eval ppl`'s peak (3.30 GB before this bound and the lazy
/// continuation graph together, 1.92 GB after, Gemma 3 270M).
pub const HEAD_ROWS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ScorerError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(
        "cannot read the tokenizer {path}: {message}; re-create it with `polyprune model import` or copy the model's tokenizer.json there"
    )]
    Tokenizer { path: std::path::PathBuf, message: String },
    #[error("the text is empty after tokenization ({what}); give non-empty text")]
    EmptyText { what: String },
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error(transparent)]
    Seq2Seq(#[from] crate::eval::seq2seq::Seq2SeqError),
}

/// The longest sequence one call runs (perplexity's window) and the most token positions one
/// call carries from part to part on the streamed path (64 documents of a 512-token window),
/// as the plan assumes them; the batch size comes from the budget.
const PLAN_CONTEXT: usize = 512;
const PLAN_CARRIED_TOKENS: usize = 64 * 512;

/// The memory plan of running `model` for scoring under `opts`' budget (the free memory when
/// none is given); `None` for models without a decoder spec (not built by polyprune) or when
/// no budget is known, which run as before.
pub fn memory_plan(model: &ModelDir, opts: &RuntimeOptions) -> Result<Option<Result<MemoryPlan, MemoryError>>, ScorerError> {
    if model.card.spec.is_none() || model.card.parts.is_none() {
        return Ok(None);
    }
    let (budget, source) = match opts.max_memory {
        Some(b) => (b, "--max-memory"),
        None => match memory::free_memory() {
            Some(b) => (b, "free memory"),
            None => return Ok(None),
        },
    };
    Ok(Some(memory::plan_within_budget(&model.card, budget, source, PLAN_CONTEXT, PLAN_CARRIED_TOKENS)))
}

/// The path a plan (see [`Scorer::planned_path`]) allows.
fn path_of(plan: Option<&Result<MemoryPlan, MemoryError>>, opts: &RuntimeOptions) -> Result<PathChoice, ScorerError> {
    Ok(match plan {
        None => PathChoice::Auto,
        Some(Ok(p)) if p.residency == Residency::Resident => PathChoice::Auto,
        Some(Ok(_)) => PathChoice::Streamed,
        Some(Err(e)) if opts.max_memory.is_some() => return Err(ScorerError::Memory(e.clone())),
        Some(Err(_)) => PathChoice::Streamed,
    })
}

/// What one scored sequence gives back: `logprobs[t] = log p(s[t+1] | s[..=t])` and, when
/// asked for, `greedy[t]` = the argmax prediction for position t+1.
#[derive(Clone, Debug, Default)]
pub struct ScoredSequence {
    pub logprobs: Vec<f32>,
    pub greedy: Vec<u32>,
}

/// Token ids of a text, with the model's start token first.
pub struct Tokenized {
    pub ids: Vec<u32>,
}

/// How a loaded model is run (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoringPath {
    /// Key/value-cache graphs, output layer on scored rows only.
    Cached,
    /// Whole sequences through `model.onnx`'s scoring heads.
    FullSequence,
    /// One part resident at a time: embedding, each block, output layer ([`streamed`]).
    Streamed,
}

/// Which path to load: the best available, or the full-sequence one (to compare against it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PathChoice {
    #[default]
    Auto,
    FullSequence,
    /// One block's weights resident at a time (needs the per-block graphs of a folder
    /// polyprune wrote).
    Streamed,
}

struct CachedGraphs {
    prefix: Graph,
    /// Loaded on first use: perplexity never needs it, and its session holds its own buffers.
    continuation: Option<Graph>,
    continuation_load: ContinuationLoad,
    head: Graph,
    d_model: usize,
    /// `past.N.key/value` inputs and `present.N.key/value` outputs, in the same order, so that
    /// one run's presents feed the next run's pasts.
    past_names: Vec<String>,
    present_names: Vec<String>,
}

/// What loading the continuation graph later needs.
struct ContinuationLoad {
    path: std::path::PathBuf,
    opts: RuntimeOptions,
    overrides: Vec<WeightOverride>,
    shared: SharedWeights,
}

impl CachedGraphs {
    fn continuation(&mut self) -> Result<&mut Graph, RuntimeError> {
        if self.continuation.is_none() {
            let l = &self.continuation_load;
            self.continuation = Some(Graph::load_sharing(GraphSource::File(&l.path), &l.opts, &l.overrides, Some(&l.shared))?);
        }
        Ok(self.continuation.as_mut().expect("loaded above"))
    }

    /// The outputs a run keeps for the next one: `first` (if any), then every present.
    fn outputs_with_presents(&self, first: Option<&str>) -> Vec<String> {
        first.map(str::to_string).into_iter().chain(self.present_names.iter().cloned()).collect()
    }

    /// The continuation graph on new tokens `ids` (`shape` `[B, T]`) against `past` (every
    /// block's keys and values, rows picked by `past_rows`), with every key's absolute position.
    fn run_continuation(
        &mut self,
        ids: Vec<i64>,
        shape: Vec<usize>,
        past: &[Value],
        past_rows: Vec<i64>,
        key_positions: Vec<i64>,
        outputs: &[&str],
    ) -> Result<Vec<Value>, ScorerError> {
        let (b, t) = (shape[0], shape[1]);
        let keys = key_positions.len() / b;
        debug_assert_eq!(keys, past.first().map_or(0, |v| v.shape()[2]) + t);
        let mut inputs: Vec<(&str, Input)> = vec![
            ("input_ids", Input::I64 { shape, data: ids }),
            (PAST_ROWS, Input::I64 { shape: vec![b], data: past_rows }),
            (KEY_POSITIONS, Input::I64 { shape: vec![b, keys], data: key_positions }),
        ];
        let names = self.past_names.clone();
        for (name, value) in names.iter().zip(past) {
            inputs.push((name.as_str(), Input::Kept(value)));
        }
        // Continuation batches change shape from run to run (rows, past and new widths).
        Ok(self.continuation()?.run_keep_with(inputs, outputs, Arena::Release)?)
    }
}

enum Engine {
    Cached(Box<CachedGraphs>),
    Full(Graph),
    Streamed(Box<streamed::StreamedGraphs>),
}

/// Work done by one call, for the callers' counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// Graph runs of the model body.
    pub runs: usize,
    /// Token positions run through the body (padding included).
    pub tokens: usize,
}

pub struct Scorer {
    pub model: ModelDir,
    engine: Engine,
    tokenizer: Tokenizer,
    /// Upper bound on batch x padded length per run of the model body, which bounds the
    /// runtime's memory (on the full-sequence path the logits inside the graph are
    /// `tokens x vocab` floats).
    pub batch_tokens: usize,
    /// The memory plan's batch ([`crate::model::memory::plan_within_budget`]): runs use at
    /// most this many tokens whatever `batch_tokens` says (no bound without a plan).
    pub budget_batch_tokens: usize,
}

/// Weights the output layer reads; the head graph gets only these overrides.
const HEAD_WEIGHTS: &[&str] = &["output_norm.weight", "output.weight", "token_embd.weight"];

fn presents(blocks: usize) -> Vec<String> {
    (0..blocks).flat_map(|i| [present_name(i, "key"), present_name(i, "value")]).collect()
}

/// The past inputs, in the order of [`presents`], so a run's outputs feed the next run.
fn pasts(blocks: usize) -> Vec<String> {
    (0..blocks).flat_map(|i| [past_name(i, "key"), past_name(i, "value")]).collect()
}

fn refs(names: &[String]) -> Vec<&str> {
    names.iter().map(|s| s.as_str()).collect()
}

fn f32_of(v: &Value) -> &[f32] {
    match v.view() {
        Some(OutputView::F32(d)) => d,
        _ => &[],
    }
}

impl Scorer {
    /// Loads a model folder, with pruned weights given as overrides (empty for the dense model),
    /// on the best path it supports.
    /// Runs use the plan's batch size at most.
    pub fn load(model: &ModelDir, opts: &RuntimeOptions, overrides: &[WeightOverride]) -> Result<Self, ScorerError> {
        let plan = memory_plan(model, opts)?;
        let mut scorer = Self::load_with(model, opts, overrides, path_of(plan.as_ref(), opts)?)?;
        match plan {
            Some(Ok(plan)) => {
                scorer.budget_batch_tokens = plan.batch_tokens;
                scorer.set_head_slices(plan.head_slices);
            }
            // Streamed under the free memory, which even its smallest parts exceed: the
            // output layer in its smallest slices too.
            Some(Err(_)) => scorer.set_head_slices(model.card.vocab_size.div_ceil(memory::HEAD_SLICE_MIN_ROWS)),
            None => {}
        }
        Ok(scorer)
    }

    /// Runs the streamed path's output layer in `slices` vocabulary slices (the memory plan
    /// sets it; tests compare it with the whole head). No effect on the other paths.
    pub fn set_head_slices(&mut self, slices: usize) {
        if let Engine::Streamed(g) = &mut self.engine {
            g.head_slices = slices.clamp(1, g.spec.vocab_size.max(1));
        }
    }

    /// Tokens per run of the model body: `batch_tokens`, within the memory plan's batch.
    fn call_tokens(&self) -> usize {
        self.batch_tokens.min(self.budget_batch_tokens).max(1)
    }

    /// The path the memory budget allows ([`crate::model::memory`]): streamed when the model
    /// does not fit resident. A budget given by the user that even one part exceeds is an
    /// error before anything loads; under the default budget (the free memory) such a model
    /// streams anyway, as the least memory polyprune can run it in.
    pub fn planned_path(model: &ModelDir, opts: &RuntimeOptions) -> Result<PathChoice, ScorerError> {
        path_of(memory_plan(model, opts)?.as_ref(), opts)
    }

    pub fn load_with(
        model: &ModelDir,
        opts: &RuntimeOptions,
        overrides: &[WeightOverride],
        choice: PathChoice,
    ) -> Result<Self, ScorerError> {
        // Reading a 262,144-token tokenizer takes about as long as loading a graph (0.9 s for
        // Gemma 3 270M) on one core; it runs beside the graphs' loading.
        let (tokenizer, engine) = std::thread::scope(|scope| {
            let tokenizer = scope.spawn(|| model.tokenizer());
            let engine = Self::engine(model, opts, overrides, choice);
            (tokenizer.join().expect("reading the tokenizer does not panic"), engine)
        });
        release_freed_heap();
        Ok(Scorer { model: model.clone(), engine: engine?, tokenizer: tokenizer?, batch_tokens: 2048, budget_batch_tokens: usize::MAX })
    }

    fn engine(model: &ModelDir, opts: &RuntimeOptions, overrides: &[WeightOverride], choice: PathChoice) -> Result<Engine, ScorerError> {
        if choice == PathChoice::Streamed {
            return Ok(Engine::Streamed(Box::new(Self::streamed_graphs(model, opts, overrides)?)));
        }
        Ok(match (choice, Self::cached_graphs(model, opts, overrides)?) {
            (PathChoice::Auto, Some(cached)) => Engine::Cached(Box::new(cached)),
            _ => Engine::Full(Self::full_graph(model, opts, overrides)?),
        })
    }

    /// The cache graphs, written first if this folder predates them; `None` for graphs
    /// polyprune did not build, or a folder it cannot write to.
    fn cached_graphs(model: &ModelDir, opts: &RuntimeOptions, overrides: &[WeightOverride]) -> Result<Option<CachedGraphs>, ScorerError> {
        let Some(spec) = &model.card.spec else { return Ok(None) };
        match ensure_cached_graphs(&model.dir, &model.card) {
            Ok(true) => {}
            Ok(false) | Err(ModelError::Io { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let head_overrides: Vec<WeightOverride> = overrides.iter().filter(|o| HEAD_WEIGHTS.contains(&o.name.as_str())).cloned().collect();
        let shared = SharedWeights::new(opts)?;
        let load =
            |file: &str, ov: &[WeightOverride]| Graph::load_sharing(GraphSource::File(&model.dir.join(file)), opts, ov, Some(&shared));
        let head = load(HEAD_GRAPH_FILE, &head_overrides)?;
        Ok(Some(CachedGraphs {
            prefix: load(PREFIX_GRAPH_FILE, overrides)?,
            continuation: None,
            head,
            continuation_load: ContinuationLoad {
                path: model.dir.join(CONTINUATION_GRAPH_FILE),
                opts: opts.clone(),
                overrides: overrides.to_vec(),
                shared: shared.clone(),
            },
            d_model: spec.d_model,
            past_names: pasts(spec.blocks),
            present_names: presents(spec.blocks),
        }))
    }

    /// The parts the streamed path loads one at a time; refused, naming the fix, for folders
    /// without per-block graphs.
    fn streamed_graphs(
        model: &ModelDir,
        opts: &RuntimeOptions,
        overrides: &[WeightOverride],
    ) -> Result<streamed::StreamedGraphs, ScorerError> {
        let refuse = |reason: &str| {
            ScorerError::Model(ModelError::Unusable {
                path: model.dir.clone(),
                reason: format!(
                    "{reason}: running one block at a time needs the per-block graphs of a folder polyprune imported; re-import the model with `polyprune model import`, or give a larger --max-memory"
                ),
            })
        };
        let (Some(spec), Some(parts)) = (&model.card.spec, &model.card.parts) else {
            return Err(refuse("the card has no decoder spec or per-block parts"));
        };
        if parts.blocks.len() != spec.blocks {
            return Err(refuse("the card lists fewer block graphs than the model has blocks"));
        }
        if !ensure_cached_graphs(&model.dir, &model.card)? {
            return Err(refuse("the weights are not in an external file the parts can share"));
        }
        Ok(streamed::StreamedGraphs {
            embed: model.dir.join(&parts.embed),
            blocks: parts.blocks.iter().map(|b| model.dir.join(b)).collect(),
            head: model.dir.join(HEAD_GRAPH_FILE),
            opts: opts.clone(),
            overrides: overrides.to_vec(),
            d_model: spec.d_model,
            loads: 0,
            dir: model.dir.clone(),
            spec: spec.clone(),
            cache_graphs: Vec::new(),
            head_slices: 1,
            head_weights: None,
        })
    }

    fn full_graph(model: &ModelDir, opts: &RuntimeOptions, overrides: &[WeightOverride]) -> Result<Graph, ScorerError> {
        Ok(if model.card.has_scoring_heads {
            Graph::load(GraphSource::File(&model.graph_path()), opts, overrides)?
        } else {
            // Exported models get the scoring heads added in memory; their weights stay on disk.
            let proto = graph::read_model(&model.graph_path())?;
            let bytes = prost::Message::encode_to_vec(&graph::with_heads_and_outputs(&proto, true, &[]));
            let label = model.graph_path().display().to_string();
            Graph::load(GraphSource::Memory { bytes: &bytes, folder: &model.dir, label: &label }, opts, overrides)?
        })
    }

    pub fn path(&self) -> ScoringPath {
        match self.engine {
            Engine::Cached(_) => ScoringPath::Cached,
            Engine::Full(_) => ScoringPath::FullSequence,
            Engine::Streamed(_) => ScoringPath::Streamed,
        }
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Token ids with the start token (BOS) first, as the model saw text in training.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ScorerError> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| ScorerError::Tokenizer { path: self.model.tokenizer_path(), message: e.to_string() })?;
        let mut ids = enc.get_ids().to_vec();
        if let Some(bos) = self.model.card.start_token() {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        Ok(ids)
    }

    /// Log-probability of each next token of every sequence: `out[i][t] = log p(s_i[t+1] | s_i[..=t])`.
    pub fn token_logprobs(&mut self, seqs: &[&[u32]]) -> Result<Vec<Vec<f32>>, ScorerError> {
        if matches!(self.engine, Engine::Streamed(_)) {
            return Ok(self.score_streamed(seqs, false)?.into_iter().map(|r| r.logprobs).collect());
        }
        let rows = self.in_batches(seqs, |scorer, batch, width| scorer.run_batch(batch, width, false))?;
        Ok(rows.into_iter().map(|r| r.logprobs).collect())
    }

    /// As [`Scorer::token_logprobs`], plus the greedy (argmax) next token at every position
    /// from the same run: `greedy[t]` is the model's top prediction for `s[t+1]`. Choice
    /// scoring uses it to tell whether a continuation is what greedy decoding would write.
    pub fn token_logprobs_and_greedy(&mut self, seqs: &[&[u32]]) -> Result<Vec<ScoredSequence>, ScorerError> {
        if matches!(self.engine, Engine::Streamed(_)) {
            return self.score_streamed(seqs, true);
        }
        self.in_batches(seqs, |scorer, batch, width| scorer.run_batch(batch, width, true))
    }

    /// The batches [`Scorer::in_batches`] runs: indices of the sequences of at least
    /// `min_len` tokens, longest first, right-padded batches bounded by `batch_tokens`.
    fn batches(&self, seqs: &[&[u32]], min_len: usize) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..seqs.len()).filter(|&i| seqs[i].len() >= min_len).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(seqs[i].len()));
        let mut out = Vec::new();
        let mut start = 0;
        while start < order.len() {
            let longest = seqs[order[start]].len();
            let fit = (self.call_tokens() / longest).max(1);
            let batch: Vec<usize> = order[start..(start + fit).min(order.len())].to_vec();
            start += batch.len();
            out.push(batch);
        }
        out
    }

    /// The streamed path on `seqs` (see [`streamed`]), in the batches the other paths use.
    fn score_streamed(&mut self, seqs: &[&[u32]], with_greedy: bool) -> Result<Vec<ScoredSequence>, ScorerError> {
        let batches = self.batches(seqs, 2);
        let Engine::Streamed(g) = &mut self.engine else { unreachable!("callers check the path") };
        g.score(seqs, &batches, with_greedy)
    }

    /// Runs `seqs` (those of at least two tokens; shorter ones get empty rows) in
    /// right-padded batches of similar length, longest first, each bounded by
    /// `batch_tokens`, and returns the rows in the input order.
    fn in_batches(
        &mut self,
        seqs: &[&[u32]],
        mut run: impl FnMut(&mut Self, &[&[u32]], usize) -> Result<Vec<ScoredSequence>, ScorerError>,
    ) -> Result<Vec<ScoredSequence>, ScorerError> {
        let mut out: Vec<ScoredSequence> = vec![ScoredSequence::default(); seqs.len()];
        for batch in self.batches(seqs, 2) {
            let longest = seqs[batch[0]].len();
            let rows = run(self, &batch.iter().map(|&i| seqs[i]).collect::<Vec<_>>(), longest)?;
            for (i, row) in batch.into_iter().zip(rows) {
                out[i] = row;
            }
        }
        Ok(out)
    }

    fn run_batch(&mut self, seqs: &[&[u32]], width: usize, with_greedy: bool) -> Result<Vec<ScoredSequence>, ScorerError> {
        let (ids, shape) = pad_right(seqs, width);
        if let Engine::Cached(g) = &mut self.engine {
            // Every real position but the last predicts a scored token.
            let (mut rows, mut targets) = (Vec::new(), Vec::new());
            for (b, s) in seqs.iter().enumerate() {
                for t in 0..s.len() - 1 {
                    rows.push(b * width + t);
                    targets.push(s[t + 1]);
                }
            }
            let hidden = g.prefix.run_keep(vec![("input_ids", Input::I64 { shape, data: ids })], &["hidden"])?;
            let (lp, am) = head::run_head(&mut g.head, f32_of(&hidden[0]), g.d_model, &rows, &targets, with_greedy, Arena::Keep)?;
            let mut at = 0;
            return Ok(seqs
                .iter()
                .map(|s| {
                    let len = s.len() - 1;
                    let row = ScoredSequence {
                        logprobs: lp[at..at + len].to_vec(),
                        greedy: if with_greedy { am[at..at + len].to_vec() } else { Vec::new() },
                    };
                    at += len;
                    row
                })
                .collect());
        }
        let inputs = self.feed(ids, &shape);
        let mut rows = vec![ScoredSequence::default(); seqs.len()];
        let outputs: &[&str] = if with_greedy { &["token_logprobs", "argmax"] } else { &["token_logprobs"] };
        let Engine::Full(graph) = &mut self.engine else { unreachable!("cached path returned above") };
        graph.run_with(inputs, outputs, |_, dims, view| {
            let stride = dims[1];
            match view {
                OutputView::F32(lp) => {
                    for (b, s) in seqs.iter().enumerate() {
                        rows[b].logprobs = lp[b * stride..b * stride + s.len() - 1].to_vec();
                    }
                }
                OutputView::I64(am) => {
                    // argmax has one entry per position; the last real one predicts past the
                    // sequence and is not needed here.
                    for (b, s) in seqs.iter().enumerate() {
                        rows[b].greedy = am[b * stride..b * stride + s.len() - 1].iter().map(|&t| t as u32).collect();
                    }
                }
            }
            Ok(())
        })?;
        Ok(rows)
    }

    /// Greedy next tokens through the full-sequence graph, one right-padded batch.
    fn greedy_next_whole(&mut self, seqs: &[&[u32]]) -> Result<Vec<u32>, ScorerError> {
        let width = seqs.iter().map(|s| s.len()).max().unwrap_or(1);
        let (ids, shape) = pad_right(seqs, width);
        let inputs = self.feed(ids, &shape);
        let mut next = Vec::with_capacity(seqs.len());
        let Engine::Full(graph) = &mut self.engine else { unreachable!("only the full-sequence path comes here") };
        graph.run_with(inputs, &["argmax"], |_, dims, view| {
            if let OutputView::I64(am) = view {
                for (b, s) in seqs.iter().enumerate() {
                    next.push(am[b * dims[1] + s.len() - 1] as u32);
                }
            }
            Ok(())
        })?;
        Ok(next)
    }

    /// The inputs this graph takes: ids, plus an all-ones mask and positions for exported models.
    fn feed(&self, ids: Vec<i64>, shape: &[usize]) -> Vec<(&'static str, Input<'static>)> {
        let mut inputs = vec![("input_ids", Input::I64 { shape: shape.to_vec(), data: ids })];
        let inputs_wanted = &self.model.card.inputs;
        if inputs_wanted.iter().any(|n| n == "attention_mask") {
            inputs.push(("attention_mask", Input::I64 { shape: shape.to_vec(), data: vec![1; shape[0] * shape[1]] }));
        }
        if inputs_wanted.iter().any(|n| n == "position_ids") {
            let pos: Vec<i64> = (0..shape[0]).flat_map(|_| 0..shape[1] as i64).collect();
            inputs.push(("position_ids", Input::I64 { shape: shape.to_vec(), data: pos }));
        }
        inputs
    }
}

/// Hands the heap memory freed so far back to the system. The tokenizer is read on its own
/// thread, whose allocator arena keeps the parse's freed buffers (0.2 GB for Gemma 3 270M's
/// tokenizer) where no later allocation of the scoring thread reuses them.
fn release_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's arenas to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Right-pads with id 0: causal attention keeps padding from reaching real positions.
fn pad_right(seqs: &[&[u32]], width: usize) -> (Vec<i64>, Vec<usize>) {
    let mut ids = vec![0i64; seqs.len() * width];
    for (b, s) in seqs.iter().enumerate() {
        for (t, &id) in s.iter().enumerate() {
            ids[b * width + t] = id as i64;
        }
    }
    (ids, vec![seqs.len(), width])
}
