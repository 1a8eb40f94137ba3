//! `polyprune analyze ...`: glue between the command line and `polyprune::analysis`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use polyprune::analysis::section::{Chart, ReportSection};
use polyprune::analysis::sections::{export_section, export_section_to, significance_section};
use polyprune::analysis::significance::{study_significance, Correction, TestSettings};
use polyprune::analysis::study::analyze_study;
use polyprune::analysis::workflow::{self, mask_overlap, AnalysisParams, ModelComparison};
use polyprune::stats::{Alpha, ComparisonConfig, Resamples, ResamplingConfig};
use polyprune::store::SectionDir;

use super::{runtime_options, spinner, Bars};
use crate::cli::{
    AnalyzeCommand, ComparedModelsArgs, ErrorArgs, MasksArgs, NeuronsArgs, ProbeArgs, ProbesArgs, SignificanceArgs, TestArgs,
};

pub fn run(cmd: AnalyzeCommand) -> Result<()> {
    match cmd {
        AnalyzeCommand::Masks(a) => masks(a),
        AnalyzeCommand::Subspace(a) => subspace(a),
        AnalyzeCommand::Neurons(a) => neurons(a),
        AnalyzeCommand::Error(a) => error(a),
        AnalyzeCommand::Significance(a) => significance(a),
        AnalyzeCommand::Probe(a) => probe(a),
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
    let sets = args.masks.iter().map(|s| labelled(s, "masks")).collect::<Result<Vec<_>>>()?;
    let a = mask_overlap(&sets)?;
    println!("{:<12} {:<12} {:>5} {:>9} {:>9}", "first", "second", "block", "kept IoU", "chance");
    for d in &a.depth {
        println!("{:<12} {:<12} {:>5} {:>9.4} {:>9.4}", d.first, d.second, d.block, d.kept_iou, d.chance_kept_iou);
    }
    let mut only_here: std::collections::BTreeMap<&str, u64> = Default::default();
    for u in &a.unique {
        *only_here.entry(u.label.as_str()).or_default() += u.kept_only_here;
    }
    for (label, n) in only_here {
        println!("kept by {label} only: {n}");
    }
    export(args.out.as_deref(), &a.section)
}

/// The command's `--model`, `--pruned` and `--langs` as the comparison the analyses run.
fn comparison(args: &ComparedModelsArgs) -> Result<ModelComparison> {
    Ok(ModelComparison {
        model: args.model.clone(),
        pruned: args.pruned.iter().map(|s| labelled(s, "--pruned")).collect::<Result<Vec<_>>>()?,
        languages: args.langs.clone(),
        flores: args.flores.clone(),
        runtime: runtime_options(&args.runtime)?,
    })
}

/// The parameters the flags set; the rest keep the defaults a study file would use.
fn params(args: &ProbeArgs) -> AnalysisParams {
    AnalysisParams { sentences: args.sentences, batch: args.batch, layers: args.layers.clone(), rank: args.rank, ..Default::default() }
}

fn subspace(args: ProbeArgs) -> Result<()> {
    let a = workflow::subspace(&comparison(&args.compared)?, &workflow::validated(params(&args))?, &mut Bars::default())?;
    println!(
        "{:<12} {:>5} {:>10} {:>10} {:>10} {:>8} {:>10} {:>10}",
        "model", "block", "lang var", "retrieval", "agnostic", "chance", "centroids", "max angle"
    );
    for s in &a.summaries {
        let angle = a
            .angles
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
    export(args.out.as_deref(), &a.section)
}

fn neurons(args: NeuronsArgs) -> Result<()> {
    let p = &args.probe;
    let params = AnalysisParams { filter_percentile: args.filter_percentile, entropy_fraction: args.entropy_fraction, ..params(p) };
    let a = workflow::neurons(&comparison(&p.compared)?, &workflow::validated(params)?, &mut Bars::default())?;
    let dense = &a.dense;
    println!("dense: threshold {:.4}, {} candidates, {} language-specific neurons", dense.threshold, dense.candidates, dense.neurons.len());
    for l in &a.languages {
        println!("  {l}: {}", dense.of_language(l).len());
    }
    println!("{:<12} {:<10} {:>6} {:>8} {:>7} {:>7} {:>9}", "pruned", "language", "dense", "survive", "vanish", "appear", "survival");
    for c in &a.changes {
        println!(
            "{:<12} {:<10} {:>6} {:>8} {:>7} {:>7} {:>9.3}",
            c.pruned, c.language, c.dense, c.survive, c.vanish, c.appear, c.survival_rate
        );
    }
    export(p.out.as_deref(), &a.section)
}

fn error(args: ErrorArgs) -> Result<()> {
    let p = &args.probe;
    let params = AnalysisParams { error_windows: args.windows, error_seqlen: args.seqlen, ..params(p) };
    let a = workflow::pruning_error(&comparison(&p.compared)?, &workflow::validated(params)?, &mut Bars::default())?;
    if let Some(Chart::Heatmap { rows: cal, columns: ev, values, .. }) = a.section.figures.first().map(|f| &f.chart) {
        println!("mean SNR over layers (dB), calibration (rows) x evaluation (columns)");
        println!("{:<12} {}", "", ev.iter().map(|e| format!("{e:>10}")).collect::<String>());
        for (c, row) in cal.iter().zip(values) {
            println!("{c:<12} {}", row.iter().map(|v| format!("{v:>10.3}")).collect::<String>());
        }
    }
    export(p.out.as_deref(), &a.section)
}

fn probe(args: ProbesArgs) -> Result<()> {
    if args.source != "flores" {
        bail!("--source {}: the probes need SIB-200's topic labels; use --source flores (with --flores DIR for another copy)", args.source);
    }
    let cmp = comparison(&args.compared)?;
    let params = AnalysisParams { batch: args.batch, layers: args.blocks.clone(), probe_sentences: args.sentences, ..Default::default() };
    let a = workflow::probes(&cmp, &workflow::validated(params)?, &mut Bars::default())?;
    println!(
        "{:<14} {:>5} {:>9} {:>17} {:>10} {:>10} {:>9} {:>9}",
        "model", "block", "lang acc", "95% CI", "topic in", "topic x", "ARI lang", "ARI topic"
    );
    for l in &a.language {
        let topic = |same: bool| {
            let v: Vec<f64> = a
                .topic
                .iter()
                .filter(|t| t.model == l.model && t.block == l.block && (t.train_language == t.test_language) == same)
                .map(|t| t.accuracy)
                .collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        let ari = |labels: &str| {
            a.clusters
                .iter()
                .find(|c| c.model == l.model && c.block == l.block && c.labels == labels && c.clusters == labels)
                .map_or(f64::NAN, |c| c.ari)
        };
        println!(
            "{:<14} {:>5} {:>9.3} {:>17} {:>10.3} {:>10.3} {:>9.3} {:>9.3}",
            l.model,
            l.block,
            l.accuracy,
            format!("[{:.3}, {:.3}]", l.ci_low, l.ci_high),
            topic(true),
            topic(false),
            ari("language"),
            ari("topic")
        );
    }
    export_section_to(&SectionDir::at(&args.out), &a.section)?;
    eprintln!("tables: {}", args.out.display());
    Ok(())
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
            let sections = analyze_study(&args.study, &settings)?.sections;
            eprintln!(
                "sections: {} under {}",
                sections.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", "),
                polyprune::store::StudyDir::new(&args.study).analysis(None).display()
            );
            Ok(())
        }
    }
}
