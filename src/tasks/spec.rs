//! Task specifications: what each task is, read from the data file `tasks/tasks.toml`.
//!
//! A task family is described by data, not code: its output type, metrics, file layout
//! per split, target delimiter, few-shot separator and the per-language words its prompt
//! needs (XCOPA's "because"/"therefore", MGSM's "Question"/"Answer", ...). The file is
//! embedded at compile time and parsed once; it is checked by the tests, so a broken
//! catalogue is a build defect, not a user error. Language names and codes are not here but in
//! the project's language table (`crate::data::Language`); SIB-200 and FLORES take their
//! languages from the data folder.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use crate::data::Language;

use super::error::{Result, TaskError};
pub use super::kinds::{Metric, OutputType, TaskName, TaskSplit};
use super::language::{FloresCode, LanguageTable, TaskLanguage};
use super::schema::{CatalogFile, HasFlores, Section};
use super::template::Template;

const CATALOG_TOML: &str = include_str!("../../tasks/tasks.toml");

/// Which languages a task accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LanguageScope {
    /// Exactly those in its `languages` table.
    Listed,
    /// Any FLORES-200 language (SIB-200 and Belebele name their files that way); whether
    /// it has data is for the data folder to say.
    AnyFlores,
    /// Any short code (the translated ARC/MMLU/HellaSwag files are named that way).
    AnyShort,
    /// Pairs "A-B" of languages, where one side must be `pivot` if given.
    Pairs {
        /// Language every pair must contain (English for Tatoeba).
        pivot: Option<FloresCode>,
        /// Each side may be any FLORES-200 language (file code = FLORES code), not only listed ones.
        any_flores: bool,
    },
}

/// The public description of one task.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    /// Task name.
    pub name: TaskName,
    /// One-line description.
    pub description: String,
    /// How its examples are scored.
    pub output: OutputType,
    /// Metrics to report.
    pub metrics: Vec<Metric>,
    /// Text between context and target; put at the start of each continuation.
    pub target_delimiter: String,
    /// Text between few-shot demonstrations, and between them and the question.
    pub fewshot_separator: String,
    /// Split demonstrations come from; `None` means the evaluated split, self excluded.
    pub fewshot_split: Option<TaskSplit>,
    /// Path template per split, relative to the data directory (`{lang}` = file code).
    pub files: BTreeMap<TaskSplit, String>,
    /// Listed languages (file code and FLORES code).
    pub languages: Vec<TaskLanguage>,
    /// Which languages are accepted.
    pub scope: LanguageScope,
}

impl TaskSpec {
    /// The file for `split` and file code `lang`, relative to the data directory.
    pub fn file_for(&self, split: TaskSplit, lang: &str) -> Result<String> {
        let template = self.files.get(&split).ok_or_else(|| TaskError::MissingSplit {
            task: self.name.to_string(),
            split: split.to_string(),
            available: self.files.keys().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
        })?;
        Ok(template.replace("{lang}", lang))
    }

    /// Splits that have files.
    pub fn splits(&self) -> Vec<TaskSplit> {
        self.files.keys().copied().collect()
    }

    /// The single languages this task has a `split` file for under `data_dir`: the listed ones,
    /// and for a task that takes any FLORES-200 language, each table language whose file exists.
    pub fn languages_in(&self, data_dir: &Path, split: TaskSplit) -> Vec<TaskLanguage> {
        let has_file = |code: &str| self.file_for(split, code).is_ok_and(|f| data_dir.join(f).is_file());
        let from_table = Language::all()
            .filter(|_| matches!(self.scope, LanguageScope::AnyFlores | LanguageScope::Pairs { any_flores: true, .. }))
            .filter_map(|l| FloresCode::parse(l.flores_code()))
            .map(|flores| TaskLanguage { code: flores.to_string(), flores });
        let mut seen = std::collections::HashSet::new();
        self.languages.iter().cloned().chain(from_table).filter(|l| has_file(&l.code) && seen.insert(l.code.clone())).collect()
    }
}

/// The parsed, checked catalogue of tasks.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub(super) file: CatalogFile,
    languages: LanguageTable,
    specs: BTreeMap<TaskName, TaskSpec>,
}

impl Catalog {
    /// The catalogue embedded in the binary. Parsed on first use.
    pub fn get() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            // The text is compiled in and checked by the tests: failing here is a build defect.
            Catalog::parse(CATALOG_TOML).unwrap_or_else(|e| panic!("embedded tasks/tasks.toml is invalid: {e}"))
        })
    }

    /// Parses and checks a catalogue text.
    pub(super) fn parse(text: &str) -> std::result::Result<Catalog, String> {
        let file: CatalogFile = toml::from_str(text).map_err(|e| e.to_string())?;
        check_templates(&file)?;
        let specs = build_specs(&file)?;
        Ok(Catalog { file, languages: LanguageTable, specs })
    }

    /// The spec of one task.
    pub fn spec(&self, name: TaskName) -> &TaskSpec {
        // build_specs fills every TaskName; a gap is a bug in this module.
        self.specs.get(&name).unwrap_or_else(|| panic!("catalogue has no spec for {name}"))
    }

    /// All specs, in [`TaskName::ALL`] order.
    pub fn specs(&self) -> impl Iterator<Item = &TaskSpec> {
        TaskName::ALL.into_iter().map(|n| self.spec(n))
    }

    /// Short codes and names, from the project's language table.
    pub fn languages(&self) -> &LanguageTable {
        &self.languages
    }
}

fn listed<L: HasFlores>(languages: &BTreeMap<String, L>) -> Vec<TaskLanguage> {
    languages.iter().map(|(code, l)| TaskLanguage { code: code.clone(), flores: l.flores().clone() }).collect()
}

fn spec_of<L, X>(name: TaskName, section: &Section<L, X>, languages: Vec<TaskLanguage>, scope: LanguageScope) -> TaskSpec {
    let c = &section.common;
    TaskSpec {
        name,
        description: c.description.clone(),
        output: c.output,
        metrics: c.metrics.clone(),
        target_delimiter: c.target_delimiter.clone(),
        fewshot_separator: c.fewshot_separator.clone(),
        fewshot_split: c.fewshot_split,
        files: c.files.clone(),
        languages,
        scope,
    }
}

fn flores_or_listed(any_flores: bool) -> LanguageScope {
    if any_flores {
        LanguageScope::AnyFlores
    } else {
        LanguageScope::Listed
    }
}

fn build_specs(f: &CatalogFile) -> std::result::Result<BTreeMap<TaskName, TaskSpec>, String> {
    let english = FloresCode::parse("eng_Latn").ok_or("eng_Latn must parse")?;
    let any = |flag: bool| {
        if flag {
            LanguageScope::AnyShort
        } else {
            LanguageScope::Listed
        }
    };
    let specs = [
        spec_of(TaskName::Xcopa, &f.xcopa, listed(&f.xcopa.languages), LanguageScope::Listed),
        spec_of(TaskName::Xwinograd, &f.xwinograd, listed(&f.xwinograd.languages), LanguageScope::Listed),
        spec_of(TaskName::Sib200, &f.sib200, listed(&f.sib200.languages), flores_or_listed(f.sib200.extra.any_flores_language)),
        spec_of(
            TaskName::Tatoeba,
            &f.tatoeba,
            listed(&f.tatoeba.languages),
            LanguageScope::Pairs { pivot: Some(english), any_flores: f.tatoeba.extra.any_flores_language },
        ),
        spec_of(
            TaskName::Flores,
            &f.flores,
            listed(&f.flores.languages),
            LanguageScope::Pairs { pivot: None, any_flores: f.flores.extra.any_flores_language },
        ),
        spec_of(TaskName::Mgsm, &f.mgsm, listed(&f.mgsm.languages), LanguageScope::Listed),
        spec_of(TaskName::Xnli, &f.xnli, listed(&f.xnli.languages), LanguageScope::Listed),
        spec_of(TaskName::Xstorycloze, &f.xstorycloze, listed(&f.xstorycloze.languages), LanguageScope::Listed),
        spec_of(TaskName::Pawsx, &f.pawsx, listed(&f.pawsx.languages), LanguageScope::Listed),
        spec_of(TaskName::Belebele, &f.belebele, listed(&f.belebele.languages), flores_or_listed(f.belebele.extra.any_flores_language)),
        spec_of(TaskName::MArc, &f.m_arc, listed(&f.m_arc.languages), any(f.m_arc.extra.any_short_language)),
        spec_of(TaskName::MMmlu, &f.m_mmlu, listed(&f.m_mmlu.languages), any(f.m_mmlu.extra.any_short_language)),
        spec_of(TaskName::MHellaswag, &f.m_hellaswag, listed(&f.m_hellaswag.languages), any(f.m_hellaswag.extra.any_short_language)),
    ];
    for spec in &specs {
        check_spec(spec)?;
    }
    Ok(specs.into_iter().map(|s| (s.name, s)).collect())
}

/// Checks that a task's entry is complete and self-consistent (whether its output type is its
/// family's is checked by the family registry, `family.rs`).
fn check_spec(spec: &TaskSpec) -> std::result::Result<(), String> {
    let generation = spec.output == OutputType::Generation;
    if spec.metrics.iter().any(|m| (*m == Metric::ExactMatch) != generation) {
        return Err(format!("task {}: metrics {:?} do not fit output {:?}", spec.name, spec.metrics, spec.output));
    }
    if spec.files.is_empty() {
        return Err(format!("task {}: no files", spec.name));
    }
    let listed_only = matches!(spec.scope, LanguageScope::Listed | LanguageScope::Pairs { any_flores: false, .. });
    if listed_only && spec.languages.is_empty() {
        return Err(format!("task {}: no languages", spec.name));
    }
    Ok(())
}

fn check_templates(f: &CatalogFile) -> std::result::Result<(), String> {
    let check = |task: &str, t: &Template, names: &[&str]| t.check_names(names).map_err(|e| format!("task {task}: {e}"));
    check("sib200", &f.sib200.extra.template, &["text"])?;
    let pair = ["source_language", "source", "target_language"];
    check("tatoeba", &f.tatoeba.extra.template, &pair)?;
    check("flores", &f.flores.extra.template, &pair)?;
    check("belebele", &f.belebele.extra.template, &["passage", "question", "a", "b", "c", "d"])?;
    let mcqa = ["question", "a", "b", "c", "d", "e"];
    check("m_arc", &f.m_arc.extra.template, &mcqa)?;
    check("m_mmlu", &f.m_mmlu.extra.template, &mcqa)?;
    if f.tatoeba.extra.choices < 2 || f.flores.extra.choices < 2 {
        return Err("translation tasks need choices >= 2".into());
    }
    if f.belebele.extra.letters.len() != 4 {
        return Err("belebele needs exactly four letters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_parses_and_covers_every_task() {
        let catalog = Catalog::get();
        let names: Vec<TaskName> = catalog.specs().map(|s| s.name).collect();
        assert_eq!(names, TaskName::ALL.to_vec());
        let xcopa = catalog.spec(TaskName::Xcopa);
        assert_eq!(xcopa.output, OutputType::MultipleChoice);
        assert_eq!(xcopa.file_for(TaskSplit::Dev, "it").unwrap(), "xcopa/val.it.jsonl");
        assert_eq!(catalog.file.xcopa.languages["it"].effect, "quindi");
        assert_eq!(catalog.spec(TaskName::Xwinograd).output, OutputType::PartialChoice);
        assert_eq!(catalog.spec(TaskName::Mgsm).metrics, vec![Metric::ExactMatch]);
        // SIB-200 and FLORES pairs take any FLORES-200 language; the data folder says which exist.
        assert_eq!(catalog.spec(TaskName::Sib200).scope, LanguageScope::AnyFlores);
        assert_eq!(catalog.spec(TaskName::Flores).scope, LanguageScope::Pairs { pivot: None, any_flores: true });
    }

    #[test]
    fn unknown_task_suggests_the_near_miss_and_lists_all() {
        let err = "xcpa".parse::<TaskName>().unwrap_err().to_string();
        assert!(err.starts_with("unknown task 'xcpa': did you mean 'xcopa'? known: xcopa, xwinograd"), "{err}");
        assert_eq!("M-ARC".parse::<TaskName>().unwrap(), TaskName::MArc);
    }

    #[test]
    fn missing_split_lists_the_ones_there() {
        let err = Catalog::get().spec(TaskName::Mgsm).file_for(TaskSplit::Dev, "en").unwrap_err().to_string();
        assert_eq!(err, "task 'mgsm' has no 'dev' split: it has test; pick one of these");
    }

    #[test]
    fn data_with_unknown_names_is_rejected() {
        let typo = CATALOG_TOML.replacen("template = \"Text: {text}", "template = \"Text: {txt}", 1);
        assert!(Catalog::parse(&typo).unwrap_err().contains("{txt}"));
        let misspelt = CATALOG_TOML.replacen("cause = \"perché\"", "cuase = \"perché\"", 1);
        assert!(Catalog::parse(&misspelt).unwrap_err().contains("cuase"));
    }

    #[test]
    fn split_and_metric_names_parse() {
        assert_eq!("validation".parse::<TaskSplit>().unwrap(), TaskSplit::Dev);
        assert!("tests".parse::<TaskSplit>().is_err());
        assert_eq!("acc_norm".parse::<Metric>().unwrap(), Metric::AccNorm);
        assert!("accuracy".parse::<Metric>().unwrap_err().to_string().contains("acc, acc_norm"));
    }
}
