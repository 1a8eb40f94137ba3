//! Running a study: every unit (dense baseline or pruned cell) in order, each written to its
//! own folder, resumable.
//!
//! Crash safety comes from the order of writes: a unit's files are each written atomically
//! (temporary file + rename), and its record (`cell.json` / `dense.json`) with `status = done`
//! is written last. A re-run skips units whose record says done and recomputes the rest, so
//! Ctrl-C or a crash loses at most the unit in flight. A unit that fails gets a record with
//! its cause and the run goes on; the caller turns failures into the exit code.
//!
//! Shared work is done once: evaluation text and task examples are loaded before the first
//! unit (so a missing data file fails in a second, not after an hour), a calibration set is
//! drawn and tokenized once for all the cells that use it (cells come grouped by set), and
//! dense measurements once per model.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::shard::Shard;
use crate::calibrate::{CalibrationError, CalibrationSet, CaptureMode, CaptureOptions};
use crate::design::{Cell, DenseBaseline, Grid};
use crate::design::{StopRule, StudyConfig};
use crate::eval::{downstream, LanguageScore, ScorerError, TaskEvalError, TaskResult, TextSet};
use crate::model::seq2seq::Seq2SeqFolder;
use crate::model::ModelError;
use crate::prune::StatisticsNeed;
use crate::pruned::seq2seq::{prune_seq2seq_selected, Seq2SeqPruneOptions};
use crate::pruned::{prune_many, prune_model, write_masks, LayerFilter, PruneJob, PrunedModel};
use crate::runtime::WeightOverride;
use crate::store::{
    EvaluationRecord, Machine, MachineRecord, Provenance, ResultsDir, StageTimings, StoreError, StudyDir, StudyRecord, Unit, UnitRecord,
    UnitStatus,
};
use crate::tasks::{LoadOptions, LoadedTask, TaskError};
use crate::workflow::folder::ModelFolder;
use crate::workflow::WorkflowError;

/// Why a study could not start (nothing has been computed when these happen).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{dir} holds results of another study file (config hash {found:.12}, this one {expected:.12}); give another --out, or delete the folder to start over")]
    OtherStudy { dir: PathBuf, found: String, expected: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("perplexity text: {0}")]
    Text(#[from] crate::data::DataError),
    #[error("task {task} in '{language}': {source}")]
    // Boxed: a task error carries file and row context, and this enum travels by value.
    Task { task: String, language: String, source: Box<TaskError> },
    #[error("analysis: {0}")]
    Analysis(#[from] crate::analysis::AnalysisError),
    #[error("[advice]: {0}")]
    // Boxed: the workflow's errors are large, and this enum travels by value.
    Advice(Box<crate::workflow::WorkflowError>),
    #[error("task {task} in '{language}' has no examples in the '{split}' split; check [tasks] data")]
    NoExamples { task: String, language: String, split: String },
    #[error("[tasks] stop = \"decided\" compares every unit round by round, so it runs in one process: run the study without --shard (or use stop = \"full\" to shard it)")]
    DecidedSharded,
    /// A grid asking an encoder-decoder for something only decoder-only models have.
    #[error("model '{model}' is an encoder-decoder (mT5/T5): {what}")]
    EncoderDecoder { model: String, what: String },
}

/// Why one unit failed (recorded in its `cell.json`; the others still run).
#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Calibration(#[from] CalibrationError),
    #[error(transparent)]
    Scorer(#[from] ScorerError),
    #[error(transparent)]
    Task(#[from] TaskEvalError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("decided evaluation: {0}")]
    Decided(String),
    // Boxed, as the larger errors of the layers above: a unit's error travels by value.
    #[error(transparent)]
    Seq2SeqPrune(Box<crate::pruned::seq2seq::Seq2SeqPruneError>),
    #[error(transparent)]
    Workflow(Box<WorkflowError>),
}

impl From<crate::pruned::seq2seq::Seq2SeqPruneError> for UnitError {
    fn from(e: crate::pruned::seq2seq::Seq2SeqPruneError) -> Self {
        UnitError::Seq2SeqPrune(Box::new(e))
    }
}

impl From<WorkflowError> for UnitError {
    fn from(e: WorkflowError) -> Self {
        UnitError::Workflow(Box::new(e))
    }
}

/// What the runner tells whoever shows progress.
pub trait Observer {
    /// `total` units in this run (after sharding), `done` of them finished earlier.
    fn begin(&mut self, _total: usize, _done: usize) {}
    fn unit_started(&mut self, _id: &str) {}
    /// The current unit's stage, e.g. "wanda block 3: statistics".
    fn stage(&mut self, _message: &str) {}
    /// A line worth keeping in the log (a decided round's outcome).
    fn note(&mut self, _message: &str) {}
    fn unit_finished(&mut self, _id: &str, _status: &UnitStatus) {}
    /// The model analyses after the units: `total` of them to compute now.
    fn analyses_begin(&mut self, _total: usize) {}
    /// One analysis (`<model>/<section>`) starts; its stages arrive through [`Observer::stage`].
    fn analysis_started(&mut self, _name: &str) {}
    /// One analysis ends, written (`None`) or with this error.
    fn analysis_finished(&mut self, _name: &str, _failure: Option<&str>) {}
}

/// Forwards a workflow's progress (an analysis, the advice search) to the study's observer:
/// stages as the current stage, notes as log lines starting with `notes`.
pub(super) struct ObserverProgress<'a> {
    observer: &'a mut dyn Observer,
    stage: String,
    notes: &'static str,
}

impl<'a> ObserverProgress<'a> {
    pub(super) fn new(observer: &'a mut dyn Observer, notes: &'static str) -> Self {
        ObserverProgress { observer, stage: String::new(), notes }
    }
}

impl crate::progress::Progress for ObserverProgress<'_> {
    fn stage(&mut self, name: &str, _total: u64) {
        self.stage = name.to_string();
        self.observer.stage(name);
    }
    fn advance(&mut self, done: u64) {
        self.observer.stage(&format!("{} {done}", self.stage));
    }
    fn detail(&mut self, what: &str) {
        self.observer.stage(what);
    }
    fn note(&mut self, line: &str) {
        self.observer.note(&format!("{}: {line}", self.notes));
    }
}

/// An observer that shows nothing (tests, scripts).
pub struct Silent;
impl Observer for Silent {}

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub shard: Option<Shard>,
    /// Stop after computing this many units (finished earlier ones do not count): a controlled
    /// interruption, as Ctrl-C would leave it.
    pub max_units: Option<usize>,
    /// Stop the decided task rounds after this many in this run (the same kind of controlled
    /// interruption).
    pub max_rounds: Option<usize>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RunSummary {
    /// Units finished by an earlier run, not recomputed.
    pub skipped: Vec<String>,
    pub computed: Vec<String>,
    /// `(id, error)` of units that failed in this run.
    pub failed: Vec<(String, String)>,
    /// Units left for a later run (`max_units`).
    pub left: usize,
    /// Whether the decided task rounds stopped before the end (`max_rounds`).
    pub rounds_left: bool,
    /// Model analyses computed in this run (`<model>/<analysis>`, and `<model>/advice` for the
    /// `[advice]` search), once every unit was done.
    pub analyses: Vec<String>,
}

/// The study's plan record, as written to `study.json`.
pub fn study_record(config: &StudyConfig, grid: &Grid) -> StudyRecord {
    StudyRecord {
        study: config.name.clone(),
        config_hash: config.hash.clone(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        cells: grid.cells.clone(),
        dense: grid.dense.clone(),
        models: config.models.iter().map(|m| (m.name.clone(), m.path.clone())).collect(),
        evaluation: EvaluationRecord::of(config.perplexity.as_ref(), config.tasks.as_ref()),
        analysis: config.analysis.clone(),
    }
}

/// Creates `dir` for this study, or checks that it already belongs to it.
pub fn prepare_dir(dir: &StudyDir, config: &StudyConfig, config_text: &str, grid: &Grid) -> Result<(), RunError> {
    if dir.exists() {
        let existing = dir.read_study()?;
        // A killed run may have left temporaries; what they were writing is redone.
        dir.remove_abandoned_writes()?;
        if existing.config_hash != config.hash {
            return Err(RunError::OtherStudy { dir: dir.root.clone(), found: existing.config_hash, expected: config.hash.clone() });
        }
        // Same study, perhaps with other `[report]` names: the report reads the kept copy.
        if dir.read_config_text()?.as_deref() != Some(config_text) {
            dir.update_config_text(config_text)?;
        }
        return Ok(());
    }
    Ok(dir.write_study(&study_record(config, grid), config_text)?)
}

/// What every unit is measured on, loaded once.
pub struct Evaluation {
    pub text: Vec<TextSet>,
    pub tasks: Vec<LoadedTask>,
}

/// Loads the perplexity text and task examples the config names; fails before any model work.
pub fn load_evaluation(config: &StudyConfig) -> Result<Evaluation, RunError> {
    let registry = crate::eval::registry(None);
    let text = match &config.perplexity {
        Some(p) => {
            let codes: Vec<String> = p.languages.iter().map(|l| l.flores_code().to_string()).collect();
            crate::eval::evaluation_sets_limited(&codes, p.source.as_deref(), &registry, p.limit)?
        }
        None => Vec::new(),
    };
    let mut tasks = Vec::new();
    if let Some(t) = &config.tasks {
        let options = LoadOptions { split: t.split, shots: t.shots, seed: t.seed };
        for &task in &t.names {
            for language in &t.languages_of(task) {
                let mut loaded = crate::tasks::load(task, language, &t.data, &options).map_err(|source| RunError::Task {
                    task: task.to_string(),
                    language: language.clone(),
                    source: Box::new(source),
                })?;
                // A decided study draws its own seeded order over the whole set and stops at the
                // limit, so the confidence sequences know the test set's size.
                if let (Some(n), StopRule::Full) = (t.limit, t.stop) {
                    loaded.items = downstream::limit_items(loaded.items, n, t.seed);
                }
                if loaded.items.is_empty() {
                    return Err(RunError::NoExamples { task: task.to_string(), language: language.clone(), split: t.split.to_string() });
                }
                tasks.push(loaded);
            }
        }
    }
    Ok(Evaluation { text, tasks })
}

/// The units of this run, in order: baselines first, then cells grouped by calibration set.
pub fn units(grid: &Grid, shard: Option<Shard>) -> Vec<Unit> {
    let all: Vec<Unit> = grid.dense.iter().cloned().map(Unit::Dense).chain(grid.cells.iter().cloned().map(Unit::Cell)).collect();
    match shard {
        Some(s) => s.select(all),
        None => all,
    }
}

/// Runs (or resumes) a study in `dir`.
pub fn run_study(
    config: &StudyConfig,
    config_text: &str,
    dir: &StudyDir,
    options: &RunOptions,
    observer: &mut dyn Observer,
) -> Result<RunSummary, RunError> {
    let grid = Grid::expand(config);
    let decided = match config.tasks.as_ref().map(|t| t.stop) {
        Some(StopRule::Decided(rule)) => Some(rule),
        _ => None,
    };
    if decided.is_some() && options.shard.is_some() {
        return Err(RunError::DecidedSharded);
    }
    check_encoder_decoders(config)?;
    let evaluation = load_evaluation(config)?;
    prepare_dir(dir, config, config_text, &grid)?;
    let units = units(&grid, options.shard);
    let mut pending = Vec::new();
    let mut summary = RunSummary::default();
    for unit in units {
        match dir.read_record(&unit) {
            Ok(Some(r)) if r.status == UnitStatus::Done => summary.skipped.push(unit.id().to_string()),
            _ => pending.push(unit),
        }
    }
    observer.begin(pending.len() + summary.skipped.len(), summary.skipped.len());
    let siblings: Vec<Cell> = pending.iter().filter_map(|u| if let Unit::Cell(c) = u { Some(c.clone()) } else { None }).collect();
    let mut worker = Worker { config, dir, evaluation: &evaluation, calibration: None, siblings, prepruned: HashMap::new() };
    for (k, unit) in pending.iter().enumerate() {
        if options.max_units.is_some_and(|m| k >= m) {
            summary.left = pending.len() - k;
            break;
        }
        observer.unit_started(unit.id());
        let started = Instant::now();
        let previous_runs = dir.read_record(unit).ok().flatten().map_or(0, |r| r.runs);
        let status = match worker.run(unit, observer) {
            Ok(mut record) => {
                record.runs = previous_runs + 1;
                record.timings.total_s = started.elapsed().as_secs_f64();
                match write_record(dir, unit, &record) {
                    Ok(()) => UnitStatus::Done,
                    Err(e) => UnitStatus::Failed { error: e.to_string() },
                }
            }
            Err(e) => {
                let status = UnitStatus::Failed { error: e.to_string() };
                let mut record = worker.empty_record(unit, status.clone());
                record.runs = previous_runs + 1;
                record.timings.total_s = started.elapsed().as_secs_f64();
                // Best effort: if even the record cannot be written, the summary still says why.
                let _ = write_record(dir, unit, &record);
                status
            }
        };
        match &status {
            UnitStatus::Done => summary.computed.push(unit.id().to_string()),
            UnitStatus::Failed { error } => summary.failed.push((unit.id().to_string(), error.clone())),
        }
        observer.unit_finished(unit.id(), &status);
    }
    let all_done = summary.left == 0 && summary.failed.is_empty() && options.shard.is_none();
    if let (Some(rule), true) = (decided, all_done && !evaluation.tasks.is_empty()) {
        if dir.read_decisions::<crate::store::Decisions>()?.is_none() {
            match super::decided::run_decided(config, dir, &evaluation, rule, options.max_rounds, observer) {
                Ok(finished) => summary.rounds_left = finished.is_none(),
                Err(e) => summary.failed.push(("decided task rounds".to_string(), e.to_string())),
            }
        }
    }
    // The model analyses compare finished cells, so they wait for a run that leaves none to do
    // and none failed; a shard holds only some cells, so they wait for the merged study.
    if all_done && summary.failed.is_empty() && !summary.rounds_left {
        summary.analyses = super::analyses::run_model_analyses(config, dir, observer)?;
        summary.analyses.extend(super::advice::run_advice(config, dir, observer)?);
    }
    Ok(summary)
}

/// Refuses, before anything runs, what the grid asks of an encoder-decoder model that
/// polyprune cannot do for one: gradient methods (SNIP, GraSP: no reverse pass of the
/// encoder-decoder), and layer filters that select none of its layers.
pub fn check_encoder_decoders(config: &StudyConfig) -> Result<(), RunError> {
    for m in config.models.iter().filter(|m| crate::model::seq2seq::is_seq2seq_folder(&m.path)) {
        let refuse = |what: String| Err(RunError::EncoderDecoder { model: m.name.clone(), what });
        if !config.include.is_empty() || !config.exclude.is_empty() {
            // The filters read the encoder-decoder's own names (`enc.blk.0.`, `dec.blk.3.cross`):
            // one that leaves none of its layers would run cells that prune nothing.
            let filter = LayerFilter { include: config.include.clone(), exclude: config.exclude.clone() };
            if let Ok(folder) = Seq2SeqFolder::open(&m.path) {
                let spec = &folder.card.spec;
                if !spec.layers().iter().any(|l| filter.selects(&l.as_linear(spec.encoder_blocks))) {
                    return refuse(
                        "include/exclude select none of its layers; its names are like enc.blk.0.attn_q.weight and \
                         dec.blk.1.cross_attn_k.weight (see `polyprune model inspect`)"
                            .into(),
                    );
                }
            }
        }
    }
    Ok(())
}

fn write_record(dir: &StudyDir, unit: &Unit, record: &UnitRecord) -> Result<(), UnitError> {
    Ok(dir.write_record(unit, record)?)
}

/// The scorer's own default batch (the study has no setting for it).
pub(super) const DEFAULT_BATCH_TOKENS: usize = 2048;

/// An encoder-decoder cell's per-block calibration and solve seconds, beside its `sparsity.csv`.
pub const BLOCK_SECONDS_FILE: &str = "block_seconds.json";

/// The calibration set in use, kept while consecutive cells share it.
type CachedSet = ((String, String, u64), Arc<CalibrationSet>);

struct Worker<'a> {
    config: &'a StudyConfig,
    dir: &'a StudyDir,
    evaluation: &'a Evaluation,
    calibration: Option<CachedSet>,
    /// The cells this run will compute, for sharing one-shot calibration passes.
    siblings: Vec<Cell>,
    /// Pruned models computed early by a shared pass, waiting for their cell's turn.
    prepruned: HashMap<String, PrunedModel>,
}

impl Worker<'_> {
    fn empty_record(&self, unit: &Unit, status: UnitStatus) -> UnitRecord {
        let machine = Machine::this();
        UnitRecord {
            id: unit.id().to_string(),
            status,
            runs: 0,
            model: unit.model().to_string(),
            model_hash: String::new(),
            config_hash: self.config.hash.clone(),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            seed: match unit {
                Unit::Cell(c) => c.seed,
                Unit::Dense(_) => None,
            },
            started_unix: crate::store::unix_now(),
            timings: StageTimings::default(),
            eval_tokens: 0,
            calibration_tokens: 0,
            overall_sparsity: None,
            machine: MachineRecord {
                hostname: machine.hostname,
                cores: machine.cores,
                os: machine.os,
                device: self.config.device.clone(),
                compute: self.compute_of(unit.model()),
            },
        }
    }

    /// What `model`'s graphs compute in under the study's device and `compute` key: resolved
    /// from its card, or the key as written when the card cannot say (the run then fails
    /// on loading the model, with the reason).
    fn compute_of(&self, model: &str) -> String {
        let runtime = self.config.runtime();
        self.config
            .model(model)
            .and_then(|m| crate::model::ModelCard::read(&m.path).ok())
            .and_then(|card| runtime.compute.resolve(runtime.provider, card.matrix_type()).ok())
            .map_or_else(|| runtime.compute.to_string(), |t| t.flag_name().to_string())
    }

    /// Whether tasks are scored in rounds after every unit ([`super::decided`]), not per unit.
    fn decides_tasks(&self) -> bool {
        matches!(self.config.tasks.as_ref().map(|t| t.stop), Some(StopRule::Decided(_)))
    }

    fn open_model(&self, name: &str) -> Result<ModelFolder, UnitError> {
        // The config checked that every unit's model is listed.
        let spec = self.config.model(name).expect("unit of a listed model");
        Ok(ModelFolder::open(&spec.path)?)
    }

    fn run(&mut self, unit: &Unit, observer: &mut dyn Observer) -> Result<UnitRecord, UnitError> {
        match unit {
            Unit::Dense(d) => self.run_dense(unit, d, observer),
            Unit::Cell(c) => self.run_cell(unit, c, observer),
        }
    }

    fn run_dense(&mut self, unit: &Unit, dense: &DenseBaseline, observer: &mut dyn Observer) -> Result<UnitRecord, UnitError> {
        let mut record = self.empty_record(unit, UnitStatus::Done);
        let model = self.open_model(&dense.model)?;
        record.model_hash = model.identity();
        let out = self.dir.dense(&dense.model);
        self.measure(&model, &[], &out, &mut record, observer, "dense")?;
        Ok(record)
    }

    fn calibration_set(&mut self, model: &ModelFolder, cell: &Cell) -> Result<Option<Arc<CalibrationSet>>, UnitError> {
        let (Some(spec), Some(key)) = (cell.calibration_spec(), cell.calibration_key()) else {
            return Ok(None);
        };
        if let Some((k, set)) = &self.calibration {
            if *k == key {
                return Ok(Some(set.clone()));
            }
        }
        let registry = crate::eval::registry(None);
        let set = Arc::new(match model {
            ModelFolder::Decoder(model) => {
                let spec = crate::calibrate::CalibrationSpec { seqlen: spec.seqlen.min(model.card.max_positions), ..spec };
                CalibrationSet::draw(&spec, &registry, &model.tokenizer()?, model.calibration_start_token()?)?
            }
            // Windows start with `</s>`, which the encoder-decoder's workflow drops (see
            // `crate::workflow::prune_seq2seq`); the set is the decoder's otherwise.
            ModelFolder::EncoderDecoder(f) => CalibrationSet::draw(&spec, &registry, &f.tokenizer()?, f.card.spec.eos_token_id)?,
        });
        self.calibration = Some((key, set.clone()));
        Ok(Some(set))
    }

    fn run_cell(&mut self, unit: &Unit, cell: &Cell, observer: &mut dyn Observer) -> Result<UnitRecord, UnitError> {
        let mut record = self.empty_record(unit, UnitStatus::Done);
        let folder = self.open_model(&cell.model)?;
        record.model_hash = folder.identity();
        observer.stage(&format!("{}: calibration set", cell.id));
        let t0 = Instant::now();
        let set = self.calibration_set(&folder, cell)?;
        record.timings.calibration_draw_s = t0.elapsed().as_secs_f64();
        record.calibration_tokens = set.as_ref().map_or(0, |s| s.tokens());
        let model = match &folder {
            ModelFolder::Decoder(model) => model,
            ModelFolder::EncoderDecoder(f) => return self.run_encoder_decoder_cell(f, &folder, cell, set.as_deref(), record, observer),
        };
        let calibration_batch = self.config.calibration.as_ref().map_or(4, |c| c.batch);
        let capture = CaptureOptions { mode: cell.mode, batch: calibration_batch, runtime: self.config.runtime(), gram: false };
        let filter = LayerFilter { include: self.config.include.clone(), exclude: self.config.exclude.clone() };
        let blocks = model.card.blocks;
        let pruned = match self.prepruned.remove(&cell.id) {
            Some(p) => p,
            None => {
                let group = self.shared_pass_group(cell);
                if group.len() > 1 {
                    let jobs: Vec<PruneJob> = group.iter().map(|c| PruneJob { method: c.method, target: c.target() }).collect();
                    let names: Vec<String> = group.iter().map(|c| c.method.name().to_string()).collect();
                    let mut all = prune_many(model, &jobs, &filter, set.as_deref(), &capture, |_, k, stage| {
                        observer.stage(&format!("{} (shared pass) block {}/{blocks}: {stage}", names.join("+"), k + 1));
                    })?;
                    let mine = group.iter().position(|c| c.id == cell.id).expect("the cell is in its own group");
                    let pruned = all.remove(mine);
                    for (c, p) in group.iter().filter(|c| c.id != cell.id).zip(all) {
                        self.prepruned.insert(c.id.clone(), p);
                    }
                    pruned
                } else {
                    prune_model(model, &cell.method, cell.target(), &filter, set.as_deref(), &capture, |k, stage| {
                        observer.stage(&format!("{} block {}/{blocks}: {stage}", cell.method.name(), k + 1));
                    })?
                }
            }
        };
        record.timings.calibration_forward_s = pruned.timings.forward_s;
        record.timings.statistics_s = pruned.timings.statistics_s;
        record.timings.prune_solve_s = pruned.timings.solve_s;
        record.overall_sparsity = Some(pruned.overall_sparsity());
        let out = self.dir.cell(&cell.id);
        write_pruned(&out, &pruned, set.as_deref())?;
        if self.decides_tasks() {
            // The rounds score every cell again and again after all are pruned.
            self.dir.write_pruned_weights(&cell.id, &pruned.overrides)?;
        }
        self.measure(&folder, &pruned.overrides, &out, &mut record, observer, cell.method.name())?;
        Ok(record)
    }

    /// A cell of an encoder-decoder: both stacks pruned by `prune_seq2seq` (no pass shared
    /// between cells), then written and measured as a decoder's cell is.
    fn run_encoder_decoder_cell(
        &mut self,
        seq2seq: &Seq2SeqFolder,
        folder: &ModelFolder,
        cell: &Cell,
        set: Option<&CalibrationSet>,
        mut record: UnitRecord,
        observer: &mut dyn Observer,
    ) -> Result<UnitRecord, UnitError> {
        observer.stage(&format!("{}: pruning encoder and decoder", cell.method.name()));
        let eos = seq2seq.card.spec.eos_token_id;
        let sequences: Vec<Vec<u32>> = set
            .map(|s| s.windows.iter().map(|w| w[1..].iter().copied().chain(std::iter::once(eos)).collect()).collect())
            .unwrap_or_default();
        let options = Seq2SeqPruneOptions { method: cell.method, target: cell.target(), sequential: cell.mode == CaptureMode::Sequential };
        let filter = LayerFilter { include: self.config.include.clone(), exclude: self.config.exclude.clone() };
        let result = prune_seq2seq_selected(seq2seq, &sequences, &options, &filter, &self.config.runtime())?;
        let pruned = result.to_pruned_model(&seq2seq.card.spec);
        // SNIP and GraSP's gradient passes are this cell's calibration.
        let t = &pruned.timings;
        record.timings.calibration_forward_s = t.forward_s + t.gradient_s + t.hessian_gradient_s;
        record.timings.prune_solve_s = pruned.timings.solve_s;
        record.overall_sparsity = Some(pruned.overall_sparsity());
        let out = self.dir.cell(&cell.id);
        write_pruned(&out, &pruned, set)?;
        let path = out.path().join(BLOCK_SECONDS_FILE);
        let json = serde_json::to_string_pretty(&result.blocks).expect("block timings serialise");
        crate::util::write_atomic(&path, json.as_bytes()).map_err(|e| ModelError::io(&path, e))?;
        if self.decides_tasks() {
            // The rounds score every cell again and again after all are pruned.
            self.dir.write_pruned_weights(&cell.id, &pruned.overrides)?;
        }
        self.measure(folder, &pruned.overrides, &out, &mut record, observer, cell.method.name())?;
        Ok(record)
    }

    /// The cells still to run that can share `cell`'s calibration pass: one-shot statistics come
    /// from the dense model, so every calibrated cell of the same model and calibration set
    /// (any method, sparsity, pattern) is solved from one capture. Sequential cells cannot share:
    /// their statistics depend on how the earlier blocks were pruned.
    fn shared_pass_group(&self, cell: &Cell) -> Vec<Cell> {
        let calibrated = |c: &Cell| c.method.statistics_need() != StatisticsNeed::None;
        if cell.mode != CaptureMode::OneShot || !calibrated(cell) {
            return vec![cell.clone()];
        }
        let key = cell.calibration_key();
        self.siblings
            .iter()
            .filter(|c| {
                c.mode == CaptureMode::OneShot && calibrated(c) && c.calibration_key() == key && !self.prepruned.contains_key(&c.id)
            })
            .filter(|c| c.id == cell.id || !self.dir.is_done(&Unit::Cell((*c).clone())))
            .cloned()
            .collect()
    }

    /// Perplexity and tasks of `model` with `overrides`, written under `out/ppl` and `out/tasks`.
    fn measure(
        &self,
        model: &ModelFolder,
        overrides: &[WeightOverride],
        out: &ResultsDir,
        record: &mut UnitRecord,
        observer: &mut dyn Observer,
        what: &str,
    ) -> Result<(), UnitError> {
        let mut scorer = model.scorer(&self.config.runtime(), overrides, DEFAULT_BATCH_TOKENS)?;
        if let Some(plan) = &self.config.perplexity {
            let t0 = Instant::now();
            let context = model.max_positions().map_or(plan.context, |max| plan.context.min(max));
            let window = crate::eval::WindowOptions { context, stride: plan.stride };
            let sets = &self.evaluation.text;
            let scores = crate::eval::score_sets(scorer.as_mut(), sets, plan.limit, window, |i, n| {
                observer.stage(&format!("{what}: perplexity {} ({n} documents)", sets[i].language));
            })?;
            record.timings.perplexity_s = t0.elapsed().as_secs_f64();
            record.eval_tokens = scores.iter().map(LanguageScore::tokens).sum();
            let provenance = self.provenance(model, "study perplexity", serde_json::json!({ "plan": plan, "unit": record.id }), t0);
            out.perplexity().write(&scores, &provenance)?;
        }
        if !self.evaluation.tasks.is_empty() && !self.decides_tasks() {
            let t0 = Instant::now();
            let mut results: Vec<TaskResult> = Vec::new();
            for loaded in &self.evaluation.tasks {
                let label = format!("{what}: {} {}", loaded.task, loaded.language.label());
                results.push(downstream::evaluate(scorer.as_mut(), loaded, None, |n| observer.stage(&format!("{label} ({n} examples)")))?);
            }
            record.timings.tasks_s = t0.elapsed().as_secs_f64();
            let provenance = self.provenance(model, "study tasks", serde_json::json!({ "plan": self.config.tasks, "unit": record.id }), t0);
            out.tasks().write(&results, &provenance)?;
        }
        Ok(())
    }

    fn provenance(&self, model: &ModelFolder, command: &str, settings: serde_json::Value, started: Instant) -> Provenance {
        Provenance::new(command, model.identity(), serde_json::json!({ "config_hash": self.config.hash, "settings": settings }), started)
    }
}

/// `sparsity.csv`, the masks, and the calibration manifest of a pruned cell.
fn write_pruned(out: &ResultsDir, pruned: &PrunedModel, set: Option<&CalibrationSet>) -> Result<(), UnitError> {
    out.write_sparsity(pruned)?;
    write_masks(out.path(), pruned)?;
    if let Some(set) = set {
        out.write_manifest(&set.manifest)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::config::tests::{parse_ok, GOOD};

    /// A study file that differs only in `[report]` is the same study: the run goes on, and the
    /// copy the report reads is the new text. Another study is refused and leaves the copy alone.
    #[test]
    fn a_resumed_study_keeps_the_latest_report_names() {
        let dir = StudyDir::new(std::env::temp_dir().join(format!("polyprune-prepare-{}", std::process::id())));
        let _ = std::fs::remove_dir_all(&dir.root);
        let first = parse_ok(GOOD);
        prepare_dir(&dir, &first, GOOD, &Grid::expand(&first)).unwrap();
        let renamed = format!("{GOOD}\n[report]\nlanguages = {{ de = \"German\" }}\n");
        let second = parse_ok(&renamed);
        prepare_dir(&dir, &second, &renamed, &Grid::expand(&second)).unwrap();
        assert_eq!(dir.read_config_text().unwrap().as_deref(), Some(renamed.as_str()));
        let other = GOOD.replace("limit = 10", "limit = 11");
        let third = parse_ok(&other);
        assert!(matches!(prepare_dir(&dir, &third, &other, &Grid::expand(&third)), Err(RunError::OtherStudy { .. })));
        assert_eq!(dir.read_config_text().unwrap().as_deref(), Some(renamed.as_str()));
        let _ = std::fs::remove_dir_all(&dir.root);
    }
}
