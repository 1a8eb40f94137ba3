//! Geometry of sentence representations across languages: PCA, a language-specific subspace,
//! principal angles, centroid distances and cross-lingual retrieval.
//!
//! Input: one mean-pooled hidden state per sentence ([`SentenceStates`]), for parallel sentences
//! (the same FLORES id in every language), from [`super::probe`].
//! * The **language-specific subspace** is spanned by the language means after removing the
//!   grand mean: with K languages it has rank at most K - 1; we keep its top `rank` directions
//!   (left singular vectors of the centred means). What is orthogonal to it is the
//!   **language-agnostic remainder**.
//! * **Principal angles** between two subspaces (e.g. the dense and the pruned model's language
//!   subspaces): small angles from the sines and large ones from the cosines (Björck & Golub
//!   1973), so a subspace's angle with itself is 0 to rounding, not `acos(1 - eps) ~ 1e-8`.
//! * **Cross-lingual retrieval**: for each sentence of language a, its nearest neighbour by
//!   cosine among language b's sentences; correct when that is its translation (same id).
//!   High accuracy means sentences are placed by meaning, not by language.
//! * **PCA** is a thin SVD of the centred data (faer): coordinates `U_k S_k`, explained-variance
//!   ratios `s_i^2 / ||X_c||_F^2` (the total variance, not the sum over kept components), exact
//!   on the raw states. linfa-reduction's LOBPCG panics on raw Gemma states (its absolute
//!   stopping test cannot be met at their scale; see [`super::probes`], which uses it on
//!   standardised channels for the report's PCA pictures).

use std::collections::BTreeMap;

use faer::Mat;
use ndarray::{Array1, Array2, ArrayView1, Axis};
use serde::Serialize;

use super::AnalysisError;

/// One row per sentence: its language, its id (shared by translations) and its state.
#[derive(Clone, Debug)]
pub struct SentenceStates {
    pub languages: Vec<String>,
    pub ids: Vec<String>,
    pub states: Array2<f64>,
}

impl SentenceStates {
    pub fn new(languages: Vec<String>, ids: Vec<String>, states: Array2<f64>) -> Result<Self, AnalysisError> {
        if languages.len() != states.nrows() || ids.len() != states.nrows() {
            return Err(AnalysisError::invalid("sentence states", "one language and one id per row are needed"));
        }
        if states.iter().any(|x| !x.is_finite()) {
            return Err(AnalysisError::invalid("sentence states", "some values are NaN or infinite; the model's hidden states overflowed"));
        }
        Ok(SentenceStates { languages, ids, states })
    }

    /// The languages in first-seen order.
    pub fn language_list(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for l in &self.languages {
            if !out.contains(l) {
                out.push(l.clone());
            }
        }
        out
    }

    fn rows_of(&self, language: &str) -> Vec<usize> {
        (0..self.languages.len()).filter(|&i| self.languages[i] == language).collect()
    }

    /// Mean state of each language.
    pub fn language_means(&self) -> BTreeMap<String, Array1<f64>> {
        self.language_list()
            .into_iter()
            .map(|l| {
                let rows = self.rows_of(&l);
                let mean = self.states.select(Axis(0), &rows).mean_axis(Axis(0)).expect("at least one row");
                (l, mean)
            })
            .collect()
    }
}

fn to_faer(a: &Array2<f64>) -> Mat<f64> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[(i, j)])
}

/// Singular values (descending) and the left singular vectors of `a` (thin).
fn thin_svd(a: &Array2<f64>) -> Result<(Vec<f64>, Array2<f64>), AnalysisError> {
    let m = to_faer(a);
    let svd = m.thin_svd().map_err(|e| AnalysisError::invalid("SVD", format!("did not converge ({e:?})")))?;
    let k = a.nrows().min(a.ncols());
    let s: Vec<f64> = (0..k).map(|i| svd.S()[i]).collect();
    let u = Array2::from_shape_fn((a.nrows(), k), |(i, j)| svd.U()[(i, j)]);
    Ok((s, u))
}

/// PCA of the rows of `states`: explained-variance ratios of `components` directions and the
/// coordinates of each row on them.
#[derive(Clone, Debug, Serialize)]
pub struct PcaSummary {
    /// Squared singular value / total variance (squared Frobenius norm of the centred data).
    pub explained_variance_ratio: Vec<f64>,
    /// `coordinates[row][component]`.
    pub coordinates: Vec<Vec<f64>>,
}

pub fn pca(states: &Array2<f64>, components: usize) -> Result<PcaSummary, AnalysisError> {
    if states.nrows() < 2 || components == 0 || components > states.ncols().min(states.nrows()) {
        return Err(AnalysisError::invalid(
            "PCA",
            format!("cannot take {components} components of {} rows x {} columns; give more sentences", states.nrows(), states.ncols()),
        ));
    }
    let mean = states.mean_axis(Axis(0)).expect("rows");
    let centred = states - &mean;
    let total: f64 = centred.iter().map(|x| x * x).sum();
    let (s, u) = thin_svd(&centred)?;
    let ratios = s[..components].iter().map(|x| if total == 0.0 { 0.0 } else { x * x / total }).collect();
    let coordinates = (0..states.nrows()).map(|i| (0..components).map(|j| u[(i, j)] * s[j]).collect()).collect();
    Ok(PcaSummary { explained_variance_ratio: ratios, coordinates })
}

/// An orthonormal basis (columns, `d x rank`) of the span of the centred language means.
pub fn language_subspace(states: &SentenceStates, rank: usize) -> Result<Array2<f64>, AnalysisError> {
    let means = states.language_means();
    if means.len() < 2 {
        return Err(AnalysisError::invalid("language subspace", "needs sentences in at least two languages"));
    }
    if rank == 0 || rank > means.len() - 1 {
        return Err(AnalysisError::invalid("--rank", format!("{rank} is not in 1..={} (languages - 1)", means.len() - 1)));
    }
    let d = states.states.ncols();
    let grand = means.values().fold(Array1::<f64>::zeros(d), |acc, m| acc + m) / means.len() as f64;
    let mut m = Array2::zeros((d, means.len()));
    for (j, mean) in means.values().enumerate() {
        m.column_mut(j).assign(&(mean - &grand));
    }
    let (_, u) = thin_svd(&m)?;
    Ok(u.slice(ndarray::s![.., ..rank]).to_owned())
}

/// Principal angles (radians, ascending) between the column spans of two orthonormal bases.
pub fn principal_angles(a: &Array2<f64>, b: &Array2<f64>) -> Result<Vec<f64>, AnalysisError> {
    if a.nrows() != b.nrows() {
        return Err(AnalysisError::invalid("principal angles", format!("bases live in {} and {} dimensions", a.nrows(), b.nrows())));
    }
    let r = a.ncols().min(b.ncols());
    let (cosines, _) = thin_svd(&a.t().dot(b))?;
    // Sines: singular values of the part of b outside span(a), in ascending order so that the
    // i-th largest cosine pairs with the i-th smallest sine.
    let outside = b - &a.dot(&a.t().dot(b));
    let (mut sines, _) = thin_svd(&outside)?;
    sines.truncate(b.ncols());
    sines.sort_by(f64::total_cmp);
    Ok((0..r)
        .map(|i| {
            let c = cosines[i].clamp(0.0, 1.0);
            if c * c < 0.5 {
                c.acos()
            } else {
                sines.get(i).copied().unwrap_or(0.0).clamp(0.0, 1.0).asin()
            }
        })
        .collect())
}

/// Share of the centred data's variance inside the span of `basis`.
pub fn variance_share(states: &Array2<f64>, basis: &Array2<f64>) -> f64 {
    let mean = states.mean_axis(Axis(0)).expect("rows");
    let centred = states - &mean;
    let total: f64 = centred.iter().map(|x| x * x).sum();
    let inside: f64 = centred.dot(basis).iter().map(|x| x * x).sum();
    if total == 0.0 {
        0.0
    } else {
        inside / total
    }
}

/// `states` with the span of `basis` projected out (the language-agnostic remainder).
pub fn remove_subspace(states: &Array2<f64>, basis: &Array2<f64>) -> Array2<f64> {
    states - &states.dot(basis).dot(&basis.t())
}

#[derive(Clone, Debug, Serialize)]
pub struct CentroidDistance {
    pub first: String,
    pub second: String,
    pub distance: f64,
}

/// Euclidean distance between every pair of language means.
pub fn centroid_distances(states: &SentenceStates) -> Vec<CentroidDistance> {
    let means: Vec<(String, Array1<f64>)> = states.language_means().into_iter().collect();
    let mut out = Vec::new();
    for i in 0..means.len() {
        for j in i + 1..means.len() {
            let d = (&means[i].1 - &means[j].1).iter().map(|x| x * x).sum::<f64>().sqrt();
            out.push(CentroidDistance { first: means[i].0.clone(), second: means[j].0.clone(), distance: d });
        }
    }
    out
}

#[derive(Clone, Debug, Serialize)]
pub struct Retrieval {
    pub source: String,
    pub target: String,
    /// Sentences of `source` with a translation in `target`.
    pub queries: usize,
    pub accuracy: f64,
    /// 1 / (number of candidates in `target`).
    pub chance: f64,
}

fn cosine(a: ArrayView1<f64>, b: ArrayView1<f64>) -> f64 {
    let (na, nb) = (a.dot(&a).sqrt(), b.dot(&b).sqrt());
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        a.dot(&b) / (na * nb)
    }
}

/// Cross-lingual retrieval accuracy for every ordered pair of languages, on `rows` (the
/// states, or the remainder after [`remove_subspace`]).
pub fn retrieval(states: &SentenceStates, rows: &Array2<f64>) -> Vec<Retrieval> {
    let langs = states.language_list();
    let mut out = Vec::new();
    for a in &langs {
        for b in &langs {
            if a == b {
                continue;
            }
            let (qa, qb) = (states.rows_of(a), states.rows_of(b));
            let mut hits = 0;
            let mut queries = 0;
            for &i in &qa {
                if !qb.iter().any(|&j| states.ids[j] == states.ids[i]) {
                    continue;
                }
                queries += 1;
                let best = qb
                    .iter()
                    .map(|&j| (cosine(rows.row(i), rows.row(j)), j))
                    .max_by(|x, y| x.0.total_cmp(&y.0))
                    .map(|(_, j)| j)
                    .expect("candidates");
                hits += usize::from(states.ids[best] == states.ids[i]);
            }
            if queries > 0 {
                out.push(Retrieval {
                    source: a.clone(),
                    target: b.clone(),
                    queries,
                    accuracy: hits as f64 / queries as f64,
                    chance: 1.0 / qb.len() as f64,
                });
            }
        }
    }
    out
}

/// Mean accuracy over language pairs.
pub fn mean_accuracy(rows: &[Retrieval]) -> f64 {
    if rows.is_empty() {
        f64::NAN
    } else {
        rows.iter().map(|r| r.accuracy).sum::<f64>() / rows.len() as f64
    }
}

/// Everything the report shows for one model at one layer.
#[derive(Clone, Debug, Serialize)]
pub struct SubspaceSummary {
    pub model: String,
    pub layer: usize,
    pub language_variance_share: f64,
    pub retrieval: f64,
    pub retrieval_agnostic: f64,
    pub retrieval_chance: f64,
    pub mean_centroid_distance: f64,
    pub pca: PcaSummary,
    pub retrieval_pairs: Vec<Retrieval>,
    pub centroids: Vec<CentroidDistance>,
}

pub fn summarise(model: &str, layer: usize, states: &SentenceStates, rank: usize) -> Result<(SubspaceSummary, Array2<f64>), AnalysisError> {
    let basis = language_subspace(states, rank)?;
    let pairs = retrieval(states, &states.states);
    let agnostic = retrieval(states, &remove_subspace(&states.states, &basis));
    let centroids = centroid_distances(states);
    let summary = SubspaceSummary {
        model: model.to_string(),
        layer,
        language_variance_share: variance_share(&states.states, &basis),
        retrieval: mean_accuracy(&pairs),
        retrieval_agnostic: mean_accuracy(&agnostic),
        retrieval_chance: pairs.iter().map(|r| r.chance).sum::<f64>() / pairs.len().max(1) as f64,
        mean_centroid_distance: centroids.iter().map(|c| c.distance).sum::<f64>() / centroids.len().max(1) as f64,
        pca: pca(&states.states, 2.min(states.states.ncols()))?,
        retrieval_pairs: pairs,
        centroids,
    };
    Ok((summary, basis))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basis(columns: &[Vec<f64>]) -> Array2<f64> {
        let d = columns[0].len();
        Array2::from_shape_fn((d, columns.len()), |(i, j)| columns[j][i])
    }

    #[test]
    fn a_subspace_makes_zero_angles_with_itself() {
        let states = formula_data(40, 12);
        let (_, u) = thin_svd(&states.t().to_owned()).unwrap();
        let b = u.slice(ndarray::s![.., ..4]).to_owned();
        for angle in principal_angles(&b, &b).unwrap() {
            assert!(angle.abs() < 1e-12, "{angle}");
        }
    }

    #[test]
    fn principal_angles_match_the_closed_form() {
        // span{e1, e2} vs span{e1, cos t e2 + sin t e3}: angles 0 and t. Plus span{e4} vs the
        // first: pi/2.
        for t in [1e-6, 0.3, 1.2, std::f64::consts::FRAC_PI_2] {
            let a = basis(&[vec![1.0, 0.0, 0.0, 0.0], vec![0.0, 1.0, 0.0, 0.0]]);
            let b = basis(&[vec![1.0, 0.0, 0.0, 0.0], vec![0.0, t.cos(), t.sin(), 0.0]]);
            let angles = principal_angles(&a, &b).unwrap();
            assert!(angles[0].abs() < 1e-12, "{angles:?}");
            assert!((angles[1] - t).abs() < 1e-12 * t.max(1.0), "{t}: {angles:?}");
        }
        let a = basis(&[vec![1.0, 0.0, 0.0, 0.0]]);
        let c = basis(&[vec![0.0, 0.0, 0.0, 1.0]]);
        assert!((principal_angles(&a, &c).unwrap()[0] - std::f64::consts::FRAC_PI_2).abs() < 1e-12);
    }

    /// The matrix `scripts/analysis_reference.py` builds (same formula).
    fn formula_data(n: usize, d: usize) -> Array2<f64> {
        Array2::from_shape_fn((n, d), |(i, j)| {
            let (x, y) = (i as f64, j as f64);
            (0.37 * (x + 1.0) * (y + 1.0)).sin() + 0.1 * (1.3 * x + 0.7 * y).cos() + 0.05 * x * (y - 3.0) / (n as f64)
        })
    }

    #[test]
    fn explained_variance_ratios_match_numpy() {
        // `python scripts/analysis_reference.py` (NumPy SVD of the centred 30 x 8 matrix).
        const NUMPY: [f64; 3] = [0.14164268522642706, 0.13655561890587317, 0.13572747938499855];
        let data = formula_data(30, 8);
        let p = pca(&data, 3).unwrap();
        for (got, want) in p.explained_variance_ratio.iter().zip(NUMPY) {
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        }
        // The coordinates carry exactly their component's share of the total variance.
        let centred = &data - &data.mean_axis(Axis(0)).unwrap();
        let total: f64 = centred.iter().map(|x| x * x).sum();
        for (j, want) in NUMPY.iter().enumerate() {
            let got: f64 = p.coordinates.iter().map(|c| c[j] * c[j]).sum::<f64>() / total;
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        }
        // One channel ten thousand times larger than the rest (as in Gemma's hidden states):
        // the first component is that channel and takes almost all the variance.
        let mut skewed = data.clone();
        skewed.column_mut(3).mapv_inplace(|x| x * 1e4);
        let q = pca(&skewed, 2).unwrap();
        assert!(q.explained_variance_ratio[0] > 0.999 && q.explained_variance_ratio[1].is_finite());
    }

    #[test]
    fn language_structure_is_found_and_removed() {
        // Two "languages" offset along e0; sentence meaning varies along e1..e3 and is shared.
        let n = 6;
        let mut languages = Vec::new();
        let mut ids = Vec::new();
        let mut rows = Vec::new();
        for (l, offset) in [("eng", 5.0), ("deu", -5.0)] {
            for s in 0..n {
                languages.push(l.to_string());
                ids.push(s.to_string());
                let m = s as f64;
                rows.extend([offset, m.sin() * 3.0, m.cos() * 3.0, (m * 0.7).sin() * 3.0]);
            }
        }
        let states = SentenceStates::new(languages, ids, Array2::from_shape_vec((2 * n, 4), rows).unwrap()).unwrap();
        let (summary, basis) = summarise("toy", 0, &states, 1).unwrap();
        assert!((basis[(0, 0)].abs() - 1.0).abs() < 1e-12);
        assert_eq!(summary.retrieval_agnostic, 1.0);
        assert!((summary.mean_centroid_distance - 10.0).abs() < 1e-12);
        assert!(summary.language_variance_share > 0.5);
        let e = language_subspace(&states, 2).unwrap_err();
        assert!(e.to_string().contains("--rank"), "{e}");
    }
}
