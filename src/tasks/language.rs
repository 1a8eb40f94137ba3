//! Language codes as the tasks need them.
//!
//! Every data set names languages its own way (XCOPA `zh`, XWinograd `jp`, Tatoeba `cmn`,
//! SIB-200 `zho_Hans`). Users may type either a FLORES-200 code (`language_Script`, as
//! in NLLB Team, 2022) or a short ISO 639 code. This module maps what the user typed to
//! the FLORES code and then to the file code of a given task. Names and short codes come from
//! the project's one language table ([`crate::data::Language`]); tasks.toml only says which
//! file code each task uses for a language.

use std::fmt;

use serde::Deserialize;

use crate::data::{DataError, Language};

use super::TaskName;

/// One entry of a language list given for several tasks (`eval tasks --langs`, a study's
/// `[tasks] languages`): `task:lang` is for that task only, a plain code for every task.
/// A language pair such as `deu-eng` has no colon, so it is a plain entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LanguageEntry {
    ForTask(TaskName, String),
    ForEveryTask(String),
}

impl LanguageEntry {
    /// Fails only on a `task:` prefix that names no task.
    pub fn parse(entry: &str) -> super::Result<Self> {
        Ok(match entry.trim().split_once(':') {
            Some((task, lang)) => LanguageEntry::ForTask(task.trim().parse()?, lang.trim().to_string()),
            None => LanguageEntry::ForEveryTask(entry.trim().to_string()),
        })
    }

    /// The language this entry gives `task`, if any.
    pub fn language_for(&self, task: TaskName) -> Option<&str> {
        match self {
            LanguageEntry::ForTask(t, lang) => (*t == task).then_some(lang.as_str()),
            LanguageEntry::ForEveryTask(lang) => Some(lang),
        }
    }
}

/// A FLORES-200 language code: three lower-case letters, '_', a four-letter script
/// subtag with a capital first letter (`deu_Latn`, `zho_Hans`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct FloresCode(String);

impl FloresCode {
    /// Checks the shape `xxx_Xxxx`; returns `None` for anything else.
    pub fn parse(code: &str) -> Option<Self> {
        let (lang, script) = code.split_once('_')?;
        let lang_ok = lang.len() == 3 && lang.chars().all(|c| c.is_ascii_lowercase());
        let mut script_chars = script.chars();
        let script_ok = script.len() == 4
            && script_chars.next().is_some_and(|c| c.is_ascii_uppercase())
            && script_chars.all(|c| c.is_ascii_lowercase());
        (lang_ok && script_ok).then(|| Self(code.to_string()))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FloresCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for FloresCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        FloresCode::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("'{text}' is not a FLORES-200 code like deu_Latn")))
    }
}

/// A language as one task names it: the code used in its file names, and its FLORES code.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TaskLanguage {
    /// The code in the task's file names (e.g. `jp` for XWinograd Japanese).
    pub code: String,
    /// The FLORES-200 code.
    pub flores: FloresCode,
}

/// Short-code and name lookups, answered by the project's language table.
#[derive(Debug, Clone, Copy, Default)]
pub struct LanguageTable;

impl LanguageTable {
    /// The FLORES code for a typed code: a well-formed FLORES code is taken as is,
    /// any other name is looked up in the table.
    pub fn to_flores(&self, typed: &str) -> Option<FloresCode> {
        FloresCode::parse(typed).or_else(|| Language::parse(typed).ok().and_then(|l| FloresCode::parse(l.flores_code())))
    }

    /// The ISO 639-1 code for a typed code, when the language has one of its own (a script
    /// variant such as `zho_Hant` shares `zh` with its main row, so it has none here).
    pub fn to_short(&self, typed: &str) -> Option<&'static str> {
        let language = Language::parse(typed).ok()?;
        language.iso639_1().filter(|short| Language::parse(short).is_ok_and(|l| l == language))
    }

    /// English name of a language, falling back to its FLORES code when unknown.
    pub fn name(&self, flores: &FloresCode) -> String {
        Language::parse(flores.as_str()).map_or_else(|_| flores.to_string(), |l| l.english_name().to_string())
    }

    /// The table's closest name to a mistyped `typed`, for "did you mean".
    pub fn suggestion(&self, typed: &str) -> Option<String> {
        match Language::parse(typed) {
            Err(DataError::UnknownLanguage { suggestion, .. }) => Some(suggestion),
            _ => None,
        }
    }
}

/// Finds the task language meant by `typed` among `languages`: first as a file code,
/// then through its FLORES code.
pub fn find_listed<'a>(table: &LanguageTable, languages: &'a [TaskLanguage], typed: &str) -> Option<&'a TaskLanguage> {
    let typed = typed.trim();
    languages.iter().find(|l| l.code.eq_ignore_ascii_case(typed)).or_else(|| {
        let flores = table.to_flores(typed)?;
        languages.iter().find(|l| l.flores == flores)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_language_entry_is_for_one_task_only_with_its_prefix() {
        let one = LanguageEntry::parse(" xcopa: zh ").unwrap();
        assert_eq!(one, LanguageEntry::ForTask(TaskName::Xcopa, "zh".into()));
        assert_eq!(one.language_for(TaskName::Xcopa), Some("zh"));
        assert_eq!(one.language_for(TaskName::Sib200), None);
        // A translation pair has a dash, not a colon: it goes to every task.
        let pair = LanguageEntry::parse("deu-eng").unwrap();
        assert_eq!(pair.language_for(TaskName::Tatoeba), Some("deu-eng"));
        assert_eq!(pair.language_for(TaskName::Xcopa), Some("deu-eng"));
        assert!(LanguageEntry::parse("xcopaa:zh").is_err());
    }

    #[test]
    fn flores_shape_is_checked() {
        assert!(FloresCode::parse("deu_Latn").is_some());
        assert!(FloresCode::parse("deu_latn").is_none());
        assert!(FloresCode::parse("de_Latn").is_none());
        assert!(FloresCode::parse("deu").is_none());
    }

    #[test]
    fn short_and_file_codes_reach_the_task_language() {
        let t = LanguageTable;
        let langs = vec![TaskLanguage { code: "jp".into(), flores: FloresCode::parse("jpn_Jpan").unwrap() }];
        // The task's own odd code, the ISO code, the ISO 639-3 code and the FLORES code.
        for typed in ["jp", "ja", "JPN", "jpn_Jpan"] {
            assert_eq!(find_listed(&t, &langs, typed).map(|l| l.code.as_str()), Some("jp"), "{typed}");
        }
        assert!(find_listed(&t, &langs, "zh").is_none());
        assert_eq!(t.to_short("cmn"), Some("zh"));
        assert_eq!(t.name(&FloresCode::parse("zho_Hans").unwrap()), "Chinese");
        assert_eq!(t.name(&FloresCode::parse("xyz_Latn").unwrap()), "xyz_Latn");
        assert_eq!(t.name(&FloresCode::parse("fao_Latn").unwrap()), "Faroese");
        assert_eq!(t.to_short("zho_Hant"), None);
        assert_eq!(t.suggestion("fao_Ltn").as_deref(), Some("fao_Latn"));
    }
}
