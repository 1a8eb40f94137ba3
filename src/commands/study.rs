//! `polyprune study run|plan|merge|slurm`: glue between the command line and `polyprune::study`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;

use polyprune::progress::UnitLog;
use polyprune::store::UnitStatus;
use polyprune::study::runner::load_evaluation;
use polyprune::study::{plan, Grid, Observer, RunOptions, Shard, StudyConfig, StudyDir};

use super::bar;
use crate::cli::{Format, StudyCommand};

pub fn run(cmd: StudyCommand) -> Result<()> {
    match cmd {
        StudyCommand::Run { config, out, shard, max_cells, max_rounds } => run_study(&config, out, shard, max_cells, max_rounds),
        StudyCommand::Plan { config, out, format } => print_plan(&config, out, format),
        StudyCommand::Merge { shards, out } => merge(&shards, &out),
        StudyCommand::Slurm { config, shards, dir, out, time, cpus, sbatch } => slurm(&config, shards, &dir, out, time, cpus, sbatch),
    }
}

fn load(config: &Path) -> Result<(StudyConfig, String)> {
    let text = std::fs::read_to_string(config).with_context(|| format!("cannot read study config {}", config.display()))?;
    let registry = polyprune::eval::registry(None);
    Ok((StudyConfig::parse(&text, config, &registry)?, text))
}

/// How a study run shows its progress: one overall bar (units, ETA) on a terminal, whose message
/// is the current unit's stage; one line per finished unit in a log (a Slurm job's output),
/// where a bar would be hidden and redraws would be noise.
enum Progress {
    Bar { pb: ProgressBar, current: String },
    Log { log: UnitLog, run_started: Instant, unit_started: Instant },
}

impl Progress {
    fn new() -> Progress {
        if std::io::stderr().is_terminal() {
            Progress::Bar { pb: bar(0, "study"), current: String::new() }
        } else {
            Progress::Log { log: UnitLog::new(0, 0), run_started: Instant::now(), unit_started: Instant::now() }
        }
    }

    fn done(&self) {
        if let Progress::Bar { pb, .. } = self {
            pb.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn begin(&mut self, total: usize, done: usize) {
        match self {
            Progress::Bar { pb, .. } => {
                pb.set_length(total as u64);
                pb.set_position(done as u64);
                // ETA from this run's pace, not counting units finished earlier.
                pb.reset_eta();
            }
            Progress::Log { log, run_started, .. } => {
                *log = UnitLog::new(total, done);
                *run_started = Instant::now();
                eprintln!("study: {} units to run, {done} finished earlier", total - done);
            }
        }
    }
    fn unit_started(&mut self, id: &str) {
        match self {
            Progress::Bar { pb, current } => {
                *current = id.to_string();
                pb.set_message(id.to_string());
            }
            Progress::Log { unit_started, .. } => *unit_started = Instant::now(),
        }
    }
    fn stage(&mut self, message: &str) {
        if let Progress::Bar { pb, current } = self {
            pb.set_message(format!("{current}: {message}"));
        }
    }
    fn note(&mut self, message: &str) {
        match self {
            Progress::Bar { pb, .. } => pb.println(message),
            Progress::Log { .. } => eprintln!("{message}"),
        }
    }
    fn unit_finished(&mut self, id: &str, status: &UnitStatus) {
        let error = match status {
            UnitStatus::Failed { error } => Some(error.as_str()),
            UnitStatus::Done => None,
        };
        match self {
            Progress::Bar { pb, .. } => {
                if let Some(error) = error {
                    pb.println(format!("failed: {id}: {error}"));
                }
                pb.inc(1);
            }
            Progress::Log { log, run_started, unit_started } => {
                eprintln!("{}", log.finished(id, unit_started.elapsed(), run_started.elapsed(), error));
            }
        }
    }
    fn analyses_begin(&mut self, total: usize) {
        if total == 0 {
            return;
        }
        match self {
            Progress::Bar { pb, .. } => pb.println(format!("study: {total} model analyses to run")),
            Progress::Log { log, run_started, .. } => {
                // The analyses get their own count and pace: they take minutes, not a unit's time.
                *log = UnitLog::new(total, 0);
                *run_started = Instant::now();
                eprintln!("study: {total} model analyses to run");
            }
        }
    }
    fn analysis_started(&mut self, name: &str) {
        self.unit_started(&format!("analysis {name}"));
    }
    fn analysis_finished(&mut self, name: &str, failure: Option<&str>) {
        match self {
            Progress::Bar { pb, current } => {
                pb.println(match failure {
                    None => format!("{current} written"),
                    Some(error) => format!("failed: {current}: {error}"),
                });
            }
            Progress::Log { log, run_started, unit_started } => {
                eprintln!("{}", log.finished(&format!("analysis {name}"), unit_started.elapsed(), run_started.elapsed(), failure));
            }
        }
    }
}

fn run_study(
    config_path: &Path,
    out: Option<PathBuf>,
    shard: Option<String>,
    max_cells: Option<usize>,
    max_rounds: Option<usize>,
) -> Result<()> {
    let (config, text) = load(config_path)?;
    let shard: Option<Shard> = shard.map(|s| s.parse()).transpose()?;
    let dir = StudyDir::new(out.unwrap_or_else(|| config.out.clone()));
    let mut progress = Progress::new();
    let options = RunOptions { shard, max_units: max_cells, max_rounds };
    let summary = polyprune::study::run_study(&config, &text, &dir, &options, &mut progress)?;
    progress.done();
    eprintln!(
        "study {}: {} computed, {} already done, {} failed{}; results: {}",
        config.name,
        summary.computed.len(),
        summary.skipped.len(),
        summary.failed.len(),
        if summary.left > 0 {
            format!(", {} left for a later run", summary.left)
        } else if summary.rounds_left {
            ", task rounds left for a later run".to_string()
        } else {
            String::new()
        },
        dir.root.display()
    );
    if !summary.failed.is_empty() {
        for (id, error) in &summary.failed {
            eprintln!("  {id}: {error}");
        }
        bail!(
            "{} of the study's cells failed (causes above and in their cell.json); fix them and re-run to compute only those",
            summary.failed.len()
        );
    }
    if !summary.analyses.is_empty() {
        eprintln!("analyses: {} under {}", summary.analyses.join(", "), dir.root.join("analysis").display());
    }
    Ok(())
}

fn print_plan(config_path: &Path, out: Option<PathBuf>, format: Format) -> Result<()> {
    let (config, _) = load(config_path)?;
    polyprune::study::runner::check_encoder_decoders(&config)?;
    let evaluation = load_evaluation(&config)?;
    let dir = StudyDir::new(out.unwrap_or_else(|| config.out.clone()));
    let estimate = plan::estimate(&config, &evaluation, &dir);
    let mut o = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(o, "{}", serde_json::to_string_pretty(&estimate)?)?,
        Format::Csv => {
            writeln!(o, "id,kind,model,label,done,score_tokens,calibration_tokens,seconds")?;
            for u in &estimate.units {
                writeln!(
                    o,
                    "{},{},{},{},{},{},{},{:.1}",
                    u.id, u.kind, u.model, u.label, u.done, u.score_tokens, u.calibration_tokens, u.seconds
                )?;
            }
            for a in &estimate.advice {
                writeln!(
                    o,
                    "advice/{},advice,{},{},{},,{},{:.1}",
                    a.model, a.model, a.label, a.done, a.calibration_tokens, a.calibration_s
                )?;
            }
        }
        Format::Table => {
            writeln!(o, "{:<48} {:<16} {:>5} {:>10} {:>10} {:>9}", "cell", "model", "done", "scored tok", "calib tok", "est. s")?;
            for u in &estimate.units {
                writeln!(
                    o,
                    "{:<48} {:<16} {:>5} {:>10} {:>10} {:>9.0}",
                    u.id,
                    u.model,
                    if u.done { "yes" } else { "-" },
                    u.score_tokens,
                    u.calibration_tokens,
                    u.seconds
                )?;
            }
            for a in &estimate.advice {
                writeln!(
                    o,
                    "{:<48} {:<16} {:>5} {:>10} {:>10} {:>9.0}  [advice] {} (calibration only; its scoring is not estimated)",
                    format!("advice/{}", a.model),
                    a.model,
                    if a.done { "yes" } else { "-" },
                    "-",
                    a.calibration_tokens,
                    a.calibration_s,
                    a.label
                )?;
            }
            let t = &estimate.throughput;
            let source = if t.measured_units > 0 {
                format!("measured on {} finished units", t.measured_units)
            } else {
                "defaults for Gemma 3 270M on 2 CPU cores (no unit finished yet)".into()
            };
            writeln!(
                o,
                "throughput: scoring {:.0} tok/s, calibration {:.0} tok/s, solve {:.0} s per cell ({source})",
                t.score_tokens_per_s, t.calibration_tokens_per_s, t.solve_s_per_cell
            )?;
            let todo = estimate.units.iter().filter(|u| !u.done).count();
            writeln!(o, "{} units ({} to run): about {} remaining", estimate.units.len(), todo, human(estimate.remaining_s))?;
        }
    }
    Ok(())
}

fn human(s: f64) -> String {
    let s = s.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

fn merge(shards: &[PathBuf], out: &Path) -> Result<()> {
    let summary = polyprune::study::merge::merge(shards, out)?;
    eprintln!("merged {} units into {}", summary.merged.len(), out.display());
    if !summary.missing.is_empty() {
        bail!(
            "{} units are done in no shard ({}); re-run those shards, then merge again",
            summary.missing.len(),
            summary.missing.join(", ")
        );
    }
    Ok(())
}

fn slurm(config_path: &Path, shards: usize, dir: &Path, out: Option<PathBuf>, time: String, cpus: usize, extra: Vec<String>) -> Result<()> {
    let (config, _) = load(config_path)?;
    if shards == 0 {
        bail!("--shards 0: give at least 1");
    }
    let cells = Grid::expand(&config).cells.len();
    let binary = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("polyprune"));
    let config_abs = std::fs::canonicalize(config_path).unwrap_or_else(|_| config_path.to_path_buf());
    let workdir = std::env::current_dir().context("cannot read the current folder, which the jobs are to run in")?;
    let options = polyprune::study::slurm::SlurmOptions {
        shards,
        config: config_abs,
        out: out.unwrap_or_else(|| config.out.clone()),
        workdir,
        binary,
        time,
        cpus,
        extra,
    };
    let written = polyprune::study::slurm::write_scripts(dir, &config.name, &options)
        .with_context(|| format!("cannot write the scripts into {}", dir.display()))?;
    for p in &written {
        println!("{}", p.display());
    }
    eprintln!("{cells} cells in {shards} shards; submit with: bash {}", written[2].display());
    Ok(())
}
