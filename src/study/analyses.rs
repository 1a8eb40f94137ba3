//! The study's `[analysis]` step that runs models (subspaces, LAPE neurons, pruning error,
//! probes): once
//! every cell is done, the dense model against every cell whose masks reproduce it (Magnitude
//! and Wanda; SparseGPT also moves the kept weights and a study saves no model folder), on the
//! perplexity languages' parallel FLORES sentences, with the study file's parameters.
//!
//! Each writes its section under `<study>/analysis/` (`<study>/analysis/<model>/` when the study
//! has several models), where the report picks it up. A section already there is kept: delete
//! it to recompute.

use std::path::PathBuf;

use super::runner::ObserverProgress;
use super::runner::RunError;
use super::Observer;
use crate::analysis::workflow::{neurons, probes, pruning_error, subspace, ModelComparison};
use crate::analysis::AnalysisError;
use crate::design::{Grid, StudyConfig};
use crate::prune::Method;
use crate::store::{SectionDir, StudyDir};

/// Runs the model analyses the study file asks for; returns the section ids computed now.
pub fn run_model_analyses(config: &StudyConfig, dir: &StudyDir, observer: &mut dyn Observer) -> Result<Vec<String>, RunError> {
    let switches = &config.analysis.switches;
    if !switches.runs_models() {
        return Ok(Vec::new());
    }
    let Some(perplexity) = &config.perplexity else {
        return Err(RunError::Analysis(AnalysisError::invalid(
            "[analysis] subspaces/neurons/pruning_error/probes",
            "they probe the parallel FLORES sentences of the [perplexity] languages; add a [perplexity] table",
        )));
    };
    let languages: Vec<String> = perplexity.languages.iter().map(|l| l.flores_code().to_string()).collect();
    let flores = perplexity.source.as_deref().and_then(|s| s.strip_prefix("flores:")).map(PathBuf::from);
    let grid = Grid::expand(config);
    let params = crate::analysis::workflow::validated(config.analysis.params.clone())?;
    let mut computed = Vec::new();
    let multi = config.models.len() > 1;
    let kinds = [
        (switches.subspaces, "subspace"),
        (switches.neurons, "neurons"),
        (switches.pruning_error, "pruning_error"),
        (switches.probes, "probes"),
    ];
    let pending = |model: &str, id: &str| !SectionDir::new(&dir.analysis(multi.then_some(model)), id).exists();
    let total = config.models.iter().map(|m| kinds.iter().filter(|(on, id)| *on && pending(&m.name, id)).count()).sum();
    observer.analyses_begin(total);
    for model in &config.models {
        let out = dir.analysis(multi.then_some(model.name.as_str()));
        let pruned: Vec<(String, PathBuf)> = grid
            .cells
            .iter()
            .filter(|c| c.model == model.name && !matches!(c.method, Method::SparseGpt(_)))
            .filter(|c| dir.cell(&c.id).has_masks())
            .map(|c| (c.label(), dir.cell(&c.id).masks()))
            .collect();
        let cmp = ModelComparison {
            model: model.path.clone(),
            pruned,
            languages: languages.clone(),
            flores: flores.clone(),
            runtime: config.runtime(),
        };
        for (_, id) in kinds.iter().filter(|(on, id)| *on && pending(&model.name, id)) {
            let name = format!("{}/{id}", model.name);
            observer.analysis_started(&name);
            let mut progress = ObserverProgress::new(&mut *observer, "analysis");
            let section = match *id {
                "subspace" => subspace(&cmp, &params, &mut progress).map(|r| r.section),
                "neurons" => neurons(&cmp, &params, &mut progress).map(|r| r.section),
                "pruning_error" => pruning_error(&cmp, &params, &mut progress).map(|r| r.section),
                _ => probes(&cmp, &params, &mut progress).map(|r| r.section),
            };
            let written = section.and_then(|section| crate::analysis::sections::export_section(&out, &section));
            observer.analysis_finished(&name, written.as_ref().err().map(|e| e.to_string()).as_deref());
            written?;
            computed.push(name);
        }
    }
    Ok(computed)
}
