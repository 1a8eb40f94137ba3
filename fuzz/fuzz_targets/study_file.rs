//! The study file (`study.toml`) on arbitrary text: parsed and checked, its report section read
//! alone (as `report` does), and the grid of cells it expands to.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use polyprune::data::TextRegistry;
use polyprune::design::cells::Grid;
use polyprune::design::config::{ReportPlan, StudyConfig};

fn registry() -> &'static TextRegistry {
    static REGISTRY: OnceLock<TextRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| polyprune::eval::registry(None))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new("fuzz/study.toml");
    let _ = ReportPlan::from_study_file(text, path);
    if let Ok(config) = StudyConfig::parse(text, path, registry()) {
        let grid = Grid::expand(&config);
        let _ = grid;
    }
});
