//! `study slurm`: a Slurm job array that runs a study in shards, plus the merge job after it.
//!
//! Writes three files: `study-array.sbatch` (task `i` of `--array=0-(n-1)` runs
//! `polyprune study run <config> --shard i/n --out <out>/shards/<i>`), `study-merge.sbatch`
//! (merges the shards into `<out>`), and `submit.sh`, which submits both with the merge
//! depending on the whole array (`afterany`, so finished cells are merged even if one shard failed).

use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct SlurmOptions {
    pub shards: usize,
    /// Absolute or relative to the folder `sbatch` is run from.
    pub config: PathBuf,
    pub out: PathBuf,
    /// The polyprune binary the jobs call.
    pub binary: PathBuf,
    pub time: String,
    pub cpus: usize,
    /// e.g. `--gres=gpu:1`; empty for CPU jobs.
    pub extra: Vec<String>,
}

pub struct SlurmScripts {
    pub array: String,
    pub merge: String,
    pub submit: String,
}

pub fn scripts(name: &str, o: &SlurmOptions) -> SlurmScripts {
    let shards_dir = o.out.join("shards");
    let extra: String = o.extra.iter().map(|e| format!("#SBATCH {e}\n")).collect();
    let array = format!(
        "#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --array=0-{last}\n#SBATCH --cpus-per-task={cpus}\n#SBATCH --time={time}\n#SBATCH --output={logs}/%x-%a.out\n{extra}\
set -euo pipefail\n\
# Each array task runs its deterministic share of the cells; re-submitting resumes where it stopped.\n\
{bin} study run {config} --shard \"$SLURM_ARRAY_TASK_ID/{n}\" --out {shards}/\"$SLURM_ARRAY_TASK_ID\"\n",
        last = o.shards - 1,
        cpus = o.cpus,
        time = o.time,
        logs = o.out.join("logs").display(),
        bin = o.binary.display(),
        config = o.config.display(),
        n = o.shards,
        shards = shards_dir.display(),
    );
    let shard_list: Vec<String> = (0..o.shards).map(|i| shards_dir.join(i.to_string()).display().to_string()).collect();
    let merge = format!(
        "#!/bin/bash\n#SBATCH --job-name={name}-merge\n#SBATCH --cpus-per-task=1\n#SBATCH --time=00:30:00\n#SBATCH --output={logs}/%x.out\n\
set -euo pipefail\n\
{bin} study merge {shards} -o {out}\n\
{bin} report {out} -o {report}\n",
        logs = o.out.join("logs").display(),
        bin = o.binary.display(),
        shards = shard_list.join(" "),
        out = o.out.display(),
        report = o.out.join("report.html").display(),
    );
    let submit = format!(
        "#!/bin/bash\n# Submits the study's job array, then the merge and report once every array task has ended.\n\
set -euo pipefail\ncd \"$(dirname \"$0\")\"\nmkdir -p {logs}\n\
array=$(sbatch --parsable study-array.sbatch)\n\
sbatch --dependency=afterany:\"$array\" study-merge.sbatch\n\
echo \"submitted array $array; results will be merged into {out}\"\n",
        logs = o.out.join("logs").display(),
        out = o.out.display(),
    );
    SlurmScripts { array, merge, submit }
}

/// Writes the three scripts into `dir`; returns their paths.
pub fn write_scripts(dir: &Path, name: &str, options: &SlurmOptions) -> std::io::Result<Vec<PathBuf>> {
    let s = scripts(name, options);
    let files = [("study-array.sbatch", s.array), ("study-merge.sbatch", s.merge), ("submit.sh", s.submit)];
    let mut written = Vec::new();
    for (file, text) in files {
        let path = dir.join(file);
        crate::util::write_atomic(&path, text.as_bytes())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_array_covers_every_shard_and_the_merge_lists_them_all() {
        let o = SlurmOptions {
            shards: 3,
            config: "configs/paper.toml".into(),
            out: "results/paper".into(),
            binary: "polyprune".into(),
            time: "12:00:00".into(),
            cpus: 8,
            extra: vec!["--gres=gpu:1".into()],
        };
        let s = scripts("paper", &o);
        assert!(s.array.contains("#SBATCH --array=0-2\n"), "{}", s.array);
        assert!(s.array.contains("#SBATCH --gres=gpu:1\n"));
        assert!(s.array.contains("polyprune study run configs/paper.toml --shard \"$SLURM_ARRAY_TASK_ID/3\" --out results/paper/shards/\"$SLURM_ARRAY_TASK_ID\""), "{}", s.array);
        assert!(
            s.merge.contains("study merge results/paper/shards/0 results/paper/shards/1 results/paper/shards/2 -o results/paper\n"),
            "{}",
            s.merge
        );
        assert!(s.submit.contains("--dependency=afterany:\"$array\""));
    }
}
