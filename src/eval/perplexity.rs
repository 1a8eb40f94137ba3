//! Language-modelling quality per language: negative log-likelihood, perplexity and bits per byte.
//!
//! Bits per byte (total NLL in bits / UTF-8 bytes of the text) is the figure to compare across
//! languages: perplexity is per token, and tokenizers cut some scripts into many more tokens
//! than others. Per-document NLLs are kept so that two models can be compared with paired tests.
//!
//! Long documents are scored in windows of `context` tokens that advance by `stride`: each
//! token is predicted once, from up to `context - 1` tokens before it. The start token is
//! prepended to each document and never scored itself.

use serde::{Deserialize, Serialize};

use super::scorer::{Scorer, ScorerError};

#[derive(Clone, Copy, Debug)]
pub struct WindowOptions {
    pub context: usize,
    pub stride: usize,
}

impl Default for WindowOptions {
    fn default() -> Self {
        WindowOptions { context: 512, stride: 256 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DocumentScore {
    pub id: String,
    /// Sum of -log p over the document's predicted tokens, in nats.
    pub nll: f64,
    pub tokens: usize,
    pub bytes: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LanguageScore {
    pub language: String,
    pub source: String,
    pub documents: Vec<DocumentScore>,
}

impl LanguageScore {
    pub fn nll(&self) -> f64 {
        self.documents.iter().map(|d| d.nll).sum()
    }
    pub fn tokens(&self) -> usize {
        self.documents.iter().map(|d| d.tokens).sum()
    }
    pub fn bytes(&self) -> usize {
        self.documents.iter().map(|d| d.bytes).sum()
    }
    pub fn perplexity(&self) -> f64 {
        (self.nll() / self.tokens() as f64).exp()
    }
    pub fn bits_per_byte(&self) -> f64 {
        self.nll() / std::f64::consts::LN_2 / self.bytes() as f64
    }
}

/// The `(window start, first scored target, end)` triples covering `n` tokens.
pub fn windows(n: usize, opts: WindowOptions) -> Vec<(usize, usize, usize)> {
    // A window needs one context token and one target.
    let opts = WindowOptions { context: opts.context.max(2), stride: opts.stride };
    let mut out = Vec::new();
    let mut scored_to = 1; // target index 0 is the start token: never predicted
    while scored_to < n {
        // A window must keep the token before its first target, so it advances by at most
        // context - 1 whatever the stride.
        let step = opts.stride.clamp(1, opts.context.saturating_sub(1).max(1));
        let end = if out.is_empty() { opts.context.min(n) } else { (scored_to + step).min(n) };
        let start = end.saturating_sub(opts.context);
        out.push((start, scored_to, end));
        scored_to = end;
    }
    out
}

/// Scores documents `(id, text)`, reporting progress through `on_done(documents finished)`.
pub fn score_documents(
    scorer: &mut Scorer,
    docs: &[(String, String)],
    opts: WindowOptions,
    mut on_done: impl FnMut(usize),
) -> Result<Vec<DocumentScore>, ScorerError> {
    let mut results = Vec::with_capacity(docs.len());
    // Documents are scored in groups so that short ones share batches.
    for group in docs.chunks(64) {
        let encoded: Vec<Vec<u32>> = group.iter().map(|(_, t)| scorer.encode(t)).collect::<Result<_, _>>()?;
        let mut pieces: Vec<(usize, usize, &[u32])> = Vec::new(); // (doc, targets skipped, window)
        for (d, ids) in encoded.iter().enumerate() {
            if ids.len() < 2 {
                return Err(ScorerError::EmptyText { what: format!("document '{}'", group[d].0) });
            }
            for (start, first, end) in windows(ids.len(), opts) {
                pieces.push((d, first - start - 1, &ids[start..end]));
            }
        }
        let seqs: Vec<&[u32]> = pieces.iter().map(|p| p.2).collect();
        let lps = scorer.token_logprobs(&seqs)?;
        let mut nll = vec![0f64; group.len()];
        let mut tokens = vec![0usize; group.len()];
        for ((d, skip, _), lp) in pieces.iter().zip(&lps) {
            nll[*d] -= lp[*skip..].iter().map(|&x| x as f64).sum::<f64>();
            tokens[*d] += lp.len() - skip;
        }
        for (d, (id, text)) in group.iter().enumerate() {
            results.push(DocumentScore { id: id.clone(), nll: nll[d], tokens: tokens[d], bytes: text.len() });
        }
        on_done(results.len());
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every target 1..n is scored exactly once, with at most `context` tokens in a window.
    #[test]
    fn windows_cover_each_target_once() {
        for n in [2, 5, 512, 513, 1000, 2049] {
            for (context, stride) in [(512, 256), (512, 512), (8, 3), (4, 1)] {
                let mut seen = vec![0; n];
                for (s, f, e) in windows(n, WindowOptions { context, stride }) {
                    assert!(e - s <= context && s < f && f <= e);
                    seen[f..e].iter_mut().for_each(|c| *c += 1);
                }
                assert_eq!(seen[0], 0);
                assert!(seen[1..].iter().all(|&c| c == 1), "n={n} context={context} stride={stride}");
            }
        }
    }
}
