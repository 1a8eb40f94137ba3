//! Language codes as the tasks need them.
//!
//! Every data set names languages its own way (XCOPA `zh`, XWinograd `jp`, Tatoeba `cmn`,
//! SIB-200 `zho_Hans`). Users may type either a FLORES-200 code (`language_Script`, as
//! in NLLB Team, 2022) or a short ISO 639 code. This module maps what the user typed to
//! the FLORES code and then to the file code of a given task. The table of short codes is
//! part of the task data (`[[language]]` rows in tasks.toml), not code.

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;

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

/// One `[[language]]` row of tasks.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguageRow {
    /// FLORES-200 code.
    pub flores: FloresCode,
    /// Short codes that mean this language; the first is the ISO 639-1 code.
    pub codes: Vec<String>,
    /// English name, used in translation prompts.
    pub name: String,
}

/// A language as one task names it: the code used in its file names, and its FLORES code.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TaskLanguage {
    /// The code in the task's file names (e.g. `jp` for XWinograd Japanese).
    pub code: String,
    /// The FLORES-200 code.
    pub flores: FloresCode,
}

/// Short-code and name lookups built from the `[[language]]` rows.
#[derive(Debug, Clone)]
pub struct LanguageTable {
    rows: Vec<LanguageRow>,
    by_code: HashMap<String, usize>,
}

impl LanguageTable {
    /// Indexes the rows by every short code and by FLORES code, case-insensitively.
    pub fn new(rows: Vec<LanguageRow>) -> Self {
        let mut by_code = HashMap::new();
        for (i, row) in rows.iter().enumerate() {
            by_code.insert(row.flores.as_str().to_lowercase(), i);
            for code in &row.codes {
                by_code.insert(code.to_lowercase(), i);
            }
        }
        Self { rows, by_code }
    }

    /// The FLORES code for a typed code: a well-formed FLORES code is taken as is,
    /// a short code is looked up.
    pub fn to_flores(&self, typed: &str) -> Option<FloresCode> {
        FloresCode::parse(typed).or_else(|| self.row(typed).map(|r| r.flores.clone()))
    }

    /// The ISO 639-1 (first listed) code for a typed code, when the language is known.
    pub fn to_short(&self, typed: &str) -> Option<&str> {
        self.row(typed).and_then(|r| r.codes.first()).map(String::as_str)
    }

    /// English name of a language, falling back to its FLORES code when unknown.
    pub fn name(&self, flores: &FloresCode) -> String {
        self.row(flores.as_str()).map_or_else(|| flores.to_string(), |r| r.name.clone())
    }

    fn row(&self, typed: &str) -> Option<&LanguageRow> {
        self.by_code.get(&typed.trim().to_lowercase()).map(|&i| &self.rows[i])
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

    fn table() -> LanguageTable {
        let row = |flores: &str, codes: &[&str], name: &str| LanguageRow {
            flores: FloresCode::parse(flores).unwrap(),
            codes: codes.iter().map(|c| c.to_string()).collect(),
            name: name.to_string(),
        };
        LanguageTable::new(vec![row("jpn_Jpan", &["ja", "jpn"], "Japanese"), row("zho_Hans", &["zh", "cmn"], "Chinese")])
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
        let t = table();
        let langs = vec![TaskLanguage { code: "jp".into(), flores: FloresCode::parse("jpn_Jpan").unwrap() }];
        // The task's own odd code, the ISO code, the ISO 639-3 code and the FLORES code.
        for typed in ["jp", "ja", "JPN", "jpn_Jpan"] {
            assert_eq!(find_listed(&t, &langs, typed).map(|l| l.code.as_str()), Some("jp"), "{typed}");
        }
        assert!(find_listed(&t, &langs, "zh").is_none());
        assert_eq!(t.to_short("cmn"), Some("zh"));
        assert_eq!(t.name(&FloresCode::parse("zho_Hans").unwrap()), "Chinese");
        assert_eq!(t.name(&FloresCode::parse("xyz_Latn").unwrap()), "xyz_Latn");
    }
}
