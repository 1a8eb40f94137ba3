//! The study's `[advice]` step: once every cell is done, `advise`'s mixture search
//! (`crate::workflow::advise`) for each model, on the study's evaluation languages with its
//! calibration and evaluation text, written to `<study>/advice/<model>/` where the report sets
//! it beside the grid.
//!
//! Resumable: a model's search is skipped when its record (`study_advice.json`, written after
//! the files) says it ran with this study's hash and these `[advice]` settings; otherwise the
//! record is removed first and the search redone, so a half-written folder never counts.

use serde::{Deserialize, Serialize};

use super::runner::ObserverProgress;
use super::runner::RunError;
use super::Observer;
use crate::design::{AdvicePlan, StudyConfig};
use crate::stats::{Alpha, ComparisonConfig};
use crate::store::StudyDir;
use crate::workflow::advise::{advise, write_advice, AdviseOptions};

/// What produced `<study>/advice/<model>/`: compared with the study file before skipping it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdviceRecord {
    pub config_hash: String,
    /// The resolved `[advice]` settings (as JSON, so a changed default counts as a change).
    pub settings: serde_json::Value,
    pub model: String,
}

impl AdviceRecord {
    fn of(config: &StudyConfig, plan: &AdvicePlan, model: &str) -> AdviceRecord {
        AdviceRecord {
            config_hash: config.hash.clone(),
            settings: serde_json::to_value(plan).expect("the advice plan serialises"),
            model: model.to_string(),
        }
    }
}

/// The models whose `[advice]` search is still to run (none when the file has no `[advice]`).
pub fn pending_advice(config: &StudyConfig, dir: &StudyDir) -> Vec<String> {
    let Some(plan) = &config.advice else { return Vec::new() };
    config
        .models
        .iter()
        .filter(|m| {
            let done: Option<AdviceRecord> = dir.read_advice_record(&m.name).ok().flatten();
            done.as_ref() != Some(&AdviceRecord::of(config, plan, &m.name)) || !dir.advice(&m.name).join("advice.json").is_file()
        })
        .map(|m| m.name.clone())
        .collect()
}

/// Runs the `[advice]` search for every model that needs it; returns the steps computed now
/// (`<model>/advice`).
pub fn run_advice(config: &StudyConfig, dir: &StudyDir, observer: &mut dyn Observer) -> Result<Vec<String>, RunError> {
    let Some(plan) = &config.advice else { return Ok(Vec::new()) };
    let pending = pending_advice(config, dir);
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    observer.analyses_begin(pending.len());
    let mut computed = Vec::new();
    for name in pending {
        let model = config.model(&name).expect("pending models come from the config");
        let step = format!("{name}/advice");
        observer.analysis_started(&step);
        dir.remove_advice_record(&name)?;
        let options = AdviseOptions {
            model: model.path.clone(),
            targets: plan.targets.clone(),
            candidates: plan.candidates.clone(),
            method: plan.method,
            sparsity: plan.sparsity,
            pattern: plan.pattern,
            samples: plan.samples,
            seqlen: plan.seqlen,
            seed: config.seeds[0],
            calib_source: plan.calib_source.clone(),
            source: plan.source.clone(),
            flores: None,
            objective: plan.objective,
            budget: plan.budget,
            validate: plan.validate,
            limit: plan.limit,
            confirm: plan.confirm,
            batch: plan.batch,
            runtime: config.runtime(),
            comparison: ComparisonConfig::default(),
            alpha: Alpha::FIVE_PERCENT,
        };
        let out = dir.advice(&name);
        let outcome = {
            let mut progress = ObserverProgress::new(&mut *observer, "advice");
            advise(&options, &mut progress).and_then(|advice| write_advice(&advice, &out))
        };
        observer.analysis_finished(&step, outcome.as_ref().err().map(|e| e.to_string()).as_deref());
        outcome.map_err(|e| RunError::Advice(Box::new(e)))?;
        dir.write_advice_record(&name, &AdviceRecord::of(config, plan, &name))?;
        computed.push(step);
    }
    Ok(computed)
}
