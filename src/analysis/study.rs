//! The analyses that need only a finished study's stored results (no model run): mask overlap
//! between calibration languages (and against the magnitude mask of the same sparsity) and the
//! significance tests. The study runner calls [`analyze_study`]; each section is also exported
//! under `<study>/analysis/<section id>/`.

use std::collections::BTreeMap;
use std::path::Path;

use super::masks::{by_depth, compare_all_pairs, unique_kept, MaskSet};
use super::sections::{export_section, masks_section, significance_section};
use super::significance::{read_study_cells, study_significance, StudyCell, TestSettings};
use super::AnalysisError;
use crate::report::section::ReportSection;

/// The mask sets of one condition (model, method, target, seed), by calibration, plus the
/// magnitude mask of the same model, target and seed when the study has one.
fn mask_groups(study: &Path, cells: &[StudyCell]) -> Result<Vec<(String, Vec<MaskSet>)>, AnalysisError> {
    let has_masks = |c: &StudyCell| study.join("cells").join(&c.id).join("masks").join("index.json").is_file();
    let mut groups: BTreeMap<(String, String, String, u64), Vec<&StudyCell>> = BTreeMap::new();
    for c in cells.iter().filter(|c| has_masks(c) && !c.method.starts_with("magnitude") && !c.method.contains("sparsegpt")) {
        groups.entry((c.model.clone(), c.method.clone(), c.target.clone(), c.seed)).or_default().push(c);
    }
    let mut out = Vec::new();
    for ((model, method, target, seed), members) in groups {
        let mut sets = members
            .iter()
            .map(|c| MaskSet::read(&c.calibration, &study.join("cells").join(&c.id)))
            .collect::<Result<Vec<_>, _>>()?;
        let magnitude = cells.iter().find(|c| c.method == "magnitude" && c.model == model && c.target == target && has_masks(c));
        if let Some(m) = magnitude {
            sets.push(MaskSet::read("magnitude", &study.join("cells").join(&m.id))?);
        }
        if sets.len() >= 2 {
            out.push((format!("{model} {method} {target} seed {seed}"), sets));
        }
    }
    Ok(out)
}

/// Runs the stored-results analyses of `study`, exports their tables, and returns the sections
/// (mask overlap per condition, then significance).
pub fn analyze_study(study: &Path, settings: &TestSettings) -> Result<Vec<ReportSection>, AnalysisError> {
    let (cells, _) = read_study_cells(study)?;
    let out = study.join("analysis");
    let mut sections = Vec::new();
    let groups = mask_groups(study, &cells)?;
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
    Ok(sections)
}
