//! The analyses that look inside models, as library calls: the dense model against pruned ones
//! (saved folders, or masks applied to the dense weights) on parallel FLORES sentences.
//!
//! `analyze subspace|neurons|error|masks` and the study runner's `[analysis]` step call these
//! same functions with the same [`AnalysisParams`], so a study's analysis and a hand-run one
//! agree; the parameters are keys of the study file and enter its hash.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::masks::{by_depth, compare_all_pairs, unique_kept, DepthOverlap, LayerOverlap, MaskSet, UniqueKept};
use super::neurons::{compare, lape, protection, LapeParams, LapeResult, NeuronChange, Protection};
use super::probe::{probe, tokenize, ProbeOptions, ProbeResult, ProbeSentence};
use super::probes::{probe_block, test_ids, ClusterRow, LabelledStates, LanguageProbeRow, PcaAxes, PcaRow, TopicProbeRow};
use super::pruning_error::{error_grid, text_windows, Candidate, LayerError};
use super::section::ReportSection;
use super::sections::{error_section, masks_section, neurons_section, probes_section, subspace_section, ProbeChance};
use super::subspace::{language_subspace, principal_angles, summarise, SubspaceSummary};
use super::AnalysisError;
use crate::calibrate::{CalibrationSet, CalibrationSpec, CaptureMode, CaptureOptions, Mix};
use crate::data::corpora::flores::{read_rows, FloresPart};
use crate::data::Language;
pub use crate::design::AnalysisParams;
use crate::model::ModelDir;
use crate::progress::Progress;
use crate::runtime::{RuntimeOptions, WeightOverride};

/// Checks the parameters no analysis can run with, naming the parameter.
pub fn validated(params: AnalysisParams) -> Result<AnalysisParams, AnalysisError> {
    if params.sentences < 2 {
        return Err(AnalysisError::invalid("sentences", format!("{} is too few; give at least 2 parallel sentences", params.sentences)));
    }
    if params.batch == 0 {
        return Err(AnalysisError::invalid("batch", "0 sentences per call; give at least 1"));
    }
    if params.error_windows == 0 || params.error_seqlen < 2 {
        return Err(AnalysisError::invalid(
            "error_windows / error_seqlen",
            format!("{} windows of {} tokens; give at least 1 window of 2 tokens", params.error_windows, params.error_seqlen),
        ));
    }
    lape_params(&params)?;
    Ok(params)
}

fn lape_params(params: &AnalysisParams) -> Result<LapeParams, AnalysisError> {
    LapeParams { filter_percentile: params.filter_percentile, entropy_fraction: params.entropy_fraction }.validated()
}

/// Which models an analysis compares, on which languages.
#[derive(Clone, Debug)]
pub struct ModelComparison {
    /// The dense model folder.
    pub model: PathBuf,
    /// `(label, folder)`: a saved pruned model folder, or a masks folder applied to `model`.
    pub pruned: Vec<(String, PathBuf)>,
    /// FLORES codes of the languages whose parallel sentences are probed.
    pub languages: Vec<String>,
    /// Another SIB-200/FLORES folder than the project's.
    pub flores: Option<PathBuf>,
    pub runtime: RuntimeOptions,
}

/// A model to probe: the dense one, a saved pruned folder, or the dense one with masks.
struct Variant {
    label: String,
    model: ModelDir,
    overrides: Vec<WeightOverride>,
}

fn is_model_folder(dir: &std::path::Path) -> bool {
    dir.join("model.onnx").is_file()
}

fn variants(cmp: &ModelComparison) -> Result<(ModelDir, Vec<Variant>), AnalysisError> {
    let dense = ModelDir::open(&cmp.model)?;
    let mut out = vec![Variant { label: "dense".into(), model: dense.clone(), overrides: Vec::new() }];
    for (label, dir) in &cmp.pruned {
        if is_model_folder(dir) {
            out.push(Variant { label: label.clone(), model: ModelDir::open(dir)?, overrides: Vec::new() });
        } else {
            let overrides = crate::pruned::overrides_from_mask_dir(&dense, dir)?;
            out.push(Variant { label: label.clone(), model: dense.clone(), overrides });
        }
    }
    Ok((dense, out))
}

/// `(language, [(id, text)])`.
type LanguageText = (String, Vec<(String, String)>);

/// The evaluation text of each language.
fn evaluation_text(cmp: &ModelComparison) -> Result<Vec<LanguageText>, AnalysisError> {
    let registry = crate::eval::registry(cmp.flores.as_deref());
    let sets = crate::eval::evaluation_sets(&cmp.languages, Some("flores"), &registry)?;
    Ok(sets.into_iter().map(|s| (s.language, s.documents)).collect())
}

/// The first `n` test sentences that every language has, grouped by language.
fn parallel_sentences(model: &ModelDir, cmp: &ModelComparison, n: usize) -> Result<Vec<ProbeSentence>, AnalysisError> {
    if cmp.languages.len() < 2 {
        return Err(AnalysisError::invalid("languages", "give at least two languages to compare"));
    }
    let sets = evaluation_text(cmp)?;
    let by_language: Vec<BTreeMap<&str, &str>> =
        sets.iter().map(|(_, docs)| docs.iter().map(|(id, text)| (id.as_str(), text.as_str())).collect()).collect();
    let ids: Vec<&str> =
        sets[0].1.iter().map(|(id, _)| id.as_str()).filter(|id| by_language.iter().all(|m| m.contains_key(id))).take(n).collect();
    if ids.len() < 2 {
        return Err(AnalysisError::invalid(
            format!("languages {}", cmp.languages.join(",")),
            "fewer than two parallel sentences in common; check the FLORES folder (--flores)",
        ));
    }
    let mut triples = Vec::new();
    for ((language, _), texts) in sets.iter().zip(&by_language) {
        for id in &ids {
            triples.push((language.clone(), id.to_string(), texts[id].to_string()));
        }
    }
    let tokenizer = model.tokenizer()?;
    tokenize(model, &tokenizer, &triples)
}

fn run_probe(
    v: &Variant,
    sentences: &[ProbeSentence],
    opts: &ProbeOptions,
    progress: &mut dyn Progress,
) -> Result<ProbeResult, AnalysisError> {
    progress.stage(&format!("probe {}", v.label), v.model.card.blocks as u64);
    let r = probe(&v.model, sentences, &v.overrides, opts, |k| progress.advance(k as u64));
    progress.finish();
    r
}

/// Language subspaces of each model: variance share, retrieval, centroid distances, and the
/// principal angles between each pruned model's subspace and the dense one's.
pub struct SubspaceAnalysis {
    pub summaries: Vec<SubspaceSummary>,
    /// Principal angles (radians) of each pruned model's subspace to the dense one's.
    pub angles: Vec<(String, Vec<f64>)>,
    pub section: ReportSection,
}

pub fn subspace(cmp: &ModelComparison, params: &AnalysisParams, progress: &mut dyn Progress) -> Result<SubspaceAnalysis, AnalysisError> {
    let (dense, variants) = variants(cmp)?;
    let sentences = parallel_sentences(&dense, cmp, params.sentences)?;
    let layers = if params.layers.is_empty() { vec![dense.card.blocks / 2] } else { params.layers.clone() };
    let opts = ProbeOptions { layers, activity: false, batch: params.batch, runtime: cmp.runtime.clone() };
    let rank = params.rank.unwrap_or(cmp.languages.len() - 1);
    let mut summaries = Vec::new();
    let mut languages = Vec::new();
    let mut angles = Vec::new();
    let mut dense_bases = BTreeMap::new();
    for v in &variants {
        let result = run_probe(v, &sentences, &opts, progress)?;
        for (layer, states) in &result.pooled {
            let (summary, basis) = summarise(&v.label, *layer, states, rank)?;
            if v.label == "dense" {
                dense_bases.insert(*layer, basis);
            } else if let Some(d) = dense_bases.get(layer) {
                angles.push((v.label.clone(), principal_angles(d, &language_subspace(states, rank)?)?));
            }
            languages.push(states.languages.clone());
            summaries.push(summary);
        }
    }
    let section = subspace_section(&summaries, &languages, &angles);
    Ok(SubspaceAnalysis { summaries, angles, section })
}

/// Language-specific neurons (LAPE) of the dense model and what each pruned model keeps of them.
pub struct NeuronAnalysis {
    pub languages: Vec<String>,
    pub dense: LapeResult,
    pub changes: Vec<NeuronChange>,
    pub protection: Vec<Protection>,
    pub section: ReportSection,
}

pub fn neurons(cmp: &ModelComparison, params: &AnalysisParams, progress: &mut dyn Progress) -> Result<NeuronAnalysis, AnalysisError> {
    let lape_params = lape_params(params)?;
    let (dense, variants) = variants(cmp)?;
    let sentences = parallel_sentences(&dense, cmp, params.sentences)?;
    let opts = ProbeOptions { layers: Vec::new(), activity: true, batch: params.batch, runtime: cmp.runtime.clone() };
    let mut results = Vec::new();
    for v in &variants {
        let counts = run_probe(v, &sentences, &opts, progress)?
            .activity
            .ok_or_else(|| AnalysisError::invalid(format!("model {}", v.label), "the probe counted no MLP activity"))?;
        results.push((v.label.clone(), lape(&counts, lape_params)?));
    }
    let mut languages: Vec<String> = Vec::new();
    for s in &sentences {
        if !languages.contains(&s.language) {
            languages.push(s.language.clone());
        }
    }
    let (_, dense_result) = results.remove(0);
    let changes: Vec<NeuronChange> = results.iter().flat_map(|(label, r)| compare(label, &dense_result, r, &languages)).collect();
    let protection = protection(&changes);
    let section = neurons_section(&dense_result, &languages, &changes, &protection);
    Ok(NeuronAnalysis { languages, dense: dense_result, changes, protection, section })
}

/// Per-layer output error of each pruned model on each evaluation language's text.
pub struct ErrorAnalysis {
    pub rows: Vec<LayerError>,
    pub section: ReportSection,
}

pub fn pruning_error(cmp: &ModelComparison, params: &AnalysisParams, progress: &mut dyn Progress) -> Result<ErrorAnalysis, AnalysisError> {
    let dense = ModelDir::open(&cmp.model)?;
    if cmp.pruned.is_empty() {
        return Err(AnalysisError::invalid("pruned models", "give at least one pruned model or masks folder as label=folder"));
    }
    let candidates = cmp
        .pruned
        .iter()
        .map(|(label, dir)| if is_model_folder(dir) { Candidate::from_model(label, dir) } else { Candidate::from_masks(label, dir) })
        .collect::<Result<Vec<_>, _>>()?;
    let tokenizer = dense.tokenizer()?;
    let start = dense.calibration_start_token()?;
    let seqlen = params.error_seqlen.min(dense.card.max_positions);
    let mut texts = Vec::new();
    for (language, documents) in evaluation_text(cmp)? {
        let tokens = documents
            .iter()
            .map(|(id, text)| {
                tokenizer
                    .encode(text.as_str(), false)
                    .map(|e| e.get_ids().to_vec())
                    .map_err(|e| AnalysisError::invalid(format!("sentence {id} ({language})"), format!("cannot tokenize: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let windows = text_windows(&tokens, start, seqlen, params.error_windows);
        if windows.is_empty() {
            return Err(AnalysisError::invalid(
                language,
                format!("too little evaluation text for one window of {seqlen} tokens; lower error_seqlen"),
            ));
        }
        // The windows are fixed text, not a draw: the spec only describes them.
        let spec = CalibrationSpec {
            languages: vec![Language::parse(&language)?],
            mix: Mix::Even,
            samples: windows.len(),
            seqlen,
            seed: 0,
            source: Some("flores".into()),
        };
        texts.push((language, CalibrationSet { spec, windows, manifest: Vec::new(), text: Vec::new() }));
    }
    let capture = CaptureOptions { mode: CaptureMode::OneShot, batch: params.batch, runtime: cmp.runtime.clone(), gram: true };
    progress.stage("layer error", dense.card.blocks as u64);
    let rows = error_grid(&dense, &texts, &candidates, &capture, |language, k| {
        progress.detail(&format!("layer error on {language}"));
        progress.advance(k as u64);
    });
    progress.finish();
    let rows = rows?;
    let section = error_section(&rows);
    Ok(ErrorAnalysis { rows, section })
}

/// Share of the sentence ids whose translations are all held apart for testing the probes.
pub const PROBE_TEST_SHARE: f64 = 0.3;
/// Seed of the id shuffle that picks them.
pub const PROBE_SPLIT_SEED: u64 = 0;

/// The SIB-200 test sentences every language has, with their topics, grouped by language:
/// all of them, or `n` drawn with a fixed seed (the files are sorted by topic, so the first `n`
/// would be one or two topics).
fn topic_sentences(
    model: &ModelDir,
    cmp: &ModelComparison,
    n: Option<usize>,
) -> Result<(Vec<ProbeSentence>, BTreeMap<String, String>), AnalysisError> {
    if cmp.languages.len() < 2 {
        return Err(AnalysisError::invalid("--langs", "give at least two languages to compare"));
    }
    let root = crate::eval::registry(cmp.flores.as_deref()).locations().flores_root.clone();
    let rows = cmp
        .languages
        .iter()
        .map(|l| Ok((Language::parse(l)?.flores_code().to_string(), read_rows(&root, Language::parse(l)?, FloresPart::Test)?)))
        .collect::<Result<Vec<_>, AnalysisError>>()?;
    let by_language: Vec<BTreeMap<&str, &str>> =
        rows.iter().map(|(_, r)| r.iter().map(|row| (row.index_id.as_str(), row.text.as_str())).collect()).collect();
    let mut common: Vec<(String, String)> = rows[0]
        .1
        .iter()
        .filter(|row| by_language.iter().all(|m| m.contains_key(row.index_id.as_str())))
        .map(|row| (row.index_id.clone(), row.category.clone()))
        .collect();
    if let Some(n) = n.filter(|&n| n < common.len()) {
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        common.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(PROBE_SPLIT_SEED));
        common.truncate(n);
    }
    let topics: BTreeMap<String, String> = common.into_iter().collect();
    if topics.len() < 10 {
        return Err(AnalysisError::invalid(
            format!("languages {}", cmp.languages.join(",")),
            format!("{} parallel SIB-200 test sentences in common; probes need at least 10 (check --flores)", topics.len()),
        ));
    }
    let mut triples = Vec::new();
    for ((language, _), texts) in rows.iter().zip(&by_language) {
        for id in topics.keys() {
            triples.push((language.clone(), id.clone(), texts[id.as_str()].to_string()));
        }
    }
    let tokenizer = model.tokenizer()?;
    Ok((tokenize(model, &tokenizer, &triples)?, topics))
}

/// Share of the most frequent label: what always guessing it scores.
fn majority_share<'a>(labels: impl Iterator<Item = &'a String>) -> f64 {
    let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
    let mut n = 0;
    for l in labels {
        *counts.entry(l).or_default() += 1;
        n += 1;
    }
    counts.values().copied().max().unwrap_or(0) as f64 / n.max(1) as f64
}

/// Language-identity and topic-transfer probes, k-means clusters and PCA coordinates of every
/// model at every probed block.
pub struct ProbeAnalysis {
    pub language: Vec<LanguageProbeRow>,
    pub topic: Vec<TopicProbeRow>,
    pub clusters: Vec<ClusterRow>,
    pub pca: Vec<PcaRow>,
    pub section: ReportSection,
}

/// `params.layers` are the probed blocks (empty = every block); `params.probe_sentences` the
/// sentences per language.
pub fn probes(cmp: &ModelComparison, params: &AnalysisParams, progress: &mut dyn Progress) -> Result<ProbeAnalysis, AnalysisError> {
    let (dense, variants) = variants(cmp)?;
    let (sentences, topics) = topic_sentences(&dense, cmp, params.probe_sentences)?;
    let blocks = if params.layers.is_empty() { (0..dense.card.blocks).collect() } else { params.layers.clone() };
    let ids: Vec<String> = topics.keys().cloned().collect();
    let held = test_ids(&ids, PROBE_TEST_SHARE, PROBE_SPLIT_SEED)?;
    let opts = ProbeOptions { layers: blocks, activity: false, batch: params.batch, runtime: cmp.runtime.clone() };
    let mut axes: BTreeMap<usize, PcaAxes> = BTreeMap::new();
    let (mut language, mut topic, mut clusters, mut pca) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for v in &variants {
        let result = run_probe(v, &sentences, &opts, progress)?;
        progress.stage(&format!("probes {}", v.label), result.pooled.len() as u64);
        for (i, (block, states)) in result.pooled.into_iter().enumerate() {
            let labels = states.ids.iter().map(|id| topics[id].clone()).collect();
            let labelled = LabelledStates::new(states.languages, states.ids, labels, states.states)?;
            let (rows, fitted) = probe_block(&v.label, block, &labelled, &held, axes.get(&block))?;
            if let Some(a) = fitted {
                axes.insert(block, a);
            }
            language.push(rows.language);
            topic.extend(rows.topic);
            clusters.extend(rows.clusters);
            pca.extend(rows.pca);
            progress.advance(i as u64 + 1);
        }
        progress.finish();
    }
    let explained: BTreeMap<usize, Vec<f64>> = axes.iter().map(|(b, a)| (*b, a.explained.clone())).collect();
    let chance = ProbeChance { language: 1.0 / cmp.languages.len() as f64, topic: majority_share(held.iter().map(|id| &topics[id])) };
    let section = probes_section(&language, &topic, &clusters, &pca, &explained, chance);
    Ok(ProbeAnalysis { language, topic, clusters, pca, section })
}

/// Overlap of the kept weights between every pair of mask sets.
pub struct MaskAnalysis {
    pub layers: Vec<LayerOverlap>,
    pub depth: Vec<DepthOverlap>,
    pub unique: Vec<UniqueKept>,
    pub section: ReportSection,
}

/// `sets`: `(label, folder)` of saved masks (a `--save` folder or its `masks/`).
pub fn mask_overlap(sets: &[(String, PathBuf)]) -> Result<MaskAnalysis, AnalysisError> {
    let mut labels = BTreeSet::new();
    for (label, _) in sets {
        if !labels.insert(label.as_str()) {
            return Err(AnalysisError::invalid(format!("masks label '{label}'"), "used twice; give every mask set its own label"));
        }
    }
    let sets = sets.iter().map(|(label, dir)| MaskSet::read(label, dir)).collect::<Result<Vec<_>, _>>()?;
    let layers = compare_all_pairs(&sets)?;
    let depth = by_depth(&layers);
    let unique = unique_kept(&sets)?;
    let section = masks_section(&layers, &depth, &unique);
    Ok(MaskAnalysis { layers, depth, unique, section })
}
