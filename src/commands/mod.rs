//! What each subcommand does: glue between the command line and the library.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use polyprune::runtime::{ExecutionProvider, RuntimeOptions};

use crate::cli::{Cli, Command, EvalCommand, RuntimeArgs};

mod data;
mod model;
mod ppl;
mod prune;
mod report;
mod study;
mod tasks;

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Model(m) => model::run(m),
        Command::Eval(EvalCommand::Ppl(args)) => ppl::run(args),
        Command::Prune(args) => prune::run(args),
        Command::Eval(EvalCommand::Tasks(args)) => tasks::run(args),
        Command::Data(cmd) => data::run(cmd),
        Command::Study(cmd) => study::run(cmd),
        Command::Report(args) => report::run(args),
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

