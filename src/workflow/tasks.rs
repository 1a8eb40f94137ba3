//! `eval tasks` as a library call: downstream tasks per language, with per-example results.
//!
//! Everything the caller named is checked and every data file is read before the model is
//! loaded, so a typo or a missing file fails in a moment, not after minutes of scoring.

use std::path::PathBuf;

use super::folder::ModelFolder;
use super::WorkflowError;
use crate::eval::{downstream, TaskResult};
use crate::progress::Progress;
use crate::runtime::RuntimeOptions;
use crate::store::{new_run, Provenance, RunKind, TasksDir};
use crate::tasks::{load, LanguageEntry, LoadOptions, LoadedTask, TaskError, TaskName, TaskSplit};

#[derive(Clone, Debug)]
pub struct TasksOptions {
    pub model: PathBuf,
    /// Saved Magnitude/Wanda masks applied to `model` in memory.
    pub masks: Option<PathBuf>,
    pub tasks: Vec<TaskName>,
    /// Plain entries go to every task, `task:lang` entries to one task.
    pub languages: Vec<String>,
    pub split: TaskSplit,
    pub shots: usize,
    /// Seeds the few-shot draw and the `limit` subsample.
    pub seed: u64,
    /// Evaluate a seeded subsample of this many examples (the same rows for every model).
    pub limit: Option<usize>,
    /// Caps generation (MGSM); `None` = the task's own limit.
    pub max_new_tokens: Option<usize>,
    /// The task data folder.
    pub data: PathBuf,
    /// Skip a task/language combination the data does not have, instead of failing.
    pub skip_unavailable: bool,
    pub batch_tokens: usize,
    pub runtime: RuntimeOptions,
    /// Results root: the run goes to `<results>/tasks/<time>-<model>/`.
    pub results: PathBuf,
}

pub struct TasksRun {
    pub results: Vec<TaskResult>,
    /// Combinations skipped because the data lacks them (`skip_unavailable`), with the reason.
    pub skipped: Vec<String>,
    pub results_dir: PathBuf,
}

/// The languages each task gets: plain entries go to every task, "task:lang" to one.
pub fn languages_per_task(tasks: &[TaskName], langs: &[String]) -> Result<Vec<(TaskName, Vec<String>)>, WorkflowError> {
    let mut per: Vec<(TaskName, Vec<String>)> = tasks.iter().map(|&t| (t, Vec::new())).collect();
    for entry in langs.iter().map(|l| l.trim()).filter(|l| !l.is_empty()) {
        match LanguageEntry::parse(entry)? {
            LanguageEntry::ForTask(task, lang) => {
                let Some((_, list)) = per.iter_mut().find(|(t, _)| *t == task) else {
                    return Err(WorkflowError::Refused(format!(
                        "--langs entry '{entry}' is for task '{task}', which is not in --tasks; add it to --tasks or drop the entry"
                    )));
                };
                list.push(lang);
            }
            LanguageEntry::ForEveryTask(lang) => per.iter_mut().for_each(|(_, list)| list.push(lang.clone())),
        }
    }
    for (task, list) in &mut per {
        if list.is_empty() {
            return Err(WorkflowError::Refused(format!("task '{task}' got no language: give one in --langs, e.g. --langs {task}:<code>")));
        }
        let mut seen = std::collections::HashSet::new();
        list.retain(|l| seen.insert(l.clone()));
    }
    Ok(per)
}

/// Errors that mean "this task has no such language" rather than a broken setup.
fn is_unavailable(e: &TaskError) -> bool {
    matches!(e, TaskError::UnknownLanguage { .. } | TaskError::NotAPair { .. } | TaskError::MissingSplit { .. })
}

/// Loads every requested task/language, subsampled to `limit`.
fn load_all(opts: &TasksOptions, progress: &mut dyn Progress) -> Result<(Vec<LoadedTask>, Vec<String>), WorkflowError> {
    if opts.tasks.is_empty() {
        return Err(WorkflowError::Refused("--tasks is empty; name at least one task, e.g. --tasks xcopa".into()));
    }
    let options = LoadOptions { split: opts.split, shots: opts.shots, seed: opts.seed };
    let mut loaded = Vec::new();
    let mut skipped = Vec::new();
    for (task, langs) in languages_per_task(&opts.tasks, &opts.languages)? {
        for lang in langs {
            match load(task, &lang, &opts.data, &options) {
                Ok(mut l) => {
                    if let Some(n) = opts.limit {
                        l.items = downstream::limit_items(l.items, n, opts.seed);
                    }
                    if l.items.is_empty() {
                        return Err(WorkflowError::Refused(format!(
                            "task '{task}' in '{lang}' has no examples in the '{}' split of {}; check the data files",
                            opts.split,
                            opts.data.display()
                        )));
                    }
                    loaded.push(l);
                }
                Err(e) if opts.skip_unavailable && is_unavailable(&e) => {
                    progress.note(&format!("skipped: {e}"));
                    skipped.push(e.to_string());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    if loaded.is_empty() {
        return Err(WorkflowError::Refused("nothing to evaluate: every task/language combination was skipped".into()));
    }
    Ok((loaded, skipped))
}

pub fn evaluate_tasks(opts: &TasksOptions, progress: &mut dyn Progress) -> Result<TasksRun, WorkflowError> {
    let (loaded, skipped) = load_all(opts, progress)?;
    let model = ModelFolder::open(&opts.model)?;
    let overrides = match &opts.masks {
        Some(dir) => model.mask_overrides(dir)?,
        None => Vec::new(),
    };
    let mut scorer = model.scorer(&opts.runtime, &overrides, opts.batch_tokens)?;
    let started = std::time::Instant::now();
    let mut results: Vec<TaskResult> = Vec::new();
    for l in &loaded {
        progress.stage(&format!("{} {}", l.task, l.language.label()), l.items.len() as u64);
        let r = downstream::evaluate(scorer.as_mut(), l, opts.max_new_tokens, |n| progress.advance(n as u64));
        progress.finish();
        results.push(r?);
    }
    let runs: Vec<serde_json::Value> = results
        .iter()
        .map(|r| serde_json::json!({"task": r.task, "language": r.language, "n": r.summary.n, "seconds": r.seconds, "stats": r.stats}))
        .collect();
    let settings = serde_json::json!({
        "tasks": opts.tasks.iter().map(|t| t.as_str()).collect::<Vec<_>>(), "langs": opts.languages, "split": opts.split,
        "shots": opts.shots, "seed": opts.seed, "limit": opts.limit, "max_new_tokens": opts.max_new_tokens, "data": opts.data,
        "batch_tokens": opts.batch_tokens.max(1), "masks": opts.masks, "runs": runs,
    });
    let provenance = Provenance::new("eval tasks", model.identity(), settings, started);
    let results_dir = new_run(&opts.results, RunKind::Tasks, model.name());
    TasksDir::at(&results_dir).write(&results, &provenance)?;
    Ok(TasksRun { results, skipped, results_dir })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_languages_go_everywhere_and_prefixed_ones_to_their_task() {
        let tasks = [TaskName::Xcopa, TaskName::Tatoeba];
        let langs: Vec<String> = ["zh", "tatoeba:deu-eng", "xcopa:sw", "zh"].iter().map(|s| s.to_string()).collect();
        let per = languages_per_task(&tasks, &langs).unwrap();
        assert_eq!(per[0], (TaskName::Xcopa, vec!["zh".to_string(), "sw".to_string()]));
        assert_eq!(per[1], (TaskName::Tatoeba, vec!["zh".to_string(), "deu-eng".to_string()]));
        let err = languages_per_task(&tasks, &["mgsm:en".to_string()]).unwrap_err().to_string();
        assert!(err.contains("'mgsm', which is not in --tasks"), "{err}");
        let err = languages_per_task(&tasks, &["xcopa:zh".to_string()]).unwrap_err().to_string();
        assert!(err.starts_with("task 'tatoeba' got no language"), "{err}");
    }
}
