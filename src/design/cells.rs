//! The grid expanded into cells: one pruned model each (model x method x target x calibration
//! set x seed), plus one dense baseline per model. A cell's id is derived from its content
//! alone (readable prefix + a hash of the full description), so the same cell has the same id
//! in every run, shard and config that contains it: what makes resume and merge safe.

use serde::{Deserialize, Serialize};

use super::config::{CalibrationChoice, StudyConfig};
use crate::calibrate::{CalibrationSpec, CaptureMode};
use crate::prune::{Method, Pattern, Sparsity, SparsityTarget};

/// One pruned model to build and measure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub id: String,
    /// The model's name in the study file.
    pub model: String,
    pub method: Method,
    pub pattern: Pattern,
    /// The requested sparsity (N/M for N:M patterns).
    pub sparsity: f64,
    /// `None` for methods that need no data (Magnitude). Written as `null`, and required when
    /// read back (a record without it was not written by this version).
    #[serde(deserialize_with = "Option::deserialize")]
    pub calibration: Option<CalibrationChoice>,
    /// The calibration draw's seed; `None` when there is no calibration (required like `calibration`).
    #[serde(deserialize_with = "Option::deserialize")]
    pub seed: Option<u64>,
    pub mode: CaptureMode,
}

/// The dense model's measurements, shared by every cell of that model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DenseBaseline {
    pub id: String,
    pub model: String,
}

impl DenseBaseline {
    pub fn for_model(model: &str) -> DenseBaseline {
        DenseBaseline { id: format!("dense-{model}"), model: model.to_string() }
    }
}

impl Cell {
    pub fn target(&self) -> SparsityTarget {
        match self.pattern {
            Pattern::NM(nm) => SparsityTarget::NM(nm),
            // Built from a checked config; a sparsity outside [0, 1) cannot reach here.
            Pattern::Unstructured => SparsityTarget::Unstructured(Sparsity::new(self.sparsity).expect("sparsity checked by the config")),
        }
    }

    /// The calibration set to draw, with this cell's seed.
    pub fn calibration_spec(&self) -> Option<CalibrationSpec> {
        let c = self.calibration.as_ref()?;
        Some(CalibrationSpec {
            languages: c.languages.clone(),
            mix: c.mix.clone(),
            samples: c.samples,
            seqlen: c.seqlen,
            seed: self.seed.unwrap_or(0),
            source: c.source.clone(),
        })
    }

    /// What cells share a calibration set (and could share its statistics): same model, set and seed.
    pub fn calibration_key(&self) -> Option<(String, String, u64)> {
        let c = self.calibration.as_ref()?;
        Some((self.model.clone(), serde_json::to_string(c).unwrap_or_default(), self.seed.unwrap_or(0)))
    }

    /// A short label for tables: `wanda u50 deu_Latn s0`.
    pub fn label(&self) -> String {
        let calib = self.calibration.as_ref().map(|c| c.languages_label()).unwrap_or_else(|| "-".into());
        let seed = self.seed.map(|s| format!(" s{s}")).unwrap_or_default();
        format!("{} {} {calib}{seed}", self.method.name(), target_tag(self.pattern, self.sparsity))
    }
}

/// `u50` for 50% unstructured, `2of4` for 2:4.
pub fn target_tag(pattern: Pattern, sparsity: f64) -> String {
    match pattern {
        Pattern::Unstructured => format!("u{}", trim_float(sparsity * 100.0)),
        Pattern::NM(nm) => format!("{}of{}", nm.n(), nm.m()),
    }
}

fn trim_float(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Everything a cell's results depend on, hashed: the id's suffix.
fn content_hash(cell: &Cell, model_path: &str, include: &[String], exclude: &[String]) -> String {
    let content = serde_json::json!({
        "model": cell.model, "model_path": model_path, "method": cell.method, "pattern": cell.pattern,
        "sparsity": cell.sparsity, "calibration": cell.calibration, "seed": cell.seed, "mode": cell.mode,
        "include": include, "exclude": exclude,
    });
    crate::util::sha256_bytes(content.to_string().as_bytes())[..8].to_string()
}

fn cell_id(cell: &Cell, hash: &str) -> String {
    let calib = cell.calibration.as_ref().map(|c| c.languages_label()).unwrap_or_else(|| "nocalib".into());
    let seed = cell.seed.map(|s| format!("-s{s}")).unwrap_or_default();
    let raw = format!("{}-{}-{calib}{seed}-{hash}", cell.method.name(), target_tag(cell.pattern, cell.sparsity));
    // Folder-safe: mixtures keep '+', weights become '_'.
    raw.chars().map(|c| if c.is_ascii_alphanumeric() || "-_+.".contains(c) { c } else { '_' }).collect()
}

/// The expanded grid: cells in run order (grouped by model, then calibration set and seed, so a
/// set is drawn once and the runner can hand all its cells to one capture), and the baselines.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Grid {
    pub cells: Vec<Cell>,
    pub dense: Vec<DenseBaseline>,
}

impl Grid {
    pub fn expand(config: &StudyConfig) -> Grid {
        let mut cells = Vec::new();
        for model in &config.models {
            let path = model.path.display().to_string();
            let mut push = |method: &Method, target: SparsityTarget, calibration: Option<&CalibrationChoice>, seed: Option<u64>| {
                let mut cell = Cell {
                    id: String::new(),
                    model: model.name.clone(),
                    method: *method,
                    pattern: target.pattern(),
                    sparsity: target.sparsity(),
                    calibration: calibration.cloned(),
                    seed,
                    mode: config.mode,
                };
                cell.id = cell_id(&cell, &content_hash(&cell, &path, &config.include, &config.exclude));
                cells.push(cell);
            };
            let (free, calibrated): (Vec<&Method>, Vec<&Method>) =
                config.methods.iter().partition(|m| m.statistics_need() == crate::prune::StatisticsNeed::None);
            for method in free {
                for &target in &config.targets {
                    push(method, target, None, None);
                }
            }
            if let Some(grid) = &config.calibration {
                for set in &grid.sets {
                    for &seed in &config.seeds {
                        for method in &calibrated {
                            for &target in &config.targets {
                                push(method, target, Some(set), Some(seed));
                            }
                        }
                    }
                }
            }
        }
        let dense = config.models.iter().map(|m| DenseBaseline::for_model(&m.name)).collect();
        Grid { cells, dense }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::config::tests::parse_ok;

    const GRID: &str = r#"
[study]
name = "t"
seeds = [0, 42]
[[models]]
name = "m"
path = "models/m"
[pruning]
methods = ["magnitude", "wanda", "sparsegpt"]
sparsities = [0.5]
patterns = ["unstructured", "2:4"]
[calibration]
source = "udhr"
samples = 8
seqlen = 64
sets = [{ languages = ["eng_Latn"] }, { languages = ["deu_Latn", "eng_Latn"], mix = "weights:1,3" }]
[perplexity]
languages = ["eng_Latn"]
source = "udhr"
"#;

    #[test]
    fn the_grid_has_one_cell_per_combination_and_magnitude_needs_no_seed() {
        let grid = Grid::expand(&parse_ok(GRID));
        // Magnitude: 2 targets. Wanda and SparseGPT: 2 sets x 2 seeds x 2 targets each.
        assert_eq!(grid.cells.len(), 2 + 2 * 2 * 2 * 2);
        assert_eq!(grid.dense, vec![DenseBaseline::for_model("m")]);
        let magnitude: Vec<&Cell> = grid.cells.iter().filter(|c| c.method.name() == "magnitude").collect();
        assert!(magnitude.iter().all(|c| c.seed.is_none() && c.calibration.is_none()));
        let ids: std::collections::BTreeSet<&str> = grid.cells.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids.len(), grid.cells.len(), "ids are unique");
        assert!(grid.cells.iter().any(|c| c.id.starts_with("wanda-u50-eng_Latn-s0-")), "{ids:?}");
        assert!(grid.cells.iter().any(|c| c.id.starts_with("sparsegpt-2of4-deu_Latn+eng_Latn_1_3_-s42-")), "{ids:?}");
        // Cells sharing a calibration set and seed are adjacent (one draw per group).
        let keys: Vec<_> = grid.cells.iter().filter_map(|c| c.calibration_key()).collect();
        let mut groups = keys.clone();
        groups.dedup();
        assert_eq!(groups.len(), 4);
    }

    #[test]
    fn ids_depend_on_content_not_on_the_rest_of_the_grid() {
        let full = Grid::expand(&parse_ok(GRID));
        let smaller = Grid::expand(&parse_ok(&GRID.replace("seeds = [0, 42]", "seeds = [42]").replace("\"magnitude\", ", "")));
        for cell in &smaller.cells {
            let twin = full.cells.iter().find(|c| c.id == cell.id).expect("same cell, same id");
            assert_eq!(twin, cell);
        }
    }
}
