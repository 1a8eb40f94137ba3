//! `prune` as a library call: draw a calibration set, prune the model with one or more methods
//! (sharing one calibration pass where the capture mode allows), write each method's results
//! folder, optionally save the pruned model, and compare perplexity before and after.

use std::path::PathBuf;

use super::folder::ModelFolder;
use super::perplexity::language_sets;
use super::{score_sets, WorkflowError};
use crate::calibrate::{CalibrationSet, CalibrationSpec, CaptureMode, CaptureOptions};
use crate::eval::{LanguageScore, WindowOptions};
use crate::model::memory::{self, CalibrationShape, PrunePlan};
use crate::model::ModelDir;
use crate::progress::Progress;
use crate::prune::StatisticsNeed;
use crate::prune::{Method, Pattern, Sparsity, SparsityTarget};
use crate::pruned::{prune_many_with, save_pruned, LayerFilter, PruneJob, PrunedModel};
use crate::runtime::spill::SpillDir;
use crate::runtime::RuntimeOptions;
use crate::store::{new_run, Provenance, ResultsDir, RunKind};

/// Perplexity before and after pruning, on each language's evaluation text.
#[derive(Clone, Debug)]
pub struct PerplexityCheck {
    pub languages: Vec<String>,
    pub source: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Clone, Debug)]
pub struct PruneOptions {
    pub model: PathBuf,
    /// One or more methods; in one-shot mode they share one calibration pass.
    pub methods: Vec<Method>,
    /// `None` with an N:M pattern prunes exactly N/M.
    pub sparsity: Option<Sparsity>,
    pub pattern: Pattern,
    /// Needed by every method but Magnitude; `seqlen` is capped at the model's maximum positions.
    pub calibration: Option<CalibrationSpec>,
    /// Another SIB-200/FLORES folder than the project's (calibration and evaluation text).
    pub flores: Option<PathBuf>,
    pub mode: CaptureMode,
    /// Calibration windows per runtime call.
    pub batch: usize,
    pub filter: LayerFilter,
    pub runtime: RuntimeOptions,
    /// Results root: each method's run goes to `<results>/prune/<time>-<method>-<calibration>/`.
    pub results: PathBuf,
    /// Save the pruned model folder here (one subfolder per method when there are several).
    pub save: Option<PathBuf>,
    pub evaluate: Option<PerplexityCheck>,
}

/// One method's outcome.
pub struct PrunedRun {
    pub method: Method,
    pub pruned: PrunedModel,
    pub results_dir: PathBuf,
    pub saved: Option<PathBuf>,
    /// Perplexity after pruning, in the order of `PruneRun::dense`.
    pub perplexity: Vec<LanguageScore>,
}

pub struct PruneRun {
    /// The calibration set's label (empty without calibration).
    pub calibration: String,
    pub runs: Vec<PrunedRun>,
    /// Dense perplexity, when `evaluate` asked for a comparison.
    pub dense: Vec<LanguageScore>,
}

fn draw_calibration_set(opts: &PruneOptions, model: &ModelDir) -> Result<Option<CalibrationSet>, WorkflowError> {
    let Some(requested) = &opts.calibration else { return Ok(None) };
    let spec = CalibrationSpec { seqlen: requested.seqlen.min(model.card.max_positions), ..requested.clone() };
    let registry = crate::eval::registry(opts.flores.as_deref());
    let tokenizer = model.tokenizer()?;
    let start = model.calibration_start_token()?;
    Ok(Some(CalibrationSet::draw(&spec, &registry, &tokenizer, start)?))
}

/// How `prune` runs within the memory budget (`--max-memory`, else the free memory): the
/// peak of one block's calibration and solve, and whether the pruned weights leave memory
/// block by block (they do when the model is evaluated streamed, or when they would not fit
/// beside that peak). `None` for a model without a decoder spec or when no budget is known.
/// A budget given by the user below one block's peak is refused here, before any work.
pub fn prune_memory_plan(opts: &PruneOptions, model: &ModelDir) -> Result<Option<PrunePlan>, WorkflowError> {
    if model.card.spec.is_none() || model.card.parts.is_none() {
        return Ok(None);
    }
    let (budget, source) = match opts.runtime.max_memory {
        Some(b) => (b, "--max-memory"),
        None => match memory::free_memory() {
            Some(b) => (b, "free memory"),
            None => return Ok(None),
        },
    };
    let streamed = !matches!(
        crate::eval::scorer::memory_plan(model, &opts.runtime)?,
        None | Some(Ok(memory::MemoryPlan { residency: memory::Residency::Resident, .. }))
    );
    let shape = opts.calibration.as_ref().map(|c| CalibrationShape {
        windows: c.samples,
        seqlen: c.seqlen.min(model.card.max_positions),
        batch: opts.batch,
    });
    let needs = prune_needs(&opts.methods);
    match memory::prune_plan(&model.card, budget, source, shape, needs, streamed, |l| opts.filter.selects(l)) {
        Ok(plan) => Ok(Some(plan)),
        Err(e) if opts.runtime.max_memory.is_some() => Err(WorkflowError::Refused(e.to_string())),
        // Under the default budget the run goes ahead in the least memory polyprune can.
        Err(_) => {
            let plan = memory::prune_plan(&model.card, u64::MAX, source, shape, needs, true, |l| opts.filter.selects(l))
                .map_err(|e| WorkflowError::Refused(e.to_string()))?;
            Ok(Some(PrunePlan { budget_bytes: budget, spill: true, ..plan }))
        }
    }
}

/// What `methods` measure, for the memory plan.
fn prune_needs(methods: &[Method]) -> memory::PruneNeeds {
    let need = |n: StatisticsNeed| methods.iter().any(|m| m.statistics_need() == n);
    let gradients = need(StatisticsNeed::Gradient) || need(StatisticsNeed::HessianGradient);
    memory::PruneNeeds {
        gram: need(StatisticsNeed::Gram),
        gradients,
        hessian_gradient: need(StatisticsNeed::HessianGradient),
        global_scores: methods.iter().any(|m| m.saliency_scope() == Some(crate::prune::SaliencyScope::Global)),
    }
}

pub fn prune(opts: &PruneOptions, progress: &mut dyn Progress) -> Result<PruneRun, WorkflowError> {
    if opts.methods.is_empty() {
        return Err(WorkflowError::Refused(
            "--method is empty; give magnitude, magnitude-row, wanda, sparsegpt, snip or grasp (comma-separated for several)".into(),
        ));
    }
    let target = SparsityTarget::new(opts.sparsity, opts.pattern).map_err(|e| WorkflowError::Refused(e.to_string()))?;
    let model = match ModelFolder::open(&opts.model)? {
        ModelFolder::Decoder(model) => model,
        ModelFolder::EncoderDecoder(folder) => return super::prune_seq2seq::prune_encoder_decoder(opts, &folder, target, progress),
    };
    let started = std::time::Instant::now();
    let plan = prune_memory_plan(opts, &model)?;
    let set = draw_calibration_set(opts, &model)?;
    // Each block's pruned weights go to disk as the block is done; the folder goes when the
    // last of them is dropped (at the end of this call, after saving and evaluating).
    let spill = match plan.as_ref().filter(|p| p.spill) {
        Some(_) => Some(SpillDir::create(&opts.results.join("prune")).map_err(crate::calibrate::CalibrationError::from)?),
        None => None,
    };
    let capture = CaptureOptions { mode: opts.mode, batch: opts.batch, runtime: opts.runtime.clone(), gram: false };
    let jobs: Vec<PruneJob> = opts.methods.iter().map(|m| PruneJob { method: *m, target }).collect();
    let calibration = set.as_ref().map(|s| s.spec.label()).unwrap_or_default();
    let blocks = model.card.blocks;
    progress.stage(&calibration, (blocks * jobs.len()) as u64);
    let all = prune_many_with(&model, &jobs, &opts.filter, set.as_ref(), &capture, spill.as_ref(), |job, k, stage| {
        progress.advance((job * blocks + k) as u64);
        progress.detail(&format!("{} block {k}: {stage}", jobs[job].method.name()));
    });
    progress.finish();
    let all = all?;

    let mut runs = Vec::new();
    for (method, pruned) in opts.methods.iter().zip(all) {
        let record = serde_json::json!({
            "method": method, "target": format!("{target:?}"), "pattern": opts.pattern.to_string(),
            "sparsity": opts.sparsity.map(|s| s.get()),
            "calibration": set.as_ref().map(|s| &s.spec), "calibration_text": set.as_ref().map(|s| &s.text),
            "mode": capture.mode,
            "include": opts.filter.include, "exclude": opts.filter.exclude,
            "model": model.identity(), "timings": pruned.timings,
            "overall_sparsity": pruned.overall_sparsity(), "mask_sparsity": pruned.mask_sparsity(),
        });
        let results_dir = new_run(&opts.results, RunKind::Prune, &format!("{}-{}", method.name(), calibration));
        write_results(&results_dir, model.identity(), &pruned, set.as_ref(), &record, started)?;
        let saved = match &opts.save {
            Some(out) => {
                let out = if opts.methods.len() > 1 { out.join(method.name()) } else { out.clone() };
                save_pruned(&model, &pruned, &out, &record)?;
                Some(out)
            }
            None => None,
        };
        runs.push(PrunedRun { method: *method, pruned, results_dir, saved, perplexity: Vec::new() });
    }

    if spill.is_some() {
        // Saved above when asked for (the sparsity rows come from the reports); the
        // evaluation's memory plan does not count them.
        runs.iter_mut().for_each(|r| r.pruned.release_masks());
    }
    let dense = compare_perplexity(opts, &ModelFolder::Decoder(model), &mut runs, progress)?;
    // With a spill folder, the runs' weights stay in it until the last of them is dropped.
    drop(spill);
    Ok(PruneRun { calibration, runs, dense })
}

/// Perplexity of the dense model and of each pruned run, when `evaluate` asks for it; the
/// dense scores come back, each run's go into it.
pub(super) fn compare_perplexity(
    opts: &PruneOptions,
    model: &ModelFolder,
    runs: &mut [PrunedRun],
    progress: &mut dyn Progress,
) -> Result<Vec<LanguageScore>, WorkflowError> {
    let Some(check) = opts.evaluate.as_ref().filter(|c| !c.languages.is_empty()) else { return Ok(Vec::new()) };
    let sets = language_sets(&check.languages, check.source.as_deref(), opts.flores.as_deref(), check.limit)?;
    let window = WindowOptions::default();
    // The scorer's own default batch, which `prune` has no flag to change.
    let batch_tokens = 2048;
    let mut scorer = model.scorer(&opts.runtime, &[], batch_tokens)?;
    let dense = score_sets(scorer.as_mut(), &sets, check.limit, window, progress)?;
    drop(scorer);
    for run in runs {
        let mut scorer = model.scorer(&opts.runtime, &run.pruned.overrides, batch_tokens)?;
        run.perplexity = score_sets(scorer.as_mut(), &sets, check.limit, window, progress)?;
    }
    Ok(dense)
}

pub(super) fn write_results(
    dir: &std::path::Path,
    identity: String,
    pruned: &PrunedModel,
    set: Option<&CalibrationSet>,
    record: &serde_json::Value,
    started: std::time::Instant,
) -> Result<(), WorkflowError> {
    let out = ResultsDir::at(dir);
    out.write_sparsity(pruned)?;
    if let Some(set) = set {
        out.write_manifest(&set.manifest)?;
    }
    out.write_provenance(&Provenance::new("prune", identity, record.clone(), started))?;
    Ok(())
}
