//! `advise`: mixture statistics from per-language statistics, the layer-error proxy, the
//! simplex search, and the workflow end to end on the tiny Llama fixture with FLORES text.

mod common;

use polyprune::calibrate::{search_mixtures, CalibrationSet, CalibrationSpec, Mix, Objective};
use polyprune::data::{Language, SourceLocations, TextRegistry};
use polyprune::model::import::{import_gguf, ImportOptions};
use polyprune::model::ModelDir;
use polyprune::prune::{ColumnGram, GramPrecision, InputStatistics, LinearWeight, Method, Sparsity, SparsityTarget};
use polyprune::runtime::RuntimeOptions;
use polyprune::stats::spearman;
use polyprune::workflow::advise::{language_statistics, mixture_statistics};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn tiny_llama() -> ModelDir {
    let out = common::temp_dir("advise-llama");
    import_gguf(&common::model_fixture("tiny-llama").join("model.gguf"), &out, &ImportOptions { max_positions: 128 }).unwrap();
    ModelDir::open(&out).unwrap()
}

fn draw(model: &ModelDir, shared: &std::path::Path, language: &str, samples: usize) -> CalibrationSet {
    let registry =
        TextRegistry::new(SourceLocations { flores_root: shared.join("data/sib200"), ..SourceLocations::for_project(&common::repo()) });
    let spec = CalibrationSpec {
        languages: vec![Language::parse(language).unwrap()],
        mix: Mix::Even,
        samples,
        seqlen: 32,
        seed: 3,
        source: Some("flores".into()),
    };
    CalibrationSet::draw(&spec, &registry, &model.tokenizer().unwrap(), model.card.start_token().unwrap()).unwrap()
}

/// A mixture's statistics, from each language's, equal a calibration on the concatenated
/// mixture: 4 windows of English and 2 of Swahili from per-language sets of 2 windows each
/// are English's statistics twice plus Swahili's once, and the concatenated set is English's
/// windows twice and Swahili's once. With one window per runtime call, every window's
/// activations and its f32 Gram chunk are the same computation in both routes, so what is
/// left is the order of the f64 additions (relative 1e-15 per addition): tolerance 1e-12 of
/// `sqrt(G_ii G_jj)` (which bounds `sum_t |x_ti x_tj|` by Cauchy-Schwarz) for the Gram
/// matrices and 1e-12 relative for the sums of squares (Wanda's norms).
#[test]
fn mixture_statistics_equal_a_calibration_on_the_concatenated_mixture() {
    let Some(shared) = common::shared() else { return };
    let model = tiny_llama();
    let runtime = RuntimeOptions::default();
    let english = draw(&model, &shared, "eng_Latn", 2);
    let swahili = draw(&model, &shared, "swh_Latn", 2);
    let en = language_statistics(&model, &english, true, 1, &runtime).unwrap();
    let sw = language_statistics(&model, &swahili, true, 1, &runtime).unwrap();
    let windows: Vec<Vec<u32>> = [&english.windows[..], &english.windows[..], &swahili.windows[..]].concat();
    let concatenated = CalibrationSet {
        spec: CalibrationSpec { samples: windows.len(), ..english.spec.clone() },
        windows,
        manifest: Vec::new(),
        text: Vec::new(),
    };
    let direct = language_statistics(&model, &concatenated, true, 1, &runtime).unwrap();
    assert_eq!(direct.blocks.len(), model.card.blocks);
    let mut compared = 0;
    for (block, taps) in direct.blocks.iter().enumerate() {
        for (tap, want) in taps {
            let got = mixture_statistics(&[&en, &sw], &[4, 2], block, tap).unwrap();
            assert_eq!(got.tokens(), want.tokens());
            assert_eq!(got.tokens(), 6 * 32);
            for (a, b) in got.sum_squares().iter().zip(want.sum_squares()) {
                assert!((a - b).abs() <= 1e-12 * b.abs(), "{tap}: {a} vs {b}");
            }
            let (g, w) = (got.gram().unwrap(), want.gram().unwrap());
            for i in 0..g.nrows() {
                for j in 0..g.ncols() {
                    let scale = (w[(i, i)] * w[(j, j)]).sqrt();
                    assert!((g[(i, j)] - w[(i, j)]).abs() <= 1e-12 * scale, "{tap} ({i},{j}): {} vs {}", g[(i, j)], w[(i, j)]);
                }
            }
            // And so the masks agree: Wanda on the mixture equals Wanda on the concatenation.
            compared += 1;
        }
    }
    assert_eq!(compared, 4 * model.card.blocks, "q/k/v share one input, gate/up another");
    // Not vacuous: the mixture differs from English alone.
    let english_only = mixture_statistics(&[&en, &sw], &[6, 0], 0, "blk.0.attn_in").unwrap();
    let mixed = mixture_statistics(&[&en, &sw], &[4, 2], 0, "blk.0.attn_in").unwrap();
    assert!(english_only.sum_squares().iter().zip(mixed.sum_squares()).any(|(a, b)| (a - b).abs() > 1e-3 * b));
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `tokens x width` activations: a few shared factors with a language-specific scale per channel.
fn activations(seed: u64, tokens: usize, width: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mixing: Vec<f64> = (0..3 * width).map(|_| normal(&mut rng)).collect();
    let scale: Vec<f64> = (0..width).map(|_| rng.gen_range(0.2..3.0)).collect();
    let mut x = Vec::with_capacity(tokens * width);
    for _ in 0..tokens {
        let f: Vec<f64> = (0..3).map(|_| normal(&mut rng)).collect();
        for j in 0..width {
            let shared: f64 = (0..3).map(|k| f[k] * mixing[k * width + j]).sum();
            x.push(((shared + 0.5 * normal(&mut rng)) * scale[j]) as f32);
        }
    }
    x
}

fn statistics(x: &[f32], width: usize) -> InputStatistics {
    let mut s = InputStatistics::with_gram_precision("fc.input", width, GramPrecision::F64);
    s.accumulate(x, x.len() / width).unwrap();
    s
}

/// The proxy `<D^T D, G_t> / n_t` equals the layer's output error measured directly: the mean
/// over the target's tokens of `||W' x - W x||^2`, computed in f64 from the activations. Both
/// are sums of the same f64 products in a different order (the Gram in f64, products of f32
/// values exact): tolerance 1e-10 relative.
#[test]
fn layer_error_proxy_equals_the_measured_layer_output_error() {
    let (rows, cols) = (12, 32);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let weight: Vec<f32> = (0..rows * cols).map(|_| normal(&mut rng) as f32).collect();
    let weight = LinearWeight::new("fc", rows, cols, weight).unwrap();
    let (xa, xb, xt) = (activations(1, 300, cols), activations(2, 200, cols), activations(3, 250, cols));
    let per_language: Vec<InputStatistics> = [&xa, &xb].iter().map(|x| statistics(x, cols)).collect();
    let target = statistics(&xt, cols);
    let half = SparsityTarget::Unstructured(Sparsity::new(0.5).unwrap());
    for method in [Method::Wanda, "sparsegpt".parse::<Method>().unwrap()] {
        let mixture = InputStatistics::scaled_sum("mix", &[(&per_language[0], 0.25), (&per_language[1], 1.5)]).unwrap();
        assert_eq!(mixture.tokens(), 75 + 300);
        let pruned = method.prune("fc", &weight, Some(&mixture), half).unwrap();
        let new = pruned.new_weights.unwrap_or_else(|| {
            let mut d = weight.data().to_vec();
            pruned.mask.apply(&mut d).unwrap();
            d
        });
        let proxy = ColumnGram::of_change(weight.data(), &new, rows, cols).mean_squared_output(&target).unwrap();
        let mut measured = 0.0;
        for token in xt.chunks(cols) {
            for r in 0..rows {
                let y: f64 = (0..cols).map(|c| f64::from(weight.data()[r * cols + c]) * f64::from(token[c])).sum();
                let y_new: f64 = (0..cols).map(|c| f64::from(new[r * cols + c]) * f64::from(token[c])).sum();
                measured += (y_new - y) * (y_new - y);
            }
        }
        measured /= 250.0;
        assert!(measured > 0.0);
        assert!((proxy - measured).abs() <= 1e-10 * measured, "{method}: proxy {proxy} vs measured {measured}");
    }
}

/// Per-target errors `||w - a_t||^2` over the simplex of three candidates: the worst case is
/// minimised where the two targets' errors are equal and as small as possible, the midpoint
/// of `a_1` and `a_2` (it lies on the simplex): (0.42, 0.42, 0.16), i.e. 42, 42 and 16 of 100
/// windows, which is not on the coarse grid the budget affords. The mean of three such errors
/// is minimised at the centroid of the `a_t`: (0.36, 0.38, 0.26).
#[test]
fn search_finds_the_known_optimum_of_a_constructed_problem() {
    let points = [[0.72, 0.12, 0.16], [0.12, 0.72, 0.16], [0.24, 0.30, 0.46]];
    let errors = |shares: &[usize], targets: &[[f64; 3]]| -> Result<Vec<f64>, ()> {
        let n: usize = shares.iter().sum();
        let w: Vec<f64> = shares.iter().map(|&s| s as f64 / n as f64).collect();
        Ok(targets.iter().map(|a| a.iter().zip(&w).map(|(x, y)| (x - y) * (x - y)).sum()).collect())
    };
    let mut calls = 0;
    let found = search_mixtures(3, 100, Objective::Worst, 60, |s| {
        calls += 1;
        errors(s, &points[..2])
    })
    .unwrap();
    assert!(calls <= 60);
    assert_eq!(found[0].shares, vec![42, 42, 16], "{:?}", &found[..3]);
    // The grid evaluated the vertices.
    for k in 0..3 {
        assert!(found.iter().any(|m| m.single_language() == Some(k)));
    }
    let found = search_mixtures(3, 100, Objective::Mean, 60, |s| errors(s, &points)).unwrap();
    assert_eq!(found[0].shares, vec![36, 38, 26], "{:?}", &found[..3]);
    // Best first.
    assert!(found.windows(2).all(|w| w[0].score <= w[1].score));
}

/// Spearman's rho: without ties, `1 - 6 sum d^2 / (n (n^2 - 1))`; with ties, Pearson's r of the
/// average ranks, worked by hand: x ranks (1, 2.5, 2.5, 4), y ranks (1, 3, 2, 4) give
/// 4.5 / sqrt(4.5 * 5) = 0.948683 (SciPy's `spearmanr` gives the same).
#[test]
fn spearman_matches_closed_forms() {
    let x = [0.3, 1.2, -0.5, 2.0, 0.9];
    let y = [1.0, 3.0, 2.0, 5.0, 4.0];
    // ranks x: 2,4,1,5,3; y: 1,3,2,5,4; d^2 = 1+1+1+0+1 = 4.
    let closed = 1.0 - 6.0 * 4.0 / (5.0 * 24.0);
    assert!((spearman(&x, &y).unwrap() - closed).abs() < 1e-12);
    let tied = spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]).unwrap();
    assert!((tied - 4.5 / (22.5f64).sqrt()).abs() < 1e-12);
    assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), None);
}

/// The whole workflow on the tiny model: statistics, search, validation, test, confirmation,
/// and the files. Checked: the recommendation's weights sum to 1 over the default candidates
/// (targets plus English), the recommendation is the validated calibration with the best
/// development score, the test table holds the recommendation, English-only and each
/// target-only calibration, and the costs count what ran.
#[test]
fn advise_runs_end_to_end_on_the_tiny_model() {
    let Some(shared) = common::shared() else { return };
    let model = tiny_llama();
    let out = common::temp_dir("advise-out");
    let opts = polyprune::workflow::advise::AdviseOptions {
        model: model.dir.clone(),
        targets: vec!["swh_Latn".into(), "deu_Latn".into()],
        candidates: Vec::new(),
        method: Method::Wanda,
        sparsity: Some(Sparsity::new(0.5).unwrap()),
        pattern: "unstructured".parse().unwrap(),
        samples: 6,
        seqlen: 32,
        seed: 0,
        calib_source: Some("flores".into()),
        source: Some("flores".into()),
        flores: Some(shared.join("data/sib200")),
        objective: Objective::Worst,
        budget: 8,
        validate: 2,
        limit: Some(8),
        confirm: true,
        batch: 3,
        runtime: RuntimeOptions::default(),
        comparison: Default::default(),
        alpha: polyprune::stats::Alpha::FIVE_PERCENT,
    };
    let advice = polyprune::workflow::advise::advise(&opts, &mut polyprune::progress::Silent).unwrap();
    assert_eq!(advice.candidates, vec!["swh_Latn", "deu_Latn", "eng_Latn"]);
    let total: f64 = advice.recommended.weights.values().sum();
    assert!((total - 1.0).abs() < 1e-12);
    for name in ["recommended", "eng_Latn", "swh_Latn", "deu_Latn"] {
        let bpb = &advice.test_bpb[name];
        assert_eq!(bpb.len(), 2, "{name}");
        for (t, &v) in bpb {
            assert!(v.is_finite() && v > 0.0, "{name} {t}");
        }
    }
    // The recommendation is the validated calibration with the best development score.
    let best = advice.search.iter().filter_map(|p| p.dev_score).fold(f64::INFINITY, f64::min);
    assert!((advice.recommended.dev_score - best).abs() < 1e-12);
    assert_eq!(advice.cost.calibration_passes, 4, "three languages, one pass each, and the confirmation");
    // Recommended vs English-only and each target-only calibration (unless it is that one), per target.
    let baselines = ["eng_Latn", "swh_Latn", "deu_Latn"].iter().filter(|b| **b != advice.recommended.calibration).count();
    assert_eq!(advice.comparisons.len(), 2 * baselines);
    assert_eq!(advice.beats_english.len(), 2);
    assert!(advice.confirmation.as_ref().is_some_and(|c| c.test_bpb.len() == 2));
    // Pruning half of every layer changes every layer's outputs: relative errors are positive.
    assert!(advice.search.iter().all(|p| p.proxy.values().all(|&e| e > 0.0)));
    let files = polyprune::workflow::advise::write_advice(&advice, &out).unwrap();
    assert_eq!(files.len(), 3);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("advice.json")).unwrap()).unwrap();
    assert!(json["recommended"]["weights"]["swh_Latn"].is_number());
    assert!(json["test_bpb"]["recommended"]["deu_Latn"].is_number());
    let html = polyprune::report::advice::render(&advice).unwrap();
    assert!(html.contains("<svg") && html.contains("Recommended calibration"));
}
