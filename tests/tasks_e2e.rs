//! Downstream tasks end to end: the continuation scores against the perplexity path on the
//! real Gemma 3 270M, the whole `eval tasks` command on the tiny GPT-2 fixture, the CLI's
//! errors, and `data fetch` against a loopback HTTP server.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};

use polyprune::eval::choices::{prepare_choice, score_prepared, ChoiceStats, PreparedChoice};
use polyprune::eval::{Scorer, TaskRecords};
use polyprune::model::ModelDir;
use polyprune::runtime::RuntimeOptions;
use polyprune::tasks::{load, Example, LoadOptions, TaskItems, TaskName};

fn tiny() -> PathBuf {
    common::model_fixture("tiny-gpt2")
}

fn choice_examples(shared: &Path, task: TaskName, lang: &str, n: usize) -> Vec<Example> {
    let loaded = load(task, lang, &shared.join("data"), &LoadOptions::default()).unwrap();
    match loaded.items {
        TaskItems::Choice(v) => v.into_iter().take(n).collect(),
        TaskItems::Generation(_) => panic!("{task} is not a choice task"),
    }
}

/// Where the continuation starts by an independent rule: the first token (after the start
/// token) whose byte span, as the tokenizer reports it, ends past the context.
fn boundary_by_offsets(scorer: &Scorer, context: &str, whole: &str) -> (Vec<u32>, usize) {
    let enc = scorer.tokenizer().encode(whole, true).unwrap();
    let mut ids = enc.get_ids().to_vec();
    let mut offsets = enc.get_offsets().to_vec();
    let bos = scorer.model.card.bos_token_id.or(scorer.model.card.eos_token_id);
    if let Some(b) = bos {
        if ids.first() != Some(&b) {
            ids.insert(0, b);
            offsets.insert(0, (0, 0));
        }
    }
    let k = (1..ids.len()).find(|&i| offsets[i].1 > context.len()).expect("a continuation token");
    (ids, k)
}

/// The boundary check: for real examples in Han, Latin (Swahili, French), Cyrillic and
/// Arabic scripts, the summed log-likelihood of a continuation from the batched choice path
/// equals the sum of the same tokens' log-probabilities from one perplexity-path call
/// (`token_logprobs`) on the whole string's ids, to 1e-4; the continuation's tokens found
/// by the common-prefix rule are those an offset-based rule finds, and they decode to the
/// continuation's text.
#[test]
fn continuation_scores_equal_the_perplexity_path_in_four_scripts() {
    let (Some(shared), Some(model)) = (common::shared(), common::model("gemma-3-270m")) else { return };
    let model = ModelDir::open(&model).unwrap();
    let mut scorer = Scorer::load(&model, &RuntimeOptions::default(), &[]).unwrap();
    let mut examples = Vec::new();
    examples.extend(choice_examples(&shared, TaskName::Xcopa, "zh", 2));
    examples.extend(choice_examples(&shared, TaskName::Xcopa, "sw", 2));
    examples.extend(choice_examples(&shared, TaskName::Sib200, "rus_Cyrl", 1));
    examples.extend(choice_examples(&shared, TaskName::Sib200, "arb_Arab", 1));
    examples.extend(choice_examples(&shared, TaskName::Xwinograd, "fr", 1));
    examples.extend(choice_examples(&shared, TaskName::Tatoeba, "eng-ara", 1));
    let choices: Vec<(&Example, PreparedChoice, usize)> = examples
        .iter()
        .flat_map(|e| e.choices.iter().enumerate().map(move |(i, c)| (e, c, i)))
        .map(|(e, c, i)| (e, prepare_choice(&scorer, c, &e.id).unwrap(), i))
        .collect();
    let prepared: Vec<&PreparedChoice> = choices.iter().map(|(_, p, _)| p).collect();
    let mut stats = ChoiceStats::default();
    let outcomes = score_prepared(&mut scorer, &prepared, &mut stats).unwrap();
    assert_eq!(stats.requests, choices.len());
    let mut checked = 0;
    for ((example, p, i), outcome) in choices.iter().zip(&outcomes) {
        let choice = &example.choices[*i];
        let whole = format!("{}{}", choice.context(), choice.continuation());
        let (ids, k) = boundary_by_offsets(&scorer, choice.context(), &whole);
        assert_eq!(ids, p.ids, "{}: tokenization", example.id);
        assert_eq!(k, p.start, "{}/{i}: boundary, context {:?}", example.id, choice.context());
        let decoded = scorer.tokenizer().decode(p.continuation(), true).unwrap();
        assert_eq!(decoded.trim(), choice.continuation().trim(), "{}/{i}", example.id);
        let lp = scorer.token_logprobs(&[ids.as_slice()]).unwrap().remove(0);
        let expected: f64 = lp[k - 1..].iter().map(|&x| x as f64).sum();
        assert!(
            (outcome.log_likelihood - expected).abs() < 1e-4,
            "{}/{i}: choice path {} vs perplexity path {expected}",
            example.id,
            outcome.log_likelihood
        );
        assert_eq!(outcome.tokens, ids.len() - k);
        assert!(outcome.log_likelihood < 0.0);
        checked += 1;
    }
    // 2 x 2 + 2 x 2 (XCOPA) + 7 + 7 (SIB-200) + 2 (XWinograd) + 4 (translation choice).
    assert_eq!(checked, 28);
}

fn read_csv(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = r.headers().unwrap().clone();
    r.records().map(|row| headers.iter().map(String::from).zip(row.unwrap().iter().map(String::from)).collect()).collect()
}

/// The whole command on the tiny GPT-2 (128 positions, so long SIB-200 prompts in Cyrillic
/// are cut from the left): five tasks, a CSV table on stdout, and per-example files whose
/// predictions follow from the per-choice log-likelihoods written beside them.
#[test]
fn eval_tasks_on_the_tiny_model_writes_consistent_per_example_results() {
    let Some(shared) = common::shared() else { return };
    let results = common::temp_dir("tasks-tiny");
    let out = common::bin()
        .args(["eval", "tasks", "--model"])
        .arg(tiny())
        .args(["--tasks", "xcopa,xwinograd,sib200,tatoeba,mgsm"])
        .args(["--langs", "xcopa:zh,xwinograd:en,sib200:rus_Cyrl,tatoeba:ara-eng,mgsm:en"])
        .args(["--limit", "3", "--max-new-tokens", "4", "--format", "csv", "--data"])
        .arg(shared.join("data"))
        .arg("--results")
        .arg(&results)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "task,language,metric,value,stderr,n,chance");
    // acc + acc_norm for the three multiple-choice tasks, acc for XWinograd, exact_match.
    assert_eq!(lines.len(), 1 + 2 * 3 + 1 + 1, "{stdout}");
    assert!(lines.iter().any(|l| l.starts_with("sib200,rus_Cyrl,acc_norm,") && l.ends_with(",3,0.142857")), "{stdout}");
    assert!(lines.iter().any(|l| l.starts_with("tatoeba,arb_Arab-eng_Latn,acc,") && l.ends_with(",3,0.250000")), "{stdout}");
    assert!(lines.iter().any(|l| l.starts_with("mgsm,eng_Latn,exact_match,")), "{stdout}");

    let run = std::fs::read_dir(results.join("tasks")).unwrap().next().unwrap().unwrap().path();
    let examples = read_csv(&run.join("examples.csv"));
    let choices = read_csv(&run.join("choices.csv"));
    let summary = read_csv(&run.join("summary.csv"));
    assert_eq!(examples.len(), 5 * 3);
    assert_eq!(summary.len(), 8);
    assert!(run.join("provenance.json").is_file());
    // 3 examples each of 2 (XCOPA), 2 (XWinograd), 7 (SIB-200) and 4 (Tatoeba) choices.
    assert_eq!(choices.len(), 3 * (2 + 2 + 7 + 4));
    for e in examples.iter().filter(|e| e["kind"] == "choice") {
        let mine: Vec<_> = choices.iter().filter(|c| c["example"] == e["example"]).collect();
        let lls: Vec<f64> = mine.iter().map(|c| c["log_likelihood"].parse().unwrap()).collect();
        let chars: Vec<f64> = mine.iter().map(|c| c["chars"].parse().unwrap()).collect();
        let argmax = |v: &[f64]| (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b });
        let per_char: Vec<f64> = lls.iter().zip(&chars).map(|(l, c)| l / c).collect();
        assert_eq!(e["pred"], argmax(&lls).to_string(), "{}", e["example"]);
        assert_eq!(e["pred_norm"], argmax(&per_char).to_string(), "{}", e["example"]);
        assert_eq!(e["acc"], u8::from(e["pred"] == e["gold"]).to_string());
        assert!(lls.iter().all(|l| *l < 0.0));
    }
    for e in examples.iter().filter(|e| e["kind"] == "generation") {
        let tokens: usize = e["new_tokens"].parse().unwrap();
        assert!((1..=4).contains(&tokens), "{e:?}");
    }
}

/// The library path on the tiny model: results per task carry per-example records, and
/// the same examples give the same log-likelihoods run alone as in a batch.
#[test]
fn batched_choice_scores_equal_single_runs_on_the_tiny_model() {
    let Some(shared) = common::shared() else { return };
    let model = ModelDir::open(&tiny()).unwrap();
    let mut scorer = Scorer::load(&model, &RuntimeOptions::default(), &[]).unwrap();
    let mut loaded = load(TaskName::Xcopa, "it", &shared.join("data"), &LoadOptions::default()).unwrap();
    loaded.items = polyprune::eval::limit_items(loaded.items, 6, 1);
    let batched = polyprune::eval::evaluate(&mut scorer, &loaded, None, |_| {}).unwrap();
    let TaskRecords::Choice(records) = &batched.records else { panic!("choice records") };
    assert_eq!(records.len(), 6);
    scorer.batch_tokens = 1; // one sequence per run
    let single = polyprune::eval::evaluate(&mut scorer, &loaded, None, |_| {}).unwrap();
    let TaskRecords::Choice(alone) = &single.records else { panic!("choice records") };
    for (a, b) in records.iter().zip(alone) {
        for (x, y) in a.lls.iter().zip(&b.lls) {
            assert!((x - y).abs() < 1e-4, "{}: {x} vs {y}", a.id);
        }
    }
}

/// Runs the CLI expecting failure; returns its one stderr line.
fn cli_error(args: &[&str], data: &Path) -> String {
    let out = common::bin().args(args).arg("--data").arg(data).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

/// Unknown task, unknown language, a task without that language, a pair task given one
/// language, and a missing data file: each a one-line error naming the culprit, with no
/// panic, before any model is loaded.
#[test]
fn cli_errors_are_one_line_and_name_the_culprit() {
    let model = tiny();
    let model = model.to_str().unwrap();
    let data = common::shared().map(|s| s.join("data")).unwrap_or_else(|| common::temp_dir("no-data"));
    let base = ["eval", "tasks", "--model", model];
    let with = |extra: &[&str]| -> Vec<String> { base.iter().chain(extra).map(|s| s.to_string()).collect() };
    let run = |extra: &[&str], data: &Path| {
        let args = with(extra);
        cli_error(&args.iter().map(String::as_str).collect::<Vec<_>>(), data)
    };
    let e = run(&["--tasks", "xcopaa", "--langs", "zh"], &data);
    assert!(e.contains("unknown task 'xcopaa'") && e.contains("did you mean 'xcopa'"), "{e}");
    let e = run(&["--tasks", "sib200", "--langs", "qqq"], &data);
    assert!(e.contains("task 'sib200' has no language 'qqq'"), "{e}");
    let e = run(&["--tasks", "xcopa", "--langs", "de"], &data);
    assert!(e.contains("task 'xcopa' has no language 'de'") && e.contains("zh (zho_Hans)"), "{e}");
    let e = run(&["--tasks", "tatoeba", "--langs", "deu"], &data);
    assert!(e.contains("task 'tatoeba' needs a language pair") && e.contains("'deu'"), "{e}");
    let empty = common::temp_dir("empty-data");
    let e = run(&["--tasks", "mgsm", "--langs", "sw"], &empty);
    assert!(e.contains("mgsm/mgsm_sw.tsv") && e.contains("polyprune data fetch mgsm"), "{e}");
    let e = run(&["--tasks", "xcopa", "--langs", "zh", "--masks", "/nonexistent"], &data);
    assert!(e.contains("/nonexistent") && e.contains("polyprune prune --save"), "{e}");
}

/// A damaged data file is named with its line.
#[test]
fn a_damaged_data_file_is_named_with_its_line() {
    let dir = common::temp_dir("bad-data");
    std::fs::create_dir_all(dir.join("mgsm")).unwrap();
    std::fs::write(dir.join("mgsm/mgsm_en.tsv"), "How many?\t3\nAnd now?\tmany\n").unwrap();
    let model = tiny();
    let e = cli_error(&["eval", "tasks", "--model", model.to_str().unwrap(), "--tasks", "mgsm", "--langs", "en"], &dir);
    assert!(e.contains("mgsm_en.tsv, line 2") && e.contains("\"many\""), "{e}");
}

/// A file server on 127.0.0.1 for the data folder: one request per connection, 404 for
/// anything outside it, until the test ends.
fn serve(root: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            reply(&root, stream);
        }
    });
    format!("http://{address}")
}

fn reply(root: &Path, mut stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return;
    }
    let mut line = String::new();
    while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
        line.clear();
    }
    let path = first.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
    let body = if path.split('/').any(|p| p == "..") { None } else { std::fs::read(root.join(&path)).ok() };
    let (status, body) = body.map_or(("404 Not Found", b"no".to_vec()), |b| ("200 OK", b));
    let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    let _ = stream.write_all(&body);
}

/// `data fetch` downloads from a mirror (a loopback server on ../shared/data), verifies
/// the pinned digests, keeps verified files on a second run, and fails offline with a
/// line naming the URL and the way out.
#[test]
fn data_fetch_downloads_verifies_and_explains_offline() {
    let Some(shared) = common::shared() else { return };
    let mirror = serve(shared.join("data"));
    let dir = common::temp_dir("fetch");
    let fetch =
        |mirror: &str| common::bin().args(["data", "fetch", "xcopa,mgsm", "--mirror", mirror, "--data"]).arg(&dir).output().unwrap();
    let out = fetch(&mirror);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("xcopa: 16 downloaded, 0 already present"), "{stdout}");
    assert!(stdout.contains("mgsm: 11 downloaded"), "{stdout}");
    for f in ["xcopa/test.zh.jsonl", "xcopa/val.sw.jsonl", "mgsm/mgsm_te.tsv"] {
        assert_eq!(std::fs::read(dir.join(f)).unwrap(), std::fs::read(shared.join("data").join(f)).unwrap(), "{f}");
    }
    let again = String::from_utf8(fetch(&mirror).stdout).unwrap();
    assert!(again.contains("xcopa: 0 downloaded, 16 already present"), "{again}");

    // Offline: a port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    std::fs::remove_file(dir.join("xcopa/test.zh.jsonl")).unwrap();
    let out = fetch(&format!("http://{closed}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: data fetch xcopa: could not reach http://127.0.0.1:"), "{stderr}");
    assert!(stderr.contains("xcopa/test.zh.jsonl") && stderr.contains("by hand"), "{stderr}");
}
