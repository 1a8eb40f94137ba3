//! `polyprune check` and `polyprune analyze masks|significance` on small result folders that
//! the test writes itself: a clear regression exits 1 naming the file, no difference exits 0,
//! bad input exits 2 with a one-line error.

mod common;

use std::path::Path;

use common::{bin, temp_dir};

/// A run folder with `documents.csv` for two languages; `shift` adds NLL to every deu document.
fn write_run(dir: &Path, shift: f64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut csv = String::from("language,source,document,nll,tokens,bytes\n");
    for lang in ["eng_Latn", "deu_Latn"] {
        for d in 0..40 {
            // Varied per-document NLL (nats) around 1 bit per byte on 120 bytes.
            let base = 120.0 * std::f64::consts::LN_2 * (0.9 + 0.2 * ((d * 7 % 13) as f64 / 13.0));
            let nll = if lang == "deu_Latn" { base + shift * (1.0 + 0.1 * (d % 3) as f64) } else { base };
            csv.push_str(&format!("{lang},flores,{d},{nll},30,120\n"));
        }
    }
    std::fs::write(dir.join("documents.csv"), csv).unwrap();
}

fn write_examples(dir: &Path, flip: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut csv = String::from("task,language,split,shots,example,kind,gold,pred,acc\n");
    for e in 0..30 {
        let acc = u8::from(e % 2 == 0 || e < flip);
        csv.push_str(&format!("xcopa,it,test,0,{e},choice,0,0,{acc}\n"));
    }
    std::fs::write(dir.join("examples.csv"), csv).unwrap();
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = bin().args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn check_flags_a_regression_and_passes_no_change() {
    let root = temp_dir("check");
    let (base, same, worse) = (root.join("base"), root.join("same"), root.join("worse"));
    write_run(&base.join("ppl/run"), 0.0);
    write_run(&same.join("ppl/run"), 0.0);
    write_run(&worse.join("ppl/run"), 8.0); // about +0.1 bits per byte on deu
    for d in [&base, &same, &worse] {
        write_examples(&d.join("tasks/run"), 0);
    }
    let (code, stdout, stderr) =
        run(&["check", "--baseline", base.to_str().unwrap(), "--candidate", worse.to_str().unwrap(), "--resamples", "2000"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("WORSE: ppl/run/documents.csv deu_Latn/flores"), "{stdout}");
    assert!(!stdout.contains("WORSE: ppl/run/documents.csv eng_Latn"), "{stdout}");

    let (code, stdout, stderr) =
        run(&["check", "--baseline", base.to_str().unwrap(), "--candidate", same.to_str().unwrap(), "--resamples", "2000"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("0 significantly worse"), "{stdout}");

    // A tolerance larger than the change lets it pass; the comparison table is exported.
    let out = root.join("out");
    let (code, stdout, _) = run(&[
        "check",
        "--baseline",
        base.to_str().unwrap(),
        "--candidate",
        worse.to_str().unwrap(),
        "--tolerance",
        "0.5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}");
    let table = std::fs::read_to_string(out.join("check/check.csv")).unwrap();
    assert_eq!(table.lines().count(), 1 + 3, "{table}");
}

/// Counts of `<testcase>` and `<failure>` elements, read by Python's XML parser (a malformed
/// document fails the parse).
fn junit_counts(path: &Path) -> (usize, usize) {
    let script = "import sys, xml.etree.ElementTree as E\nr = E.parse(sys.argv[1]).getroot()\nprint(len(r.findall('.//testcase')), len(r.findall('.//failure')))";
    let out = std::process::Command::new("python3").args(["-c", script, path.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let counts: Vec<usize> = text.split_whitespace().map(|n| n.parse().unwrap()).collect();
    (counts[0], counts[1])
}

/// Two runs of `eval ppl` land in differently time-stamped folders (and a pruned candidate
/// under another label): the check pairs them by what they evaluated, whichever folder each
/// side names (the results root or the run folder itself).
#[test]
fn check_pairs_runs_by_what_they_evaluated_and_writes_junit() {
    let root = temp_dir("check-runs");
    write_run(&root.join("base/ppl/1764800000-gemma-3-270m"), 0.0);
    write_run(&root.join("cand/ppl/1764899999-gemma-3-270m_masks"), 8.0);
    write_examples(&root.join("base/tasks/1764800001-gemma-3-270m"), 0);
    write_examples(&root.join("cand/tasks/1764899998-gemma-3-270m_masks"), 0);
    let junit = root.join("gate/junit.xml");
    let (code, stdout, stderr) = run(&[
        "check",
        "--baseline",
        root.join("base").to_str().unwrap(),
        "--candidate",
        root.join("cand").to_str().unwrap(),
        "--resamples",
        "2000",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("WORSE: ppl/1764800000-gemma-3-270m/documents.csv deu_Latn/flores"), "{stdout}");
    assert_eq!(junit_counts(&junit), (3, 1), "{}", std::fs::read_to_string(&junit).unwrap());

    // The candidate's run folder itself against the baseline's results root.
    let (code, stdout, stderr) = run(&[
        "check",
        "--baseline",
        root.join("base").to_str().unwrap(),
        "--candidate",
        root.join("cand/ppl/1764899999-gemma-3-270m_masks").to_str().unwrap(),
        "--resamples",
        "2000",
    ]);
    assert_eq!(code, 2, "the baseline also has task results the run folder lacks: {stdout}\n{stderr}");
    assert!(stderr.contains("did not evaluate the same things") && stderr.contains("xcopa/it"), "{stderr}");
    let (code, stdout, stderr) = run(&[
        "check",
        "--baseline",
        root.join("base/ppl").to_str().unwrap(),
        "--candidate",
        root.join("cand/ppl/1764899999-gemma-3-270m_masks").to_str().unwrap(),
        "--resamples",
        "2000",
    ]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
}

/// What would make a paired test meaningless is refused with exit 2 and a reason: other
/// documents, two runs of one evaluation in one folder.
#[test]
fn check_refuses_runs_that_evaluated_different_things() {
    let root = temp_dir("check-different");
    write_run(&root.join("base/ppl/1-a"), 0.0);
    write_run(&root.join("cand/ppl/2-a"), 0.0);
    let documents = root.join("cand/ppl/2-a/documents.csv");
    let text = std::fs::read_to_string(&documents).unwrap().replace("deu_Latn,flores,39,", "deu_Latn,flores,139,");
    std::fs::write(&documents, text).unwrap();
    let (code, _, stderr) =
        run(&["check", "--baseline", root.join("base").to_str().unwrap(), "--candidate", root.join("cand").to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("1 only in the baseline (39), 1 only in the candidate (139)"), "{stderr}");

    write_run(&root.join("twice/ppl/3-a"), 0.0);
    write_run(&root.join("twice/ppl/4-a"), 0.0);
    let (code, _, stderr) =
        run(&["check", "--baseline", root.join("base").to_str().unwrap(), "--candidate", root.join("twice").to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("two results of the same evaluation"), "{stderr}");
}

#[test]
fn check_rejects_bad_input_with_exit_2() {
    let root = temp_dir("check-bad");
    write_run(&root.join("base"), 0.0);
    std::fs::create_dir_all(root.join("empty")).unwrap();
    let (code, _, stderr) =
        run(&["check", "--baseline", root.join("base").to_str().unwrap(), "--candidate", root.join("empty").to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--candidate"), "{stderr}");
    let (code, _, stderr) =
        run(&["check", "--baseline", root.join("missing").to_str().unwrap(), "--candidate", root.join("base").to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("missing"), "{stderr}");
    std::fs::write(root.join("base/documents.csv"), "language,source\nx,y\n").unwrap();
    write_run(&root.join("cand"), 0.0);
    let (code, _, stderr) =
        run(&["check", "--baseline", root.join("base").to_str().unwrap(), "--candidate", root.join("cand").to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("documents.csv"), "{stderr}");
}

#[test]
fn significance_over_a_fabricated_study() {
    let study = temp_dir("study");
    let cells: Vec<serde_json::Value> = ["eng_Latn", "deu_Latn", "zho_Hans"]
        .iter()
        .map(|l| {
            serde_json::json!({"id": format!("wanda-{l}"), "model": "m", "method": {"method": "wanda"}, "pattern": "unstructured", "sparsity": 0.5,
            "calibration": {"languages": [l], "mix": "even", "samples": 8, "seqlen": 64, "source": null}, "seed": 0, "mode": "one-shot"})
        })
        .collect();
    // The plan as the study runner writes it (the store reads it typed, every field required).
    let plan = serde_json::json!({"study": "t", "config_hash": "0", "tool_version": "0", "cells": cells,
        "dense": [{"id": "dense-m", "model": "m"}], "models": [["m", "m"]], "evaluation": {"perplexity": null, "tasks": null}, "analysis": {"switches": {"masks": false, "subspaces": false, "neurons": false, "pruning_error": false, "significance": true}, "params": {"sentences": 50, "batch": 8, "layers": [], "rank": null, "filter_percentile": 0.95, "entropy_fraction": 0.01, "error_windows": 8, "error_seqlen": 128}}});
    std::fs::write(study.join("study.json"), serde_json::to_vec(&plan).unwrap()).unwrap();
    write_run(&study.join("cells/wanda-eng_Latn/ppl"), 0.0);
    write_run(&study.join("cells/wanda-deu_Latn/ppl"), 0.0);
    write_run(&study.join("cells/wanda-zho_Hans/ppl"), 10.0);
    write_run(&study.join("dense/m/ppl"), -10.0);
    let (code, stdout, stderr) = run(&["analyze", "significance", study.to_str().unwrap(), "--resamples", "2000"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let table = std::fs::read_to_string(study.join("analysis/significance/comparisons.csv")).unwrap();
    // Two evaluation sets x (3 calibrations + dense choose 2) = 12 comparisons.
    assert_eq!(table.lines().count(), 1 + 12, "{table}");
    // On deu text, zho-calibrated is worse than eng-calibrated: significant after Holm.
    assert!(table.lines().any(|l| l.contains("deu_Latn/flores") && l.contains("eng_Latn,zho_Hans") && l.ends_with(",yes")), "{table}");
    assert!(table.lines().any(|l| l.contains("eng_Latn/flores") && l.contains("eng_Latn,deu_Latn") && l.ends_with(",no")), "{table}");
    assert!(study.join("analysis/significance/section.json").is_file());
}

fn write_provenance(dir: &Path, settings: &str) {
    let json = format!(
        r#"{{"tool":"polyprune","tool_version":"0","command":"eval ppl","model":"m","settings":{settings},"machine":{{"hostname":"h","cores":2,"os":"linux"}},"started_unix":0,"seconds":1.0}}"#
    );
    std::fs::write(dir.join("provenance.json"), json).unwrap();
}

/// Units are paired only under the same settings: other windows for perplexity, other shots
/// for a task are other measurements, refused with exit 2 naming the setting.
#[test]
fn check_refuses_evaluations_made_with_other_settings() {
    let root = temp_dir("check-settings");
    write_run(&root.join("base/ppl/1-a"), 0.0);
    write_run(&root.join("cand/ppl/2-a"), 0.0);
    write_provenance(&root.join("base/ppl/1-a"), r#"{"context":512,"stride":512,"per_line":false,"limit":null}"#);
    write_provenance(&root.join("cand/ppl/2-a"), r#"{"context":1024,"stride":512,"per_line":false,"limit":null}"#);
    let (code, _, stderr) =
        run(&["check", "--baseline", root.join("base").to_str().unwrap(), "--candidate", root.join("cand").to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("context 512 vs 1024"), "{stderr}");
    // The same windows written by a study unit (its plan nested under settings.plan) pair fine.
    write_provenance(&root.join("cand/ppl/2-a"), r#"{"config_hash":"x","settings":{"plan":{"context":512,"stride":512},"unit":"c"}}"#);
    let (code, stdout, stderr) =
        run(&["check", "--baseline", root.join("base").to_str().unwrap(), "--candidate", root.join("cand").to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");

    write_examples(&root.join("zero/tasks/1-a"), 0);
    write_examples(&root.join("five/tasks/1-a"), 0);
    let five = root.join("five/tasks/1-a/examples.csv");
    let text = std::fs::read_to_string(&five).unwrap().replace(",test,0,", ",test,5,");
    std::fs::write(&five, text).unwrap();
    let (code, _, stderr) =
        run(&["check", "--baseline", root.join("zero").to_str().unwrap(), "--candidate", root.join("five").to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("shots 0 vs 5"), "{stderr}");
}

/// Two folders whose files hold no scored rows leave nothing to test: exit 2, not a silent 0.
#[test]
fn check_refuses_folders_without_rows() {
    let root = temp_dir("check-no-rows");
    for side in ["base", "cand"] {
        let dir = root.join(side).join("ppl/1-a");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("documents.csv"), "language,source,document,nll,tokens,bytes\n").unwrap();
    }
    let (code, stdout, stderr) =
        run(&["check", "--baseline", root.join("base").to_str().unwrap(), "--candidate", root.join("cand").to_str().unwrap()]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("nothing to compare"), "{stderr}");
}
