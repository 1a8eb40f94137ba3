//! Calibration sets: N windows of L tokens drawn from one language's text or a mixture.
//!
//! The paper calibrated on 128 windows per set, from one language or bilingual/multilingual
//! mixtures. Windows are drawn reproducibly from a seed: the documents of the source's
//! *calibration* split (disjoint from evaluation text by construction in `data`) are tokenized
//! and packed in order into chunks of at least L tokens (so sentence-level sources work too);
//! each window picks a random chunk, then a random offset in it. Every window starts with the
//! model's start token followed by L-1 text tokens, as the model saw text in training.
//! A manifest (language, source, documents, offset) lets anyone rebuild and audit the set.
//! Sources larger than memory (JSON lines, Parquet) are not read whole: each language asks for
//! about [`TEXT_BYTES_PER_WINDOW_TOKEN`] bytes per window token, a seeded uniform sample of
//! documents (see `data::corpora::records`); a source holding no more gives all of its text.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use super::CalibrationError;
use crate::data::{CorpusSplit, Document, Language, Take, TextRegistry, TextReport, TextSource};

/// Text asked of a large source per window token: about 4 UTF-8 bytes make a token in
/// Latin-script text, and 8 times the text the windows need keeps windows from overlapping much
/// (128 windows of 512 tokens ask for about 2 MB).
pub const TEXT_BYTES_PER_WINDOW_TOKEN: u64 = 32;

/// How the N windows are shared among several languages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mix {
    /// N split evenly across the languages (remainder to the first ones).
    Even,
    /// N split in proportion to the weights (largest remainder).
    Weights(Vec<f64>),
    /// N windows from each language.
    Concat,
}

impl Mix {
    pub fn parse(s: &str, languages: usize) -> Result<Mix, CalibrationError> {
        let bad = |reason: &str| CalibrationError::BadMix { given: s.to_string(), reason: reason.to_string() };
        match s {
            "even" => Ok(Mix::Even),
            "concat" => Ok(Mix::Concat),
            _ => {
                let list = s.strip_prefix("weights:").ok_or_else(|| bad("expected even, concat or weights:w1,w2,..."))?;
                let w: Vec<f64> = list
                    .split(',')
                    .map(|x| x.trim().parse::<f64>().map_err(|_| bad("weights must be numbers")))
                    .collect::<Result<_, _>>()?;
                if w.len() != languages {
                    return Err(bad(&format!("{} weights for {languages} languages", w.len())));
                }
                if w.iter().any(|x| !x.is_finite() || *x < 0.0) || w.iter().sum::<f64>() <= 0.0 {
                    return Err(bad("weights must be non-negative with a positive sum"));
                }
                Ok(Mix::Weights(w))
            }
        }
    }

    /// Windows per language for a total of `n`.
    pub fn shares(&self, n: usize, languages: usize) -> Vec<usize> {
        match self {
            Mix::Concat => vec![n; languages],
            Mix::Even => (0..languages).map(|i| n / languages + usize::from(i < n % languages)).collect(),
            Mix::Weights(w) => {
                let total: f64 = w.iter().sum();
                let exact: Vec<f64> = w.iter().map(|x| n as f64 * x / total).collect();
                let mut shares: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
                let mut order: Vec<usize> = (0..languages).collect();
                order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
                let missing = n - shares.iter().sum::<usize>();
                for &i in order.iter().take(missing) {
                    shares[i] += 1;
                }
                shares
            }
        }
    }
}

/// What to draw: languages, mixture, size and seed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CalibrationSpec {
    pub languages: Vec<Language>,
    pub mix: Mix,
    pub samples: usize,
    pub seqlen: usize,
    pub seed: u64,
    /// Text source name (`handbook`, `udhr`, `flores`, `file:...`); `None` = each language's default.
    pub source: Option<String>,
}

impl CalibrationSpec {
    /// A short stable label, e.g. `deu_Latn+eng_Latn-even-128x512-s0`.
    pub fn label(&self) -> String {
        let langs: Vec<&str> = self.languages.iter().map(|l| l.flores_code()).collect();
        let mix = match &self.mix {
            Mix::Even => "even".to_string(),
            Mix::Concat => "concat".to_string(),
            Mix::Weights(w) => format!("w{}", w.iter().map(|x| format!("{x}")).collect::<Vec<_>>().join("_")),
        };
        let mix = if self.languages.len() > 1 { format!("-{mix}") } else { String::new() };
        format!("{}{mix}-{}x{}-s{}", langs.join("+"), self.samples, self.seqlen, self.seed)
    }
}

/// Where one window came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowRecord {
    pub language: String,
    pub source: String,
    /// Ids of the packed documents the window was cut from (first..=last).
    pub first_document: String,
    pub last_document: String,
    /// Token offset inside the packed chunk.
    pub offset: usize,
}

pub struct CalibrationSet {
    pub spec: CalibrationSpec,
    /// `samples x seqlen` token ids, each window starting with the start token.
    pub windows: Vec<Vec<u32>>,
    pub manifest: Vec<WindowRecord>,
    /// Per language: the files read, documents in the split and read, bad records skipped.
    pub text: Vec<TextReport>,
}

/// A run of consecutive documents, tokenized and joined, at least one window long.
struct Chunk {
    first: String,
    last: String,
    ids: Vec<u32>,
}

fn pack(docs: &[Document], tokenizer: &Tokenizer, min_len: usize) -> Result<Vec<Chunk>, String> {
    let mut chunks = Vec::new();
    let mut current: Option<Chunk> = None;
    for d in docs {
        let ids = tokenizer.encode(d.text.as_str(), false).map_err(|e| e.to_string())?.get_ids().to_vec();
        let c = current.get_or_insert_with(|| Chunk { first: d.id.clone(), last: d.id.clone(), ids: Vec::new() });
        c.last = d.id.clone();
        c.ids.extend(ids);
        if c.ids.len() >= min_len {
            chunks.extend(current.take());
        }
    }
    Ok(chunks)
}

/// Mixed into a language's seed for its document sample, so that the sample and the window
/// draws do not share a random stream.
const SAMPLE_SEED_DOMAIN: u64 = 0x646f_6373_616d_706c;

/// A seed for one language's draws that does not depend on the other languages in the set.
fn language_seed(seed: u64, language: Language) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in language.flores_code().bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ h
}

impl CalibrationSet {
    pub fn draw(
        spec: &CalibrationSpec,
        registry: &TextRegistry,
        tokenizer: &Tokenizer,
        start_token: u32,
    ) -> Result<Self, CalibrationError> {
        if spec.languages.is_empty() || spec.samples == 0 || spec.seqlen < 2 {
            return Err(CalibrationError::Invalid(
                "a calibration set needs at least one language, --samples >= 1 and --seqlen >= 2".into(),
            ));
        }
        let body = spec.seqlen - 1;
        let shares = spec.mix.shares(spec.samples, spec.languages.len());
        let mut windows = Vec::new();
        let mut manifest = Vec::new();
        let mut text = Vec::new();
        for (&lang, &n) in spec.languages.iter().zip(&shares) {
            let source: TextSource = match &spec.source {
                Some(s) => registry.source(s)?,
                None => registry.default_for(lang),
            };
            let take = Take::Sample {
                bytes: (n * body) as u64 * TEXT_BYTES_PER_WINDOW_TOKEN,
                seed: language_seed(spec.seed, lang) ^ SAMPLE_SEED_DOMAIN,
            };
            let read = registry.read(lang, &source, CorpusSplit::Calibration, take)?;
            text.push(read.report);
            let docs = read.documents;
            let chunks = pack(&docs, tokenizer, body)
                .map_err(|message| CalibrationError::Tokenizer { path: std::path::PathBuf::from("tokenizer.json"), message })?;
            if chunks.is_empty() {
                let tokens = docs.iter().map(|d| tokenizer.encode(d.text.as_str(), false).map(|e| e.len()).unwrap_or(0)).sum();
                return Err(CalibrationError::TooLittleText {
                    language: lang.flores_code().into(),
                    source_name: source.name().to_string(),
                    tokens,
                    seqlen: spec.seqlen,
                });
            }
            let mut rng = ChaCha8Rng::seed_from_u64(language_seed(spec.seed, lang));
            for _ in 0..n {
                let c = &chunks[rng.gen_range(0..chunks.len())];
                let offset = rng.gen_range(0..=c.ids.len() - body);
                let mut w = Vec::with_capacity(spec.seqlen);
                w.push(start_token);
                w.extend_from_slice(&c.ids[offset..offset + body]);
                windows.push(w);
                manifest.push(WindowRecord {
                    language: lang.flores_code().into(),
                    source: source.name().to_string(),
                    first_document: c.first.clone(),
                    last_document: c.last.clone(),
                    offset,
                });
            }
        }
        Ok(CalibrationSet { spec: spec.clone(), windows, manifest, text })
    }

    pub fn tokens(&self) -> usize {
        self.windows.iter().map(|w| w.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixtures_share_the_windows_exactly() {
        assert_eq!(Mix::Even.shares(128, 3), vec![43, 43, 42]);
        assert_eq!(Mix::Concat.shares(128, 2), vec![128, 128]);
        assert_eq!(Mix::Weights(vec![0.7, 0.2, 0.1]).shares(10, 3), vec![7, 2, 1]);
        // 128 * (1/3, 1/3, 1/3) = 42.67 each: the largest remainders (ties by order) get the 2 extra.
        assert_eq!(Mix::Weights(vec![1.0, 1.0, 1.0]).shares(128, 3), vec![43, 43, 42]);
        for n in [1, 7, 128] {
            assert_eq!(Mix::Weights(vec![0.5, 0.3, 0.2]).shares(n, 3).iter().sum::<usize>(), n);
        }
    }

    #[test]
    fn bad_mixes_are_errors() {
        assert!(Mix::parse("weights:1,2", 3).is_err());
        assert!(Mix::parse("weights:1,-2", 2).is_err());
        assert!(Mix::parse("half", 2).is_err());
        assert_eq!(Mix::parse("weights:1,3", 2).unwrap(), Mix::Weights(vec![1.0, 3.0]));
    }
}
