//! The analyses that need only a finished study's stored results (no model run): mask overlap
//! between calibration languages (and against the magnitude mask of the same sparsity) and the
//! significance tests. The study runner calls [`analyze_study`]; each section is also exported
//! under `<study>/analysis/<section id>/`.

use std::collections::BTreeMap;
use std::path::Path;

use super::masks::{by_depth, compare_all_pairs, unique_kept, MaskSet};
use super::section::ReportSection;
use super::sections::{export_section, masks_section, significance_section};
use super::significance::{read_study_cells, study_significance, ComparisonRow, StudyCell, TestSettings};
use super::AnalysisError;
use crate::prune::Method;
use crate::store::{SectionDir, StudyDir};

/// The mask sets of one condition (model, method, target, seed), by calibration, plus the
/// magnitude mask of the same model and target when the study has one. SparseGPT cells are left
/// out: SparseGPT also moves the weights it keeps, so its mask alone is not its model.
fn mask_groups(study: &StudyDir, cells: &[StudyCell]) -> Result<Vec<(String, Vec<MaskSet>)>, AnalysisError> {
    let has_masks = |c: &StudyCell| study.cell(&c.id).has_masks();
    let is_magnitude = |c: &StudyCell| matches!(c.method, Method::Magnitude { .. });
    let mut groups: BTreeMap<(String, String, String, Option<u64>), Vec<&StudyCell>> = BTreeMap::new();
    for c in cells.iter().filter(|c| has_masks(c) && !is_magnitude(c) && !matches!(c.method, Method::SparseGpt(_))) {
        groups.entry((c.model.clone(), c.method.name().to_string(), c.target.clone(), c.seed)).or_default().push(c);
    }
    let mut out = Vec::new();
    for ((model, method, target, _), members) in groups {
        let mut sets = members.iter().map(|c| MaskSet::read(&c.calibration, study.cell(&c.id).path())).collect::<Result<Vec<_>, _>>()?;
        let magnitude = cells.iter().find(|c| is_magnitude(c) && c.model == model && c.target == target && has_masks(c));
        if let Some(m) = magnitude {
            sets.push(MaskSet::read("magnitude", study.cell(&m.id).path())?);
        }
        if sets.len() >= 2 {
            out.push((format!("{model} {method} {target}{}", members[0].seed_label()), sets));
        }
    }
    Ok(out)
}

/// What [`analyze_study`] found: the sections, and the paired comparisons behind the
/// significance section (the report marks its tables with them).
#[derive(Debug, Default)]
pub struct StudyAnalyses {
    pub sections: Vec<ReportSection>,
    pub comparisons: Vec<ComparisonRow>,
}

/// Runs the stored-results analyses of `study`, exports their tables, and returns the sections
/// (mask overlap per condition, then significance, then what the model-running analyses left)
/// with the comparisons.
pub fn analyze_study(study: &Path, settings: &TestSettings) -> Result<StudyAnalyses, AnalysisError> {
    let dir = StudyDir::new(study);
    let cells = read_study_cells(&dir)?;
    let out = dir.analysis(None);
    let mut sections = Vec::new();
    let groups = mask_groups(&dir, &cells)?;
    if groups.is_empty() {
        sections.extend(stored_mask_sections(&dir)?);
    }
    let several = groups.len() > 1;
    for (i, (label, sets)) in groups.iter().enumerate() {
        let rows = compare_all_pairs(sets)?;
        let mut section = masks_section(&rows, &by_depth(&rows), &unique_kept(sets)?);
        if several {
            section.id = format!("masks-{}", i + 1);
            section.title = format!("{} ({label})", section.title);
        }
        export_section(&out, &section)?;
        sections.push(section);
    }
    let significance = study_significance(study, settings)?;
    let section = significance_section(&significance, settings.correction.as_str(), settings.alpha.value());
    export_section(&out, &section)?;
    sections.push(section);
    let sparsegpt_left_out = cells.iter().any(|c| matches!(c.method, Method::SparseGpt(_)));
    sections.extend(model_sections(&dir)?.into_iter().map(|s| with_sparsegpt_note(s, sparsegpt_left_out)));
    Ok(StudyAnalyses { sections, comparisons: significance.comparisons })
}

/// A study's model-running analyses see masks only, so its SparseGPT cells are not in their
/// pictures: the caption says why and how to add one, so a reader does not take the absence
/// for a result.
fn with_sparsegpt_note(mut section: ReportSection, sparsegpt_left_out: bool) -> ReportSection {
    if sparsegpt_left_out {
        section.caption.push_str(
            " SparseGPT cells are not shown: SparseGPT also moves the weights it keeps, and a study keeps masks, not weights; \
             compare a saved SparseGPT model (`prune --method sparsegpt --save DIR`) with `polyprune analyze ... --pruned label=DIR`.",
        );
    }
    section
}

/// The mask-overlap sections an earlier analysis of this study stored (`masks`, or `masks-1`,
/// `masks-2`, .. for several conditions), in their order. A results folder kept for readers
/// holds these and not the masks themselves (13 MB per Gemma 3 270M cell), and its report must
/// still show them.
fn stored_mask_sections(dir: &StudyDir) -> Result<Vec<ReportSection>, AnalysisError> {
    let root = dir.analysis(None);
    let Ok(entries) = std::fs::read_dir(&root) else { return Ok(Vec::new()) };
    let mut ids: Vec<(usize, String)> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| match name.strip_prefix("masks") {
            Some("") => Some((0, name)),
            Some(rest) => rest.strip_prefix('-')?.parse().ok().map(|n| (n, name)),
            None => None,
        })
        .collect();
    ids.sort();
    ids.into_iter().map(|(_, id)| SectionDir::new(&root, &id)).filter(|f| f.exists()).map(|f| Ok(f.read_section()?)).collect()
}

/// The sections the model-running analyses write during `study run`.
pub const MODEL_SECTIONS: [&str; 4] = ["subspace", "neurons", "pruning_error", "probes"];

/// Sections the model-running analyses (subspaces, neurons, pruning error, probes) exported under
/// `<study>/analysis/` during `study run`, or under `<study>/analysis/<model>/` for studies of
/// several models (titled with the model's name).
fn model_sections(dir: &StudyDir) -> Result<Vec<ReportSection>, AnalysisError> {
    let mut sections = Vec::new();
    for id in MODEL_SECTIONS {
        let files = SectionDir::new(&dir.analysis(None), id);
        if files.exists() {
            sections.push(files.read_section()?);
        }
    }
    for (model, folder) in dir.analysis_models()? {
        for id in MODEL_SECTIONS {
            let files = SectionDir::new(&folder, id);
            if files.exists() {
                let mut section: ReportSection = files.read_section()?;
                section.id = format!("{id}-{model}");
                section.title = format!("{} ({model})", section.title);
                sections.push(section);
            }
        }
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::section::{BarSeries, Chart, Figure, Table, TableCell};

    fn section(id: &str) -> ReportSection {
        ReportSection {
            id: id.into(),
            title: format!("{id} title"),
            caption: String::new(),
            figures: vec![Figure {
                caption: "f".into(),
                chart: Chart::Bars {
                    title: "b".into(),
                    labels: vec!["eng".into()],
                    series: vec![BarSeries { name: "s".into(), values: vec![2.0], lower: vec![f64::NAN], upper: vec![f64::NAN] }],
                    value_label: "v".into(),
                    chance: None,
                },
            }],
            tables: vec![Table {
                name: "t".into(),
                caption: "c".into(),
                columns: vec!["x".into(), "y".into()],
                rows: vec![vec![TableCell::Number(1.5), TableCell::Number(f64::NAN)]],
            }],
        }
    }

    /// What `study run` exported is read back in report order; a nested model folder gets its
    /// name in the id and title; other folders (masks, significance) are not model sections.
    #[test]
    fn model_sections_are_picked_up_from_the_analysis_folder() {
        let study = StudyDir::new(std::env::temp_dir().join(format!("polyprune-model-sections-{}", std::process::id())));
        let _ = std::fs::remove_dir_all(&study.root);
        let out = study.analysis(None);
        export_section(&out, &section("neurons")).unwrap();
        export_section(&out, &section("masks")).unwrap();
        export_section(&out.join("tiny"), &section("subspace")).unwrap();
        let found = model_sections(&study).unwrap();
        let ids: Vec<&str> = found.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["neurons", "subspace-tiny"]);
        assert_eq!(found[1].title, "subspace title (tiny)");
        // NaN is written as null (JSON has no NaN) and read back as NaN.
        assert!(matches!(found[0].tables[0].rows[0][0], TableCell::Number(x) if x == 1.5));
        assert!(matches!(found[0].tables[0].rows[0][1], TableCell::Number(x) if x.is_nan()));
        let Chart::Bars { series, .. } = &found[0].figures[0].chart else { panic!("bars") };
        assert!(series[0].values == [2.0] && series[0].lower[0].is_nan());
        // Without masks in the cells, the stored mask sections come back, numbered ones in order.
        export_section(&out, &section("masks-10")).unwrap();
        export_section(&out, &section("masks-2")).unwrap();
        let stored = stored_mask_sections(&study).unwrap();
        assert_eq!(stored.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["masks", "masks-2", "masks-10"]);
        std::fs::write(out.join("neurons/section.json"), "{").unwrap();
        assert!(model_sections(&study).unwrap_err().to_string().contains("neurons"));
        let _ = std::fs::remove_dir_all(&study.root);
    }
}
