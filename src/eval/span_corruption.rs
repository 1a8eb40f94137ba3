//! T5's own training loss, span corruption, as a perplexity objective for encoder-decoders
//! (`eval ppl --objective span-corruption`): mT5 was trained on it, not on continuing text.
//!
//! Each document's tokens (no `</s>`) are cut into chunks of at most `context` tokens; in each,
//! about 15% of the tokens (`noise_density`) in spans of mean length 3 (`mean_span`) are
//! noise, chosen as T5's `random_spans_noise_mask` chooses them: the number of noise tokens is
//! `round(length x density)` (at least 1, at most length - 1), the number of spans
//! `round(noise / mean_span)` (at least 1), and the noise and non-noise tokens are each split
//! into that many non-empty spans uniformly at random, interleaved non-noise first. The
//! encoder reads the chunk with each noise span replaced by one sentinel, then `</s>`; the
//! decoder's labels are each sentinel followed by the span it hides, then `</s>`. Sentinel k
//! is the tokenizer's `<extra_id_k>` (mT5: 250099 counting down), or, in a tokenizer without
//! them, the id `vocabulary - 1 - k` (T5's rule). The NLL is that of the labels; the token
//! count, the labels'. T5 draws with TensorFlow's stateless generator, which this does not
//! reproduce: the draw is seeded (ChaCha8, the seed and the document's id), so every model
//! and run gets the same noise on the same document.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use super::perplexity::DocumentScore;
use super::scorer::ScorerError;
use super::seq2seq::{Seq2SeqError, Seq2SeqScorer};

/// One (encoder input, decoder labels) pair.
pub type Request = (Vec<u32>, Vec<u32>);

/// The noise T5 pre-trains on: 15% of the tokens, in spans of mean length 3.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct SpanCorruption {
    pub noise_density: f64,
    pub mean_span: f64,
    pub seed: u64,
}

impl SpanCorruption {
    pub fn t5(seed: u64) -> Self {
        SpanCorruption { noise_density: 0.15, mean_span: 3.0, seed }
    }
}

/// `items` split into `segments` non-empty runs, every such split equally likely: the first
/// item of each run but the first is a uniform choice of `segments - 1` of the `items - 1`
/// places between items (T5's `_random_segmentation`).
fn random_segmentation(items: usize, segments: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut starts: Vec<bool> = (0..items - 1).map(|i| i < segments - 1).collect();
    starts.shuffle(rng);
    let mut lengths = vec![1usize];
    for s in starts {
        if s {
            lengths.push(1);
        } else {
            *lengths.last_mut().expect("one run at least") += 1;
        }
    }
    lengths
}

/// Which of `length` tokens are noise (see the module doc).
pub fn noise_mask(length: usize, noise: &SpanCorruption, rng: &mut ChaCha8Rng) -> Vec<bool> {
    let padded = length.max(2);
    let noise_tokens = ((padded as f64 * noise.noise_density).round() as usize).clamp(1, padded - 1);
    let spans = ((noise_tokens as f64 / noise.mean_span).round() as usize).max(1);
    let noise_lengths = random_segmentation(noise_tokens, spans, rng);
    let kept_lengths = random_segmentation(padded - noise_tokens, spans, rng);
    let mut mask = Vec::with_capacity(padded);
    for (kept, noisy) in kept_lengths.iter().zip(&noise_lengths) {
        mask.extend(std::iter::repeat_n(false, *kept));
        mask.extend(std::iter::repeat_n(true, *noisy));
    }
    mask.truncate(length);
    mask
}

/// The encoder's input and the decoder's labels for `ids` with `mask` (both end with `eos`).
pub fn corrupt(ids: &[u32], mask: &[bool], sentinels: &[u32], eos: u32) -> Result<(Vec<u32>, Vec<u32>), String> {
    let (mut input, mut labels) = (Vec::new(), Vec::new());
    let mut span = 0;
    for (i, (&id, &noisy)) in ids.iter().zip(mask).enumerate() {
        if !noisy {
            input.push(id);
            continue;
        }
        if i == 0 || !mask[i - 1] {
            let sentinel =
                *sentinels.get(span).ok_or_else(|| format!("needs more than the tokenizer's {} sentinel tokens", sentinels.len()))?;
            input.push(sentinel);
            labels.push(sentinel);
            span += 1;
        }
        labels.push(id);
    }
    input.push(eos);
    labels.push(eos);
    Ok((input, labels))
}

/// Sentinel k for k < `count` (see the module doc).
pub fn sentinels(tokenizer: &tokenizers::Tokenizer, count: usize) -> Vec<u32> {
    let top = tokenizer.get_vocab_size(true) as u32;
    (0..count as u32).map(|k| tokenizer.token_to_id(&format!("<extra_id_{k}>")).unwrap_or_else(|| top.saturating_sub(1 + k))).collect()
}

/// The generator of one document's noise: the seed, and a stream from the document's id.
fn document_rng(seed: u64, id: &str) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let h = Sha256::digest(id.as_bytes());
    rng.set_stream(u64::from_le_bytes(h[..8].try_into().expect("8 bytes")));
    rng
}

/// The (encoder input, labels) pairs of one document: its chunks of at most `context` tokens.
pub fn document_pairs(
    scorer: &Seq2SeqScorer,
    id: &str,
    text: &str,
    context: usize,
    noise: &SpanCorruption,
) -> Result<Vec<Request>, ScorerError> {
    let ids = scorer.encode_continuation(text)?;
    if ids.is_empty() {
        return Err(ScorerError::EmptyText { what: format!("document '{id}'") });
    }
    let mut rng = document_rng(noise.seed, id);
    // A chunk of `context` tokens has at most this many spans.
    let most = ((context.max(2) as f64 * noise.noise_density).round() / noise.mean_span).round().max(1.0) as usize + 1;
    let marks = sentinels(scorer.tokenizer(), most);
    let eos = scorer.spec().eos_token_id;
    ids.chunks(context.max(1))
        .map(|chunk| {
            let mask = noise_mask(chunk.len(), noise, &mut rng);
            corrupt(chunk, &mask, &marks, eos).map_err(|message| {
                ScorerError::from(Seq2SeqError::Tokenize {
                    model: scorer.name().to_string(),
                    message: format!("document '{id}': {message}"),
                })
            })
        })
        .collect()
}

/// Per-document NLL of span corruption's labels, `context` tokens per chunk.
pub fn score_documents(
    scorer: &mut Seq2SeqScorer,
    docs: &[(String, String)],
    context: usize,
    noise: &SpanCorruption,
    on_done: &mut dyn FnMut(usize),
) -> Result<Vec<DocumentScore>, ScorerError> {
    let mut results = Vec::with_capacity(docs.len());
    for group in docs.chunks(64) {
        let mut pairs = Vec::new();
        let mut owner = Vec::new();
        for (d, (id, text)) in group.iter().enumerate() {
            let mine = document_pairs(scorer, id, text, context, noise)?;
            owner.extend(std::iter::repeat_n(d, mine.len()));
            pairs.extend(mine);
        }
        let scores = scorer.loglikelihood(&pairs)?;
        let mut nll = vec![0f64; group.len()];
        let mut tokens = vec![0usize; group.len()];
        for ((&d, s), (_, labels)) in owner.iter().zip(&scores).zip(&pairs) {
            nll[d] -= s.logprob;
            tokens[d] += labels.len();
        }
        for (d, (id, text)) in group.iter().enumerate() {
            results.push(DocumentScore { id: id.clone(), nll: nll[d], tokens: tokens[d], bytes: text.len() });
        }
        on_done(results.len());
    }
    Ok(results)
}
