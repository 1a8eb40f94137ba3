//! The names a reader of the tables sees: the study file's `[report]` maps where they name
//! something, else conventions a paper would use: ISO 639-1 codes for languages (`de`, with
//! the script added where two languages of the study would share one, `zh-Hans`/`zh-Hant`),
//! and the spellings the methods' and benchmarks' papers use (`SparseGPT`, `SIB-200`).

use std::collections::BTreeMap;

use crate::data::Language;
use crate::design::{CalibrationChoice, DisplayNames};

/// Display names for one report.
#[derive(Clone, Debug, Default)]
pub struct Names {
    given: DisplayNames,
    /// Default short names by FLORES-200 code, unique over the study's languages.
    short: BTreeMap<String, String>,
}

/// ISO 639-1 where the language has one, else ISO 639-3.
fn short_code(language: Language) -> &'static str {
    language.iso639_1().unwrap_or_else(|| language.iso639_3())
}

/// The script part of a FLORES-200 code (`zho_Hant` -> `Hant`).
fn script_of(language: Language) -> &'static str {
    language.flores_code().split('_').nth(1).unwrap_or("")
}

impl Names {
    /// `languages`: every language code the report will name (any spelling the language table
    /// accepts), so that default short names can be made unique among them.
    pub fn new(given: DisplayNames, languages: &[String]) -> Names {
        let mut known: Vec<Language> = Vec::new();
        for code in languages {
            for part in code.split('-') {
                if let Ok(l) = Language::parse(part) {
                    if !known.contains(&l) {
                        known.push(l);
                    }
                }
            }
        }
        let short = known
            .iter()
            .map(|&l| {
                let shared = known.iter().any(|&other| other != l && short_code(other) == short_code(l));
                let name = if shared { format!("{}-{}", short_code(l), script_of(l)) } else { short_code(l).to_string() };
                (l.flores_code().to_string(), name)
            })
            .collect();
        Names { given, short }
    }

    fn one_language(&self, code: &str) -> Option<String> {
        let language = Language::parse(code).ok()?;
        let flores = language.flores_code();
        Some(
            self.given
                .languages
                .get(flores)
                .or_else(|| self.short.get(flores))
                .cloned()
                .unwrap_or_else(|| short_code(language).to_string()),
        )
    }

    /// A language as the results spell it (`deu_Latn`, a benchmark's `it`, a translation pair
    /// `deu-eng`); a code the language table does not know is shown as it is.
    pub fn language(&self, code: &str) -> String {
        if let Some(name) = self.one_language(code) {
            return name;
        }
        match code.split_once('-') {
            Some((from, to)) => match (self.one_language(from), self.one_language(to)) {
                (Some(a), Some(b)) => format!("{a}→{b}"),
                _ => code.to_string(),
            },
            None => code.to_string(),
        }
    }

    /// A calibration set: its `[report] calibrations` name, else its languages' names joined
    /// by `+` (with the mix, when not even); `None` for a cell without calibration data.
    pub fn calibration(&self, calibration: Option<&CalibrationChoice>) -> String {
        let Some(c) = calibration else { return "no calibration".to_string() };
        let label = c.languages_label();
        if let Some(name) = self.given.calibrations.get(&label) {
            return name.clone();
        }
        let languages: Vec<String> = c.languages.iter().map(|l| self.language(l.flores_code())).collect();
        let mix = label.find('(').map(|i| &label[i..]).unwrap_or("");
        format!("{}{mix}", languages.join("+"))
    }

    pub fn method(&self, method: &str) -> String {
        if let Some(name) = self.given.methods.get(method) {
            return name.clone();
        }
        match method {
            "magnitude" => "Magnitude",
            "wanda" => "Wanda",
            "sparsegpt" => "SparseGPT",
            other => other,
        }
        .to_string()
    }

    pub fn task(&self, task: &str) -> String {
        if let Some(name) = self.given.tasks.get(task) {
            return name.clone();
        }
        match task {
            "xcopa" => "XCOPA",
            "xwinograd" => "XWinograd",
            "sib200" => "SIB-200",
            "tatoeba" => "Tatoeba",
            "flores" => "FLORES-200",
            "mgsm" => "MGSM",
            "xnli" => "XNLI",
            "xstorycloze" => "XStoryCloze",
            "pawsx" => "PAWS-X",
            "belebele" => "Belebele",
            "m_arc" => "ARC (translated)",
            "m_mmlu" => "MMLU (translated)",
            "m_hellaswag" => "HellaSwag (translated)",
            other => other,
        }
        .to_string()
    }

    pub fn model(&self, model: &str) -> String {
        self.given.models.get(model).cloned().unwrap_or_else(|| model.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_are_iso_codes_made_unique_and_the_study_file_overrides_them() {
        let names = Names::new(DisplayNames::default(), &codes(&["eng_Latn", "deu_Latn", "zho_Hans", "zho_Hant", "it"]));
        assert_eq!(names.language("deu_Latn"), "de");
        // A benchmark's own code is the same language.
        assert_eq!(names.language("it"), "it");
        // Two scripts of one language keep apart.
        assert_eq!(names.language("zho_Hans"), "zh-Hans");
        assert_eq!(names.language("zho_Hant"), "zh-Hant");
        assert_eq!(names.language("deu-eng"), "de→en");
        assert_eq!(names.language("not a language"), "not a language");
        assert_eq!(names.method("sparsegpt"), "SparseGPT");
        assert_eq!(names.task("sib200"), "SIB-200");
        let mut given = DisplayNames::default();
        given.languages.insert("deu_Latn".into(), "German".into());
        given.methods.insert("wanda".into(), "Wanda (ours)".into());
        let names = Names::new(given, &codes(&["eng_Latn", "deu_Latn"]));
        assert_eq!(names.language("deu_Latn"), "German");
        assert_eq!(names.language("de"), "German", "any spelling of the language");
        assert_eq!(names.method("wanda"), "Wanda (ours)");
        let set = CalibrationChoice {
            languages: vec![Language::parse("deu_Latn").unwrap(), Language::parse("eng_Latn").unwrap()],
            mix: crate::calibrate::Mix::Concat,
            samples: 1,
            seqlen: 2,
            source: None,
        };
        assert_eq!(names.calibration(Some(&set)), "German+en(concat)");
        assert_eq!(names.calibration(None), "no calibration");
    }
}
