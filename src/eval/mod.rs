//! Measuring a model: language-modelling quality (`perplexity`) through one scoring path
//! (`scorer`), which every other evaluation reuses.

pub mod perplexity;
pub mod scorer;

pub use perplexity::{score_documents, DocumentScore, LanguageScore, WindowOptions};
pub use scorer::{Scorer, ScorerError};
