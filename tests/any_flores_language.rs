//! A FLORES-200 language that the shared SIB-200 copy lacks (Faroese, `fao_Latn`) works in every
//! path once its folder exists: `eval ppl --langs`, `prune --calib`, the SIB-200 task and a study
//! file. Only the data folder changes; no code or task file names the language. Runs the real
//! binary on the tiny Llama fixture; the Faroese folder holds a copy of the German files.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use polyprune::model::import::{import_gguf, ImportOptions};
use polyprune::tasks::{load, LoadOptions, TaskItems, TaskName};

const LANG: &str = "fao_Latn";

/// `../shared`, or `None` after saying why; under `CI=true` a missing prerequisite fails.
fn shared_or_skip() -> Option<PathBuf> {
    let shared = common::shared();
    assert!(shared.is_some() || std::env::var("CI").as_deref() != Ok("true"), "CI=true: ../shared/data is required");
    shared
}

/// A data folder whose `sib200/` holds only `fao_Latn` (German text) and the labels.
fn faroese_data(shared: &Path) -> PathBuf {
    let source = shared.join("data/sib200");
    assert!(!source.join(LANG).exists(), "the test needs a language the shared copy lacks");
    let data = common::temp_dir("any-flores");
    let target = data.join("sib200").join(LANG);
    std::fs::create_dir_all(&target).unwrap();
    for split in ["train", "dev", "test"] {
        std::fs::copy(source.join("deu_Latn").join(format!("{split}.tsv")), target.join(format!("{split}.tsv"))).unwrap();
    }
    std::fs::copy(source.join("labels.txt"), data.join("sib200/labels.txt")).unwrap();
    data
}

/// The tiny Llama fixture imported into a fresh model folder (its GGUF is committed as a fixture).
fn tiny_llama() -> PathBuf {
    let out = common::temp_dir("any-flores-model").join("tiny-llama");
    import_gguf(&common::model_fixture("tiny-llama").join("model.gguf"), &out, &ImportOptions { max_positions: 128 }).unwrap();
    out
}

fn run(args: &[&str]) -> Output {
    common::bin().args(args).output().unwrap()
}

fn ok(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failure(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure; stdout: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn perplexity_calibration_tasks_and_study_accept_a_new_flores_folder() {
    let Some(shared) = shared_or_skip() else { return };
    let data = faroese_data(&shared);
    let root = data.join("sib200");
    let (root_s, data_s) = (root.to_str().unwrap(), data.to_str().unwrap());
    let model = tiny_llama();
    let model = model.to_str().unwrap();
    let results = common::temp_dir("any-flores-results");
    let results = results.to_str().unwrap();

    // Perplexity, by FLORES code and by ISO 639-1 code.
    for code in [LANG, "fo"] {
        let out = run(&["eval", "ppl", "--model", model, "--langs", code, "--source", "flores", "--flores", root_s, "--limit", "2"]);
        let stdout = ok(&out, "eval ppl");
        assert!(stdout.contains(LANG), "{stdout}");
    }

    // Calibration: Wanda needs activations, so the Faroese text is really read.
    let out = run(&[
        "prune",
        "--model",
        model,
        "--method",
        "wanda",
        "--sparsity",
        "0.5",
        "--calib",
        LANG,
        "--calib-source",
        "flores",
        "--flores",
        root_s,
        "--samples",
        "2",
        "--seqlen",
        "32",
        "--results",
        results,
    ]);
    ok(&out, "prune --calib");

    // The SIB-200 task, through the library and the CLI.
    let loaded = load(TaskName::Sib200, "fo", &data, &LoadOptions::default()).unwrap();
    let TaskItems::Choice(examples) = loaded.items else { panic!("sib200 gives choices") };
    assert_eq!(examples.len(), 204);
    let out = run(&[
        "eval",
        "tasks",
        "--model",
        model,
        "--tasks",
        "sib200",
        "--langs",
        LANG,
        "--limit",
        "3",
        "--format",
        "csv",
        "--data",
        data_s,
        "--results",
        results,
    ]);
    let stdout = ok(&out, "eval tasks");
    assert!(stdout.lines().any(|l| l.starts_with("sib200,fao_Latn,acc,")), "{stdout}");

    // A study file naming the language for calibration, perplexity and tasks.
    let config = data.join("study.toml");
    std::fs::write(
        &config,
        format!(
            "[study]\nname = \"faroese\"\nseeds = [0]\n\n[[models]]\nname = \"tiny\"\npath = \"{model}\"\n\n\
             [pruning]\nmethods = [\"wanda\"]\nsparsities = [0.5]\n\n\
             [calibration]\nsource = \"flores:{root_s}\"\nsamples = 2\nseqlen = 32\nsets = [{{ languages = [\"{LANG}\"] }}]\n\n\
             [perplexity]\nlanguages = [\"{LANG}\"]\nsource = \"flores:{root_s}\"\nlimit = 2\n\n\
             [tasks]\nnames = [\"sib200\"]\nlanguages = [\"{LANG}\"]\nlimit = 2\ndata = \"{data_s}\"\n"
        ),
    )
    .unwrap();
    let out = common::bin().args(["study", "plan"]).arg(&config).arg("--out").arg(data.join("study-out")).output().unwrap();
    let stdout = ok(&out, "study plan");
    assert!(stdout.contains(LANG), "{stdout}");
}

#[test]
fn unknown_and_absent_languages_are_explained() {
    let Some(shared) = shared_or_skip() else { return };
    let data = faroese_data(&shared);
    let root = data.join("sib200");
    let root_s = root.to_str().unwrap();
    let model = tiny_llama();
    let model = model.to_str().unwrap();
    // A typo: the nearest FLORES code.
    let e = failure(&run(&["eval", "ppl", "--model", model, "--langs", "fao_Ltn", "--source", "flores", "--flores", root_s]));
    assert!(e.contains("unknown language 'fao_Ltn': did you mean 'fao_Latn'?"), "{e}");
    // A real FLORES-200 language without a folder: which folder to create.
    let e = failure(&run(&["eval", "ppl", "--model", model, "--langs", "gle_Latn", "--source", "flores", "--flores", root_s]));
    assert!(e.contains("has no text for gle_Latn") && e.contains(&format!("create {}", root.join("gle_Latn").display())), "{e}");
    let e = failure(&run(&[
        "prune",
        "--model",
        model,
        "--method",
        "wanda",
        "--sparsity",
        "0.5",
        "--calib",
        "gle",
        "--calib-source",
        "flores",
        "--flores",
        root_s,
    ]));
    assert!(e.contains("gle_Latn"), "{e}");
}
