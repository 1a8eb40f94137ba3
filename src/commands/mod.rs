//! What each subcommand does: glue between the command line and the library.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use polyprune::runtime::{ExecutionProvider, RuntimeOptions};

use crate::cli::{Cli, Command, EvalCommand, RuntimeArgs};

mod analyze;
pub mod check;
mod data;
mod model;
mod ppl;
mod prune;
mod report;
mod study;
mod tasks;

/// Runs a command; `Ok` carries the exit status (0 but for `check`, which exits 1 on a
/// regression).
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Model(m) => model::run(m).map(|_| 0),
        Command::Eval(EvalCommand::Ppl(args)) => ppl::run(args).map(|_| 0),
        Command::Prune(args) => prune::run(args).map(|_| 0),
        Command::Eval(EvalCommand::Tasks(args)) => tasks::run(args).map(|_| 0),
        Command::Data(cmd) => data::run(cmd).map(|_| 0),
        Command::Analyze(cmd) => analyze::run(cmd).map(|_| 0),
        Command::Check(args) => check::run(args),
        Command::Study(cmd) => study::run(cmd).map(|_| 0),
        Command::Report(args) => report::run(args).map(|_| 0),
    }
}

/// The exit status of a failed command: 2 for `check`'s bad input (1 means "worse" there).
pub fn exit_code(e: &anyhow::Error) -> i32 {
    if e.is::<check::BadInput>() {
        2
    } else {
        1
    }
}

pub fn runtime_options(args: &RuntimeArgs) -> Result<RuntimeOptions> {
    let provider = match args.device.as_str() {
        "cpu" => ExecutionProvider::Cpu,
        "cuda" => ExecutionProvider::Cuda(0),
        d if d.starts_with("cuda:") => ExecutionProvider::Cuda(d[5..].parse().with_context(|| format!("--device {d}: expected cuda:N"))?),
        other => bail!("--device {other}: expected cpu, cuda or cuda:N"),
    };
    Ok(RuntimeOptions { provider, intra_threads: args.threads })
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
