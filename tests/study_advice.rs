//! A study file's `[advice]`: `study run` runs `advise`'s mixture search after the cells (one
//! log step, resumable, redone when its settings change), and the report sets the searched
//! mixture beside the grid's best cell, on the same documents, with the recommended weights.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use polyprune::design::StudyConfig;
use polyprune::model::import::{import_gguf, ImportOptions};
use polyprune::report::{build_study_report, ReportOptions};
use polyprune::store::DocumentRow;
use polyprune::study::{run_study, Observer, RunOptions, Silent, StudyDir};

#[derive(Default)]
struct Recorder {
    events: Vec<String>,
}

impl Observer for Recorder {
    fn analysis_started(&mut self, name: &str) {
        self.events.push(format!("start {name}"));
    }
    fn analysis_finished(&mut self, name: &str, failure: Option<&str>) {
        self.events.push(format!("end {name} {failure:?}"));
    }
    fn note(&mut self, message: &str) {
        self.events.push(message.to_string());
    }
}

fn config_text(model: &std::path::Path, budget: usize) -> String {
    format!(
        "[study]\nname = \"advice\"\nseeds = [0]\nthreads = 2\n\n\
         [[models]]\nname = \"tiny\"\npath = \"{}\"\n\n\
         [pruning]\nmethods = [\"wanda\"]\nsparsities = [0.5]\n\n\
         [calibration]\nsource = \"flores\"\nsamples = 4\nseqlen = 32\nsets = [{{ languages = [\"eng_Latn\"] }}, {{ languages = [\"deu_Latn\"] }}]\n\n\
         [perplexity]\nlanguages = [\"deu_Latn\", \"swh_Latn\"]\nsource = \"flores\"\nlimit = 24\n\n\
         [advice]\nbudget = {budget}\nvalidate = 1\nlimit = 4\nconfirm = false\n",
        model.display()
    )
}

/// The rows of a CSV export, by column name.
fn table(path: &std::path::Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().expect("header").split(',').map(String::from).collect();
    lines.map(|l| header.iter().cloned().zip(l.split(',').map(String::from)).collect()).collect()
}

fn bits_per_byte(rows: &[DocumentRow], language: &str, ids: &BTreeSet<&str>) -> f64 {
    let chosen: Vec<&DocumentRow> = rows.iter().filter(|r| r.language == language && ids.contains(r.document.as_str())).collect();
    assert_eq!(chosen.len(), ids.len(), "the grid scored every advice test document of {language}");
    chosen.iter().map(|r| r.nll).sum::<f64>() / std::f64::consts::LN_2 / chosen.iter().map(|r| r.bytes).sum::<usize>() as f64
}

#[test]
fn a_study_with_advice_runs_the_search_and_reports_it_beside_the_grid() {
    let Some(_shared) = common::shared() else { return };
    let dir = common::temp_dir("study-advice");
    let model = dir.join("tiny");
    import_gguf(&common::model_fixture("tiny-llama").join("model.gguf"), &model, &ImportOptions { max_positions: 128 }).unwrap();
    let path = dir.join("advice.toml");
    let text = config_text(&model, 6);
    std::fs::write(&path, &text).unwrap();
    let config = StudyConfig::parse(&text, &path, &polyprune::eval::registry(None)).unwrap();
    let out = StudyDir::new(dir.join("out"));

    let mut recorder = Recorder::default();
    let summary = run_study(&config, &text, &out, &RunOptions::default(), &mut recorder).unwrap();
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    assert_eq!(summary.analyses, ["tiny/advice"]);
    // One step, with the search's progress as log lines in between.
    assert_eq!(recorder.events.first().map(String::as_str), Some("start tiny/advice"));
    assert_eq!(recorder.events.last().map(String::as_str), Some("end tiny/advice None"));
    assert!(recorder.events.iter().any(|e| e.starts_with("advice: calibrating swh_Latn")), "{:?}", recorder.events);

    let folder = dir.join("out/advice/tiny");
    for file in ["advice.json", "advice.csv", "search.csv", "study_advice.json"] {
        assert!(folder.join(file).is_file(), "{file}");
    }
    let advice: serde_json::Value = serde_json::from_slice(&std::fs::read(folder.join("advice.json")).unwrap()).unwrap();
    assert_eq!(advice["targets"], serde_json::json!(["deu_Latn", "swh_Latn"]));
    assert_eq!(advice["candidates"], serde_json::json!(["deu_Latn", "swh_Latn", "eng_Latn"]));
    assert_eq!(advice["samples"], 4);

    // The advice test documents are among the grid's, and the dense model scores them as
    // advise did: the same documents, windows and model give the same bits per byte.
    let dense_docs = out.dense("tiny").perplexity().read_documents().unwrap();
    for target in ["deu_Latn", "swh_Latn"] {
        let ids: BTreeSet<&str> = advice["test_documents"][target].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(ids.len(), 4, "limit = 4 per half");
        let from_grid = bits_per_byte(&dense_docs, target, &ids);
        let from_advice = advice["dense_test_bpb"][target].as_f64().unwrap();
        assert!((from_grid - from_advice).abs() <= 1e-9 * from_advice, "{target}: {from_grid} vs {from_advice}");
    }

    let report = build_study_report(&ReportOptions {
        study: dir.join("out"),
        html: None,
        latex: None,
        markdown: None,
        config: None,
        tests: Default::default(),
    })
    .unwrap();
    let html = std::fs::read_to_string(&report.html).unwrap();
    assert!(html.contains("Searched calibration mixture beside the grid"));
    // The weights: advice.json's, summing to 1.
    let weights = table(&dir.join("out/report/advice-advice_weights_tiny.csv"));
    let recommended = advice["recommended"]["weights"].as_object().unwrap();
    assert_eq!(weights.len(), recommended.len());
    let mut total = 0.0;
    for row in &weights {
        let w: f64 = row["weight"].parse().unwrap();
        assert_eq!(w, recommended[&row["language"]].as_f64().unwrap(), "{row:?}");
        total += w;
    }
    assert!((total - 1.0).abs() < 1e-12, "{total}");
    // Beside the grid: per target, the searched mixture's change is advice.json's test figure
    // minus the dense one, and the grid's best cell is the lower of the two calibrations'
    // changes on the grid's documents, recomputed here from their summaries.
    let grid = polyprune::store::StudyResults::load(&dir.join("out")).unwrap();
    let dense = grid.dense_of("tiny").unwrap();
    let rows = table(&dir.join("out/report/advice-advice_vs_grid_tiny.csv"));
    assert_eq!(rows.iter().map(|r| r["target"].as_str()).collect::<Vec<_>>(), ["deu_Latn", "swh_Latn"]);
    for row in &rows {
        let t = row["target"].as_str();
        let mixture = advice["test_bpb"]["recommended"][t].as_f64().unwrap() - advice["dense_test_bpb"][t].as_f64().unwrap();
        let shown: f64 = row["searched mixture: on advice test documents"].parse().unwrap();
        assert!((shown - mixture).abs() <= 1e-12, "{t}: {shown} vs {mixture}");
        let english = advice["test_bpb"]["eng_Latn"][t].as_f64().unwrap() - advice["dense_test_bpb"][t].as_f64().unwrap();
        assert!((row["English-only: on advice test documents"].parse::<f64>().unwrap() - english).abs() <= 1e-12);
        let changes: Vec<(String, f64)> = grid
            .cells
            .iter()
            .map(|(c, u)| {
                (c.calibration.as_ref().unwrap().languages_label(), u.bits_per_byte(t).unwrap() - dense.bits_per_byte(t).unwrap())
            })
            .collect();
        let best = changes.iter().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
        assert_eq!(row["grid best calibration"], best.0, "{t}");
        assert!((row["grid best: on grid documents"].parse::<f64>().unwrap() - best.1).abs() <= 1e-12);
        assert!(row["grid best: on advice test documents"].parse::<f64>().unwrap().is_finite(), "{row:?}");
    }

    // Done: a rerun computes nothing; another budget redoes only the search.
    let again = run_study(&config, &text, &out, &RunOptions::default(), &mut Silent).unwrap();
    assert!(again.computed.is_empty() && again.analyses.is_empty(), "{again:?}");
    let text = config_text(&model, 5);
    let config = StudyConfig::parse(&text, &path, &polyprune::eval::registry(None)).unwrap();
    let changed = run_study(&config, &text, &out, &RunOptions::default(), &mut Silent).unwrap();
    assert!(changed.computed.is_empty(), "{changed:?}");
    assert_eq!(changed.analyses, ["tiny/advice"]);
}
