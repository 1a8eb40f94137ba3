//! Measuring a model: language-modelling quality (`perplexity`) and downstream tasks
//! (`choices`, `generate`, `downstream`), all through one scoring path (`scorer`).

pub mod choices;
pub mod downstream;
pub mod generate;
pub mod language_model;
pub mod perplexity;
pub mod scorer;
pub mod seq2seq;
pub mod seq2seq_tasks;
pub mod span_corruption;
pub mod text_sets;

pub use choices::{ChoiceStats, PreparedChoice, TaskEvalError};
pub use downstream::{combine, evaluate, limit_items, ResultPart, RunStats, TaskRecords, TaskResult};
pub use generate::{Generated, GenerationStats, StopReason};
pub use language_model::LanguageModel;
pub use perplexity::{score_documents, DocumentScore, LanguageScore, WindowOptions};
pub use scorer::{ScoredSequence, Scorer, ScorerError};
pub use text_sets::{evaluation_sets, evaluation_sets_limited, registry, score_sets, TextSet};
