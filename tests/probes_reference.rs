//! The probes' linfa parts against scikit-learn on the same arrays: the test writes synthetic
//! sentence states shaped like Gemma's (three "languages" offset from each other, four "topics"
//! along other directions, noise, and one channel 10^4 times larger than the rest), runs
//! `scripts/probes_reference.py` (StandardScaler + LogisticRegression, KMeans, PCA,
//! adjusted_rand_score) on them, and compares.
//!
//! Tolerances:
//! * Logistic probe: both fit the same strictly convex objective (L2 penalty, C = 1), whose
//!   minimiser is unique; L-BFGS in linfa stops at a gradient norm of 1e-5, scikit-learn's at
//!   1e-10, so the two solutions differ by far less than the margin of all but the rare test
//!   row lying on a decision boundary: at most 1 of the test predictions may differ.
//! * k-means: both take the best of 10 k-means++ starts on well-separated clusters, so they
//!   find the same partition up to renaming (ARI between them > 0.99).
//! * ARI: a closed formula on integer counts; equal to 1e-12.
//! * PCA: linfa-reduction's LOBPCG stops at a residual of 1e-5 (its default precision,
//!   squared for the Gram eigenproblem), after which its final Rayleigh-Ritz step leaves the
//!   leading vectors accurate to about residual^2 / gap; on standardised channels the gap
//!   between the first eigenvalues is a sizeable share of them, so the coordinates agree with
//!   scikit-learn's exact SVD to 1e-8 of their largest magnitude (measured: 1e-14), up to the
//!   sign of each axis (a PCA axis has no sign).

mod common;

use std::fmt::Write as _;
use std::path::Path;

use ndarray::Array2;
use polyprune::analysis::probes::{adjusted_rand_index, fit_predict, kmeans, test_ids, PcaAxes};
use rand::{Rng, SeedableRng};

const LANGUAGES: usize = 3;
const TOPICS: usize = 4;
const IDS: usize = 60;
const D: usize = 16;

/// Rows: language-major, id-minor. Returns states, language of each row, id of each row.
fn synthetic_states() -> (Array2<f64>, Vec<usize>, Vec<String>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let directions: Vec<Vec<f64>> = (0..LANGUAGES + TOPICS).map(|_| (0..D).map(|_| rng.gen_range(-1.0..1.0)).collect()).collect();
    let mut states = Array2::zeros((LANGUAGES * IDS, D));
    let mut languages = Vec::new();
    let mut ids = Vec::new();
    for l in 0..LANGUAGES {
        for i in 0..IDS {
            let row = l * IDS + i;
            let topic = LANGUAGES + i % TOPICS;
            for j in 0..D {
                let noise: f64 = rng.gen_range(-1.0..1.0);
                states[(row, j)] = 0.35 * directions[l][j] + 1.5 * directions[topic][j] + 1.0 * noise;
            }
            // Gemma's massive channel: large, and nearly constant across sentences.
            states[(row, 5)] = 1e4 * (1.0 + 0.01 * states[(row, 5)]);
            languages.push(l);
            ids.push(i.to_string());
        }
    }
    (states, languages, ids)
}

fn write_csv(path: &Path, rows: impl IntoIterator<Item = String>) {
    let text: String = rows.into_iter().fold(String::new(), |mut acc, r| {
        writeln!(acc, "{r}").unwrap();
        acc
    });
    std::fs::write(path, text).unwrap();
}

fn join<T: ToString>(v: &[T]) -> String {
    v.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}

#[test]
fn probes_match_scikit_learn() {
    let Some(py) = common::python() else { return };
    let dir = common::temp_dir("probes_reference");
    let (states, languages, ids) = synthetic_states();
    let held = test_ids(&ids, 0.3, 0).unwrap();
    let train: Vec<usize> = (0..ids.len()).filter(|&i| !held.contains(&ids[i])).collect();
    let test: Vec<usize> = (0..ids.len()).filter(|&i| held.contains(&ids[i])).collect();
    // No translation of a test sentence is in training.
    assert!(train.iter().all(|&i| test.iter().all(|&j| ids[i] != ids[j])));

    write_csv(&dir.join("states.csv"), states.outer_iter().map(|r| join(&r.iter().map(|v| format!("{v:e}")).collect::<Vec<_>>())));
    write_csv(&dir.join("train.csv"), train.iter().map(usize::to_string));
    write_csv(&dir.join("test.csv"), test.iter().map(usize::to_string));
    write_csv(&dir.join("labels.csv"), languages.iter().map(usize::to_string));
    std::fs::write(dir.join("k.txt"), LANGUAGES.to_string()).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let pairs: Vec<(Vec<usize>, Vec<usize>)> = (0..4)
        .map(|p| {
            let n = 20 + 15 * p;
            ((0..n).map(|_| rng.gen_range(0..3 + p)).collect(), (0..n).map(|_| rng.gen_range(0..2 + p)).collect())
        })
        .collect();
    write_csv(&dir.join("ari_pairs.csv"), pairs.iter().flat_map(|(a, b)| [join(a), join(b)]));

    let status = std::process::Command::new(py)
        .arg(common::repo().join("scripts/probes_reference.py"))
        .arg(&dir)
        .status()
        .expect("run the reference script");
    assert!(status.success(), "scripts/probes_reference.py failed (is scikit-learn in the venv? `make venv`)");
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
    let numbers = |key: &str| -> Vec<f64> { reference[key].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect() };

    // Logistic probe.
    let pick = |rows: &[usize]| states.select(ndarray::Axis(0), rows);
    let train_labels: Vec<usize> = train.iter().map(|&i| languages[i]).collect();
    let predicted = fit_predict(pick(&train).view(), &train_labels, pick(&test).view()).unwrap();
    let sklearn: Vec<usize> = numbers("predicted").iter().map(|&v| v as usize).collect();
    let differ = predicted.iter().zip(&sklearn).filter(|(a, b)| a != b).count();
    eprintln!("logistic probe: {differ} of {} predictions differ", test.len());
    eprintln!("accuracy {} (scikit-learn)", reference["accuracy"]);
    assert!(differ <= 1, "{differ} of {} test predictions differ from scikit-learn", test.len());
    let accuracy = predicted.iter().zip(&test).filter(|(p, &i)| **p == languages[i]).count() as f64 / test.len() as f64;
    let sk_accuracy = reference["accuracy"].as_f64().unwrap();
    assert!((accuracy - sk_accuracy).abs() <= 1.0 / test.len() as f64 + 1e-12, "{accuracy} vs {sk_accuracy}");
    // The languages overlap (accuracy near 0.54), so many rows sit near a boundary and the
    // agreement above is a real check; still, the probe learned something (chance is 1/3).
    assert!(accuracy > 0.45, "{accuracy}");

    // k-means: the same partition up to renaming, and the same agreement with the labels.
    let clusters = kmeans(states.view(), LANGUAGES).unwrap();
    let sk_clusters: Vec<usize> = numbers("clusters").iter().map(|&v| v as usize).collect();
    let between = adjusted_rand_index(&clusters, &sk_clusters);
    eprintln!("k-means: ARI between linfa and scikit-learn {between}");
    assert!(between > 0.99, "{between}");
    let ours = adjusted_rand_index(&clusters, &languages);
    assert!((ours - reference["cluster_ari"].as_f64().unwrap()).abs() < 0.02, "{ours} vs {}", reference["cluster_ari"]);

    // ARI itself.
    for ((a, b), want) in pairs.iter().zip(numbers("ari")) {
        let got = adjusted_rand_index(a, b);
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }

    // PCA on standardised channels, axes up to sign.
    let axes = PcaAxes::fit(states.view(), "synthetic states").unwrap();
    let ours = axes.project(states.view());
    let sk: Vec<Vec<f64>> =
        reference["pca"].as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()).collect();
    for c in 0..2 {
        let scale = sk.iter().map(|r| r[c].abs()).fold(0.0, f64::max);
        let sign = if (0..sk.len()).map(|i| ours[(i, c)] * sk[i][c]).sum::<f64>() < 0.0 { -1.0 } else { 1.0 };
        let worst = (0..sk.len()).map(|i| (sign * ours[(i, c)] - sk[i][c]).abs()).fold(0.0, f64::max);
        eprintln!("PCA component {c}: worst difference {worst:e}, scale {scale}");
        assert!(worst < 1e-8 * scale, "component {c}: worst difference {worst} of scale {scale}");
    }
}
