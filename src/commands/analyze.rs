//! `polyprune analyze ...`: glue between the command line and `polyprune::analysis`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use polyprune::analysis::masks::{by_depth, compare_all_pairs, unique_kept, MaskSet};
use polyprune::analysis::neurons::{compare, lape, protection, LapeParams};
use polyprune::analysis::probe::{probe, tokenize, ProbeOptions, ProbeResult, ProbeSentence};
use polyprune::analysis::pruning_error::{error_grid, text_windows, Candidate};
use polyprune::analysis::section::ReportSection;
use polyprune::analysis::sections::{
    error_section, export_section, masks_section, neurons_section, significance_section, subspace_section,
};
use polyprune::analysis::significance::{study_significance, Correction, TestSettings};
use polyprune::analysis::study::analyze_study;
use polyprune::analysis::subspace::{language_subspace, principal_angles, summarise};
use polyprune::calibrate::{CalibrationSet, CalibrationSpec, CaptureMode, CaptureOptions, Mix};
use polyprune::data::Language;
use polyprune::model::ModelDir;
use polyprune::runtime::WeightOverride;
use polyprune::stats::{Alpha, ComparisonConfig, Resamples, ResamplingConfig};

use super::{bar, runtime_options, spinner};
use crate::cli::{AnalyzeCommand, ErrorArgs, MasksArgs, NeuronsArgs, ProbeArgs, SignificanceArgs, TestArgs};

pub fn run(cmd: AnalyzeCommand) -> Result<()> {
    match cmd {
        AnalyzeCommand::Masks(a) => masks(a),
        AnalyzeCommand::Subspace(a) => subspace(a),
        AnalyzeCommand::Neurons(a) => neurons(a),
        AnalyzeCommand::Error(a) => error(a),
        AnalyzeCommand::Significance(a) => significance(a),
    }
}

pub fn test_settings(args: &TestArgs) -> Result<TestSettings> {
    let correction = match args.correction.to_ascii_lowercase().as_str() {
        "holm" => Correction::Holm,
        "bh" | "benjamini-hochberg" | "fdr" => Correction::BenjaminiHochberg,
        other => bail!("--correction {other}: expected holm or bh"),
    };
    let alpha = Alpha::new(args.alpha).with_context(|| format!("--alpha {}", args.alpha))?;
    let resamples = Resamples::new(args.resamples).with_context(|| format!("--resamples {}", args.resamples))?;
    let comparison = ComparisonConfig { resampling: ResamplingConfig { resamples, seed: args.seed }, ..Default::default() };
    Ok(TestSettings { comparison, alpha, correction })
}

/// `label=folder`.
fn labelled(spec: &str, flag: &str) -> Result<(String, PathBuf)> {
    let (label, dir) = spec.split_once('=').with_context(|| format!("{flag} {spec}: expected label=folder, e.g. eng=pruned/wanda-eng"))?;
    if label.is_empty() || dir.is_empty() {
        bail!("{flag} {spec}: expected label=folder, e.g. eng=pruned/wanda-eng");
    }
    Ok((label.to_string(), PathBuf::from(dir)))
}

fn export(out: Option<&Path>, section: &ReportSection) -> Result<()> {
    if let Some(out) = out {
        export_section(out, section)?;
        eprintln!("tables: {}", out.join(&section.id).display());
    }
    Ok(())
}

fn masks(args: MasksArgs) -> Result<()> {
    let sets = args
        .masks
        .iter()
        .map(|s| {
            let (label, dir) = labelled(s, "masks")?;
            Ok(MaskSet::read(&label, &dir)?)
        })
        .collect::<Result<Vec<_>>>()?;
    let rows = compare_all_pairs(&sets)?;
    let depth = by_depth(&rows);
    let unique = unique_kept(&sets)?;
    println!("{:<12} {:<12} {:>5} {:>9} {:>9}", "first", "second", "block", "kept IoU", "chance");
    for d in &depth {
        println!("{:<12} {:<12} {:>5} {:>9.4} {:>9.4}", d.first, d.second, d.block, d.kept_iou, d.chance_kept_iou);
    }
    let section = masks_section(&rows, &depth, &unique);
    for t in section.tables.iter().filter(|t| t.name == "mask_unique_kept") {
        for r in &t.rows {
            println!("kept by {} only: {}", cell(&r[0]), cell(&r[1]));
        }
    }
    export(args.out.as_deref(), &section)
}

fn cell(c: &polyprune::analysis::section::TableCell) -> String {
    match c {
        polyprune::analysis::section::TableCell::Number(x) => format!("{x}"),
        polyprune::analysis::section::TableCell::Text(s) => s.clone(),
    }
}

/// A model to probe: the dense one, a saved pruned folder, or the dense one with masks.
struct Variant {
    label: String,
    model: ModelDir,
    overrides: Vec<WeightOverride>,
}

fn variants(args: &ProbeArgs) -> Result<(ModelDir, Vec<Variant>)> {
    let dense = ModelDir::open(&args.model)?;
    let mut out = vec![Variant { label: "dense".into(), model: dense.clone(), overrides: Vec::new() }];
    for spec in &args.pruned {
        let (label, dir) = labelled(spec, "--pruned")?;
        if dir.join("model.onnx").is_file() {
            out.push(Variant { label, model: ModelDir::open(&dir)?, overrides: Vec::new() });
        } else {
            let overrides = polyprune::pruning::overrides_from_mask_dir(&dense, &dir)?;
            out.push(Variant { label, model: dense.clone(), overrides });
        }
    }
    Ok((dense, out))
}

/// The first `n` test sentences that every language has, grouped by language.
fn parallel_sentences(model: &ModelDir, args: &ProbeArgs) -> Result<Vec<ProbeSentence>> {
    if args.langs.len() < 2 {
        bail!("--langs: give at least two languages to compare");
    }
    let sets = polyprune::eval::evaluation_sets(&args.langs, Some("flores"), &polyprune::eval::registry(args.flores.as_deref()))?;
    let common: BTreeSet<&String> =
        sets[0].documents.iter().map(|(id, _)| id).filter(|id| sets.iter().all(|s| s.documents.iter().any(|(j, _)| j == *id))).collect();
    let ids: Vec<&String> = sets[0].documents.iter().map(|(id, _)| id).filter(|id| common.contains(id)).take(args.sentences).collect();
    if ids.len() < 2 {
        bail!("--langs {}: fewer than two parallel sentences in common; check the FLORES folder (--flores)", args.langs.join(","));
    }
    let mut triples = Vec::new();
    for s in &sets {
        for id in &ids {
            let text = &s.documents.iter().find(|(j, _)| j == *id).expect("common").1;
            triples.push((s.language.clone(), (*id).clone(), text.clone()));
        }
    }
    let tokenizer = tokenizers::Tokenizer::from_file(model.tokenizer_path())
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", model.tokenizer_path().display()))?;
    Ok(tokenize(model, &tokenizer, &triples)?)
}

fn run_probe(v: &Variant, sentences: &[ProbeSentence], opts: &ProbeOptions) -> Result<ProbeResult> {
    let blocks = v.model.card.blocks as u64;
    let pb = bar(blocks, &format!("probe {}", v.label));
    let r = probe(&v.model, sentences, &v.overrides, opts, |k| pb.set_position(k as u64))?;
    pb.finish_and_clear();
    Ok(r)
}

fn probe_options(args: &ProbeArgs, model: &ModelDir, activity: bool) -> Result<ProbeOptions> {
    let layers = if args.layers.is_empty() && !activity { vec![model.card.blocks / 2] } else { args.layers.clone() };
    Ok(ProbeOptions { layers, activity, batch: args.batch, runtime: runtime_options(&args.runtime)? })
}

pub(crate) fn subspace(args: ProbeArgs) -> Result<()> {
    let (dense, variants) = variants(&args)?;
    let sentences = parallel_sentences(&dense, &args)?;
    let opts = probe_options(&args, &dense, false)?;
    let rank = args.rank.unwrap_or(args.langs.len() - 1);
    let mut summaries = Vec::new();
    let mut languages = Vec::new();
    let mut angles = Vec::new();
    let mut dense_bases = std::collections::BTreeMap::new();
    for v in &variants {
        let result = run_probe(v, &sentences, &opts)?;
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
    println!(
        "{:<12} {:>5} {:>10} {:>10} {:>10} {:>8} {:>10} {:>10}",
        "model", "block", "lang var", "retrieval", "agnostic", "chance", "centroids", "max angle"
    );
    for s in &summaries {
        let angle = angles
            .iter()
            .find(|(m, _)| m == &s.model)
            .and_then(|(_, a)| a.iter().copied().reduce(f64::max))
            .map_or("".to_string(), |a| format!("{:.1} deg", a.to_degrees()));
        println!(
            "{:<12} {:>5} {:>10.4} {:>10.4} {:>10.4} {:>8.4} {:>10.3} {:>10}",
            s.model,
            s.layer,
            s.language_variance_share,
            s.retrieval,
            s.retrieval_agnostic,
            s.retrieval_chance,
            s.mean_centroid_distance,
            angle
        );
    }
    export(args.out.as_deref(), &subspace_section(&summaries, &languages, &angles))
}

pub(crate) fn neurons(args: NeuronsArgs) -> Result<()> {
    let params = LapeParams { filter_percentile: args.filter_percentile, entropy_fraction: args.entropy_fraction }.validated()?;
    let probe_args = &args.probe;
    let (dense, variants) = variants(probe_args)?;
    let sentences = parallel_sentences(&dense, probe_args)?;
    let opts = ProbeOptions { layers: Vec::new(), ..probe_options(probe_args, &dense, true)? };
    let mut results = Vec::new();
    for v in &variants {
        let counts = run_probe(v, &sentences, &opts)?.activity.context("the probe counted no activity")?;
        results.push((v.label.clone(), lape(&counts, params)?));
    }
    let langs: Vec<String> = sentences.iter().map(|s| s.language.clone()).fold(Vec::new(), |mut acc, l| {
        if !acc.contains(&l) {
            acc.push(l);
        }
        acc
    });
    let dense_result = &results[0].1;
    let mut changes = Vec::new();
    for (label, r) in &results[1..] {
        changes.extend(compare(label, dense_result, r, &langs));
    }
    let prot = protection(&changes);
    println!(
        "dense: threshold {:.4}, {} candidates, {} language-specific neurons",
        dense_result.threshold,
        dense_result.candidates,
        dense_result.neurons.len()
    );
    for l in &langs {
        println!("  {l}: {}", dense_result.of_language(l).len());
    }
    println!("{:<12} {:<10} {:>6} {:>8} {:>7} {:>7} {:>9}", "pruned", "language", "dense", "survive", "vanish", "appear", "survival");
    for c in &changes {
        println!(
            "{:<12} {:<10} {:>6} {:>8} {:>7} {:>7} {:>9.3}",
            c.pruned, c.language, c.dense, c.survive, c.vanish, c.appear, c.survival_rate
        );
    }
    export(probe_args.out.as_deref(), &neurons_section(dense_result, &langs, &changes, &prot))
}

pub(crate) fn error(args: ErrorArgs) -> Result<()> {
    let p = &args.probe;
    let dense = ModelDir::open(&p.model)?;
    if p.pruned.is_empty() {
        bail!("--pruned: give at least one pruned model or masks folder as label=folder");
    }
    let candidates = p
        .pruned
        .iter()
        .map(|s| {
            let (label, dir) = labelled(s, "--pruned")?;
            Ok(if dir.join("model.onnx").is_file() { Candidate::from_model(&label, &dir)? } else { Candidate::from_masks(&label, &dir)? })
        })
        .collect::<Result<Vec<_>>>()?;
    let tokenizer = tokenizers::Tokenizer::from_file(dense.tokenizer_path())
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dense.tokenizer_path().display()))?;
    let start = dense.card.start_token().unwrap_or(0);
    let seqlen = args.seqlen.min(dense.card.max_positions);
    let sets = polyprune::eval::evaluation_sets(&p.langs, Some("flores"), &polyprune::eval::registry(p.flores.as_deref()))?;
    let mut texts = Vec::new();
    for s in &sets {
        let tokens = s
            .documents
            .iter()
            .map(|(_, t)| {
                tokenizer
                    .encode(t.as_str(), false)
                    .map(|e| e.get_ids().to_vec())
                    .map_err(|e| anyhow::anyhow!("cannot tokenize {} text: {e}", s.language))
            })
            .collect::<Result<Vec<_>>>()?;
        let windows = text_windows(&tokens, start, seqlen, args.windows);
        if windows.is_empty() {
            bail!("{}: too little evaluation text for one window of {seqlen}; use a smaller --seqlen", s.language);
        }
        let spec = CalibrationSpec {
            languages: vec![Language::parse(&s.language)?],
            mix: Mix::Even,
            samples: windows.len(),
            seqlen,
            seed: 0,
            source: Some("flores".into()),
        };
        texts.push((s.language.clone(), CalibrationSet { spec, windows, manifest: Vec::new() }));
    }
    let capture = CaptureOptions { mode: CaptureMode::OneShot, batch: p.batch, runtime: runtime_options(&p.runtime)?, gram: true };
    let pb = bar(dense.card.blocks as u64, "layer error");
    let rows = error_grid(&dense, &texts, &candidates, &capture, |lang, k| {
        pb.set_message(format!("layer error on {lang}"));
        pb.set_position(k as u64);
    })?;
    pb.finish_and_clear();
    let section = error_section(&rows);
    if let Some(polyprune::analysis::section::Chart::Heatmap { rows: cal, columns: ev, values, .. }) =
        section.figures.first().map(|f| &f.chart)
    {
        println!("mean SNR over layers (dB), calibration (rows) x evaluation (columns)");
        println!("{:<12} {}", "", ev.iter().map(|e| format!("{e:>10}")).collect::<String>());
        for (c, row) in cal.iter().zip(values) {
            println!("{c:<12} {}", row.iter().map(|v| format!("{v:>10.3}")).collect::<String>());
        }
    }
    export(p.out.as_deref(), &section)
}

fn significance(args: SignificanceArgs) -> Result<()> {
    let settings = test_settings(&args.tests)?;
    let pb = spinner("paired tests");
    let s = study_significance(&args.study, &settings)?;
    pb.finish_and_clear();
    let significant: Vec<_> = s.comparisons.iter().filter(|r| r.significant).collect();
    println!(
        "{} comparisons, {} significant after {} at {}",
        s.comparisons.len(),
        significant.len(),
        settings.correction.as_str(),
        settings.alpha.value()
    );
    for r in &significant {
        println!(
            "  {}: {} - {} = {:+.5} ({}), p adj {:.4}",
            r.family,
            r.first,
            r.second,
            r.mean_difference,
            r.metric.as_str(),
            r.adjusted_p
        );
    }
    for r in &s.rankings {
        println!("Friedman {}: p = {:.4}, CD = {:.3}", r.group, r.friedman.p_value, r.nemenyi.critical_difference);
    }
    match &args.out {
        Some(out) => export(Some(out), &significance_section(&s, settings.correction.as_str(), settings.alpha.value())),
        None => {
            // Into the study itself, with the mask-overlap sections the study's masks allow.
            let sections = analyze_study(&args.study, &settings)?;
            eprintln!(
                "sections: {} under {}",
                sections.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", "),
                polyprune::store::StudyDir::new(&args.study).analysis(None).display()
            );
            Ok(())
        }
    }
}
