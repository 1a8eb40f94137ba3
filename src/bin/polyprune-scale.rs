//! `make bench-scale`: what polyprune's work costs as it grows, and what that predicts for
//! Llama-3 8B with the paper's 128 x 2048 calibration.
//!
//! Two sweeps, each point in its own child process (`polyprune-scale --stage JSON`) so its peak
//! resident memory (`VmHWM`) is its own:
//!
//! * **Model size**, at a fixed calibration: Gemma 3 270M (the imported model), synthetic
//!   `gemma-3-1b`, the first blocks of `gemma-3-4b` ("what fits"), and `llama-3-8b` cut to one
//!   and to two blocks (`polyprune model synth --blocks`): every width of the 8B model, so the
//!   difference of the two is the exact cost of one 8B block and the rest is the embedding and
//!   output layer.
//! * **Calibration size** on Gemma 3 270M: samples x seqlen from 16 x 256 to 128 x 2048, first
//!   samples at seqlen 256, then seqlen at 16 samples.
//!
//! Each point measures evaluation (next-token log-probabilities of the calibration windows),
//! sequential calibration with SparseGPT's statistics (forward through pruned blocks, Gram
//! matrices) and SparseGPT's solve, and Wanda (same forward, norms, sort). Power laws are fitted
//! by least squares on logs, and the 8B prediction combines the per-block cost at 8B width with
//! the calibration exponents. `SCALE_QUICK=1` runs a smaller grid (28 minutes here on 2 shared cores),
//! `SCALE_TINY=1` only the size sweep on 2 x 64 windows, `SCALE_GRID=0` no calibration grid;
//! `SCALE_DEVICE=cuda` runs on a GPU (scripts/gpu_check.sh). The measurements are written to
//! `results/bench/scale-<device>-<full|quick|tiny>.json`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

use polyprune::calibrate::{CalibrationSet, CalibrationSpec, CaptureMode, CaptureOptions, Mix};
use polyprune::data::{Language, TextRegistry};
use polyprune::eval::Scorer;
use polyprune::model::ModelDir;
use polyprune::prune::{Sparsity, SparsityTarget};
use polyprune::pruned::{prune_model, LayerFilter};
use polyprune::runtime::{ComputeChoice, Graph, GraphSource, Input, RuntimeOptions};

/// One measurement, as the parent hands it to a child.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Point {
    /// What the row is called in the tables.
    label: String,
    model: PathBuf,
    samples: usize,
    seqlen: usize,
    device: String,
}

/// What a child measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Measured {
    tokens: usize,
    /// Parameters a token passes through: the blocks' linear layers and the output layer.
    computed_params: f64,
    /// Sum over the blocks' linear layers of d_in^2 d_out (SparseGPT's solve grows so).
    solve_work: f64,
    eval_s: f64,
    sparsegpt_forward_s: f64,
    sparsegpt_statistics_s: f64,
    sparsegpt_solve_s: f64,
    wanda_forward_s: f64,
    wanda_statistics_s: f64,
    wanda_solve_s: f64,
    peak_rss_bytes: f64,
}

impl Measured {
    fn sparsegpt_s(&self) -> f64 {
        self.sparsegpt_forward_s + self.sparsegpt_statistics_s + self.sparsegpt_solve_s
    }
    fn calibration_s(&self) -> f64 {
        self.sparsegpt_forward_s + self.sparsegpt_statistics_s
    }
    fn wanda_s(&self) -> f64 {
        self.wanda_forward_s + self.wanda_statistics_s + self.wanda_solve_s
    }
}

fn peak_rss_bytes() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok());
    kb.unwrap_or(f64::NAN) * 1024.0
}

fn run_point(p: &Point) -> anyhow::Result<Measured> {
    let model = ModelDir::open(&p.model)?;
    let runtime = RuntimeOptions { provider: p.device.parse().map_err(anyhow::Error::msg)?, ..Default::default() };
    let root = polyprune::util::project_root();
    let spec = CalibrationSpec {
        languages: vec![Language::parse("eng_Latn")?],
        mix: Mix::Even,
        samples: p.samples,
        seqlen: p.seqlen,
        seed: 0,
        source: None,
    };
    let set = CalibrationSet::draw(&spec, &TextRegistry::for_project(&root), &model.tokenizer()?, model.calibration_start_token()?)?;
    let mut m = Measured {
        tokens: set.tokens(),
        computed_params: computed_params(&model),
        solve_work: model.card.layers.iter().map(|l| (l.shape[0] as f64).powi(2) * l.shape[1] as f64).sum(),
        ..Measured::default()
    };
    let mut scorer = Scorer::load(&model, &runtime, &[])?;
    let windows: Vec<&[u32]> = set.windows.iter().map(Vec::as_slice).collect();
    let t0 = Instant::now();
    scorer.token_logprobs(&windows)?;
    m.eval_s = t0.elapsed().as_secs_f64();
    drop(scorer);
    let target = SparsityTarget::new(Some(Sparsity::new(0.5)?), "unstructured".parse()?)?;
    for method in ["sparsegpt", "wanda"] {
        let capture = CaptureOptions { mode: CaptureMode::Sequential, batch: 4, runtime: runtime.clone(), gram: method == "sparsegpt" };
        let pruned = prune_model(&model, &method.parse()?, target, &LayerFilter::default(), Some(&set), &capture, |_, _| {})?;
        let t = pruned.timings;
        if method == "sparsegpt" {
            (m.sparsegpt_forward_s, m.sparsegpt_statistics_s, m.sparsegpt_solve_s) = (t.forward_s, t.statistics_s, t.solve_s);
        } else {
            (m.wanda_forward_s, m.wanda_statistics_s, m.wanda_solve_s) = (t.forward_s, t.statistics_s, t.solve_s);
        }
    }
    m.peak_rss_bytes = peak_rss_bytes();
    Ok(m)
}

/// The blocks' prunable parameters plus the output layer (vocabulary x width), what one token's
/// forward multiplies through.
fn computed_params(model: &ModelDir) -> f64 {
    let blocks: usize = model.card.layers.iter().map(|l| l.shape[0] * l.shape[1]).sum();
    let head = model.card.spec.as_ref().map_or(0, |s| s.vocab_size * s.d_model);
    (blocks + head) as f64
}

/// Runs one point in a child process and reads back its result line.
fn child(exe: &Path, p: &Point) -> anyhow::Result<Measured> {
    let spec = serde_json::to_string(p)?;
    let out = Command::new(exe).args(["--stage", &spec]).output().with_context(|| format!("start the point {}", p.label))?;
    if !out.status.success() {
        bail!("point {} failed ({}): {}", p.label, out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find_map(|l| l.strip_prefix("STAGE ")).with_context(|| format!("point {} printed no result", p.label))?;
    Ok(serde_json::from_str(line)?)
}

/// A synthetic model folder written by `polyprune model synth` into `scratch/` just before its
/// point runs, and removed after it (`SCALE_KEEP=1` keeps them): the 8B cuts alone are 5-6 GB.
fn synth(polyprune: &Path, scratch: &Path, like: &str, blocks: Option<usize>) -> anyhow::Result<PathBuf> {
    let name = match blocks {
        Some(b) => format!("{like}-{b}blocks"),
        None => like.to_string(),
    };
    let dir = scratch.join(&name);
    if dir.join("card.json").is_file() {
        return Ok(dir);
    }
    eprintln!("scale: synthesising {name} ...");
    let mut cmd = Command::new(polyprune);
    cmd.args(["model", "synth", "--like", like, "-o"]).arg(&dir);
    if let Some(b) = blocks {
        cmd.args(["--blocks", &b.to_string()]);
    }
    // Its summary line would land inside the tables on stdout; errors still reach stderr.
    let status = cmd.stdout(std::process::Stdio::null()).status().with_context(|| format!("run {}", polyprune.display()))?;
    if !status.success() {
        bail!("`polyprune model synth --like {like}` failed ({status})");
    }
    Ok(dir)
}

/// Least-squares fit of log y = log c + a log x; `(a, c)`.
fn power_law(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let pts: Vec<(f64, f64)> = points.iter().filter(|(x, y)| *x > 0.0 && *y > 0.0).map(|(x, y)| (x.ln(), y.ln())).collect();
    if pts.len() < 2 {
        return None;
    }
    let n = pts.len() as f64;
    let (mx, my) = (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let a = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / sxx;
    Some((a, (my - a * mx).exp()))
}

fn human_seconds(s: f64) -> String {
    match s {
        s if !s.is_finite() => "-".into(),
        s if s < 120.0 => format!("{s:.1} s"),
        s if s < 7200.0 => format!("{:.1} min", s / 60.0),
        s => format!("{:.1} h", s / 3600.0),
    }
}

/// A model of the size sweep: the imported Gemma 3 270M, or a synthetic shape made on demand.
#[derive(Clone)]
enum SizeModel {
    Imported(PathBuf),
    Synthetic { like: &'static str, blocks: Option<usize> },
}

struct Plan {
    sizes: Vec<(String, SizeModel, Point)>,
    grid: Vec<Point>,
}

fn plan(root: &Path, device: &str, quick: bool) -> anyhow::Result<Plan> {
    let gemma = root.join(".cache/models/gemma-3-270m");
    // SCALE_TINY: the smallest windows, no grid, no Gemma 1B (scripts/gpu_check.sh --device cpu).
    let tiny = std::env::var("SCALE_TINY").is_ok_and(|v| v != "0");
    let (samples, seqlen) = match (tiny, quick) {
        (true, _) => (2, 64),
        (false, true) => (8, 256),
        (false, false) => (16, 256),
    };
    let point = |label: &str, model: PathBuf, samples, seqlen| Point { label: label.into(), model, samples, seqlen, device: device.into() };
    // Where the imported model is absent (a GPU machine the weights did not travel to), its
    // synthetic twin has the same shapes and so the same costs.
    let first = if gemma.join("card.json").is_file() {
        SizeModel::Imported(gemma.clone())
    } else {
        SizeModel::Synthetic { like: "gemma-3-270m", blocks: None }
    };
    let mut sizes = vec![("gemma-3-270m".to_string(), first, point("gemma-3-270m", gemma.clone(), samples, seqlen))];
    let mut synthetic = vec![("gemma-3-1b", None), ("llama-3-8b", Some(1)), ("llama-3-8b", Some(2))];
    if tiny {
        synthetic.remove(0);
    } else if !quick {
        synthetic.insert(1, ("gemma-3-4b", Some(8)));
    }
    for (like, blocks) in synthetic {
        let label = match blocks {
            Some(1) => format!("{like} (1 block)"),
            Some(b) => format!("{like} ({b} blocks)"),
            None => like.to_string(),
        };
        sizes.push((like.to_string(), SizeModel::Synthetic { like, blocks }, point(&label, PathBuf::new(), samples, seqlen)));
    }
    let mut grid = Vec::new();
    if tiny || std::env::var("SCALE_GRID").is_ok_and(|v| v == "0") {
        return Ok(Plan { sizes, grid });
    }
    let gemma_dir = match &sizes[0].1 {
        SizeModel::Imported(dir) => dir.clone(),
        SizeModel::Synthetic { .. } => bail!("{} is missing: run `make models` (or SCALE_GRID=0 for the size sweep only)", gemma.display()),
    };
    let (sample_sweep, seqlen_sweep): (&[usize], &[usize]) =
        if quick { (&[16, 32, 64], &[256, 512, 1024]) } else { (&[16, 32, 64, 128], &[256, 512, 1024, 2048]) };
    grid.extend(sample_sweep.iter().map(|&n| point(&format!("{n} x 256"), gemma_dir.clone(), n, 256)));
    grid.extend(seqlen_sweep.iter().skip(1).map(|&l| point(&format!("16 x {l}"), gemma_dir.clone(), 16, l)));
    if !quick {
        grid.push(point("128 x 2048", gemma_dir, 128, 2048));
    }
    Ok(Plan { sizes, grid })
}

fn print_rows(title: &str, rows: &[(Point, Measured)]) {
    println!("\n{title}");
    println!(
        "{:<24} {:>8} {:>9} {:>11} {:>11} {:>10} {:>10} {:>9} {:>9}",
        "point", "tokens", "params", "eval tok/s", "calib tok/s", "SparseGPT", "solve", "Wanda", "peak RSS"
    );
    for (p, m) in rows {
        println!(
            "{:<24} {:>8} {:>8.2}B {:>11.1} {:>11.1} {:>10} {:>10} {:>9} {:>7.2} GB",
            p.label,
            m.tokens,
            m.computed_params / 1e9,
            m.tokens as f64 / m.eval_s,
            m.tokens as f64 / m.calibration_s(),
            human_seconds(m.sparsegpt_s()),
            human_seconds(m.sparsegpt_solve_s),
            human_seconds(m.wanda_s()),
            m.peak_rss_bytes / 1e9
        );
    }
}

/// Llama-3 8B's prunable layers and output layer, from its configuration (hidden 4096, 32
/// blocks, 32 query and 8 key/value heads of 128, MLP 14336, vocabulary 128256).
fn llama3_8b() -> (f64, f64, usize) {
    let (d, kv, ffn, vocab, blocks) = (4096.0, 1024.0, 14336.0, 128_256.0, 32usize);
    let layers = [(d, d), (d, kv), (d, kv), (d, d), (d, ffn), (d, ffn), (ffn, d)];
    let block_params: f64 = layers.iter().map(|(i, o)| i * o).sum();
    let block_solve: f64 = layers.iter().map(|(i, o)| i * i * o).sum();
    (block_params * blocks as f64 + vocab * d, block_solve * blocks as f64, blocks)
}

fn report(sizes: &[(String, Point, Measured)], grid: &[(Point, Measured)], device: &str) {
    let size_rows: Vec<(Point, Measured)> = sizes.iter().map(|(_, p, m)| (p.clone(), m.clone())).collect();
    print_rows(&format!("Cost by model size ({device}; every point: the same windows, 50% unstructured)"), &size_rows);
    print_rows("Cost by calibration size (Gemma 3 270M)", grid);

    println!("\nGrowth (least squares on logs)");
    let fit = |name: &str, pts: Vec<(f64, f64)>| {
        let f = power_law(&pts);
        match f {
            Some((a, _)) => println!("  {name:<58} exponent {a:.2} ({} points)", pts.len()),
            None => println!("  {name:<58} too few points"),
        }
        f
    };
    let per_token = |m: &Measured, s: f64| s / m.tokens as f64;
    fit("evaluation time per token ~ params^a", sizes.iter().map(|(_, _, m)| (m.computed_params, per_token(m, m.eval_s))).collect());
    fit(
        "calibration time per token ~ params^a",
        sizes.iter().map(|(_, _, m)| (m.computed_params, per_token(m, m.calibration_s()))).collect(),
    );
    fit("SparseGPT solve ~ (sum d_in^2 d_out)^c", sizes.iter().map(|(_, _, m)| (m.solve_work, m.sparsegpt_solve_s)).collect());
    fit("peak RSS ~ params^a", sizes.iter().map(|(_, _, m)| (m.computed_params, m.peak_rss_bytes)).collect());
    let at_256: Vec<&(Point, Measured)> = grid.iter().filter(|(p, _)| p.seqlen == 256).collect();
    let at_16: Vec<&(Point, Measured)> = grid.iter().filter(|(p, _)| p.samples == 16).collect();
    let by_samples =
        fit("calibration time ~ samples^b (seqlen 256)", at_256.iter().map(|(p, m)| (p.samples as f64, m.calibration_s())).collect());
    let by_seqlen =
        fit("calibration time ~ seqlen^b (16 samples)", at_16.iter().map(|(p, m)| (p.seqlen as f64, m.calibration_s())).collect());
    let eval_seqlen = fit("evaluation time ~ seqlen^b (16 samples)", at_16.iter().map(|(p, m)| (p.seqlen as f64, m.eval_s)).collect());
    fit("Wanda time ~ samples^b (seqlen 256)", at_256.iter().map(|(p, m)| (p.samples as f64, m.wanda_s())).collect());

    // One 8B block's cost is the difference of the two cut models; the rest is the embedding
    // and the output layer. Both at the sizes sweep's windows.
    let llama: Vec<&Measured> = sizes.iter().filter(|(like, _, _)| like == "llama-3-8b").map(|(_, _, m)| m).collect();
    let (params_8b, solve_8b, blocks_8b) = llama3_8b();
    println!("\nLlama-3 8B ({:.2}B params through which a token passes; sum d_in^2 d_out = {:.2e})", params_8b / 1e9, solve_8b);
    let [one, two] = llama[..] else {
        println!("  (needs the llama-3-8b points at 1 and 2 blocks)");
        return;
    };
    let (base_samples, base_seqlen) = (sizes[0].1.samples as f64, sizes[0].1.seqlen as f64);
    let whole = |f: &dyn Fn(&Measured) -> f64| f(one) + (blocks_8b as f64 - 1.0) * (f(two) - f(one)).max(0.0);
    let calib = whole(&|m: &Measured| m.calibration_s());
    let solve = whole(&|m: &Measured| m.sparsegpt_solve_s);
    let wanda_rest = whole(&|m: &Measured| m.wanda_statistics_s + m.wanda_solve_s);
    let wanda_forward = whole(&|m: &Measured| m.wanda_forward_s);
    let eval = whole(&|m: &Measured| m.eval_s);
    let rss = whole(&|m: &Measured| m.peak_rss_bytes);
    if by_samples.is_none() || by_seqlen.is_none() {
        println!("  (no calibration-size sweep in this run: calibration taken as growing linearly with samples and with seqlen)");
    }
    let b_s = by_samples.map_or(1.0, |f| f.0);
    let b_l = by_seqlen.map_or(1.0, |f| f.0);
    let e_l = eval_seqlen.map_or(1.0, |f| f.0);
    let grow = (128.0 / base_samples).powf(b_s) * (2048.0 / base_seqlen).powf(b_l);
    println!(
        "  measured at {}x{} ({} tokens): calibration {}, SparseGPT solve {}, evaluation {}",
        base_samples,
        base_seqlen,
        one.tokens,
        human_seconds(calib),
        human_seconds(solve),
        human_seconds(eval)
    );
    println!(
        "  prediction for the paper's 128 x 2048 on this {device}: SparseGPT {} (calibration {} x{grow:.0}, solve {}); Wanda {}; \
         evaluation {:.1} tokens/s at 2048",
        human_seconds(calib * grow + solve),
        human_seconds(calib * grow),
        human_seconds(solve),
        human_seconds((wanda_forward + wanda_rest) * grow),
        one.tokens as f64 / (eval * (2048.0 / base_seqlen).powf(e_l - 1.0)),
    );
    println!(
        "  memory: about {:.1} GB resident at the measured windows (f32 weights alone: {:.1} GB){}",
        rss / 1e9,
        (params_8b + 128_256.0 * 4096.0) * 4.0 / 1e9,
        if rss > 24e9 { "; more than this machine's 24 GB" } else { "" }
    );
    if device == "cpu" {
        // A GPU's prediction needs a GPU's measured rate, not a datasheet's peak.
        println!(
            "  on a GPU: run `SCALE_DEVICE=cuda polyprune-scale` there (scripts/gpu_check.sh does): the same prediction from its measured rates"
        );
    }
}

/// The logits of a model folder's `model.logits.onnx` on `device` against the CPU, for fixed
/// token ids (two rows of 24): the largest absolute difference and the largest logit. In one
/// process: the GPU build of ONNX Runtime runs CPU sessions too. Also the logits' standard
/// deviation, to see that a synthetic model's scale is what synth promises (about 1).
fn compare_logits(dir: &Path, device: &str) -> anyhow::Result<(f64, f64, f64)> {
    let model = ModelDir::open(dir)?;
    let vocab = model.card.spec.as_ref().map_or(256, |s| s.vocab_size) as i64;
    let (rows, len) = (2usize, 24usize);
    let ids: Vec<i64> = (0..rows * len).map(|i| (i as i64 * 7919 + 13) % vocab).collect();
    let graph_file = dir.join(polyprune::model::import::LOGITS_GRAPH_FILE);
    let logits = |provider: &str| -> anyhow::Result<Vec<f32>> {
        // f32 compute on both sides: this compares providers, not compute types.
        let opts =
            RuntimeOptions { provider: provider.parse().map_err(anyhow::Error::msg)?, compute: ComputeChoice::F32, ..Default::default() };
        let mut graph = Graph::load(GraphSource::File(&graph_file), &opts, &[])?;
        let out = graph.run_f32(vec![("input_ids", Input::I64 { shape: vec![rows, len], data: ids.clone() })], &["logits"])?;
        Ok(out.into_iter().next().context("the logits graph returned nothing")?.data)
    };
    let on_device = logits(device)?;
    let on_cpu = logits("cpu")?;
    let diff = on_device.iter().zip(&on_cpu).map(|(a, b)| (a - b).abs() as f64).fold(0.0, f64::max);
    let largest = on_cpu.iter().map(|v| v.abs() as f64).fold(0.0, f64::max);
    let n = on_cpu.len() as f64;
    let mean = on_cpu.iter().map(|&v| v as f64).sum::<f64>() / n;
    let std = (on_cpu.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
    Ok((diff, largest, std))
}

/// Half compute against f32 compute of one folder on `device` (`--compare-compute`): the
/// logits of `model.logits.onnx` for fixed token ids (4 rows of 128), their largest absolute
/// difference and the largest |logit| of the f32 run; and the median seconds of 5 runs of
/// `model.onnx` (the scoring heads: only `B x T` numbers leave the device, so the time is the
/// computation's, not a vocabulary-wide copy's) on the same ids, after a warm-up. Printed as a
/// sentence and as one `COMPUTE {json}` line for scripts.
fn compare_compute(dir: &Path, device: &str) -> anyhow::Result<()> {
    let model = ModelDir::open(dir)?;
    let vocab = model.card.spec.as_ref().map_or(256, |s| s.vocab_size) as i64;
    let (rows, len) = (4usize, 128usize);
    let ids: Vec<i64> = (0..rows * len).map(|i| (i as i64 * 7919 + 13) % vocab).collect();
    let provider = device.parse().map_err(anyhow::Error::msg)?;
    let feed = || vec![("input_ids", Input::I64 { shape: vec![rows, len], data: ids.clone() })];
    let run = |compute: ComputeChoice| -> anyhow::Result<(Vec<f32>, f64)> {
        let opts = RuntimeOptions { provider, compute, ..Default::default() };
        let logits_file = dir.join(polyprune::model::import::LOGITS_GRAPH_FILE);
        let out = Graph::load(GraphSource::File(&logits_file), &opts, &[])?.run_f32(feed(), &["logits"])?;
        let logits = out.into_iter().next().context("the logits graph returned nothing")?.data;
        let mut scoring = Graph::load(GraphSource::File(&model.graph_path()), &opts, &[])?;
        scoring.run_f32(feed(), &["token_logprobs"])?;
        let mut seconds: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                scoring.run_f32(feed(), &["token_logprobs"]).map(|_| t.elapsed().as_secs_f64())
            })
            .collect::<Result<_, _>>()?;
        seconds.sort_by(f64::total_cmp);
        Ok((logits, seconds[2]))
    };
    let (full, f32_s) = run(ComputeChoice::F32)?;
    let (half, half_s) = run(ComputeChoice::Half)?;
    let diff = full.iter().zip(&half).map(|(a, b)| (a - b).abs() as f64).fold(0.0, f64::max);
    let largest = full.iter().map(|v| v.abs() as f64).fold(0.0, f64::max);
    let stored = model.card.matrix_type();
    println!(
        "logits in {stored} compute vs f32 on {device}: max |difference| {diff:.3e} (largest |logit| {largest:.2}, relative {:.2e}); scoring {rows} x {len} tokens: {:.2} ms in f32, {:.2} ms in {stored} ({:.2}x)",
        diff / largest,
        f32_s * 1e3,
        half_s * 1e3,
        f32_s / half_s
    );
    let blocks = model.card.spec.as_ref().map_or(0, |s| s.blocks);
    let report =
        json!({"stored": stored.flag_name(), "blocks": blocks, "max_diff": diff, "largest": largest, "f32_s": f32_s, "half_s": half_s});
    println!("COMPUTE {report}");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "--compare-compute" {
        return compare_compute(Path::new(&args[2]), &args[3]);
    }
    if args.len() == 4 && args[1] == "--compare-logits" {
        let (diff, largest, std) = compare_logits(Path::new(&args[2]), &args[3])?;
        println!(
            "logits on {} vs cpu: max |difference| {diff:.3e} (largest |logit| {largest:.2}, relative {:.2e}; std {std:.3})",
            args[3],
            diff / largest
        );
        return Ok(());
    }
    if args.len() == 3 && args[1] == "--stage" {
        let point: Point = serde_json::from_str(&args[2])?;
        let m = run_point(&point)?;
        println!("STAGE {}", serde_json::to_string(&m)?);
        return Ok(());
    }
    let root = polyprune::util::project_root();
    let exe = std::env::current_exe()?;
    let polyprune = exe.with_file_name("polyprune");
    let device = std::env::var("SCALE_DEVICE").unwrap_or_else(|_| "cpu".into());
    let quick = std::env::var("SCALE_QUICK").is_ok_and(|v| v != "0");
    let plan = plan(&root, &device, quick)?;
    let scratch = root.join(".cache/models/synth");
    let keep = std::env::var("SCALE_KEEP").is_ok_and(|v| v != "0");
    let mut sizes = Vec::new();
    for (like, model, p) in &plan.sizes {
        let mut p = p.clone();
        p.model = match model {
            SizeModel::Imported(dir) => dir.clone(),
            SizeModel::Synthetic { like, blocks } => synth(&polyprune, &scratch, like, *blocks)?,
        };
        eprintln!("scale: {} ({} x {}) ...", p.label, p.samples, p.seqlen);
        let t0 = Instant::now();
        let m = child(&exe, &p)?;
        eprintln!("scale: {} done in {:.0} s", p.label, t0.elapsed().as_secs_f64());
        if matches!(model, SizeModel::Synthetic { .. }) && !keep {
            std::fs::remove_dir_all(&p.model).with_context(|| format!("remove {}", p.model.display()))?;
        }
        sizes.push((like.clone(), p, m));
    }
    let mut grid = Vec::new();
    for p in &plan.grid {
        eprintln!("scale: Gemma 3 270M {} ...", p.label);
        let m = child(&exe, p)?;
        grid.push((p.clone(), m));
    }
    report(&sizes, &grid, &device);
    let out = root.join("results/bench");
    std::fs::create_dir_all(&out)?;
    let mode = match (std::env::var("SCALE_TINY").is_ok_and(|v| v != "0"), quick) {
        (true, _) => "tiny",
        (false, true) => "quick",
        (false, false) => "full",
    };
    let file = out.join(format!("scale-{device}-{mode}.json"));
    let rows = |rows: Vec<(&Point, &Measured)>| rows.into_iter().map(|(p, m)| json!({ "point": p, "measured": m })).collect::<Vec<Json>>();
    let doc = json!({
        "sizes": rows(sizes.iter().map(|(_, p, m)| (p, m)).collect()),
        "grid": rows(grid.iter().map(|(p, m)| (p, m)).collect()),
    });
    polyprune::util::write_atomic(&file, serde_json::to_string_pretty(&doc)?.as_bytes())?;
    println!("\nmeasurements: {}", file.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact power laws come back exactly; a constant has exponent 0.
    #[test]
    fn power_law_recovers_exponents() {
        let pts: Vec<(f64, f64)> = [1.0, 2.0, 5.0, 40.0].iter().map(|&x: &f64| (x, 3.0 * x.powf(1.7))).collect();
        let (a, c) = power_law(&pts).unwrap();
        assert!((a - 1.7).abs() < 1e-12 && (c - 3.0).abs() < 1e-12, "{a} {c}");
        let (a, _) = power_law(&[(1.0, 2.0), (10.0, 2.0)]).unwrap();
        assert!(a.abs() < 1e-12);
        assert!(power_law(&[(1.0, 2.0)]).is_none());
    }

    /// Llama-3 8B: 7.50B parameters in the blocks' linear layers (8.03B with both embeddings),
    /// plus the 0.525B output layer a token passes through.
    #[test]
    fn llama3_8b_shapes_add_up() {
        let (params, _, blocks) = llama3_8b();
        assert_eq!(blocks, 32);
        let total_with_input_embedding = params + 128_256.0 * 4096.0 + 32.0 * 2.0 * 4096.0 + 4096.0;
        assert!((total_with_input_embedding / 8.03e9 - 1.0).abs() < 0.001, "{total_with_input_embedding}");
    }
}
