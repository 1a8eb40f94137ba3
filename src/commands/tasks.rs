//! `polyprune eval tasks`: flags to `polyprune::workflow::tasks`, and the table it prints.

use std::io::Write;

use anyhow::Result;

use polyprune::eval::TaskResult;
use polyprune::tasks::{default_data_dir, TaskName, TaskSplit};
use polyprune::workflow::tasks::{evaluate_tasks, TasksOptions};

use super::{runtime_options, Bars};
use crate::cli::{Format, TasksArgs};

pub fn run(args: TasksArgs) -> Result<()> {
    let split: TaskSplit = args.split.parse()?;
    let mut tasks: Vec<TaskName> = Vec::new();
    for t in args.tasks.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        let t: TaskName = t.parse()?;
        if !tasks.contains(&t) {
            tasks.push(t);
        }
    }
    let options = TasksOptions {
        model: args.model,
        masks: args.masks,
        tasks,
        languages: args.langs,
        split,
        shots: args.shots,
        seed: args.seed,
        limit: args.limit,
        max_new_tokens: args.max_new_tokens,
        data: args.data.unwrap_or_else(default_data_dir),
        skip_unavailable: args.skip_unavailable,
        batch_tokens: args.batch_tokens,
        runtime: runtime_options(&args.runtime)?,
        results: args.results,
    };
    super::announce_memory_plan(&options.model, &options.runtime)?;
    let run = evaluate_tasks(&options, &mut Bars::default())?;
    print_results(&run.results, args.format)?;
    eprintln!("results: {}", run.results_dir.display());
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
