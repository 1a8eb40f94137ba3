//! `model synth --like mt5-small|mt5-base|mt5-xl`: an encoder-decoder folder with random
//! weights in the published shapes, written by the same graphs and card as an imported mT5,
//! so every command reads it as one. As for the decoder shapes (`crate::model::synth`), each
//! tensor is drawn from its own seeded stream (uniform, variance `1/in` for the linear layers,
//! the query projections further scaled by `1/sqrt(d_kv)` as T5 initialises them, because
//! T5's attention does not scale its scores), and the tokenizer is byte-level, padded to the
//! real vocabulary, with T5's `<pad>` = 0, `</s>` = 1, `<unk>` = 2 and `</s>` ending each text.

use std::path::{Path, PathBuf};

use prost::Message;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::graphs::{cross_kv_model, decoder_model, encoder_model};
use super::{
    Seq2SeqCard, Seq2SeqSpec, CROSS_GRAPH_FILE, DECODER_GRAPH_FILE, ENCODER_GRAPH_FILE, SEQ2SEQ_CARD_FILE, SEQ2SEQ_CARD_FORMAT,
    SEQ2SEQ_WEIGHTS_FILE,
};
use crate::model::builder::WeightFile;
use crate::model::card::SourceFile;
use crate::model::decoder::WeightTable;
use crate::model::import::TOKENIZER_FILE;
use crate::model::synth::{byte_level_tokenizer_with, fill_uniform, tensor_rng, SynthError};
use crate::model::ModelError;
use crate::progress::Progress;

/// A published mT5 configuration (`config.json` of the Google checkpoints).
#[derive(Clone, Debug)]
pub struct Seq2SeqShape {
    pub name: &'static str,
    /// `num_layers` (= `num_decoder_layers` in every mT5).
    pub blocks: usize,
    pub d_model: usize,
    pub n_heads: usize,
    /// `d_kv`.
    pub head_dim: usize,
    /// `d_ff`.
    pub ffn_dim: usize,
    pub source: &'static str,
}

/// Shared by every mT5: `vocab_size`, `relative_attention_num_buckets`,
/// `relative_attention_max_distance`, `layer_norm_epsilon`; untied head, gated-GELU, pad = 0
/// (the decoder start), eos = 1.
pub const MT5_VOCAB: usize = 250_112;
pub const MT5_BUCKETS: usize = 32;
pub const MT5_MAX_DISTANCE: usize = 128;

pub const SEQ2SEQ_SHAPES: &[Seq2SeqShape] = &[
    Seq2SeqShape {
        name: "mt5-small",
        blocks: 8,
        d_model: 512,
        n_heads: 6,
        head_dim: 64,
        ffn_dim: 1024,
        source: "google/mt5-small config.json",
    },
    Seq2SeqShape {
        name: "mt5-base",
        blocks: 12,
        d_model: 768,
        n_heads: 12,
        head_dim: 64,
        ffn_dim: 2048,
        source: "google/mt5-base config.json",
    },
    Seq2SeqShape {
        name: "mt5-xl",
        blocks: 24,
        d_model: 2048,
        n_heads: 32,
        head_dim: 64,
        ffn_dim: 5120,
        source: "google/mt5-xl config.json",
    },
];

/// The encoder-decoder shape called `name`, if it is one.
pub fn seq2seq_shape(name: &str) -> Option<&'static Seq2SeqShape> {
    SEQ2SEQ_SHAPES.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

impl Seq2SeqShape {
    /// The spec with the first `blocks` blocks of each stack (all when `None`).
    pub fn spec(&self, blocks: Option<usize>) -> Result<Seq2SeqSpec, SynthError> {
        let n = blocks.unwrap_or(self.blocks);
        if n == 0 || n > self.blocks {
            return Err(SynthError::BadBlocks { shape: self.name.into(), blocks: n, max: self.blocks });
        }
        Ok(Seq2SeqSpec {
            architecture: "mt5".into(),
            encoder_blocks: n,
            decoder_blocks: n,
            d_model: self.d_model,
            n_heads: self.n_heads,
            head_dim: self.head_dim,
            ffn_dim: self.ffn_dim,
            vocab_size: MT5_VOCAB,
            norm_eps: 1e-6,
            buckets: MT5_BUCKETS,
            max_distance: MT5_MAX_DISTANCE,
            tied_output: false,
            output_scale: None,
            decoder_start_token_id: 0,
            eos_token_id: 1,
            pad_token_id: 0,
        })
    }
}

/// Parameters of a spec: every tensor the graphs read.
pub fn parameters(spec: &Seq2SeqSpec) -> u64 {
    spec.weight_shapes().iter().map(|(_, d)| d.iter().product::<usize>() as u64).sum()
}

/// (mean, standard deviation) of one tensor's draw (see the module head).
fn init_of(name: &str, dims: &[usize], spec: &Seq2SeqSpec) -> (f32, f32) {
    if name.ends_with("norm.weight") {
        return (1.0, 0.02);
    }
    if name.ends_with("attn_rel_b.weight") {
        return (0.0, 0.1);
    }
    if name == "token_embd.weight" || name == "output.weight" {
        return (0.0, 1.0 / (spec.d_model as f32).sqrt());
    }
    let fan_in = dims[0] as f32;
    let query = name.ends_with(".attn_q.weight") || name.ends_with(".cross_attn_q.weight");
    let std = if query { 1.0 / (fan_in * spec.head_dim as f32).sqrt() } else { 1.0 / fan_in.sqrt() };
    (0.0, std)
}

/// What `model synth --like mt5-*` wrote.
pub struct Seq2SeqSynthReport {
    pub out: PathBuf,
    pub card: Seq2SeqCard,
    pub parameters: u64,
}

/// Writes a synthetic mT5 folder at `out` (replaced atomically when it exists).
pub fn synthesize_seq2seq(
    shape: &Seq2SeqShape,
    out: &Path,
    seed: u64,
    blocks: Option<usize>,
    progress: &mut dyn Progress,
) -> Result<Seq2SeqSynthReport, ModelError> {
    let spec = shape.spec(blocks)?;
    let staged = crate::util::StagedDir::begin(out).map_err(|e| ModelError::io(out, e))?;
    let dir = staged.path();
    let path = dir.join(SEQ2SEQ_WEIGHTS_FILE);
    let io = |e| ModelError::io(&path, e);
    let mut file = WeightFile::create(dir, SEQ2SEQ_WEIGHTS_FILE).map_err(io)?;
    let mut table = WeightTable::new();
    let total = parameters(&spec);
    progress.stage("drawing weights (parameters)", total);
    let mut done = 0u64;
    for (name, dims) in spec.weight_shapes() {
        let (mean, std) = init_of(&name, &dims, &spec);
        let mut rng = tensor_rng(seed, &name);
        let t = file.append_f32_with(&name, &dims, |chunk| fill_uniform(&mut rng, mean, std, chunk)).map_err(io)?;
        done += dims.iter().product::<usize>() as u64;
        progress.advance(done);
        table.insert(name, t);
    }
    file.finish().map_err(io)?;
    progress.finish();
    for (name, model) in [
        (ENCODER_GRAPH_FILE, encoder_model(&spec, &table)),
        (CROSS_GRAPH_FILE, cross_kv_model(&spec, &table)),
        (DECODER_GRAPH_FILE, decoder_model(&spec, &table)),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, model.encode_to_vec()).map_err(|e| ModelError::io(&p, e))?;
    }
    let tok = dir.join(TOKENIZER_FILE);
    let json = t5_byte_tokenizer(spec.vocab_size);
    crate::util::write_atomic(&tok, json.to_string().as_bytes()).map_err(|e| ModelError::io(&tok, e))?;
    let identity = format!("polyprune-synth-seq2seq/1|{}|{seed}|{}", shape.name, serde_json::to_string(&spec).expect("spec serialises"));
    let truncated = if spec.encoder_blocks < shape.blocks {
        format!(", first {} of {} blocks", spec.encoder_blocks, shape.blocks)
    } else {
        String::new()
    };
    let card = Seq2SeqCard {
        format: SEQ2SEQ_CARD_FORMAT.into(),
        name: format!("synthetic {} (random weights, seed {seed}{truncated})", shape.name),
        source: SourceFile { file: format!("synth:{}", shape.name), sha256: format!("{:x}", Sha256::digest(identity.as_bytes())) },
        spec,
        tokenizer: TOKENIZER_FILE.into(),
    };
    let card_path = dir.join(SEQ2SEQ_CARD_FILE);
    let text = serde_json::to_string_pretty(&card).expect("card serialises");
    crate::util::write_atomic(&card_path, text.as_bytes()).map_err(|e| ModelError::io(&card_path, e))?;
    staged.commit().map_err(|e| ModelError::io(out, e))?;
    let parameters = parameters(&card.spec);
    Ok(Seq2SeqSynthReport { out: out.to_path_buf(), card, parameters })
}

/// A byte-level tokenizer with T5's special tokens at their ids and `</s>` after every text.
pub fn t5_byte_tokenizer(vocab: usize) -> serde_json::Value {
    let specials = [(0, "<pad>"), (1, "</s>"), (2, "<unk>")];
    let mut json = byte_level_tokenizer_with(None, &specials, vocab);
    json["post_processor"] = json!({
        "type": "TemplateProcessing",
        "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}},
                 {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
        "special_tokens": {"</s>": {"id": "</s>", "ids": [1], "tokens": ["</s>"]}}
    });
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published configurations (d_model, d_ff, d_kv, num_heads, num_layers): mT5-small
    /// 512/1024/64/6/8, mT5-base 768/2048/64/12/12, mT5-XL 2048/5120/64/32/24, all with a
    /// 250,112-piece vocabulary, 32 buckets reaching 128 positions and an untied head.
    /// mT5-small's parameters by hand: 2 x 250112 x 512 (embedding and head) + 8 encoder blocks
    /// of 4 x 512 x 384 + 3 x 512 x 1024 + 2 x 512, + 8 decoder blocks with a second attention
    /// and norm, + 2 bias tables of 32 x 6 + 2 final norms = 300,176,768 (the "300M" model).
    #[test]
    fn mt5_shapes_are_the_published_configurations() {
        let published = [("mt5-small", 512, 1024, 64, 6, 8), ("mt5-base", 768, 2048, 64, 12, 12), ("mt5-xl", 2048, 5120, 64, 32, 24)];
        for (name, d, ff, kv, heads, layers) in published {
            let spec = seq2seq_shape(name).unwrap().spec(None).unwrap();
            assert_eq!(
                (spec.d_model, spec.ffn_dim, spec.head_dim, spec.n_heads, spec.encoder_blocks, spec.decoder_blocks),
                (d, ff, kv, heads, layers, layers),
                "{name}"
            );
            assert_eq!((spec.vocab_size, spec.buckets, spec.max_distance, spec.tied_output), (250_112, 32, 128, false), "{name}");
            assert_eq!((spec.decoder_start_token_id, spec.eos_token_id, spec.pad_token_id), (0, 1, 0));
        }
        let small = seq2seq_shape("mt5-small").unwrap().spec(None).unwrap();
        let by_hand: u64 = 2 * 250_112 * 512
            + 8 * (4 * 512 * 384 + 3 * 512 * 1024 + 2 * 512)
            + 8 * (8 * 512 * 384 + 3 * 512 * 1024 + 3 * 512)
            + 2 * 32 * 6
            + 2 * 512;
        assert_eq!(parameters(&small), by_hand);
        assert_eq!(by_hand, 300_176_768);
        assert!(seq2seq_shape("MT5-Base").is_some() && seq2seq_shape("mt5-large").is_none());
        assert!(seq2seq_shape("mt5-small").unwrap().spec(Some(9)).is_err());
    }

    /// The byte tokenizer ends every text with `</s>` (id 1) and has the whole vocabulary.
    #[test]
    fn t5_byte_tokenizer_ends_texts_with_eos() {
        let tok: tokenizers::Tokenizer = t5_byte_tokenizer(1000).to_string().parse().unwrap();
        assert_eq!(tok.get_vocab_size(true), 1000);
        let enc = tok.encode("Héllo", true).unwrap();
        assert_eq!(enc.len(), "Héllo".len() + 1);
        assert_eq!(*enc.get_ids().last().unwrap(), 1);
        assert_eq!(tok.encode("Héllo", false).unwrap().len(), "Héllo".len());
    }
}
