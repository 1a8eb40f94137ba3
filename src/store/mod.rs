//! The one module that knows where results live on disk and what each file holds.
//!
//! Every writer and every reader of a results folder goes through here, so a file's name, its
//! place and its columns are decided once (criterion's `fs.rs` does this for its benchmarks).
//! Each file has one owned row or record type that both serialises and deserialises it: what
//! `eval ppl` writes is what `check`, the analyses and the report read back. Reading is typed and
//! strict: a missing or malformed field is a [`StoreError`] that names the file, the field and
//! how to fix it, never a silent default. Every write is atomic ([`crate::util::write_atomic`]).
//!
//! ```text
//! <results>/ppl/<unix time>-<label>/      eval ppl    documents.csv, summary.csv, provenance.json
//! <results>/tasks/<unix time>-<label>/    eval tasks  examples.csv, choices.csv, summary.csv, provenance.json
//! <results>/prune/<unix time>-<label>/    prune       sparsity.csv, calibration_manifest.csv, provenance.json
//! <results>/gate/<unix time>-<label>/     gate        gate.json, tasks/ and ppl/ as above (the examples used)
//!
//! <study>/study.json                      the expanded plan (StudyRecord)
//! <study>/config.toml                     the study file as given
//! <study>/cells/<id>/cell.json            status, timings, provenance (UnitRecord)
//! <study>/cells/<id>/sparsity.csv, calibration_manifest.csv, masks/, ppl/, tasks/
//! <study>/dense/<model>/dense.json, ppl/, tasks/
//! <study>/analysis/[<model>/]<section>/   section.json, <table>.csv, <table>.json
//! <study>/advice/<model>/                 `[advice]`: advice.json, advice.csv, search.csv,
//!                                          study_advice.json (what ran, written last)
//! <study>/report/                         the report's table exports
//! ```

mod io;
mod records;
mod rows;
mod run;
mod study;
#[cfg(test)]
mod tests;

pub use io::StoreError;
pub use records::{
    ComparisonDecision, Decisions, EvaluationRecord, Machine, MachineRecord, PerplexitySettings, Provenance, SetDecisions, StageTimings,
    StudyRecord, TaskSettings, UnitRecord, UnitStatus,
};
pub use rows::{
    CalibrationManifestRow, ChoiceRow, DocumentRow, ExampleKind, ExampleRow, PerplexitySummaryRow, SparsityRow, TaskSummaryRow,
};
pub use run::{
    find_score_files, new_run, read_provenance_beside, read_scores, run_free_path, unix_now, GateDir, PerplexityDir, ResultsDir, RunKind,
    Scores, SectionDir, TasksDir,
};
pub use study::{StudyDir, StudyResults, Unit, UnitResults};
