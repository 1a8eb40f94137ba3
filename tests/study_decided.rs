//! A study whose tasks stop when decided (`[tasks] stop = "decided"`), end to end on a real model
//! (SmolLM2-135M, the real ONNX Runtime, XCOPA in Italian): every unit scores the same examples in the
//! same order, each comparison's interval and decision are what its confidence sequence gives on
//! the examples in the unit folders (replayed here from the CSV files), a set stops at the first
//! round where every comparison is decided, an interrupted run resumes to the same results, and
//! the report says when each set was decided.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polyprune::stats::{Alpha, BettingConfidenceSequence, Decision};

const ROUND: usize = 20;
const LIMIT: usize = 60;
const MARGIN: f64 = 0.05;

fn config(model: &Path, shared: &Path) -> String {
    format!(
        "[study]\nname = \"decided\"\nseeds = [0]\nthreads = 2\n\n\
         [[models]]\nname = \"smollm2\"\npath = \"{}\"\n\n\
         [pruning]\nmethods = [\"magnitude\", \"wanda\"]\nsparsities = [0.5]\ninclude = [\"blk.0.\", \"blk.1.\"]\n\n\
         [calibration]\nsource = \"flores\"\nsamples = 4\nseqlen = 64\nsets = [{{ languages = [\"eng_Latn\"] }}, {{ languages = [\"deu_Latn\"] }}]\n\n\
         [tasks]\nnames = [\"xcopa\"]\nlanguages = [\"it\"]\nlimit = {LIMIT}\nstop = \"decided\"\nmargin = {MARGIN}\nround = {ROUND}\ndata = \"{}\"\n\n\
         [analysis]\nsignificance = true\n",
        model.display(),
        shared.join("data").display()
    )
}

fn setup(tag: &str) -> Option<(PathBuf, PathBuf)> {
    let shared = common::shared()?;
    let model = common::model("smollm2-135m")?;
    let dir = common::temp_dir(tag);
    let file = dir.join("decided.toml");
    std::fs::write(&file, config(&model, &shared)).unwrap();
    Some((file, dir.join("out")))
}

fn run(config: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let o = common::bin().args(["study", "run"]).arg(config).arg("--out").arg(out).args(extra).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

/// Per unit folder (`cells/<id>` or `dense/<model>`): example id -> 1/0, in file order.
fn examples(out: &Path) -> BTreeMap<String, Vec<(String, f64)>> {
    let mut units = BTreeMap::new();
    for sub in ["cells", "dense"] {
        for e in std::fs::read_dir(out.join(sub)).unwrap() {
            let dir = e.unwrap().path();
            let csv = dir.join("tasks/examples.csv");
            let text = std::fs::read_to_string(&csv).unwrap_or_else(|e| panic!("{}: {e}", csv.display()));
            let rows = common::rfc4180_rows(&text, ',');
            let header = &rows[0];
            let col = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("{name} in {header:?}"));
            let (id, acc) = (col("example"), col("acc"));
            let scores = rows[1..].iter().filter(|r| r.len() > 1).map(|r| (r[id].clone(), r[acc].parse::<f64>().unwrap())).collect();
            units.insert(format!("{sub}/{}", dir.file_name().unwrap().to_string_lossy()), scores);
        }
    }
    units
}

fn decisions(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("decided/decisions.json")).unwrap()).unwrap()
}

fn unit_key(id: &str) -> String {
    if id.starts_with("dense-") {
        format!("dense/{}", id.trim_start_matches("dense-"))
    } else {
        format!("cells/{id}")
    }
}

#[test]
fn decided_rounds_pair_every_unit_replay_exactly_resume_and_reach_the_report() {
    let Some((config, out)) = setup("study-decided") else { return };
    let o = run(&config, &out, &[]);
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(log.contains("decided round 1 written"), "a log line per round: {log}");

    let units = examples(&out);
    assert_eq!(units.len(), 4, "dense, magnitude, wanda in English and German: {:?}", units.keys());
    let d = decisions(&out);
    let set = &d["sets"][0];
    assert_eq!(set["evaluation"], "xcopa/ita_Latn");
    let (used, available) = (set["examples"].as_u64().unwrap() as usize, set["available"].as_u64().unwrap() as usize);
    assert_eq!(set["cap"].as_u64().unwrap() as usize, LIMIT);
    assert_eq!(available, 500, "XCOPA's Italian test set");
    assert!(used == LIMIT || used % ROUND == 0, "whole rounds or the cap: {used}");

    // Paired: every unit scored the same examples in the same (seeded, shuffled) order.
    let order: Vec<&String> = units.values().next().unwrap().iter().map(|(id, _)| id).collect();
    assert_eq!(order.len(), used);
    for (unit, scores) in &units {
        assert_eq!(scores.iter().map(|(id, _)| id).collect::<Vec<_>>(), order, "{unit} scored other examples");
    }
    // Ids end in the row number of the test file (`xcopa/ita_Latn/test/284`).
    let rows: Vec<usize> = order.iter().map(|id| id.rsplit('/').next().unwrap().parse().unwrap()).collect();
    let mut sorted = rows.clone();
    sorted.sort_unstable();
    assert_ne!(rows, sorted, "a shuffled order, not file order");

    // Each comparison replayed from the CSV files: every cell against dense, German Wanda
    // against English Wanda; the same interval, and a decision at the first round it could be.
    let comparisons = set["comparisons"].as_array().unwrap();
    assert_eq!(comparisons.len(), 4, "{comparisons:?}");
    let mut all_decided = true;
    for c in comparisons {
        let first = &units[&unit_key(c["first_unit"].as_str().unwrap())];
        let second = &units[&unit_key(c["second_unit"].as_str().unwrap())];
        let mut sequence = BettingConfidenceSequence::new(-1.0, 1.0, Some(available), Alpha::new(0.05).unwrap(), 1000).unwrap();
        let mut decided_at = None;
        for k in 0..used {
            sequence.observe(first[k].1 - second[k].1).unwrap();
            let at_round_end = (k + 1) % ROUND == 0 || k + 1 == used;
            let i = sequence.interval();
            if at_round_end && decided_at.is_none() {
                if let Some(decision) = Decision::of_bounds(i.lower(), i.upper(), MARGIN) {
                    decided_at = Some((k + 1, decision));
                }
            }
        }
        let i = sequence.interval();
        assert!(
            (c["lower"].as_f64().unwrap() - i.lower()).abs() < 1e-12 && (c["upper"].as_f64().unwrap() - i.upper()).abs() < 1e-12,
            "{c}"
        );
        let mean: f64 = (0..used).map(|k| first[k].1 - second[k].1).sum::<f64>() / used as f64;
        assert!((c["mean_difference"].as_f64().unwrap() - mean).abs() < 1e-12, "{c}");
        match decided_at {
            Some((n, decision)) => {
                assert_eq!(c["decided_after"].as_u64(), Some(n as u64), "{c}");
                assert_eq!(c["decision"], serde_json::to_value(decision).unwrap(), "{c}");
            }
            None => {
                all_decided = false;
                assert!(c["decided_after"].is_null() && c["decision"] == "undecided", "{c}");
            }
        }
    }
    // The set stopped at the first round where all were decided, or at the cap.
    let last_decision = comparisons.iter().filter_map(|c| c["decided_after"].as_u64()).max().unwrap_or(0) as usize;
    assert_eq!(used, if all_decided { last_decision } else { LIMIT }, "{comparisons:?}");

    // The working files are gone; the report says when the set was decided.
    assert!(!out.join("weights").exists() && !out.join("decided/progress").exists());
    let html = out.join("report.html");
    let r = common::bin().args(["report"]).arg(&out).arg("-o").arg(&html).output().unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("decided after") && page.contains(&format!("{used} of {available}")), "the tasks table names the stopping point");

    // Interrupted after two rounds, then resumed (replayed round by round): the same examples, decisions and intervals.
    let (_, resumed) = setup("study-decided-resumed").unwrap();
    let first = run(&config, &resumed, &["--max-rounds", "2"]);
    assert!(String::from_utf8_lossy(&first.stderr).contains("task rounds left"), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(resumed.join("decided/progress/state.json").is_file() && !resumed.join("decided/decisions.json").exists());
    run(&config, &resumed, &[]);
    assert_eq!(decisions(&resumed), d);
    assert_eq!(examples(&resumed), units);
}
