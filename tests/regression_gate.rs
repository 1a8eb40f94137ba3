//! The README's regression gate, end to end on Gemma 3 270M: a baseline evaluation once, a
//! candidate evaluation per change, `check` between them. The dense model against itself
//! passes (exit 0); a 50% magnitude-pruned candidate fails (exit 1) with a JUnit report that
//! names the failing evaluations.

mod common;

use std::path::Path;

use common::{bin, temp_dir};

fn polyprune(args: &[&str]) -> (i32, String) {
    let out = bin().args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn eval(model: &Path, masks: Option<&Path>, flores: &Path, results: &Path) {
    let mut args = vec!["eval", "ppl", "--model", model.to_str().unwrap(), "--langs", "deu_Latn,eng_Latn", "--source", "flores"];
    args.extend(["--flores", flores.to_str().unwrap(), "--limit", "40", "--results", results.to_str().unwrap()]);
    if let Some(m) = masks {
        args.extend(["--masks", m.to_str().unwrap()]);
    }
    let (code, text) = polyprune(&args);
    assert_eq!(code, 0, "{text}");
}

fn check(base: &Path, cand: &Path, junit: &Path) -> (i32, String) {
    polyprune(&["check", "--baseline", base.to_str().unwrap(), "--candidate", cand.to_str().unwrap(), "--junit", junit.to_str().unwrap()])
}

#[test]
fn a_pruned_candidate_fails_the_gate_and_the_dense_model_passes() {
    let (Some(shared), Some(model)) = (common::shared(), common::model("gemma-3-270m")) else { return };
    let flores = shared.join("data/sib200");
    let root = temp_dir("gate");
    let base = root.join("baseline");
    eval(&model, None, &flores, &base);

    // The same command again: other time-stamped folders, the same evaluations.
    let same = root.join("same");
    eval(&model, None, &flores, &same);
    let (code, text) = check(&base, &same, &root.join("same.xml"));
    assert_eq!(code, 0, "{text}");
    let xml = std::fs::read_to_string(root.join("same.xml")).unwrap();
    assert_eq!((xml.matches("<testcase ").count(), xml.matches("<failure ").count()), (2, 0), "{xml}");

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
    let cand = root.join("candidate");
    eval(&model, Some(&masks), &flores, &cand);
    let (code, text) = check(&base, &cand, &root.join("cand.xml"));
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("WORSE: ") && text.contains("deu_Latn/") && text.contains("eng_Latn/"), "{text}");
    let xml = std::fs::read_to_string(root.join("cand.xml")).unwrap();
    assert_eq!((xml.matches("<testcase ").count(), xml.matches("<failure ").count()), (2, 2), "{xml}");
}
