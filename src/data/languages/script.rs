//! Writing systems, named by their ISO 15924 four-letter codes.
//!
//! FLORES-200 appends the script to every language code (`zho_Hans`, `zho_Hant`), because the
//! same language written in two scripts is, for a tokenizer, two different languages. The
//! variants are exactly the scripts FLORES-200 and SIB-200 use.

use std::fmt;

/// A writing system of the languages in the table (ISO 15924).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Script {
    /// Arabic.
    Arab,
    /// Armenian.
    Armn,
    /// Bengali (Bangla).
    Beng,
    /// Cyrillic.
    Cyrl,
    /// Devanagari.
    Deva,
    /// Ethiopic (Ge'ez).
    Ethi,
    /// Georgian.
    Geor,
    /// Greek.
    Grek,
    /// Gujarati.
    Gujr,
    /// Gurmukhi.
    Guru,
    /// Hangul.
    Hang,
    /// Han, simplified.
    Hans,
    /// Han, traditional.
    Hant,
    /// Hebrew.
    Hebr,
    /// Japanese (Han + Hiragana + Katakana).
    Jpan,
    /// Khmer.
    Khmr,
    /// Kannada.
    Knda,
    /// Lao.
    Laoo,
    /// Latin.
    Latn,
    /// Malayalam.
    Mlym,
    /// Myanmar (Burmese).
    Mymr,
    /// N'Ko.
    Nkoo,
    /// Ol Chiki.
    Olck,
    /// Odia (Oriya).
    Orya,
    /// Sinhala.
    Sinh,
    /// Tamil.
    Taml,
    /// Telugu.
    Telu,
    /// Tifinagh.
    Tfng,
    /// Thai.
    Thai,
    /// Tibetan.
    Tibt,
}

impl Script {
    /// Every script of the table.
    pub const ALL: [Script; 30] = [
        Script::Arab,
        Script::Armn,
        Script::Beng,
        Script::Cyrl,
        Script::Deva,
        Script::Ethi,
        Script::Geor,
        Script::Grek,
        Script::Gujr,
        Script::Guru,
        Script::Hang,
        Script::Hans,
        Script::Hant,
        Script::Hebr,
        Script::Jpan,
        Script::Khmr,
        Script::Knda,
        Script::Laoo,
        Script::Latn,
        Script::Mlym,
        Script::Mymr,
        Script::Nkoo,
        Script::Olck,
        Script::Orya,
        Script::Sinh,
        Script::Taml,
        Script::Telu,
        Script::Tfng,
        Script::Thai,
        Script::Tibt,
    ];

    /// The ISO 15924 code, e.g. `"Latn"`; it is also the suffix of FLORES-200 codes.
    pub fn iso15924(self) -> &'static str {
        match self {
            Script::Arab => "Arab",
            Script::Armn => "Armn",
            Script::Beng => "Beng",
            Script::Cyrl => "Cyrl",
            Script::Deva => "Deva",
            Script::Ethi => "Ethi",
            Script::Geor => "Geor",
            Script::Grek => "Grek",
            Script::Gujr => "Gujr",
            Script::Guru => "Guru",
            Script::Hang => "Hang",
            Script::Hans => "Hans",
            Script::Hant => "Hant",
            Script::Hebr => "Hebr",
            Script::Jpan => "Jpan",
            Script::Khmr => "Khmr",
            Script::Knda => "Knda",
            Script::Laoo => "Laoo",
            Script::Latn => "Latn",
            Script::Mlym => "Mlym",
            Script::Mymr => "Mymr",
            Script::Nkoo => "Nkoo",
            Script::Olck => "Olck",
            Script::Orya => "Orya",
            Script::Sinh => "Sinh",
            Script::Taml => "Taml",
            Script::Telu => "Telu",
            Script::Tfng => "Tfng",
            Script::Thai => "Thai",
            Script::Tibt => "Tibt",
        }
    }

    /// The script with ISO 15924 code `code` (exact spelling, as in FLORES codes).
    pub fn from_iso15924(code: &str) -> Option<Script> {
        Script::ALL.into_iter().find(|s| s.iso15924() == code)
    }
}

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.iso15924())
    }
}
