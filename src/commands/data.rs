//! `polyprune data fetch <task>`: download task files with pinned checksums.

use std::time::Duration;

use anyhow::{Context, Result};

use polyprune::tasks::{default_data_dir, fetch, FetchOptions, TaskName};

use super::spinner;
use crate::cli::DataCommand;

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Fetch { tasks, data, mirror, timeout } => {
            // Parse every name first, so that a typo fails before anything is downloaded.
            let names: Vec<TaskName> = tasks.iter().map(|t| t.parse::<TaskName>()).collect::<Result<_, _>>()?;
            let data_dir = data.unwrap_or_else(default_data_dir);
            let mut options = FetchOptions::from_env(data_dir.clone());
            if let Some(m) = mirror.filter(|m| !m.trim().is_empty()) {
                options.mirror = Some(m);
            }
            options.timeout = Duration::from_secs(timeout.max(1));
            for task in names {
                let pb = spinner(&format!("fetching {task}"));
                let report = fetch(task, &options);
                pb.finish_and_clear();
                let report = report.with_context(|| format!("data fetch {task}"))?;
                println!(
                    "{task}: {} downloaded, {} already present (verified) in {}",
                    report.downloaded.len(),
                    report.already_present.len(),
                    data_dir.display()
                );
            }
        }
    }
    Ok(())
}
