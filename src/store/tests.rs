//! Every row and record type written, then read back equal; records missing a field are
//! refused with the file and the field named.

use std::path::PathBuf;

use super::io::{read_csv, read_json, write_csv, write_json};
use super::*;
use crate::design::{AnalysisPlan, Cell, DenseBaseline};
use crate::eval::{DocumentScore, LanguageScore};

fn temp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("polyprune-store-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn round_trip_csv<T>(tag: &str, rows: Vec<T>)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let path = temp(tag).join(format!("{tag}.csv"));
    write_csv(&path, &rows).unwrap();
    let back: Vec<T> = read_csv(&path).unwrap();
    assert_eq!(back, rows, "{tag}");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

fn round_trip_json<T>(tag: &str, value: T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let path = temp(tag).join(format!("{tag}.json"));
    write_json(&path, &value).unwrap();
    let back: T = read_json(&path).unwrap();
    assert_eq!(back, value, "{tag}");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

fn scores() -> Vec<LanguageScore> {
    let doc = |id: &str, nll: f64| DocumentScore { id: id.into(), nll, tokens: 7, bytes: 31 };
    vec![
        LanguageScore {
            language: "eng_Latn".into(),
            source: "flores".into(),
            documents: vec![doc("0", 20.5), doc("1, quoted \"id\"", 0.1)],
        },
        LanguageScore { language: "deu_Latn".into(), source: "flores".into(), documents: vec![doc("0", 33.25)] },
    ]
}

/// The perplexity writer and its readers agree: documents and summary read back as written.
#[test]
fn perplexity_files_round_trip() {
    let dir = PerplexityDir::at(temp("ppl"));
    let provenance = Provenance::new("eval ppl", "model-hash".into(), serde_json::json!({ "limit": 3 }), std::time::Instant::now());
    dir.write(&scores(), &provenance).unwrap();
    assert_eq!(dir.read_documents().unwrap(), DocumentRow::from_scores(&scores()));
    assert_eq!(dir.read_summary().unwrap(), PerplexitySummaryRow::from_scores(&scores()));
    assert_eq!(dir.read_provenance().unwrap(), provenance);
    match read_scores(&dir.path().join("documents.csv")).unwrap() {
        Scores::Documents(rows) => assert_eq!(rows.len(), 3),
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(dir.path());
}

fn example(kind: ExampleKind) -> ExampleRow {
    ExampleRow {
        task: "xcopa".into(),
        language: "it".into(),
        split: "test".into(),
        shots: 0,
        example: "12".into(),
        kind,
        gold: "1".into(),
        pred: None,
        pred_norm: None,
        pred_bytes: None,
        acc: None,
        acc_norm: None,
        acc_bytes: None,
        exact_match: None,
        output: None,
        extracted: None,
        new_tokens: None,
        stop: None,
    }
}

#[test]
fn task_rows_round_trip() {
    let choice = ExampleRow {
        pred: Some(1),
        pred_norm: Some(0),
        pred_bytes: Some(1),
        acc: Some(1),
        acc_norm: Some(0),
        acc_bytes: Some(1),
        ..example(ExampleKind::Choice)
    };
    let generation = ExampleRow {
        exact_match: Some(0),
        output: Some("The answer is 4,\n then \"5\"".into()),
        extracted: Some("4".into()),
        new_tokens: Some(9),
        stop: Some("stop_string".into()),
        ..example(ExampleKind::Generation)
    };
    round_trip_csv("examples", vec![choice, generation]);
    round_trip_csv(
        "choices",
        vec![ChoiceRow {
            task: "xcopa".into(),
            language: "it".into(),
            example: "12".into(),
            choice: 1,
            is_gold: 1,
            log_likelihood: -3.140625,
            tokens: 4,
            chars: 17,
            bytes: 18,
            is_greedy: 0,
        }],
    );
    let summary = |stderr| TaskSummaryRow {
        task: "xcopa".into(),
        language: "it".into(),
        split: "test".into(),
        shots: 0,
        metric: "acc".into(),
        value: 0.75,
        stderr,
        n: 12,
        chance: 0.5,
        seconds: 1.5,
    };
    round_trip_csv("task-summary", vec![summary(Some(0.13)), summary(None)]);
}

#[test]
fn pruning_rows_round_trip() {
    let row = |nm_valid, zeros, damping| SparsityRow {
        layer: "blk.0.ffn_up.weight".into(),
        block: 0,
        role: "ffn_up".into(),
        requested: 0.5,
        pattern: "2:4".into(),
        pruned: 512,
        total: 1024,
        achieved: 0.5,
        nm_valid,
        zeros,
        damping,
    };
    round_trip_csv("sparsity", vec![row(Some(true), Some(530), None), row(None, None, Some(0.1))]);
    // A sparsity.csv written before zeros and the dampening were recorded (no columns) still reads.
    let old = temp("sparsity-old").join("sparsity.csv");
    std::fs::create_dir_all(old.parent().unwrap()).unwrap();
    std::fs::write(
        &old,
        "layer,block,role,requested,pattern,pruned,total,achieved,nm_valid\nblk.0.ffn_up.weight,0,ffn_up,0.5,2:4,512,1024,0.5,\n",
    )
    .unwrap();
    assert_eq!(read_csv::<SparsityRow>(&old).unwrap(), vec![row(None, None, None)]);
    let _ = std::fs::remove_dir_all(old.parent().unwrap());
    round_trip_csv(
        "manifest",
        vec![CalibrationManifestRow {
            language: "eng_Latn".into(),
            source: "flores".into(),
            first_document: "3".into(),
            last_document: "5".into(),
            offset: 64,
        }],
    );
}

fn cell(seed: Option<u64>) -> Cell {
    serde_json::from_value(serde_json::json!({
        "id": "wanda-u50-eng_Latn-s0-abc", "model": "m", "method": { "method": "wanda" }, "pattern": "unstructured",
        "sparsity": 0.5, "calibration": { "languages": ["eng_Latn"], "mix": "even", "samples": 4, "seqlen": 64, "source": null },
        "seed": seed, "mode": "one-shot"
    }))
    .unwrap()
}

fn study_record() -> StudyRecord {
    StudyRecord {
        study: "tiny".into(),
        config_hash: "0123456789abcdef".into(),
        tool_version: "0.1.0".into(),
        cells: vec![cell(Some(0))],
        dense: vec![DenseBaseline::for_model("m")],
        models: vec![("m".into(), PathBuf::from("models/m"))],
        evaluation: EvaluationRecord {
            perplexity: Some(PerplexitySettings {
                context: 512,
                languages: vec![crate::data::Language::parse("eng_Latn").unwrap()],
                limit: Some(6),
                source: None,
                stride: 256,
            }),
            tasks: None,
        },
        analysis: AnalysisPlan::default(),
    }
}

fn unit_record(status: UnitStatus) -> UnitRecord {
    UnitRecord {
        id: "wanda-u50-eng_Latn-s0-abc".into(),
        status,
        runs: 1,
        model: "m".into(),
        model_hash: "hash".into(),
        config_hash: "0123456789abcdef".into(),
        tool_version: "0.1.0".into(),
        seed: None,
        started_unix: 1_700_000_000,
        timings: StageTimings { perplexity_s: 1.25, total_s: 2.5, ..Default::default() },
        eval_tokens: 100,
        calibration_tokens: 256,
        overall_sparsity: Some(0.5),
        machine: MachineRecord { hostname: "h".into(), cores: 2, os: "linux".into(), device: "cpu".into(), compute: "f32".into() },
    }
}

#[test]
fn records_round_trip() {
    round_trip_json("provenance", Provenance::new("prune", "hash".into(), serde_json::json!({ "a": [1, 2] }), std::time::Instant::now()));
    round_trip_json("study", study_record());
    round_trip_json("cell-done", unit_record(UnitStatus::Done));
    round_trip_json("cell-failed", unit_record(UnitStatus::Failed { error: "out of memory".into() }));

    // Through the study folder: the plan, and a cell's record.
    let dir = StudyDir::new(temp("study-dir"));
    dir.write_study(&study_record(), "[study]\nname = \"tiny\"\n").unwrap();
    assert_eq!(dir.read_study().unwrap(), study_record());
    let unit = Unit::Cell(cell(Some(0)));
    assert_eq!(dir.read_record(&unit).unwrap(), None);
    dir.write_record(&unit, &unit_record(UnitStatus::Done)).unwrap();
    assert_eq!(dir.read_record(&unit).unwrap(), Some(unit_record(UnitStatus::Done)));
    assert!(dir.is_done(&unit));
    let _ = std::fs::remove_dir_all(&dir.root);
}

/// Removes `field` from the JSON object at `pointer` of the file.
fn drop_field(path: &std::path::Path, pointer: &str, field: &str) {
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v.pointer_mut(pointer).unwrap().as_object_mut().unwrap().remove(field).expect("the field was written");
    std::fs::write(path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

/// A record that lacks a field (even an optional one: `seed` is `null` when absent, never
/// missing) is an error that names the file, the field, and how to rebuild it.
#[test]
fn a_record_missing_a_field_is_refused_naming_file_and_field() {
    let dir = StudyDir::new(temp("missing-field"));
    dir.write_study(&study_record(), "").unwrap();
    let unit = Unit::Cell(cell(Some(0)));
    dir.write_record(&unit, &unit_record(UnitStatus::Done)).unwrap();

    let cell_json = dir.cell(unit.id()).path().join("cell.json");
    drop_field(&cell_json, "", "seed");
    let e = dir.read_record(&unit).unwrap_err().to_string();
    assert!(e.contains(&cell_json.display().to_string()) && e.contains("missing field `seed`"), "{e}");
    assert!(e.contains("re-run `polyprune study run`"), "{e}");

    let study_json = dir.root.join("study.json");
    drop_field(&study_json, "/cells/0", "seed");
    let e = dir.read_study().unwrap_err().to_string();
    assert!(e.contains(&study_json.display().to_string()) && e.contains("missing field `seed`"), "{e}");
    dir.write_study(&study_record(), "").unwrap();
    drop_field(&study_json, "", "config_hash");
    let e = dir.read_study().unwrap_err().to_string();
    assert!(e.contains("missing field `config_hash`"), "{e}");
    let _ = std::fs::remove_dir_all(&dir.root);
}

/// A CSV row that lacks a column is refused with the file, the row and the column.
#[test]
fn a_csv_missing_a_column_is_refused() {
    let dir = PerplexityDir::at(temp("missing-column"));
    std::fs::create_dir_all(dir.path()).unwrap();
    std::fs::write(dir.path().join("documents.csv"), "language,source,document,nll,tokens\neng_Latn,flores,0,1.5,3\n").unwrap();
    let e = dir.read_documents().unwrap_err().to_string();
    assert!(e.contains("documents.csv") && e.contains("row 2") && e.contains("missing field `bytes`"), "{e}");
    let _ = std::fs::remove_dir_all(dir.path());
}

#[test]
fn score_files_are_found_outside_analysis_folders() {
    let root = temp("find");
    PerplexityDir::at(root.join("cells/a/ppl"))
        .write(&scores(), &Provenance::new("x", String::new(), serde_json::Value::Null, std::time::Instant::now()))
        .unwrap();
    std::fs::create_dir_all(root.join("analysis/significance")).unwrap();
    std::fs::write(root.join("analysis/significance/documents.csv"), "").unwrap();
    assert_eq!(find_score_files(&root).unwrap(), vec![PathBuf::from("cells/a/ppl/documents.csv")]);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn run_folder_names_are_left_out_of_a_files_place() {
    use crate::store::run_free_path;
    let p = |s: &str| run_free_path(std::path::Path::new(s));
    assert_eq!(p("ppl/1764800000-gemma-3-270m/documents.csv"), "ppl/<run>/documents.csv");
    assert_eq!(p("base/tasks/17-x_masks/examples.csv"), "base/tasks/<run>/examples.csv");
    // Study units and folders that only look alike keep their names.
    assert_eq!(p("cells/wanda-u50-eng/ppl/documents.csv"), "cells/wanda-u50-eng/ppl/documents.csv");
    assert_eq!(p("ppl/gemma-1/documents.csv"), "ppl/gemma-1/documents.csv");
    assert_eq!(p("other/1764800000-gemma/documents.csv"), "other/1764800000-gemma/documents.csv");
}
