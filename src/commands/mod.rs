//! What each subcommand does: glue between the command line and the library.

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use polyprune::progress::Progress;
use polyprune::runtime::{ExecutionProvider, RuntimeOptions};

use crate::cli::{Cli, Command, EvalCommand, RecordArgs, RuntimeArgs};

mod advise;
mod analyze;
pub mod check;
mod data;
mod gate;
mod model;
mod ppl;
mod prune;
mod report;
mod study;
mod tasks;

/// Runs a command; `Ok` carries the exit status (0 but for `check`, which exits 1 on a
/// regression, and `gate`, which exits 1 for worse and 3 for undecided).
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Model(m) => model::run(m).map(|_| 0),
        Command::Eval(EvalCommand::Ppl(args)) => ppl::run(args).map(|_| 0),
        Command::Prune(args) => prune::run(args).map(|_| 0),
        Command::Advise(args) => advise::run(args).map(|_| 0),
        Command::Eval(EvalCommand::Tasks(args)) => tasks::run(args).map(|_| 0),
        Command::Data(cmd) => data::run(cmd).map(|_| 0),
        Command::Analyze(cmd) => analyze::run(cmd).map(|_| 0),
        Command::Check(args) => check::run(args),
        Command::Gate(args) => gate::run(args),
        Command::Study(cmd) => study::run(cmd).map(|_| 0),
        Command::Report(args) => report::run(args).map(|_| 0),
    }
}

/// The exit status of a failed command: 2 for `check`'s and `gate`'s bad input (1 means
/// "worse" there).
pub fn exit_code(e: &anyhow::Error) -> i32 {
    if e.is::<check::BadInput>() {
        2
    } else {
        1
    }
}

pub fn runtime_options(args: &RuntimeArgs) -> Result<RuntimeOptions> {
    let provider: ExecutionProvider = args.device.parse().map_err(|e: String| anyhow::anyhow!("--device {e}"))?;
    let max_memory = args
        .max_memory
        .as_deref()
        .map(polyprune::model::memory::parse_size)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--max-memory: {e}"))?;
    let compute = args.compute.parse().map_err(|e: String| anyhow::anyhow!("--{e}"))?;
    Ok(RuntimeOptions { provider, intra_threads: args.threads, max_memory, compute })
}

/// Prints how `model` will run within the budget of `opts` and refuses, before any work, a
/// budget given with --max-memory that even one block with its activations exceeds.
pub fn announce_memory_plan(model: &std::path::Path, opts: &RuntimeOptions) -> Result<()> {
    let Ok(dir) = polyprune::model::ModelDir::open(model) else { return Ok(()) };
    match polyprune::eval::scorer::memory_plan(&dir, opts)? {
        Some(Ok(plan)) => eprintln!("{plan}"),
        Some(Err(e)) if opts.max_memory.is_some() => return Err(e.into()),
        Some(Err(e)) => eprintln!("memory plan: {e}; running one block at a time"),
        None => {}
    }
    Ok(())
}

/// The source names with `--text-field`/`--skip-bad-lines` applied to those that are
/// `jsonl:`/`parquet:` sources; an error when the flags are given and none is.
pub fn record_sources(args: &RecordArgs, specs: &[Option<String>]) -> Result<Vec<Option<String>>> {
    if args.text_field.is_none() && !args.skip_bad_lines {
        return Ok(specs.to_vec());
    }
    let mut applied = false;
    let out = specs
        .iter()
        .map(|spec| {
            spec.as_ref().map(|s| match polyprune::data::with_record_options(s, args.text_field.as_deref(), args.skip_bad_lines) {
                Some(with) => {
                    applied = true;
                    with
                }
                None => s.clone(),
            })
        })
        .collect();
    if !applied {
        let given: Vec<&str> = specs.iter().flatten().map(String::as_str).collect();
        let spec = if given.is_empty() { "the default source".to_string() } else { given.join("', '") };
        return Err(polyprune::data::DataError::RecordOptionsWithoutRecords { spec }.into());
    }
    Ok(out)
}

/// A progress bar per stage of a library workflow (hidden when stderr is not a terminal).
#[derive(Default)]
pub struct Bars {
    bar: Option<ProgressBar>,
    stage: String,
}

impl Progress for Bars {
    fn stage(&mut self, name: &str, total: u64) {
        self.finish();
        self.stage = name.to_string();
        self.bar = Some(if total == 0 { spinner(name) } else { bar(total, name) });
    }
    fn advance(&mut self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
    }
    fn detail(&mut self, what: &str) {
        if let Some(b) = &self.bar {
            b.set_message(what.to_string());
        }
    }
    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
    fn note(&mut self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        self.finish();
    }
}

pub fn spinner(msg: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("template"));
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    pb
}

pub fn bar(len: u64, msg: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} [{elapsed} < {eta}]").expect("template"));
    pb.set_message(msg.to_string());
    pb
}
