//! Multilingual downstream tasks: data, prompts, scoring and download.
//!
//! After pruning, polyprune asks whether a model still *does* things in each language,
//! not only whether its perplexity held. This module turns published multilingual
//! benchmarks into requests for the model and judges the answers, in the manner of
//! lm-evaluation-harness (Gao et al., 2021) but independent of it:
//!
//! * tasks are data (`tasks/tasks.toml`, embedded): output type, metrics, file layout,
//!   prompt templates and per-language words (`spec.rs`, its serde shape in `schema.rs`, the
//!   shared names in `kinds.rs`); language names and codes come from the project's one
//!   language table (`crate::data::Language`), and SIB-200/FLORES take any FLORES-200
//!   language whose folder the data directory has;
//! * each format family implements one trait (`Family`, registered in `family.rs`) that turns its records
//!   into [`Example`]s of scored [`Choice`]s (context, continuation), or
//!   [`GenerationExample`]s; `load.rs` resolves the language, asks the registry for the
//!   family and adds shots, and family files see only `context.rs`, so no module cycle;
//! * k-shot demonstrations are drawn reproducibly from a dev split (`fewshot.rs`);
//! * `scoring.rs` turns the model's log-likelihoods or generations into per-example
//!   records and mean ± standard error per metric;
//! * `fetch.rs` downloads the public data sets with pinned SHA-256 digests.
//!
//! The model side is not here: for each choice the caller computes the summed
//! log-likelihood of `continuation()` given `context()` (the continuation starts with
//! the task's target delimiter, usually a space), and for generation the text produced
//! from `request.context` until one of `request.until`.
//!
//! Tasks: XCOPA, XWinograd (partial scoring), SIB-200, translation choice on Tatoeba or
//! FLORES-200, MGSM (generation) with files fetched from their public sources; XNLI,
//! XStoryCloze, PAWS-X, Belebele and translated ARC/MMLU/HellaSwag from files users
//! bring in the published formats.

pub mod answer;
mod belebele;
mod context;
pub mod error;
pub mod example;
mod family;
pub mod fetch;
mod fewshot;
mod hellaswag;
mod kinds;
pub mod language;
pub mod load;
mod mcqa;
mod mgsm;
mod pawsx;
pub mod prompts;
pub mod records;
mod schema;
pub mod scoring;
mod sib200;
pub mod spec;
pub mod suggest;
pub mod template;
mod translation;
mod xcopa;
mod xnli;
mod xstorycloze;
mod xwinograd;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod real_data_tests;

pub use error::{Result, TaskError};
pub use example::{Choice, Example, GenerationExample, GenerationRequest, TaskItems};
pub use fetch::{default_data_dir, fetch, FetchOptions, FetchReport, MIRROR_ENV};
pub use language::{FloresCode, LanguageEntry, TaskLanguage};
pub use load::{load, load_file, LoadOptions, LoadedTask, ResolvedLanguage};
pub use scoring::{
    chance_level, score_choices, score_generation, summarize_choices, summarize_generations, summarize_task_choices,
    summarize_task_generations, ChoiceOutcome, ChoiceRecord, GenerationRecord, MetricSummary, TaskSummary,
};
pub use spec::{Catalog, Metric, OutputType, TaskName, TaskSpec, TaskSplit};
