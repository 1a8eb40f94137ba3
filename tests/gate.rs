//! `polyprune gate` end to end on Gemma 3 270M: a perplexity baseline on two FLORES languages
//! once, then the gate for a 50% magnitude-pruned candidate (worse, exit 1, on fewer documents
//! than the baseline has) and for the dense model against its own baseline (not worse, exit 0).
//! Bad input (a baseline without rows, a task the baseline lacks) exits 2.

mod common;

use std::path::Path;

use common::{bin, temp_dir};
use polyprune::workflow::gate::{Decision, GateRecord};

/// Documents per language in the baseline: enough for the asymptotic sequence's 50-document
/// burn-in to leave room for a saving.
const LIMIT: usize = 100;

fn polyprune(args: &[&str]) -> (i32, String) {
    let out = bin().args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn gate(baseline: &Path, model: &Path, masks: Option<&Path>, results: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["gate", "--baseline", baseline.to_str().unwrap(), "--model", model.to_str().unwrap()];
    args.extend(["--round", "10", "--results", results.to_str().unwrap()]);
    if let Some(m) = masks {
        args.extend(["--masks", m.to_str().unwrap()]);
    }
    args.extend(extra);
    polyprune(&args)
}

/// The one `gate.json` under `results`.
fn record(results: &Path) -> (GateRecord, std::path::PathBuf) {
    let runs: Vec<_> = std::fs::read_dir(results.join("gate")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let text = std::fs::read_to_string(runs[0].join("gate.json")).unwrap();
    (serde_json::from_str(&text).unwrap(), runs[0].clone())
}

/// Per-document bits per byte from a `documents.csv`, by (language, document), read with the
/// csv crate rather than the library's store.
fn bits_per_byte(path: &Path) -> std::collections::BTreeMap<(String, String), f64> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (lang, doc, nll, bytes) = (col("language"), col("document"), col("nll"), col("bytes"));
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let bpb = r[nll].parse::<f64>().unwrap() / (r[bytes].parse::<f64>().unwrap() * std::f64::consts::LN_2);
            ((r[lang].to_string(), r[doc].to_string()), bpb)
        })
        .collect()
}

#[test]
fn a_pruned_candidate_is_worse_on_a_fraction_and_the_dense_model_is_not_worse() {
    let (Some(shared), Some(model)) = (common::shared(), common::model("gemma-3-270m")) else { return };
    let flores = shared.join("data/sib200");
    let root = temp_dir("seqgate");
    let base = root.join("baseline");
    let limit = LIMIT.to_string();
    let (code, text) = polyprune(&[
        "eval",
        "ppl",
        "--model",
        model.to_str().unwrap(),
        "--langs",
        "deu_Latn,eng_Latn",
        "--source",
        "flores",
        "--flores",
        flores.to_str().unwrap(),
        "--limit",
        &limit,
        "--results",
        base.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");

    let masks = root.join("magnitude");
    let (code, text) = polyprune(&[
        "prune",
        "--model",
        model.to_str().unwrap(),
        "--method",
        "magnitude",
        "--sparsity",
        "0.5",
        "--save",
        masks.to_str().unwrap(),
        "--results",
        root.join("prune-results").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");

    let worse = root.join("worse");
    let junit = root.join("worse.xml");
    let (code, text) = gate(&base, &model, Some(&masks), &worse, &["--junit", junit.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    let (r, run) = record(&worse);
    assert_eq!(r.decision, Decision::Worse);
    assert_eq!(r.available, 2 * LIMIT);
    assert!(r.examples < r.available, "{} of {}", r.examples, r.available);
    assert_eq!(r.evaluations.len(), 2);
    // The gate's own per-document files, paired with the baseline's by an independent reading:
    // each set's mean difference (baseline - candidate) is what gate.json reports, and the
    // interval lies below -margin.
    let candidate = bits_per_byte(&run.join("ppl/documents.csv"));
    let baseline_file = std::fs::read_dir(base.join("ppl")).unwrap().next().unwrap().unwrap().path().join("documents.csv");
    let baseline = bits_per_byte(&baseline_file);
    assert_eq!(candidate.len(), r.examples);
    for s in &r.evaluations {
        let language = s.evaluation.split('/').next().unwrap();
        let diffs: Vec<f64> = candidate.iter().filter(|((l, _), _)| l == language).map(|(k, c)| baseline[k] - c).collect();
        assert_eq!(diffs.len(), s.examples, "{}", s.evaluation);
        let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
        assert!((mean - s.mean_difference).abs() < 1e-9, "{}: {mean} vs {}", s.evaluation, s.mean_difference);
        assert!(s.decision == Decision::Worse && s.interval.upper < -r.margin && s.interval.lower <= mean, "{s:?}");
    }
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!((xml.matches("<testcase ").count(), xml.matches("<failure ").count()), (2, 2), "{xml}");

    let same = root.join("same");
    let (code, text) = gate(&base, &model, None, &same, &[]);
    assert_eq!(code, 0, "{text}");
    let (r, _) = record(&same);
    assert_eq!(r.decision, Decision::NotWorse);
    assert!(r.examples < r.available, "{} of {}", r.examples, r.available);
    assert!(r.evaluations.iter().all(|s| s.mean_difference.abs() < 1e-4 && s.interval.lower > -r.margin), "{r:?}");
    // The saved pruned model is a full copy of the weights (1.1 GB): every run left one behind.
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn bad_baselines_exit_2_with_a_message_naming_the_problem() {
    let Some(model) = common::model("gemma-3-270m") else { return };
    let root = temp_dir("seqgate-bad");
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, text) = gate(&empty, &model, None, &root.join("r"), &[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("holds no examples.csv or documents.csv"), "{text}");

    // A task baseline with a header but no rows.
    let rows = root.join("rows/tasks/1-x");
    std::fs::create_dir_all(&rows).unwrap();
    let header = "task,language,split,shots,example,kind,gold,pred,pred_norm,pred_bytes,acc,acc_norm,acc_bytes,exact_match,output,extracted,new_tokens,stop\n";
    std::fs::write(rows.join("examples.csv"), header).unwrap();
    let (code, text) = gate(&root.join("rows"), &model, None, &root.join("r"), &[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("holds no examples.csv or documents.csv with rows"), "{text}");

    let (code, text) = gate(&empty, &model, None, &root.join("r"), &["--tasks", "sib2000"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("sib2000") && text.contains("sib200"), "{text}");
}
