//! Multilingual benchmarks whose files name languages with their own short codes.
//!
//! Most of them use ISO 639-1 (`sw`, `zh`), but not all: XWinograd writes Japanese as `jp`, and
//! Tatoeba (as packaged by LASER) uses three-letter codes such as `cmn` and `swh`. Keeping each
//! benchmark's code in the language table avoids guessing at load time.

use std::fmt;

/// A benchmark whose language codes the language table records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Benchmark {
    /// XCOPA, causal commonsense reasoning (Ponti et al., 2020).
    Xcopa,
    /// MGSM, grade-school maths (Shi et al., 2022).
    Mgsm,
    /// XWinograd, pronoun resolution (Tikhonov & Ryabinin, 2021).
    XWinograd,
    /// XNLI, natural language inference (Conneau et al., 2018).
    Xnli,
    /// XStoryCloze, story completion (Lin et al., 2022).
    XStoryCloze,
    /// PAWS-X, paraphrase identification (Yang et al., 2019).
    PawsX,
    /// Tatoeba sentence pairs with English, as packaged by LASER (Artetxe & Schwenk, 2019).
    Tatoeba,
}

impl Benchmark {
    /// Every benchmark, in a fixed order.
    pub const ALL: [Benchmark; 7] = [
        Benchmark::Xcopa,
        Benchmark::Mgsm,
        Benchmark::XWinograd,
        Benchmark::Xnli,
        Benchmark::XStoryCloze,
        Benchmark::PawsX,
        Benchmark::Tatoeba,
    ];

    /// The lower-case key the language table uses (`xcopa`, `pawsx`, ...).
    pub fn key(self) -> &'static str {
        match self {
            Benchmark::Xcopa => "xcopa",
            Benchmark::Mgsm => "mgsm",
            Benchmark::XWinograd => "xwinograd",
            Benchmark::Xnli => "xnli",
            Benchmark::XStoryCloze => "xstorycloze",
            Benchmark::PawsX => "pawsx",
            Benchmark::Tatoeba => "tatoeba",
        }
    }

    /// The benchmark whose table key is `key`.
    pub fn from_key(key: &str) -> Option<Benchmark> {
        Benchmark::ALL.into_iter().find(|b| b.key() == key)
    }

    /// The benchmark's usual name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Benchmark::Xcopa => "XCOPA",
            Benchmark::Mgsm => "MGSM",
            Benchmark::XWinograd => "XWinograd",
            Benchmark::Xnli => "XNLI",
            Benchmark::XStoryCloze => "XStoryCloze",
            Benchmark::PawsX => "PAWS-X",
            Benchmark::Tatoeba => "Tatoeba",
        }
    }
}

impl fmt::Display for Benchmark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
