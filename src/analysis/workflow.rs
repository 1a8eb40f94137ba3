//! The analyses that look inside models, as library calls: the dense model against pruned ones
//! (saved folders, or masks applied to the dense weights) on parallel FLORES sentences.
//!
//! `analyze subspace|neurons|error|masks` and the study runner's `[analysis]` step call these
//! same functions with the same [`AnalysisParams`], so a study's analysis and a hand-run one
//! agree; the parameters are keys of the study file and enter its hash.
//!
//! An encoder-decoder (mT5, T5) is probed on its encoder ([`super::encoder_probe`]: its blocks'
//! outputs and gated-GELU activity, each section's caption says so); its pruning error covers
//! the layers of both stacks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::masks::{by_depth, compare_all_pairs, unique_kept, DepthOverlap, LayerOverlap, MaskSet, UniqueKept};
use super::neurons::{compare, lape, protection, LapeParams, LapeResult, NeuronChange, Protection};
use super::probe::{probe, tokenize, ProbeOptions, ProbeResult, ProbeSentence};
use super::probes::{probe_block, test_ids, ClusterRow, LabelledStates, LanguageProbeRow, PcaAxes, PcaRow, TopicProbeRow};
use super::pruning_error::{error_grid, seq2seq_error_grid, text_windows, Candidate, LayerError};
use super::section::ReportSection;
use super::sections::{error_section, masks_section, neurons_section, probes_section, subspace_section, ProbeChance};
use super::subspace::{language_subspace, principal_angles, summarise, SubspaceSummary};
use super::AnalysisError;
use crate::calibrate::{CalibrationSet, CalibrationSpec, CaptureMode, CaptureOptions, Mix};
use crate::data::corpora::flores::{read_rows, FloresPart};
use crate::data::Language;
pub use crate::design::AnalysisParams;
use crate::model::seq2seq::{is_seq2seq_folder, Seq2SeqFolder};
use crate::model::ModelDir;
use crate::progress::Progress;
use crate::runtime::{RuntimeOptions, WeightOverride};
use crate::workflow::folder::ModelFolder;

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
    model: ModelFolder,
    overrides: Vec<WeightOverride>,
}

/// A model folder (decoder-only or encoder-decoder), as opposed to a folder of masks.
fn is_model_folder(dir: &std::path::Path) -> bool {
    dir.join("model.onnx").is_file() || is_seq2seq_folder(dir)
}

fn variants(cmp: &ModelComparison) -> Result<(ModelFolder, Vec<Variant>), AnalysisError> {
    let dense = ModelFolder::open(&cmp.model)?;
    let mut out = vec![Variant { label: "dense".into(), model: dense.clone(), overrides: Vec::new() }];
    for (label, dir) in &cmp.pruned {
        if is_model_folder(dir) {
            let model = ModelFolder::open(dir)?;
            if matches!(model, ModelFolder::EncoderDecoder(_)) != matches!(dense, ModelFolder::EncoderDecoder(_)) {
                return Err(AnalysisError::invalid(
                    format!("pruned model {label}={}", dir.display()),
                    format!("it and {} are not the same kind of model (decoder-only, encoder-decoder); compare a model with its own pruned versions", cmp.model.display()),
                ));
            }
            out.push(Variant { label: label.clone(), model, overrides: Vec::new() });
        } else {
            let overrides = dense.mask_overrides(dir)?;
            out.push(Variant { label: label.clone(), model: dense.clone(), overrides });
        }
    }
    Ok((dense, out))
}

/// The blocks whose states are probed: a decoder's, or an encoder-decoder's encoder blocks.
fn probed_blocks(model: &ModelFolder) -> usize {
    match model {
        ModelFolder::Decoder(m) => m.card.blocks,
        ModelFolder::EncoderDecoder(f) => f.card.spec.encoder_blocks,
    }
}

/// Parallel sentences `(language, id, text)` tokenized as the model reads them.
fn tokenize_for(model: &ModelFolder, triples: &[(String, String, String)]) -> Result<Vec<ProbeSentence>, AnalysisError> {
    match model {
        ModelFolder::Decoder(m) => tokenize(m, &m.tokenizer()?, triples),
        ModelFolder::EncoderDecoder(f) => super::encoder_probe::tokenize(f, triples),
    }
}

/// What an encoder-decoder's probe sections show, added to their captions.
const ENCODER_STATES_NOTE: &str = " Encoder-decoder (mT5/T5): these are the ENCODER's states, each encoder block's output \
     (the residual stream after the block) mean-pooled over the sentence's text tokens, T5's </s> left out; MLP activity is \
     the encoder's gated-GELU gate. The decoder's states (the sentence teacher-forced as its labels) are not shown.";

fn with_states_note(mut section: ReportSection, model: &ModelFolder) -> ReportSection {
    if matches!(model, ModelFolder::EncoderDecoder(_)) {
        section.caption.push_str(ENCODER_STATES_NOTE);
    }
    section
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
fn parallel_sentences(model: &ModelFolder, cmp: &ModelComparison, n: usize) -> Result<Vec<ProbeSentence>, AnalysisError> {
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
    tokenize_for(model, &triples)
}

fn run_probe(
    v: &Variant,
    sentences: &[ProbeSentence],
    opts: &ProbeOptions,
    progress: &mut dyn Progress,
) -> Result<ProbeResult, AnalysisError> {
    let r = match &v.model {
        ModelFolder::Decoder(m) => {
            progress.stage(&format!("probe {}", v.label), m.card.blocks as u64);
            probe(m, sentences, &v.overrides, opts, |k| progress.advance(k as u64))
        }
        ModelFolder::EncoderDecoder(f) => {
            progress.stage(&format!("probe {} (encoder)", v.label), sentences.len() as u64);
            super::encoder_probe::probe_encoder(f, sentences, &v.overrides, opts, |n| progress.advance(n as u64))
        }
    };
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
    let layers = if params.layers.is_empty() { vec![probed_blocks(&dense) / 2] } else { params.layers.clone() };
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
    let section = with_states_note(subspace_section(&summaries, &languages, &angles), &dense);
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
    let section = with_states_note(neurons_section(&dense_result, &languages, &changes, &protection), &dense);
    Ok(NeuronAnalysis { languages, dense: dense_result, changes, protection, section })
}

/// Per-layer output error of each pruned model on each evaluation language's text.
pub struct ErrorAnalysis {
    pub rows: Vec<LayerError>,
    pub section: ReportSection,
}

pub fn pruning_error(cmp: &ModelComparison, params: &AnalysisParams, progress: &mut dyn Progress) -> Result<ErrorAnalysis, AnalysisError> {
    let dense = ModelFolder::open(&cmp.model)?;
    if cmp.pruned.is_empty() {
        return Err(AnalysisError::invalid("pruned models", "give at least one pruned model or masks folder as label=folder"));
    }
    let candidates = cmp
        .pruned
        .iter()
        .map(|(label, dir)| if is_model_folder(dir) { Candidate::from_model(label, dir) } else { Candidate::from_masks(label, dir) })
        .collect::<Result<Vec<_>, _>>()?;
    let rows = match &dense {
        ModelFolder::Decoder(dense) => decoder_error(dense, cmp, params, &candidates, progress)?,
        ModelFolder::EncoderDecoder(folder) => encoder_decoder_error(folder, cmp, params, &candidates, progress)?,
    };
    let section = error_section(&rows);
    Ok(ErrorAnalysis { rows, section })
}

/// `(language, token ids of each document)`.
type LanguageTokens = (String, Vec<Vec<u32>>);

/// The text of each evaluation language as token ids (no special tokens).
fn evaluation_tokens(tokenizer: &tokenizers::Tokenizer, cmp: &ModelComparison) -> Result<Vec<LanguageTokens>, AnalysisError> {
    evaluation_text(cmp)?
        .into_iter()
        .map(|(language, documents)| {
            let tokens = documents
                .iter()
                .map(|(id, text)| {
                    tokenizer
                        .encode(text.as_str(), false)
                        .map(|e| e.get_ids().to_vec())
                        .map_err(|e| AnalysisError::invalid(format!("sentence {id} ({language})"), format!("cannot tokenize: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((language, tokens))
        })
        .collect()
}

fn too_little_text(language: String, seqlen: usize) -> AnalysisError {
    AnalysisError::invalid(language, format!("too little evaluation text for one window of {seqlen} tokens; lower error_seqlen"))
}

/// An encoder-decoder's error grid: each window's text followed by `</s>` is the encoder's
/// input and the decoder's labels, as pruning calibrates both stacks
/// ([`crate::pruned::seq2seq`]), so every layer of both stacks is measured on the text.
fn encoder_decoder_error(
    folder: &Seq2SeqFolder,
    cmp: &ModelComparison,
    params: &AnalysisParams,
    candidates: &[Candidate],
    progress: &mut dyn Progress,
) -> Result<Vec<LayerError>, AnalysisError> {
    let eos = folder.card.spec.eos_token_id;
    let languages = evaluation_tokens(&folder.tokenizer()?, cmp)?;
    let mut texts = Vec::new();
    for (language, tokens) in languages {
        // Windows of seqlen - 1 text tokens (the `</s>` completes seqlen), as the study's cells calibrate.
        let windows = text_windows(&tokens, eos, params.error_seqlen, params.error_windows);
        if windows.is_empty() {
            return Err(too_little_text(language, params.error_seqlen));
        }
        let sequences: Vec<Vec<u32>> = windows.iter().map(|w| w[1..].iter().copied().chain(std::iter::once(eos)).collect()).collect();
        texts.push((language, sequences));
    }
    progress.stage("layer error (encoder and decoder)", texts.len() as u64);
    let rows = seq2seq_error_grid(folder, &texts, candidates, &cmp.runtime, |k| {
        progress.advance(k as u64);
    });
    progress.finish();
    rows
}

fn decoder_error(
    dense: &ModelDir,
    cmp: &ModelComparison,
    params: &AnalysisParams,
    candidates: &[Candidate],
    progress: &mut dyn Progress,
) -> Result<Vec<LayerError>, AnalysisError> {
    let tokenizer = dense.tokenizer()?;
    let start = dense.calibration_start_token()?;
    let seqlen = params.error_seqlen.min(dense.card.max_positions);
    let mut texts = Vec::new();
    for (language, tokens) in evaluation_tokens(&tokenizer, cmp)? {
        let windows = text_windows(&tokens, start, seqlen, params.error_windows);
        if windows.is_empty() {
            return Err(too_little_text(language, seqlen));
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
    let rows = error_grid(dense, &texts, candidates, &capture, |language, k| {
        progress.detail(&format!("layer error on {language}"));
        progress.advance(k as u64);
    });
    progress.finish();
    rows
}

/// Share of the sentence ids whose translations are all held apart for testing the probes.
pub const PROBE_TEST_SHARE: f64 = 0.3;
/// Seed of the id shuffle that picks them.
pub const PROBE_SPLIT_SEED: u64 = 0;

/// The SIB-200 test sentences every language has, with their topics, grouped by language:
/// all of them, or `n` drawn with a fixed seed (the files are sorted by topic, so the first `n`
/// would be one or two topics).
fn topic_sentences(
    model: &ModelFolder,
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
    Ok((tokenize_for(model, &triples)?, topics))
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
    let blocks = if params.layers.is_empty() { (0..probed_blocks(&dense)).collect() } else { params.layers.clone() };
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
    let section = with_states_note(probes_section(&language, &topic, &clusters, &pca, &explained, chance), &dense);
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
