//! `polyprune eval tasks`: downstream tasks per language, with per-example results.
//!
//! Everything the user named is checked and every data file is read before the model is
//! loaded, so a typo or a missing file fails in a moment, not after minutes of scoring.

use std::io::Write;

use anyhow::{bail, Result};

use polyprune::eval::{downstream, Scorer, TaskResult};
use polyprune::model::ModelDir;
use polyprune::store::{new_run, Provenance, RunKind, TasksDir};
use polyprune::tasks::{default_data_dir, load, LoadOptions, LoadedTask, Split, TaskError, TaskName};

use super::{bar, runtime_options};
use crate::cli::{Format, TasksArgs};

/// The languages each task gets: plain entries go to every task, "task:lang" to one.
fn languages_per_task(tasks: &[TaskName], langs: &[String]) -> Result<Vec<(TaskName, Vec<String>)>> {
    let mut per: Vec<(TaskName, Vec<String>)> = tasks.iter().map(|&t| (t, Vec::new())).collect();
    for entry in langs.iter().map(|l| l.trim()).filter(|l| !l.is_empty()) {
        match entry.split_once(':') {
            Some((task, lang)) => {
                let task: TaskName = task.parse()?;
                let Some((_, list)) = per.iter_mut().find(|(t, _)| *t == task) else {
                    bail!("--langs entry '{entry}' is for task '{task}', which is not in --tasks; add it to --tasks or drop the entry");
                };
                list.push(lang.trim().to_string());
            }
            None => per.iter_mut().for_each(|(_, list)| list.push(entry.to_string())),
        }
    }
    for (task, list) in &mut per {
        if list.is_empty() {
            bail!("task '{task}' got no language: give one in --langs, e.g. --langs {task}:<code>");
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

pub fn run(args: TasksArgs) -> Result<()> {
    let split: Split = args.split.parse()?;
    let mut tasks: Vec<TaskName> = Vec::new();
    for t in args.tasks.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        let t: TaskName = t.parse()?;
        if !tasks.contains(&t) {
            tasks.push(t);
        }
    }
    if tasks.is_empty() {
        bail!("--tasks is empty; name at least one task, e.g. --tasks xcopa");
    }
    let data_dir = args.data.clone().unwrap_or_else(default_data_dir);
    let options = LoadOptions { split, shots: args.shots, seed: args.seed };
    let mut loaded: Vec<LoadedTask> = Vec::new();
    for (task, langs) in languages_per_task(&tasks, &args.langs)? {
        for lang in langs {
            match load(task, &lang, &data_dir, &options) {
                Ok(mut l) => {
                    if let Some(n) = args.limit {
                        l.items = downstream::limit_items(l.items, n, args.seed);
                    }
                    if l.items.is_empty() {
                        bail!(
                            "task '{task}' in '{lang}' has no examples in the '{split}' split of {}; check the data files",
                            data_dir.display()
                        );
                    }
                    loaded.push(l);
                }
                Err(e) if args.skip_unavailable && is_unavailable(&e) => eprintln!("skipped: {e}"),
                Err(e) => return Err(e.into()),
            }
        }
    }
    if loaded.is_empty() {
        bail!("nothing to evaluate: every task/language combination was skipped");
    }

    let model = ModelDir::open(&args.model)?;
    let opts = runtime_options(&args.runtime)?;
    let overrides = match &args.masks {
        Some(dir) => polyprune::pruning::overrides_from_mask_dir(&model, dir)?,
        None => Vec::new(),
    };
    let mut scorer = Scorer::load(&model, &opts, &overrides)?;
    scorer.batch_tokens = args.batch_tokens.max(1);
    let started = std::time::Instant::now();
    let mut results: Vec<TaskResult> = Vec::new();
    for l in &loaded {
        let pb = bar(l.items.len() as u64, &format!("{} {}", l.task, l.language.label()));
        let r = downstream::evaluate(&mut scorer, l, args.max_new_tokens, |n| pb.set_position(n as u64))?;
        pb.finish_and_clear();
        results.push(r);
    }
    print_results(&results, args.format)?;

    let runs: Vec<serde_json::Value> = results
        .iter()
        .map(|r| serde_json::json!({"task": r.task, "language": r.language, "n": r.summary.n, "seconds": r.seconds, "stats": r.stats}))
        .collect();
    let settings = serde_json::json!({
        "tasks": args.tasks, "langs": args.langs, "split": split, "shots": args.shots, "seed": args.seed,
        "limit": args.limit, "max_new_tokens": args.max_new_tokens, "data": data_dir,
        "batch_tokens": scorer.batch_tokens, "masks": args.masks, "runs": runs,
    });
    let provenance = Provenance::new("eval tasks", model.identity(), settings, started);
    let dir = new_run(&args.results, RunKind::Tasks, &model.card.name);
    TasksDir::at(&dir).write(&results, &provenance).map_err(|e| anyhow::anyhow!("{e}; check --results"))?;
    eprintln!("results: {}", dir.display());
    Ok(())
}

fn print_results(results: &[TaskResult], format: Format) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            let rows: Vec<_> = results
                .iter()
                .map(|r| serde_json::json!({"task": r.task, "language": r.language, "split": r.split, "shots": r.shots, "summary": r.summary}))
                .collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        }
        Format::Csv => {
            writeln!(out, "task,language,metric,value,stderr,n,chance")?;
            for r in results {
                for m in &r.summary.metrics {
                    let se = m.stderr.map_or(String::new(), |s| format!("{s:.6}"));
                    writeln!(out, "{},{},{},{:.6},{},{},{:.6}", r.task, r.language, m.metric, m.mean, se, m.n, r.summary.chance)?;
                }
            }
        }
        Format::Table => {
            writeln!(out, "{:<12} {:<20} {:<12} {:>7} {:>7} {:>6} {:>7}", "task", "language", "metric", "value", "stderr", "n", "chance")?;
            for r in results {
                for m in &r.summary.metrics {
                    let se = m.stderr.map_or("-".to_string(), |s| format!("{s:.4}"));
                    writeln!(
                        out,
                        "{:<12} {:<20} {:<12} {:>7.4} {:>7} {:>6} {:>7.4}",
                        r.task.as_str(),
                        r.language,
                        m.metric.as_str(),
                        m.mean,
                        se,
                        m.n,
                        r.summary.chance
                    )?;
                }
            }
        }
    }
    Ok(())
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
