//! What a family loader is given: the catalogue entry, the resolved language(s), the split, and
//! where to read. It sits apart from `load.rs` so that family files depend on it and `load.rs`
//! depends on the families, without a cycle.

use std::path::{Path, PathBuf};

use super::error::Result;
use super::kinds::TaskSplit;
use super::language::TaskLanguage;
use super::records::DataFile;
use super::spec::{Catalog, TaskSpec};

/// The language(s) a task was loaded for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ResolvedLanguage {
    /// One language.
    Single {
        /// The language.
        language: TaskLanguage,
    },
    /// A translation pair, source first.
    Pair {
        /// Language of the sentence shown.
        source: TaskLanguage,
        /// Language of the candidates.
        target: TaskLanguage,
    },
}

impl ResolvedLanguage {
    /// A short label: the FLORES code, or "source-target".
    pub fn label(&self) -> String {
        match self {
            ResolvedLanguage::Single { language } => language.flores.to_string(),
            ResolvedLanguage::Pair { source, target } => {
                format!("{}-{}", source.flores, target.flores)
            }
        }
    }

    /// The code used in example ids: file code, or "source-target" file codes.
    pub(super) fn id_code(&self) -> String {
        match self {
            ResolvedLanguage::Single { language } => language.code.clone(),
            ResolvedLanguage::Pair { source, target } => format!("{}-{}", source.code, target.code),
        }
    }
}

/// What a family loader gets: where to read and for what.
pub(super) struct Ctx<'a> {
    pub catalog: &'a Catalog,
    pub spec: &'a TaskSpec,
    pub language: &'a ResolvedLanguage,
    pub split: TaskSplit,
    pub data_dir: &'a Path,
    /// File to read for single-language tasks (the layout's, or the user's own).
    pub file: Option<PathBuf>,
    pub seed: u64,
}

impl Ctx<'_> {
    /// The single language (pair tasks never ask for it).
    pub fn single(&self) -> &TaskLanguage {
        match self.language {
            ResolvedLanguage::Single { language } => language,
            ResolvedLanguage::Pair { .. } => {
                panic!("pair task {} asked for a single language", self.spec.name)
            }
        }
    }

    /// The data file of a single-language task.
    pub fn data_file(&self) -> Result<DataFile> {
        let path = match &self.file {
            Some(path) => path.clone(),
            None => self.data_dir.join(self.spec.file_for(self.split, &self.single().code)?),
        };
        Ok(DataFile::new(path, self.spec.name))
    }

    /// A data file from the layout for another language code or template.
    pub fn layout_file(&self, relative: String) -> DataFile {
        DataFile::new(self.data_dir.join(relative), self.spec.name)
    }

    /// An example id: task/language/split/key.
    pub fn id(&self, key: impl std::fmt::Display) -> String {
        format!("{}/{}/{}/{key}", self.spec.name, self.language.id_code(), self.split)
    }
}
