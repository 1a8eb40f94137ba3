//! The shape of `tasks/tasks.toml`, as serde types.
//!
//! Every task section has the same common fields (flattened from [`Common`]), a
//! `languages` table whose entries carry the FLORES code plus the words that family's
//! prompt needs, and a few family fields. Unknown keys in language entries are refused,
//! so a misspelt word name fails when the catalogue loads.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::kinds::{Metric, OutputType, TaskSplit};
use super::language::FloresCode;
use super::template::Template;

/// Fields every task section has.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Common {
    pub description: String,
    pub output: OutputType,
    pub metrics: Vec<Metric>,
    pub target_delimiter: String,
    pub fewshot_separator: String,
    #[serde(default)]
    pub fewshot_split: Option<TaskSplit>,
    pub files: BTreeMap<TaskSplit, String>,
}

/// A task section: common fields, a languages table of `L`, and family fields `X`.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Section<L, X> {
    #[serde(flatten)]
    pub common: Common,
    #[serde(default = "BTreeMap::new")]
    pub languages: BTreeMap<String, L>,
    #[serde(flatten)]
    pub extra: X,
}

/// A language entry with no words, only its FLORES code.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Plain {
    pub flores: FloresCode,
}

/// XCOPA's connectors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct XcopaWords {
    pub flores: FloresCode,
    pub cause: String,
    pub effect: String,
}

/// MGSM's question and answer prefixes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MgsmWords {
    pub flores: FloresCode,
    pub question_prefix: String,
    pub answer_prefix: String,
}

/// XNLI's tag question and answer words.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct XnliWords {
    pub flores: FloresCode,
    pub tag: String,
    pub yes: String,
    pub also: String,
    pub no: String,
}

/// PAWS-X's tag question and answer words.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PawsxWords {
    pub flores: FloresCode,
    pub tag: String,
    pub yes: String,
    pub no: String,
}

/// No family-specific fields.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct NoExtra {}

/// SIB-200's label file and prompt.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Sib200Extra {
    pub labels_file: String,
    pub template: Template,
    /// Any language of the language table, its file found by FLORES code in the data folder.
    pub any_flores_language: bool,
}

/// Translation-choice settings.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct TranslationExtra {
    pub choices: usize,
    pub template: Template,
    #[serde(default)]
    pub english_file: Option<String>,
    /// Pairs of any two languages of the language table (FLORES), not only listed ones.
    #[serde(default)]
    pub any_flores_language: bool,
}

/// Generation settings.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct MgsmExtra {
    pub max_new_tokens: usize,
}

/// Belebele prompt.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct BelebeleExtra {
    pub template: Template,
    pub letters: Vec<String>,
    pub any_flores_language: bool,
}

/// Translated ARC/MMLU prompt.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct McqaExtra {
    pub template: Template,
    pub score_letters: bool,
    pub any_short_language: bool,
}

/// Translated HellaSwag settings.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct HellaswagExtra {
    pub any_short_language: bool,
}

/// The whole of tasks.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CatalogFile {
    pub xcopa: Section<XcopaWords, NoExtra>,
    pub xwinograd: Section<Plain, NoExtra>,
    pub sib200: Section<Plain, Sib200Extra>,
    pub tatoeba: Section<Plain, TranslationExtra>,
    pub flores: Section<Plain, TranslationExtra>,
    pub mgsm: Section<MgsmWords, MgsmExtra>,
    pub xnli: Section<XnliWords, NoExtra>,
    pub xstorycloze: Section<Plain, NoExtra>,
    pub pawsx: Section<PawsxWords, NoExtra>,
    pub belebele: Section<Plain, BelebeleExtra>,
    pub m_arc: Section<Plain, McqaExtra>,
    pub m_mmlu: Section<Plain, McqaExtra>,
    pub m_hellaswag: Section<Plain, HellaswagExtra>,
}

/// Language entries of every family carry a FLORES code.
pub(super) trait HasFlores {
    fn flores(&self) -> &FloresCode;
}

macro_rules! has_flores {
    ($($t:ty),*) => {$(
        impl HasFlores for $t {
            fn flores(&self) -> &FloresCode {
                &self.flores
            }
        }
    )*};
}
has_flores!(Plain, XcopaWords, MgsmWords, XnliWords, PawsxWords);
