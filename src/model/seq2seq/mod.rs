//! The encoder-decoder transformer of T5 v1.1 and mT5, written as ONNX graphs.
//!
//! T5 differs from the decoder-only models of [`crate::model::decoder`] in more than switches:
//! two stacks, a relative position bias in place of rotary embeddings (one `[buckets, heads]`
//! table per stack, in block 0, added to every block's scores), attention scores without the
//! `1/sqrt(d)` scaling, and a cross-attention in every decoder block over the encoder's output.
//! So it gets its own spec, graphs ([`graphs`]) and model folder ([`Seq2SeqFolder`]).
//!
//! Tensor names are those llama.cpp's `t5` GGUF files use (`enc.blk.0.attn_q.weight`,
//! `dec.blk.2.cross_attn_o.weight`, `dec.output_norm.weight`), so every name says which stack
//! and which attention it belongs to. Linear layers are stored `[in, out]` as in the decoder.

pub mod graphs;
pub mod import;
pub mod synth;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ModelError;

/// The file describing a seq2seq model folder (its spec, tokens and source).
pub const SEQ2SEQ_CARD_FILE: &str = "seq2seq.json";
pub const SEQ2SEQ_CARD_FORMAT: &str = "polyprune-seq2seq-card/1";
/// `input_ids` + `attention_mask` -> `encoder_hidden` (after the encoder's final norm).
pub const ENCODER_GRAPH_FILE: &str = "encoder.onnx";
/// `encoder_hidden` -> every decoder block's cross-attention keys and values.
pub const CROSS_GRAPH_FILE: &str = "cross_kv.onnx";
/// Decoder inputs, the cross-attention keys/values and a (possibly empty) self-attention
/// cache -> label log-probabilities, greedy tokens, logits and the grown cache.
pub const DECODER_GRAPH_FILE: &str = "decoder.onnx";
pub const SEQ2SEQ_WEIGHTS_FILE: &str = "seq2seq.onnx.data";

/// Which stack a block belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stack {
    Encoder,
    Decoder,
}

impl Stack {
    /// The tensor-name prefix of the stack's blocks and norms.
    pub fn prefix(self) -> &'static str {
        match self {
            Stack::Encoder => "enc",
            Stack::Decoder => "dec",
        }
    }
}

/// Everything the graphs need to know about one T5-family checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Seq2SeqSpec {
    /// `mt5` or `t5` (v1.1, gated-GELU).
    pub architecture: String,
    pub encoder_blocks: usize,
    pub decoder_blocks: usize,
    pub d_model: usize,
    pub n_heads: usize,
    /// T5's `d_kv`: the size of each head (not necessarily `d_model / n_heads`).
    pub head_dim: usize,
    pub ffn_dim: usize,
    pub vocab_size: usize,
    pub norm_eps: f32,
    /// Relative-position buckets of each stack's bias table.
    pub buckets: usize,
    /// Relative distance from which every position falls in the last bucket.
    pub max_distance: usize,
    /// The head reuses `token_embd.weight` (no `lm_head.weight` in the checkpoint).
    pub tied_output: bool,
    /// Multiply the decoder's output by this before the head (original T5 with a tied head:
    /// `d_model^-0.5`); mT5 and T5 v1.1 have none.
    pub output_scale: Option<f32>,
    /// The first decoder input (T5: the pad token).
    pub decoder_start_token_id: u32,
    pub eos_token_id: u32,
    pub pad_token_id: u32,
}

impl Seq2SeqSpec {
    pub fn inner_dim(&self) -> usize {
        self.n_heads * self.head_dim
    }

    pub fn blocks(&self, stack: Stack) -> usize {
        match stack {
            Stack::Encoder => self.encoder_blocks,
            Stack::Decoder => self.decoder_blocks,
        }
    }

    /// Names and shapes of every weight the graphs read, in the graph's layout.
    pub fn weight_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (d, f, inner) = (self.d_model, self.ffn_dim, self.inner_dim());
        let mut out = vec![("token_embd.weight".to_string(), vec![self.vocab_size, d])];
        for stack in [Stack::Encoder, Stack::Decoder] {
            for i in 0..self.blocks(stack) {
                let p = |s: &str| format!("{}.blk.{i}.{s}.weight", stack.prefix());
                out.push((p("attn_norm"), vec![d]));
                for (role, shape) in [("attn_q", [d, inner]), ("attn_k", [d, inner]), ("attn_v", [d, inner]), ("attn_o", [inner, d])] {
                    out.push((p(role), shape.to_vec()));
                }
                if i == 0 {
                    out.push((p("attn_rel_b"), vec![self.buckets, self.n_heads]));
                }
                if stack == Stack::Decoder {
                    out.push((p("cross_attn_norm"), vec![d]));
                    for (role, shape) in [
                        ("cross_attn_q", [d, inner]),
                        ("cross_attn_k", [d, inner]),
                        ("cross_attn_v", [d, inner]),
                        ("cross_attn_o", [inner, d]),
                    ] {
                        out.push((p(role), shape.to_vec()));
                    }
                }
                out.push((p("ffn_norm"), vec![d]));
                out.push((p("ffn_gate"), vec![d, f]));
                out.push((p("ffn_up"), vec![d, f]));
                out.push((p("ffn_down"), vec![f, d]));
            }
            out.push((format!("{}.output_norm.weight", stack.prefix()), vec![d]));
        }
        if !self.tied_output {
            out.push(("output.weight".to_string(), vec![self.vocab_size, d]));
        }
        out
    }

    /// True for the tensors stored `[in, out]` (the linear layers), which checkpoints store
    /// `[out, in]`.
    pub fn is_linear(name: &str) -> bool {
        const LINEAR: &[&str] = &[
            "attn_q",
            "attn_k",
            "attn_v",
            "attn_o",
            "cross_attn_q",
            "cross_attn_k",
            "cross_attn_v",
            "cross_attn_o",
            "ffn_gate",
            "ffn_up",
            "ffn_down",
        ];
        name.strip_suffix(".weight").and_then(|s| s.rsplit('.').next()).is_some_and(|stem| name.contains(".blk.") && LINEAR.contains(&stem))
    }

    /// The bucket of each relative position `key - query` in `-(max_distance+1) ..=
    /// max_distance+1` (index `rel + max_distance + 1`): positions further apart share the
    /// bucket of that range's ends. `bidirectional` for the encoder, causal for the decoder.
    ///
    /// Mesh TensorFlow's bucketing as transformers computes it: half of the buckets (per
    /// direction) are exact distances, the rest logarithmic up to `max_distance`, all in
    /// float32 and truncated toward zero, so the boundary buckets agree with transformers'.
    pub fn bucket_table(&self, bidirectional: bool) -> Vec<i64> {
        let reach = self.max_distance as i64 + 1;
        (-reach..=reach).map(|rel| relative_bucket(rel, bidirectional, self.buckets as i64, self.max_distance as i64)).collect()
    }
}

/// One relative position's bucket (see [`Seq2SeqSpec::bucket_table`]).
pub fn relative_bucket(rel: i64, bidirectional: bool, buckets: i64, max_distance: i64) -> i64 {
    let (mut nb, mut base, distance) = (buckets, 0, rel);
    let distance = if bidirectional {
        nb /= 2;
        if distance > 0 {
            base += nb;
        }
        distance.abs()
    } else {
        (-distance).max(0)
    };
    let max_exact = nb / 2;
    if distance < max_exact {
        return base + distance;
    }
    let ratio = (distance as f32 / max_exact as f32).ln() / ((max_distance as f64 / max_exact as f64).ln() as f32);
    let large = max_exact + (ratio * (nb - max_exact) as f32) as i64;
    base + large.min(nb - 1)
}

/// One prunable linear layer of an encoder-decoder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seq2SeqLayer {
    /// The graph's tensor name (`enc.blk.0.attn_q.weight`, `dec.blk.1.cross_attn_k.weight`).
    pub name: String,
    pub stack: Stack,
    pub block: usize,
    /// `[in_features, out_features]`, the stored shape.
    pub shape: [usize; 2],
    /// The tensor feeding the layer: a tap inside the block, or `encoder_hidden` for the
    /// cross-attention keys and values.
    pub input: String,
}

impl Seq2SeqLayer {
    /// The layer as the decoder-only tools describe one (sparsity tables, masks, filters):
    /// the role says which attention (`cross_q`..`cross_o` for the cross-attention), and
    /// `block` counts the encoder's blocks first, then the decoder's (`dec.blk.0` is block
    /// `encoder_blocks`), so that every block of the model has its own number.
    pub fn as_linear(&self, encoder_blocks: usize) -> crate::model::LinearLayer {
        use crate::model::Role;
        let stem = self.name.strip_suffix(".weight").and_then(|s| s.rsplit('.').next()).unwrap_or_default();
        let role = match stem {
            "attn_q" => Role::Q,
            "attn_k" => Role::K,
            "attn_v" => Role::V,
            "attn_o" => Role::O,
            "cross_attn_q" => Role::CrossQ,
            "cross_attn_k" => Role::CrossK,
            "cross_attn_v" => Role::CrossV,
            "cross_attn_o" => Role::CrossO,
            "ffn_gate" => Role::Gate,
            "ffn_up" => Role::Up,
            _ => Role::Down,
        };
        let block = match self.stack {
            Stack::Encoder => self.block,
            Stack::Decoder => encoder_blocks + self.block,
        };
        crate::model::LinearLayer { name: self.name.clone(), block, role, shape: self.shape, input: self.input.clone(), transposed: false }
    }
}

/// True for a folder holding an encoder-decoder model (its card, and no decoder graph).
pub fn is_seq2seq_folder(dir: &Path) -> bool {
    dir.join(SEQ2SEQ_CARD_FILE).is_file() && !dir.join("model.onnx").is_file()
}

impl Seq2SeqSpec {
    /// The prunable layers of one block, with their inputs.
    pub fn layers_of_block(&self, stack: Stack, block: usize) -> Vec<Seq2SeqLayer> {
        let (d, f, inner) = (self.d_model, self.ffn_dim, self.inner_dim());
        let pre = stack.prefix();
        let layer = |role: &str, shape: [usize; 2], tap: &str| Seq2SeqLayer {
            name: format!("{pre}.blk.{block}.{role}.weight"),
            stack,
            block,
            shape,
            input: if tap == "encoder_hidden" { tap.to_string() } else { format!("{pre}.blk.{block}.{tap}") },
        };
        let mut out = vec![
            layer("attn_q", [d, inner], "attn_in"),
            layer("attn_k", [d, inner], "attn_in"),
            layer("attn_v", [d, inner], "attn_in"),
            layer("attn_o", [inner, d], "attn_output_in"),
        ];
        if stack == Stack::Decoder {
            out.extend([
                layer("cross_attn_q", [d, inner], "cross_attn_in"),
                layer("cross_attn_k", [d, inner], "encoder_hidden"),
                layer("cross_attn_v", [d, inner], "encoder_hidden"),
                layer("cross_attn_o", [inner, d], "cross_attn_output_in"),
            ]);
        }
        out.extend([layer("ffn_gate", [d, f], "ffn_in"), layer("ffn_up", [d, f], "ffn_in"), layer("ffn_down", [f, d], "ffn_down_in")]);
        out
    }

    /// Every prunable layer: the encoder's blocks in order, then the decoder's.
    pub fn layers(&self) -> Vec<Seq2SeqLayer> {
        [Stack::Encoder, Stack::Decoder]
            .into_iter()
            .flat_map(|s| (0..self.blocks(s)).flat_map(move |b| self.layers_of_block(s, b)))
            .collect()
    }
}

/// A seq2seq model folder's description, written beside its graphs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Seq2SeqCard {
    pub format: String,
    pub name: String,
    /// Where the weights came from and the SHA-256 over its files.
    pub source: super::card::SourceFile,
    pub spec: Seq2SeqSpec,
    pub tokenizer: String,
}

/// An opened seq2seq model folder.
#[derive(Clone, Debug)]
pub struct Seq2SeqFolder {
    pub dir: PathBuf,
    pub card: Seq2SeqCard,
}

impl Seq2SeqFolder {
    pub fn open(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join(SEQ2SEQ_CARD_FILE);
        if !path.is_file() {
            return Err(ModelError::Unusable {
                path: dir.to_path_buf(),
                reason: format!("not an encoder-decoder model folder: it has no {SEQ2SEQ_CARD_FILE}"),
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
        let card: Seq2SeqCard =
            serde_json::from_str(&text).map_err(|e| ModelError::BadCard { path: path.clone(), reason: e.to_string() })?;
        if card.format != SEQ2SEQ_CARD_FORMAT {
            return Err(ModelError::BadCard { path, reason: format!("format '{}' is not '{}'", card.format, SEQ2SEQ_CARD_FORMAT) });
        }
        Ok(Seq2SeqFolder { dir: dir.to_path_buf(), card })
    }

    pub fn graph(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    pub fn tokenizer(&self) -> Result<tokenizers::Tokenizer, ModelError> {
        let path = self.dir.join(&self.card.tokenizer);
        tokenizers::Tokenizer::from_file(&path).map_err(|e| ModelError::Tokenizer { path, message: e.to_string() })
    }

    /// A stable identity for provenance: the source and its checksum.
    pub fn identity(&self) -> String {
        let s = &self.card.source;
        format!("{}:{}", s.file, &s.sha256[..16.min(s.sha256.len())])
    }

    /// The graph file holding a weight: the cross-attention keys and values live in the
    /// cross graph (which reads the encoder's output), other decoder weights in the decoder's.
    pub fn graph_of(name: &str) -> &'static str {
        if name.starts_with("enc.") {
            ENCODER_GRAPH_FILE
        } else if name.ends_with("cross_attn_k.weight") || name.ends_with("cross_attn_v.weight") {
            CROSS_GRAPH_FILE
        } else {
            DECODER_GRAPH_FILE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// transformers' `_relative_position_bucket` evaluated by hand for 8 buckets and a maximum
    /// distance of 20 (the fixture's): encoder (bidirectional) nb = 4, max_exact = 2: distances
    /// 0, 1 exact; 2..: 2 + floor(ln(d/2)/ln(10) * 2), so 2..=6 -> 2, 7..=19 -> 3 (cap 3);
    /// positive distances add 4. Decoder (causal) nb = 8, max_exact = 4: 0..=3 exact; 4..:
    /// 4 + floor(ln(d/4)/ln(5) * 4), so 4, 5 -> 4 (ln(1.5)/ln5*4 = 1.007 at 6), ...
    #[test]
    fn buckets_follow_transformers_formula() {
        let enc = |r| relative_bucket(r, true, 8, 20);
        assert_eq!([enc(0), enc(-1), enc(-2), enc(-6), enc(-7), enc(-19), enc(-40)], [0, 1, 2, 2, 3, 3, 3]);
        assert_eq!([enc(1), enc(2), enc(6), enc(7), enc(100)], [5, 6, 6, 7, 7]);
        let dec = |r| relative_bucket(r, false, 8, 20);
        // Future positions (masked anyway) fall in bucket 0.
        assert_eq!([dec(3), dec(0), dec(-1), dec(-3)], [0, 0, 1, 3]);
        // ln(d/4)/ln(5)*4: d=5 -> 0.55, 6 -> 1.007, 8 -> 1.72, 9 -> 2.01, 13 -> 2.93, 14 -> 3.11, 20 -> 4 (cap 7).
        assert_eq!([dec(-4), dec(-5), dec(-6), dec(-8), dec(-9), dec(-13), dec(-14), dec(-19), dec(-25)], [4, 4, 5, 5, 6, 6, 7, 7, 7]);
    }

    /// The whole tables against transformers 5.25's `MT5Attention._relative_position_bucket`
    /// on `torch.arange(-21, 22)` with 8 buckets and maximum distance 20.
    #[test]
    fn bucket_tables_equal_transformers() {
        let spec = crate::model::seq2seq::tests::tiny_spec();
        let enc = [
            3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 1, 0, 5, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
        ];
        let dec = [
            7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 5, 5, 5, 4, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(spec.bucket_table(true), enc);
        assert_eq!(spec.bucket_table(false), dec);
    }

    pub fn tiny_spec() -> Seq2SeqSpec {
        Seq2SeqSpec {
            architecture: "mt5".into(),
            encoder_blocks: 2,
            decoder_blocks: 3,
            d_model: 64,
            n_heads: 4,
            head_dim: 16,
            ffn_dim: 96,
            vocab_size: 152,
            norm_eps: 1e-6,
            buckets: 8,
            max_distance: 20,
            tied_output: false,
            output_scale: None,
            decoder_start_token_id: 0,
            eos_token_id: 1,
            pad_token_id: 0,
        }
    }

    #[test]
    fn linear_names_are_the_blocks_matrices() {
        assert!(Seq2SeqSpec::is_linear("enc.blk.0.attn_q.weight"));
        assert!(Seq2SeqSpec::is_linear("dec.blk.2.cross_attn_o.weight"));
        assert!(!Seq2SeqSpec::is_linear("dec.blk.0.attn_rel_b.weight"));
        assert!(!Seq2SeqSpec::is_linear("dec.blk.0.cross_attn_norm.weight"));
        assert!(!Seq2SeqSpec::is_linear("output.weight"));
    }
}
