//! Loading a task: resolve the language, read the split, build examples, add k shots.
//!
//! This is the one entry point the rest of polyprune calls. It knows no family by name: the
//! family registry (`family.rs`) hands it the loader for a task, and the family files only
//! turn records into examples.

use std::path::{Path, PathBuf};

use super::context::Ctx;
pub use super::context::ResolvedLanguage;
use super::error::{Result, TaskError};
use super::example::TaskItems;
use super::family;
use super::fewshot;
use super::language::{find_listed, FloresCode, LanguageTable, TaskLanguage};
use super::spec::{Catalog, LanguageScope, TaskName, TaskSpec, TaskSplit};

/// How to load a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Split to evaluate.
    pub split: TaskSplit,
    /// Number of solved demonstrations prepended to each prompt (0 = zero-shot).
    pub shots: usize,
    /// Seed for demonstrations and for translation distractors.
    pub seed: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { split: TaskSplit::Test, shots: 0, seed: 1234 }
    }
}

/// A loaded task, ready to be sent to the model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadedTask {
    /// Which task.
    pub task: TaskName,
    /// For which language(s).
    pub language: ResolvedLanguage,
    /// Which split.
    pub split: TaskSplit,
    /// Shots per prompt.
    pub shots: usize,
    /// The examples.
    pub items: TaskItems,
}

/// Resolves what the user typed to the language(s) of `spec`.
pub fn resolve_language(catalog: &Catalog, spec: &TaskSpec, typed: &str) -> Result<ResolvedLanguage> {
    match &spec.scope {
        LanguageScope::Pairs { pivot, any_flores } => resolve_pair(catalog, spec, typed, pivot.as_ref(), *any_flores),
        _ => resolve_single(catalog, spec, typed).map(|language| ResolvedLanguage::Single { language }),
    }
}

fn resolve_single(catalog: &Catalog, spec: &TaskSpec, typed: &str) -> Result<TaskLanguage> {
    let table = catalog.languages();
    let found = match spec.scope {
        LanguageScope::AnyFlores => table.to_flores(typed).map(|flores| TaskLanguage { code: flores.to_string(), flores }),
        LanguageScope::AnyShort => short_language(catalog, typed),
        _ => find_listed(table, &spec.languages, typed).cloned(),
    };
    found.ok_or_else(|| unknown_language(spec, typed))
}

/// For the translated ARC/MMLU/HellaSwag files, named by ISO 639-1 code.
fn short_language(catalog: &Catalog, typed: &str) -> Option<TaskLanguage> {
    let table = catalog.languages();
    let short = table.to_short(typed)?;
    let flores = table.to_flores(short)?;
    Some(TaskLanguage { code: short.to_string(), flores })
}

fn resolve_pair(catalog: &Catalog, spec: &TaskSpec, typed: &str, pivot: Option<&FloresCode>, any_flores: bool) -> Result<ResolvedLanguage> {
    let example = match pivot {
        Some(_) => "deu-eng".to_string(),
        None => "deu_Latn-fra_Latn".to_string(),
    };
    let not_a_pair = || TaskError::NotAPair { task: spec.name.to_string(), given: typed.to_string(), example: example.clone() };
    let (a, b) = typed.split_once('-').ok_or_else(not_a_pair)?;
    let side = |code: &str| -> Result<TaskLanguage> {
        if let Some(p) = pivot {
            if catalog.languages().to_flores(code).as_ref() == Some(p) {
                return Ok(TaskLanguage { code: "eng".into(), flores: p.clone() });
            }
        }
        let found = if any_flores {
            catalog.languages().to_flores(code).map(|flores| TaskLanguage { code: flores.to_string(), flores })
        } else {
            find_listed(catalog.languages(), &spec.languages, code).cloned()
        };
        found.ok_or_else(|| unknown_language(spec, code))
    };
    let (source, target) = (side(a)?, side(b)?);
    let pivot_ok = pivot.is_none_or(|p| (source.flores == *p) != (target.flores == *p));
    if !pivot_ok || source.flores == target.flores {
        return Err(not_a_pair());
    }
    Ok(ResolvedLanguage::Pair { source, target })
}

fn unknown_language(spec: &TaskSpec, typed: &str) -> TaskError {
    let any_flores = matches!(spec.scope, LanguageScope::AnyFlores | LanguageScope::Pairs { any_flores: true, .. });
    let available = match spec.scope {
        _ if any_flores => {
            let hint = LanguageTable.suggestion(typed).map_or_else(String::new, |s| format!("; did you mean '{s}'?"));
            format!("any FLORES-200 code (e.g. eng_Latn){hint}")
        }
        LanguageScope::AnyShort => "any language with an ISO 639-1 code in tasks.toml (e.g. de)".to_string(),
        _ => spec.languages.iter().map(|l| format!("{} ({})", l.code, l.flores)).collect::<Vec<_>>().join(", "),
    };
    TaskError::UnknownLanguage { task: spec.name.to_string(), given: typed.to_string(), available }
}

/// Loads `task` in `language` from the standard layout under `data_dir`.
pub fn load(task: TaskName, language: &str, data_dir: &Path, options: &LoadOptions) -> Result<LoadedTask> {
    load_inner(task, language, data_dir, None, options)
}

/// Loads `task` in `language` from a file the user names, in the task's published format;
/// few-shot demonstrations then come from the same file, the example itself left out.
/// Translation-choice tasks read two files, so for them the file's folder is taken as
/// the data directory and the standard layout is used beneath it.
pub fn load_file(task: TaskName, language: &str, path: &Path, options: &LoadOptions) -> Result<LoadedTask> {
    let dir = path.parent().unwrap_or(Path::new("."));
    load_inner(task, language, dir, Some(path.to_path_buf()), options)
}

fn load_inner(task: TaskName, typed: &str, data_dir: &Path, file: Option<PathBuf>, options: &LoadOptions) -> Result<LoadedTask> {
    let catalog = Catalog::get();
    let spec = catalog.spec(task);
    let language = resolve_language(catalog, spec, typed)?;
    if file.is_none() {
        spec.file_for(options.split, "")?;
    }
    let ctx = Ctx { catalog, spec, language: &language, split: options.split, data_dir, file: file.clone(), seed: options.seed };
    let items = build_items(&ctx)?;
    let items = if options.shots == 0 {
        items
    } else {
        let pool_split = spec.fewshot_split.filter(|s| *s != options.split && file.is_none());
        let pool = match pool_split {
            Some(split) => build_items(&Ctx { split, ..ctx })?,
            None => items.clone(),
        };
        let shot_split = pool_split.unwrap_or(options.split);
        fewshot::add_shots(spec, items, &pool, shot_split, options.shots, options.seed)?
    };
    Ok(LoadedTask { task, language, split: options.split, shots: options.shots, items })
}

fn build_items(ctx: &Ctx) -> Result<TaskItems> {
    family::of(ctx.spec.name).items(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(task: TaskName, typed: &str) -> Result<ResolvedLanguage> {
        let catalog = Catalog::get();
        resolve_language(catalog, catalog.spec(task), typed)
    }

    #[test]
    fn each_scope_resolves_its_own_way() {
        let single = |r: ResolvedLanguage| match r {
            ResolvedLanguage::Single { language } => (language.code, language.flores.to_string()),
            other => panic!("{other:?}"),
        };
        assert_eq!(single(resolve(TaskName::Xwinograd, "ja").unwrap()), ("jp".into(), "jpn_Jpan".into()));
        assert_eq!(single(resolve(TaskName::Xcopa, "zho_Hans").unwrap()), ("zh".into(), "zho_Hans".into()));
        assert_eq!(single(resolve(TaskName::Sib200, "de").unwrap()), ("deu_Latn".into(), "deu_Latn".into()));
        assert_eq!(single(resolve(TaskName::Belebele, "fr").unwrap()), ("fra_Latn".into(), "fra_Latn".into()));
        assert_eq!(single(resolve(TaskName::MArc, "deu_Latn").unwrap()), ("de".into(), "deu_Latn".into()));
    }

    #[test]
    fn pairs_need_the_pivot_once_and_two_different_languages() {
        let r = resolve(TaskName::Tatoeba, "eng-cmn").unwrap();
        assert_eq!(r.label(), "eng_Latn-zho_Hans");
        assert_eq!(r.id_code(), "eng-cmn");
        assert!(matches!(resolve(TaskName::Tatoeba, "deu-fra"), Err(TaskError::NotAPair { .. })));
        assert!(matches!(resolve(TaskName::Flores, "deu_Latn-deu_Latn"), Err(TaskError::NotAPair { .. })));
        assert_eq!(resolve(TaskName::Flores, "sw-yo").unwrap().label(), "swh_Latn-yor_Latn");
    }

    #[test]
    fn unknown_language_lists_what_the_task_has() {
        let err = resolve(TaskName::Xcopa, "de").unwrap_err().to_string();
        assert!(err.starts_with("task 'xcopa' has no language 'de': it has et (est_Latn), ht (hat_Latn), id (ind_Latn)"), "{err}");
    }
}
