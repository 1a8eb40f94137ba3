//! Task data files (JSON Lines, JSON arrays, TSV) on arbitrary bytes, read by each task's loader.
//! Input layout: a first line `TASK LANGUAGE SHOTS` (e.g. `xnli de 0`), then the file's bytes,
//! which are written where the task's standard layout expects that language's test file.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use polyprune::tasks::{load, Catalog, LoadOptions, TaskName, TaskSplit};

/// One folder per fuzzing process (several run side by side).
fn data_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        let dir = base.join(format!("polyprune-fuzz-tasks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(newline) = data.iter().position(|&b| b == b'\n') else { return };
    let Ok(header) = std::str::from_utf8(&data[..newline]) else { return };
    let mut words = header.split(' ');
    let (Some(task), Some(lang), Some(shots)) = (words.next(), words.next(), words.next()) else { return };
    let (Ok(task), Ok(shots)) = (task.parse::<TaskName>(), shots.parse::<usize>()) else { return };
    // The language names a file of the layout: keep it a plain, short name (no NUL, no path).
    if shots > 5 || lang.is_empty() || lang.len() > 32 || !lang.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return;
    }
    let Ok(relative) = Catalog::get().spec(task).file_for(TaskSplit::Test, lang) else { return };
    let file = data_dir().join(relative);
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent).expect("a scratch folder");
    }
    std::fs::write(&file, &data[newline + 1..]).expect("a scratch file");
    let options = LoadOptions { split: TaskSplit::Test, shots, seed: 1234 };
    let _ = load(task, lang, data_dir(), &options);
    let _ = std::fs::remove_file(&file);
});
