//! `study slurm`: a Slurm job array that runs a study in shards, plus the merge job after it.
//!
//! Writes three files: `study-array.sbatch` (task `i` of `--array=0-(n-1)` runs
//! `polyprune study run <config> --shard i/n --out <out>/shards/<i>`), `study-merge.sbatch`
//! (merges the shards into `<out>`, computes the model analyses there, which compare every
//! cell and so wait for the merge, and writes the report), and `submit.sh`, which submits both
//! with the merge depending on the whole array (`afterany`: finished cells are merged even if
//! one shard failed, and the merge job then fails naming the missing units, where `afterok`
//! would leave it pending forever).
//!
//! Every job runs in the folder `study slurm` was run from (`--chdir`), so the config's relative
//! paths (models, data, `out`) mean what they mean there; the scripts name the config, the
//! results and the binary by absolute paths. Jobs inherit the submitting shell's environment
//! (Slurm's default), which carries `SLURM_CONF`, `ORT_DYLIB_PATH` and `POLYPRUNE_CACHE`.

use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct SlurmOptions {
    pub shards: usize,
    /// Absolute, or relative to `workdir`.
    pub config: PathBuf,
    /// Absolute, or relative to `workdir`.
    pub out: PathBuf,
    /// The folder the jobs run in (absolute): where relative paths in the config start.
    pub workdir: PathBuf,
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

/// `path` as a shell word: quoted when it holds anything but plain path characters.
fn word(path: &Path) -> String {
    let s = path.display().to_string();
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c)) {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

pub fn scripts(name: &str, o: &SlurmOptions) -> SlurmScripts {
    let out = o.workdir.join(&o.out);
    let config = o.workdir.join(&o.config);
    let shards_dir = out.join("shards");
    let logs = out.join("logs");
    let extra: String = o.extra.iter().map(|e| format!("#SBATCH {e}\n")).collect();
    // Slurm expands %x (job name), %A (array job id), %a (task index) and %j (job id): each
    // submission keeps its own logs, so a resumed run does not overwrite the first one's.
    let array = format!(
        "#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --array=0-{last}\n#SBATCH --cpus-per-task={cpus}\n#SBATCH --time={time}\n\
#SBATCH --chdir={workdir}\n#SBATCH --output={logs}/%x-%A_%a.out\n{extra}\
set -euo pipefail\n\
# Each array task runs its deterministic share of the cells; re-submitting resumes where it stopped.\n\
{bin} study run {config} --shard \"$SLURM_ARRAY_TASK_ID/{n}\" --out {shards}/\"$SLURM_ARRAY_TASK_ID\"\n",
        last = o.shards - 1,
        cpus = o.cpus,
        time = o.time,
        workdir = word(&o.workdir),
        logs = word(&logs),
        bin = word(&o.binary),
        config = word(&config),
        n = o.shards,
        shards = word(&shards_dir),
    );
    let shard_list: Vec<String> = (0..o.shards).map(|i| word(&shards_dir.join(i.to_string()))).collect();
    let merge = format!(
        "#!/bin/bash\n#SBATCH --job-name={name}-merge\n#SBATCH --cpus-per-task={cpus}\n#SBATCH --time={time}\n\
#SBATCH --chdir={workdir}\n#SBATCH --output={logs}/%x-%j.out\n{extra}\
set -euo pipefail\n\
{bin} study merge {shards} -o {out}\n\
# Every unit is done now, so this computes only the model analyses, which compare all cells.\n\
{bin} study run {config} --out {out}\n\
{bin} report {out} -o {report}\n",
        cpus = o.cpus,
        time = o.time,
        workdir = word(&o.workdir),
        logs = word(&logs),
        bin = word(&o.binary),
        shards = shard_list.join(" "),
        config = word(&config),
        out = word(&out),
        report = word(&out.join("report.html")),
    );
    let submit = format!(
        "#!/bin/bash\n# Submits the study's job array, then the merge and report once every array task has ended.\n\
set -euo pipefail\ncd \"$(dirname \"$0\")\"\n# Slurm does not create the folder of --output; a job whose log cannot be opened fails.\nmkdir -p {logs}\n\
array=$(sbatch --parsable study-array.sbatch)\n\
merge=$(sbatch --parsable --dependency=afterany:\"$array\" study-merge.sbatch)\n\
echo \"submitted array $array and merge $merge; results will be merged into {out}\"\n",
        logs = word(&logs),
        out = word(&out),
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

    fn options() -> SlurmOptions {
        SlurmOptions {
            shards: 3,
            config: "configs/paper.toml".into(),
            out: "results/paper".into(),
            workdir: "/home/me/polyprune".into(),
            binary: "/home/me/polyprune/target/release/polyprune".into(),
            time: "12:00:00".into(),
            cpus: 8,
            extra: vec!["--gres=gpu:1".into()],
        }
    }

    #[test]
    fn the_array_covers_every_shard_and_the_merge_lists_them_all() {
        let s = scripts("paper", &options());
        let bin = "/home/me/polyprune/target/release/polyprune";
        assert!(s.array.contains("#SBATCH --array=0-2\n"), "{}", s.array);
        assert!(s.array.contains("#SBATCH --gres=gpu:1\n"));
        assert!(
            s.array.contains(&format!(
                "{bin} study run /home/me/polyprune/configs/paper.toml --shard \"$SLURM_ARRAY_TASK_ID/3\" --out /home/me/polyprune/results/paper/shards/\"$SLURM_ARRAY_TASK_ID\"\n"
            )),
            "{}",
            s.array
        );
        let r = "/home/me/polyprune/results/paper";
        assert!(s.merge.contains(&format!("{bin} study merge {r}/shards/0 {r}/shards/1 {r}/shards/2 -o {r}\n")), "{}", s.merge);
        // The analyses and the report follow the merge, on the merged folder.
        let merge_at = s.merge.find("study merge").unwrap();
        let run_at =
            s.merge.find(&format!("study run /home/me/polyprune/configs/paper.toml --out {r}\n")).expect("analyses run after the merge");
        let report_at = s.merge.find(&format!("report {r} -o {r}/report.html\n")).unwrap();
        assert!(merge_at < run_at && run_at < report_at, "{}", s.merge);
        assert!(s.submit.contains("merge=$(sbatch --parsable --dependency=afterany:\"$array\" study-merge.sbatch)"), "{}", s.submit);
    }

    #[test]
    fn jobs_run_where_the_scripts_were_made_and_log_into_the_results() {
        // Relative config paths (models, data) start in the folder `study slurm` ran in, which
        // sbatch would otherwise replace with the folder submit.sh changes into.
        let s = scripts("paper", &options());
        for script in [&s.array, &s.merge] {
            assert!(script.contains("#SBATCH --chdir=/home/me/polyprune\n"), "{script}");
            assert!(script.contains("#SBATCH --output=/home/me/polyprune/results/paper/logs/%x-%"), "{script}");
        }
        assert!(s.array.contains("/logs/%x-%A_%a.out\n"), "one log per array task and submission: {}", s.array);
        assert!(s.merge.contains("/logs/%x-%j.out\n"));
        assert!(s.submit.contains("mkdir -p /home/me/polyprune/results/paper/logs\n"), "{}", s.submit);
        // An absolute out is kept as it is.
        let s = scripts("paper", &SlurmOptions { out: "/scratch/paper".into(), ..options() });
        assert!(s.merge.contains("-o /scratch/paper\n"), "{}", s.merge);
    }

    #[test]
    fn paths_with_spaces_or_quotes_stay_one_shell_word() {
        assert_eq!(word(Path::new("/a/b-c_d.toml")), "/a/b-c_d.toml");
        assert_eq!(word(Path::new("/my runs/it's")), "'/my runs/it'\\''s'");
        let s = scripts("paper", &SlurmOptions { workdir: "/my runs".into(), ..options() });
        assert!(s.array.contains("--out '/my runs/results/paper/shards'/\"$SLURM_ARRAY_TASK_ID\""), "{}", s.array);
    }
}
