//! `make bench`: what evaluation, downstream scoring, generation and calibration cost on the
//! default model, each stage compared in the same run with a reference measured beside it.
//!
//! Every stage runs in a child process of this binary (`polyprune-bench --stage NAME`), so the
//! peak resident memory each one reports (`VmHWM`) is its own, model load included, as a user's
//! `polyprune eval ...` of the same work would see it. The parent prints one table and the
//! ratios:
//!
//! * `peak`: one 2048^3 fp32 MatMul through ONNX Runtime, the machine's reachable rate.
//! * `perplexity`: 200 English SIB-200 test sentences, one document each (what
//!   `eval ppl --file F --per-line` scores), the reference for the task stages.
//! * `sib200`, `xcopa`, `tatoeba`: a seeded subsample of each task's test split, scored as
//!   `eval tasks` scores it; the cost of one choice is given in perplexity tokens.
//! * `mgsm`: MGSM English generation, new tokens per second.
//! * `decode`: cost of one new token against prompt length (batches of 3 prompts of 64, 256 and
//!   1024 tokens, 32 greedy steps each, the prompts' run timed apart).
//! * `wanda`, `sparsegpt`: calibration forward, statistics and solve (128 x 512 windows by
//!   default; `POLYPRUNE_BENCH_SAMPLES` / `POLYPRUNE_BENCH_SEQLEN` shrink them).
//!
//! * `gradient`: SNIP's and GraSP's reverse pass (`model::gradient`) on 8 x 128 English
//!   windows (`POLYPRUNE_BENCH_GRADIENT_SAMPLES` / `_SEQLEN`): the forward alone, the loss
//!   gradient (forward, head backward, blocks recomputed and differentiated) and GraSP's `H g`
//!   (two more gradients), each against the forward; the peak RSS includes the saved block
//!   inputs and the f32 weights.
//!
//! `POLYPRUNE_BENCH_STAGES=perplexity,sib200` runs a subset.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use serde_json::{json, Value as Json};

use polyprune::calibrate::{CalibrationSet, CalibrationSpec, CaptureMode, CaptureOptions, Mix};
use polyprune::data::corpora::flores;
use polyprune::data::{Language, TextRegistry};
use polyprune::eval::scorer::DecodeBatch;
use polyprune::eval::{evaluate, limit_items, score_documents, RunStats, Scorer, WindowOptions};
use polyprune::model::builder::{Dim, GraphBuilder};
use polyprune::model::gradient::{DecoderWeights, GRASP_DELTA};
use polyprune::model::onnx::{data_type, TensorProto};
use polyprune::model::ModelDir;
use polyprune::prune::{Sparsity, SparsityTarget};
use polyprune::pruned::{prune_model, LayerFilter};
use polyprune::runtime::{Graph, GraphSource, Input, RuntimeOptions};
use polyprune::tasks::{load, LoadOptions, TaskName};

const STAGES: &[&str] = &["peak", "perplexity", "sib200", "xcopa", "tatoeba", "mgsm", "decode", "wanda", "sparsegpt", "gradient"];

/// The seed of the task subsamples (any fixed value: every stage scores the same rows each run).
const SEED: u64 = 1234;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// This process's peak resident memory in bytes (`VmHWM` of `/proc/self/status`).
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

struct Setup {
    root: PathBuf,
    model: ModelDir,
    opts: RuntimeOptions,
    shared: PathBuf,
}

impl Setup {
    fn new() -> anyhow::Result<Self> {
        let root = polyprune::util::project_root();
        let dir = root.join(".cache/models/gemma-3-270m");
        let model = ModelDir::open(&dir).with_context(|| format!("{} is missing: run `make models` first", dir.display()))?;
        let shared = root.join("../shared/data");
        if !shared.join("sib200").is_dir() {
            bail!("{} is missing: the bench reads its task data there", shared.display());
        }
        Ok(Setup { root, model, opts: RuntimeOptions::default(), shared })
    }

    fn scorer(&self) -> anyhow::Result<Scorer> {
        Ok(Scorer::load(&self.model, &self.opts, &[])?)
    }
}

/// GFLOP/s of a 2048 x 2048 x 2048 fp32 MatMul in ONNX Runtime (best of 5).
fn matmul_peak(opts: &RuntimeOptions) -> anyhow::Result<f64> {
    const N: usize = 2048;
    let mut g = GraphBuilder::new("peak");
    g.input("a", data_type::FLOAT, &[Dim::Fixed(N as i64), Dim::Fixed(N as i64)]);
    let w: Vec<f32> = (0..N * N).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
    let raw: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
    g.initializer(TensorProto {
        name: Some("b".into()),
        dims: vec![N as i64, N as i64],
        data_type: Some(data_type::FLOAT),
        raw_data: Some(raw),
        ..Default::default()
    });
    g.op_named("MatMul", &["a", "b"], "c", vec![]);
    g.output("c", data_type::FLOAT, &[Dim::Fixed(N as i64), Dim::Fixed(N as i64)]);
    let bytes = prost::Message::encode_to_vec(&g.finish("polyprune-bench", &[]));
    let dir = std::env::temp_dir();
    let mut graph = Graph::load(GraphSource::Memory { bytes: &bytes, folder: &dir, label: "peak matmul" }, opts, &[])?;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t0 = Instant::now();
        graph.run_f32(vec![("a", Input::F32 { shape: vec![N, N], data: &w })], &["c"])?;
        best = best.min(t0.elapsed().as_secs_f64());
    }
    Ok(2.0 * (N * N * N) as f64 / best / 1e9)
}

fn stage_peak(s: &Setup) -> anyhow::Result<Json> {
    Ok(json!({ "gflops": matmul_peak(&s.opts)? }))
}

/// The first 200 sentences of the English SIB-200 test split, one document each.
fn stage_perplexity(s: &Setup) -> anyhow::Result<Json> {
    let rows = flores::read_file(&s.shared.join("sib200/eng_Latn/test.tsv"))?;
    let docs: Vec<(String, String)> = rows.into_iter().take(200).map(|r| (r.index_id, r.text)).collect();
    let t0 = Instant::now();
    let mut scorer = s.scorer()?;
    let scores = score_documents(&mut scorer, &docs, WindowOptions::default(), |_| {})?;
    let seconds = t0.elapsed().as_secs_f64();
    let tokens: usize = scores.iter().map(|d| d.tokens).sum();
    Ok(json!({ "seconds": seconds, "documents": docs.len(), "tokens": tokens }))
}

/// One task in one language as `eval tasks --limit n` runs it: load, score, summarise.
fn stage_task(s: &Setup, task: TaskName, language: &str, n: usize) -> anyhow::Result<Json> {
    let mut loaded = load(task, language, &s.shared, &LoadOptions { seed: SEED, ..LoadOptions::default() })?;
    loaded.items = limit_items(loaded.items, n, SEED);
    let t0 = Instant::now();
    let mut scorer = s.scorer()?;
    let result = evaluate(&mut scorer, &loaded, None, |_| {})?;
    let seconds = t0.elapsed().as_secs_f64();
    let mut out = json!({ "seconds": seconds, "examples": result.summary.n, "accuracy": result.summary.metrics.first().map(|m| m.mean) });
    match result.stats {
        RunStats::Choice(c) => {
            out["choices"] = json!(c.requests);
            out["positions"] = json!(c.tokens_run);
        }
        RunStats::Generation(g) => {
            out["new_tokens"] = json!(g.step_positions + g.requests);
            out["positions"] = json!(g.tokens_run);
        }
    }
    Ok(out)
}

/// Seconds per new token of a batch of 8 prompts at each length, 32 greedy steps (no stop
/// strings), the prompt's own run timed apart.
fn stage_decode(s: &Setup) -> anyhow::Result<Json> {
    let mut scorer = s.scorer()?;
    let rows = flores::read_file(&s.shared.join("sib200/eng_Latn/train.tsv"))?;
    let text: String = rows.iter().map(|r| r.text.as_str()).collect::<Vec<_>>().join(" ");
    let ids = scorer.encode(&text)?;
    // Three rows of 1024 + 32 keys fit the generation batch bound (4096 keys), so every length
    // runs with the batch `generate` would give its longest prompts.
    let (batch, steps) = (3, 32);
    // Two untimed steps first: the continuation graph loads on its first use.
    let mut warm = DecodeBatch::new(vec![ids[..16].to_vec()]);
    scorer.greedy_step(&mut warm)?;
    scorer.greedy_step(&mut warm)?;
    let mut per_length = Vec::new();
    for prompt in [64usize, 256, 1024] {
        if ids.len() < batch * prompt {
            bail!("the English SIB-200 train split has {} tokens, fewer than {} prompts of {prompt}", ids.len(), batch);
        }
        let prompts: Vec<Vec<u32>> = (0..batch).map(|b| ids[b * prompt..(b + 1) * prompt].to_vec()).collect();
        let mut decode = DecodeBatch::new(prompts);
        let t0 = Instant::now();
        scorer.greedy_step(&mut decode)?;
        let prefill = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        for _ in 1..steps {
            scorer.greedy_step(&mut decode)?;
        }
        let per_token = t1.elapsed().as_secs_f64() / ((steps - 1) * batch) as f64;
        per_length.push(json!({ "prompt": prompt, "prefill_seconds": prefill, "seconds_per_new_token": per_token }));
    }
    Ok(json!({ "batch": batch, "steps": steps, "lengths": per_length }))
}

fn stage_calibration(s: &Setup, method: &str) -> anyhow::Result<Json> {
    let (samples, seqlen) = (env_usize("POLYPRUNE_BENCH_SAMPLES", 128), env_usize("POLYPRUNE_BENCH_SEQLEN", 512));
    let tokenizer = s.model.tokenizer()?;
    let eng = Language::parse("eng_Latn")?;
    let cspec = CalibrationSpec { languages: vec![eng], mix: Mix::Even, samples, seqlen, seed: 0, source: None };
    let set = CalibrationSet::draw(&cspec, &TextRegistry::for_project(&s.root), &tokenizer, s.model.calibration_start_token()?)?;
    let capture = CaptureOptions { mode: CaptureMode::OneShot, batch: 4, runtime: s.opts.clone(), gram: false };
    let target = SparsityTarget::new(Some(Sparsity::new(0.5)?), "unstructured".parse()?)?;
    let p = prune_model(&s.model, &method.parse()?, target, &LayerFilter::default(), Some(&set), &capture, |_, _| {})?;
    let t = p.timings;
    let block_params: usize = s.model.card.layers.iter().map(|l| l.shape[0] * l.shape[1]).sum();
    Ok(json!({
        "samples": samples, "seqlen": seqlen, "tokens": set.tokens(), "forward_seconds": t.forward_s,
        "statistics_seconds": t.statistics_s, "solve_seconds": t.solve_s, "block_gflop_per_token": 2.0 * block_params as f64 / 1e9,
    }))
}

fn stage_gradient(s: &Setup) -> anyhow::Result<Json> {
    let (samples, seqlen) = (env_usize("POLYPRUNE_BENCH_GRADIENT_SAMPLES", 8), env_usize("POLYPRUNE_BENCH_GRADIENT_SEQLEN", 128));
    let tokenizer = s.model.tokenizer()?;
    let cspec = CalibrationSpec { languages: vec![Language::parse("eng_Latn")?], mix: Mix::Even, samples, seqlen, seed: 0, source: None };
    let set = CalibrationSet::draw(&cspec, &TextRegistry::for_project(&s.root), &tokenizer, s.model.card.start_token().unwrap_or(2))?;
    let weights = DecoderWeights::<f32>::load(&s.model)?;
    let t0 = Instant::now();
    weights.next_token_logprobs(&set.windows);
    let forward = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let g = weights.loss_and_gradients(&set.windows, |_| {});
    let gradient = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    weights.hessian_gradient_product(&set.windows, &g, GRASP_DELTA, |_, _| {});
    let hessian = t2.elapsed().as_secs_f64();
    Ok(json!({
        "samples": samples, "seqlen": seqlen, "tokens": set.tokens(), "forward_seconds": forward,
        "gradient_seconds": gradient, "hessian_gradient_seconds": hessian, "loss": g.loss,
    }))
}

fn run_stage(name: &str) -> anyhow::Result<Json> {
    let s = Setup::new()?;
    let mut out = match name {
        "peak" => stage_peak(&s)?,
        "perplexity" => stage_perplexity(&s)?,
        "sib200" => stage_task(&s, TaskName::Sib200, "eng_Latn", 40)?,
        "xcopa" => stage_task(&s, TaskName::Xcopa, "it", 100)?,
        "tatoeba" => stage_task(&s, TaskName::Tatoeba, "deu-eng", 50)?,
        "mgsm" => stage_task(&s, TaskName::Mgsm, "en", 40)?,
        "decode" => stage_decode(&s)?,
        "wanda" | "sparsegpt" => stage_calibration(&s, name)?,
        "gradient" => stage_gradient(&s)?,
        other => bail!("unknown stage '{other}'; stages: {}", STAGES.join(", ")),
    };
    out["peak_rss_bytes"] = json!(peak_rss_bytes());
    Ok(out)
}

/// Runs one stage in a child process and reads back its result line.
fn child(exe: &Path, stage: &str) -> anyhow::Result<Json> {
    let output = Command::new(exe).args(["--stage", stage]).output().with_context(|| format!("start the '{stage}' stage"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("stage '{stage}' failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr).trim());
    }
    let line = stdout.lines().find_map(|l| l.strip_prefix("STAGE ")).with_context(|| format!("stage '{stage}' printed no result"))?;
    Ok(serde_json::from_str(line)?)
}

fn f(v: &Json, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

fn gb(v: &Json) -> String {
    format!("{:.2} GB", f(v, "peak_rss_bytes") / 1e9)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "--stage" {
        let out = run_stage(&args[2])?;
        println!("STAGE {out}");
        return Ok(());
    }
    let wanted: Vec<String> = match std::env::var("POLYPRUNE_BENCH_STAGES") {
        Ok(list) => list.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        Err(_) => STAGES.iter().map(|s| s.to_string()).collect(),
    };
    if let Some(bad) = wanted.iter().find(|w| !STAGES.contains(&w.as_str())) {
        bail!("POLYPRUNE_BENCH_STAGES names '{bad}'; stages: {}", STAGES.join(", "));
    }
    let exe = std::env::current_exe()?;
    let mut results: Vec<(String, Json)> = Vec::new();
    for stage in &wanted {
        eprintln!("bench: {stage} ...");
        let r = child(&exe, stage)?;
        results.push((stage.clone(), r));
    }
    let get = |name: &str| results.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let ppl_token_s = get("perplexity").map(|p| f(p, "seconds") / f(p, "tokens"));
    println!("{:<11} {:>9} {:>12}  throughput", "stage", "wall", "peak RSS");
    for (name, v) in &results {
        let line = match name.as_str() {
            "peak" => format!("fp32 MatMul 2048^3: {:.1} GFLOP/s", f(v, "gflops")),
            "perplexity" => {
                format!("{} sentences, {} tokens: {:.0} tokens/s", v["documents"], v["tokens"], f(v, "tokens") / f(v, "seconds"))
            }
            "sib200" | "xcopa" | "tatoeba" => {
                let per_choice = f(v, "seconds") / f(v, "choices");
                let rel = ppl_token_s.map_or(String::new(), |t| format!(", {:.2} perplexity tokens per choice", per_choice / t));
                format!(
                    "{} examples ({:.2}/s), {} choices ({:.1}/s){rel}",
                    v["examples"],
                    f(v, "examples") / f(v, "seconds"),
                    v["choices"],
                    f(v, "choices") / f(v, "seconds")
                )
            }
            "mgsm" => format!(
                "{} examples, {} new tokens: {:.1} new tokens/s",
                v["examples"],
                v["new_tokens"],
                f(v, "new_tokens") / f(v, "seconds")
            ),
            "decode" => {
                let lengths = v["lengths"].as_array().cloned().unwrap_or_default();
                let per: Vec<String> =
                    lengths.iter().map(|l| format!("prompt {}: {:.1} ms", l["prompt"], 1e3 * f(l, "seconds_per_new_token"))).collect();
                let costs: Vec<f64> = lengths.iter().map(|l| f(l, "seconds_per_new_token")).collect();
                let spread = costs.iter().cloned().fold(f64::MIN, f64::max) / costs.iter().cloned().fold(f64::MAX, f64::min);
                format!("per new token (batch {}): {}; longest/shortest {spread:.2}", v["batch"], per.join(", "))
            }
            "gradient" => format!(
                "{} x {}: forward {:.1} s, gradient {:.1} s ({:.2} x forward), H g {:.1} s ({:.2} x forward)",
                v["samples"],
                v["seqlen"],
                f(v, "forward_seconds"),
                f(v, "gradient_seconds"),
                f(v, "gradient_seconds") / f(v, "forward_seconds"),
                f(v, "hessian_gradient_seconds"),
                f(v, "hessian_gradient_seconds") / f(v, "forward_seconds")
            ),
            _ => format!(
                "{} x {}: forward {:.1} s ({:.0} tokens/s), statistics {:.1} s, solve {:.1} s",
                v["samples"],
                v["seqlen"],
                f(v, "forward_seconds"),
                f(v, "tokens") / f(v, "forward_seconds"),
                f(v, "statistics_seconds"),
                f(v, "solve_seconds")
            ),
        };
        let wall = v["seconds"].as_f64().map_or("-".to_string(), |s| format!("{s:.1} s"));
        println!("{name:<11} {wall:>9} {:>12}  {line}", gb(v));
    }
    if let (Some(p), Some(s)) = (get("perplexity"), get("sib200")) {
        println!(
            "SIB-200 (40 examples) / perplexity (200 sentences), wall with model load: {:.3} (issue 12 bound: at most 0.33)",
            f(s, "seconds") / f(p, "seconds")
        );
    }
    if let Some(worst) =
        ["perplexity", "sib200", "xcopa", "tatoeba", "mgsm"].iter().filter_map(|n| get(n)).map(|v| f(v, "peak_rss_bytes")).reduce(f64::max)
    {
        println!("largest evaluation peak RSS: {:.2} GB (bound: at most 2.5 GB)", worst / 1e9);
    }
    Ok(())
}
