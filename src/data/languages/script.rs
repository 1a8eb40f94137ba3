//! Writing systems, named by their ISO 15924 four-letter codes.
//!
//! FLORES-200 appends the script to every language code (`zho_Hans`, `zho_Hant`), because the
//! same language written in two scripts is, for a tokenizer, two different languages.

use std::fmt;

/// A writing system of the languages in the table (ISO 15924).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Script {
    /// Arabic.
    Arab,
    /// Bengali (Bangla).
    Beng,
    /// Cyrillic.
    Cyrl,
    /// Devanagari.
    Deva,
    /// Ethiopic (Ge'ez).
    Ethi,
    /// Greek.
    Grek,
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
    /// Latin.
    Latn,
    /// Myanmar (Burmese).
    Mymr,
    /// Tamil.
    Taml,
    /// Telugu.
    Telu,
    /// Thai.
    Thai,
}

impl Script {
    /// The ISO 15924 code, e.g. `"Latn"`; it is also the suffix of FLORES-200 codes.
    pub fn iso15924(self) -> &'static str {
        match self {
            Script::Arab => "Arab",
            Script::Beng => "Beng",
            Script::Cyrl => "Cyrl",
            Script::Deva => "Deva",
            Script::Ethi => "Ethi",
            Script::Grek => "Grek",
            Script::Hang => "Hang",
            Script::Hans => "Hans",
            Script::Hant => "Hant",
            Script::Hebr => "Hebr",
            Script::Jpan => "Jpan",
            Script::Latn => "Latn",
            Script::Mymr => "Mymr",
            Script::Taml => "Taml",
            Script::Telu => "Telu",
            Script::Thai => "Thai",
        }
    }
}

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.iso15924())
    }
}
