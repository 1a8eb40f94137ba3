//! The T5 family's `config.json` and tensor names: `MT5ForConditionalGeneration` and
//! `T5ForConditionalGeneration` with the gated-GELU MLP (T5 v1.1, mT5).
//!
//! Kept apart from [`super::config`], whose keys and spec are the decoder-only models'. As
//! there, a key that would change the outputs in a way the graphs do not implement is refused
//! with its name (ReLU or non-gated MLPs, other activations), never ignored.

use std::path::Path;

use serde_json::Value;

use super::config::{token_id_value, CONFIG_FILE};
use crate::model::seq2seq::Seq2SeqSpec;
use crate::model::ModelError;

/// The encoder-decoder classes polyprune imports.
pub const SEQ2SEQ_CLASSES: &[&str] = &["MT5ForConditionalGeneration", "T5ForConditionalGeneration"];

/// The `architectures[0]` of a folder's config, if it is one of [`SEQ2SEQ_CLASSES`].
pub fn seq2seq_class(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(CONFIG_FILE)).ok()?;
    let value: Value = serde_json::from_str(&text).ok()?;
    let class = value.get("architectures")?.as_array()?.first()?.as_str()?;
    SEQ2SEQ_CLASSES.contains(&class).then(|| class.to_string())
}

fn bad_key(path: &Path, key: &str, found: &Value, why: &str) -> ModelError {
    ModelError::Unusable { path: path.to_path_buf(), reason: format!("config key \"{key}\" = {found}: {why}") }
}

/// The spec of the T5-family config at `path` (text `text`), for a checkpoint whose shared
/// embedding has `vocab_rows` rows and which has (`has_head`) or lacks `lm_head.weight`.
/// Whether the head is tied is decided from the checkpoint, not the config flag: mT5 configs
/// and some exports disagree with their weights.
pub fn spec(text: &str, path: &Path, vocab_rows: usize, has_head: bool) -> Result<Seq2SeqSpec, ModelError> {
    let unusable = |reason: String| ModelError::Unusable { path: path.to_path_buf(), reason };
    let value: Value = serde_json::from_str(text).map_err(|e| unusable(format!("not valid JSON ({e})")))?;
    let Value::Object(map) = value else { return Err(unusable("not a JSON object".into())) };
    let get = |key: &str| map.get(key).filter(|v| !v.is_null());
    let class = get("architectures").and_then(|a| a.as_array()?.first()?.as_str()).unwrap_or_default().to_string();
    let architecture = match class.as_str() {
        "MT5ForConditionalGeneration" => "mt5",
        "T5ForConditionalGeneration" => "t5",
        other => {
            return Err(unusable(format!(
                "architecture '{other}' is not an encoder-decoder polyprune imports ({})",
                SEQ2SEQ_CLASSES.join(", ")
            )))
        }
    };
    let usize_key = |key: &str, default: Option<usize>| -> Result<usize, ModelError> {
        match get(key) {
            None => default.ok_or_else(|| unusable(format!("config key \"{key}\" is missing; a {class} config needs it"))),
            Some(v) => v.as_u64().map(|n| n as usize).ok_or_else(|| bad_key(path, key, v, "expected a whole number")),
        }
    };
    let ffn = get("feed_forward_proj").and_then(Value::as_str).unwrap_or(if architecture == "mt5" { "gated-gelu" } else { "relu" });
    if ffn != "gated-gelu" {
        return Err(bad_key(
            path,
            "feed_forward_proj",
            &Value::from(ffn),
            "the graphs implement T5 v1.1 / mT5's gated-GELU MLP only (the original T5's ReLU MLP is not supported)",
        ));
    }
    if let Some(act) = get("dense_act_fn") {
        if act.as_str() != Some("gelu_new") {
            return Err(bad_key(path, "dense_act_fn", act, "the graphs compute gelu_new (the tanh approximation) here"));
        }
    }
    let encoder_blocks = usize_key("num_layers", None)?;
    let decoder_blocks = usize_key("num_decoder_layers", Some(encoder_blocks))?;
    let d_model = usize_key("d_model", None)?;
    let n_heads = usize_key("num_heads", None)?;
    let head_dim = usize_key("d_kv", None)?;
    let ffn_dim = usize_key("d_ff", None)?;
    let buckets = usize_key("relative_attention_num_buckets", Some(32))?;
    let max_distance = usize_key("relative_attention_max_distance", Some(128))?;
    if n_heads == 0 || head_dim == 0 || encoder_blocks == 0 || decoder_blocks == 0 {
        return Err(unusable("num_heads, d_kv, num_layers and num_decoder_layers must be at least 1".into()));
    }
    if buckets < 4 || buckets % 4 != 0 || max_distance < buckets / 2 {
        return Err(bad_key(
            path,
            "relative_attention_num_buckets",
            get("relative_attention_num_buckets").unwrap_or(&Value::Null),
            "needs a multiple of 4 and relative_attention_max_distance at least half of it",
        ));
    }
    if let Some(v) = get("vocab_size").and_then(Value::as_u64) {
        if v as usize != vocab_rows {
            return Err(unusable(format!(
                "config key \"vocab_size\" = {v} but shared.weight has {vocab_rows} rows; the config and weights disagree"
            )));
        }
    }
    let eps = match get("layer_norm_epsilon") {
        None => 1e-6,
        Some(v) => v.as_f64().ok_or_else(|| bad_key(path, "layer_norm_epsilon", v, "expected a number"))?,
    };
    let token = |key: &str, default: u32| get(key).and_then(token_id_value).unwrap_or(default);
    let pad = token("pad_token_id", 0);
    // transformers' T5 (not mT5) scales the decoder output by d_model^-0.5 unless the config
    // says `tie_word_embeddings: false`; mT5 never does.
    let output_scale =
        (architecture == "t5" && get("tie_word_embeddings") != Some(&Value::Bool(false))).then(|| (d_model as f64).powf(-0.5) as f32);
    Ok(Seq2SeqSpec {
        architecture: architecture.into(),
        encoder_blocks,
        decoder_blocks,
        d_model,
        n_heads,
        head_dim,
        ffn_dim,
        vocab_size: vocab_rows,
        norm_eps: eps as f32,
        buckets,
        max_distance,
        tied_output: !has_head,
        output_scale,
        decoder_start_token_id: token("decoder_start_token_id", pad),
        eos_token_id: token("eos_token_id", 1),
        pad_token_id: pad,
    })
}

/// The checkpoint's name for the graph tensor `graph_name` (see [`crate::model::seq2seq`]).
pub fn hf_name(graph_name: &str) -> String {
    match graph_name {
        "token_embd.weight" => return "shared.weight".into(),
        "output.weight" => return "lm_head.weight".into(),
        "enc.output_norm.weight" => return "encoder.final_layer_norm.weight".into(),
        "dec.output_norm.weight" => return "decoder.final_layer_norm.weight".into(),
        _ => {}
    }
    let (stack, rest) = match graph_name.split_once(".blk.") {
        Some(("enc", rest)) => ("encoder", rest),
        Some(("dec", rest)) => ("decoder", rest),
        _ => return graph_name.into(),
    };
    let (block, local) = rest.split_once('.').unwrap_or((rest, ""));
    let stem = local.strip_suffix(".weight").unwrap_or(local);
    let decoder = stack == "decoder";
    let ffn_layer = if decoder { 2 } else { 1 };
    let hf = match stem {
        "attn_norm" => "layer.0.layer_norm".to_string(),
        "attn_q" | "attn_k" | "attn_v" | "attn_o" => format!("layer.0.SelfAttention.{}", &stem[5..]),
        "attn_rel_b" => "layer.0.SelfAttention.relative_attention_bias".to_string(),
        "cross_attn_norm" => "layer.1.layer_norm".to_string(),
        "cross_attn_q" | "cross_attn_k" | "cross_attn_v" | "cross_attn_o" => format!("layer.1.EncDecAttention.{}", &stem[11..]),
        "ffn_norm" => format!("layer.{ffn_layer}.layer_norm"),
        "ffn_gate" => format!("layer.{ffn_layer}.DenseReluDense.wi_0"),
        "ffn_up" => format!("layer.{ffn_layer}.DenseReluDense.wi_1"),
        "ffn_down" => format!("layer.{ffn_layer}.DenseReluDense.wo"),
        other => other.to_string(),
    };
    format!("{stack}.block.{block}.{hf}.weight")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_checkpoint() {
        assert_eq!(hf_name("enc.blk.1.attn_q.weight"), "encoder.block.1.layer.0.SelfAttention.q.weight");
        assert_eq!(hf_name("enc.blk.0.attn_rel_b.weight"), "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
        assert_eq!(hf_name("enc.blk.1.ffn_gate.weight"), "encoder.block.1.layer.1.DenseReluDense.wi_0.weight");
        assert_eq!(hf_name("dec.blk.2.cross_attn_o.weight"), "decoder.block.2.layer.1.EncDecAttention.o.weight");
        assert_eq!(hf_name("dec.blk.2.cross_attn_norm.weight"), "decoder.block.2.layer.1.layer_norm.weight");
        assert_eq!(hf_name("dec.blk.0.ffn_down.weight"), "decoder.block.0.layer.2.DenseReluDense.wo.weight");
        assert_eq!(hf_name("dec.blk.0.ffn_norm.weight"), "decoder.block.0.layer.2.layer_norm.weight");
        assert_eq!(hf_name("dec.output_norm.weight"), "decoder.final_layer_norm.weight");
        assert_eq!(hf_name("output.weight"), "lm_head.weight");
    }

    #[test]
    fn relu_t5_is_refused_by_name() {
        let cfg = r#"{"architectures":["T5ForConditionalGeneration"],"num_layers":2,"d_model":8,"num_heads":2,"d_kv":4,"d_ff":16,"feed_forward_proj":"relu"}"#;
        let e = spec(cfg, Path::new("config.json"), 10, true).unwrap_err().to_string();
        assert!(e.contains("feed_forward_proj") && e.contains("gated-GELU"), "{e}");
    }

    #[test]
    fn head_tying_comes_from_the_checkpoint_and_t5_scale_from_the_flag() {
        let cfg = r#"{"architectures":["MT5ForConditionalGeneration"],"num_layers":2,"d_model":16,"num_heads":2,"d_kv":4,"d_ff":16,"tie_word_embeddings":true}"#;
        let s = spec(cfg, Path::new("config.json"), 10, true).unwrap();
        assert!(!s.tied_output && s.output_scale.is_none() && s.decoder_blocks == 2);
        let t5 = cfg.replace("MT5", "T5").replace(r#""d_ff":16"#, r#""d_ff":16,"feed_forward_proj":"gated-gelu""#);
        let s = spec(&t5, Path::new("config.json"), 10, false).unwrap();
        assert!(s.tied_output);
        assert_eq!(s.output_scale, Some(0.25));
    }
}
