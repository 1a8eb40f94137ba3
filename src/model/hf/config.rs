//! Reading a Hugging Face folder's `config.json` into a [`DecoderSpec`]: the one place that
//! knows which config keys polyprune reads, which it accepts only at their plain value, and
//! which architectures it maps.
//!
//! A key that would change the model's outputs and that the graph does not implement (rotary
//! scaling, logit soft-capping, biases the graph has no place for, ...) is refused with its name
//! and file rather than ignored, so an import never silently computes a different model.
//! Rotary settings are read by [`rope`] alone, so scaling can be wired in there.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::model::decoder::{Activation, DecoderSpec, Norm};
use crate::model::ModelError;

pub const CONFIG_FILE: &str = "config.json";

/// The Hugging Face architectures polyprune imports and exports, with the graph's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HfArchitecture {
    Llama,
    Qwen2,
    Gemma3,
    Cohere,
    Bloom,
}

pub const SUPPORTED: &[&str] = &["LlamaForCausalLM", "Qwen2ForCausalLM", "Gemma3ForCausalLM", "CohereForCausalLM", "BloomForCausalLM"];

impl HfArchitecture {
    pub fn from_class(class: &str) -> Option<Self> {
        Some(match class {
            "LlamaForCausalLM" => HfArchitecture::Llama,
            "Qwen2ForCausalLM" => HfArchitecture::Qwen2,
            "Gemma3ForCausalLM" => HfArchitecture::Gemma3,
            "CohereForCausalLM" => HfArchitecture::Cohere,
            "BloomForCausalLM" => HfArchitecture::Bloom,
            _ => return None,
        })
    }

    /// The architecture a decoder spec (an imported or synthetic model's card) exports as.
    pub fn from_spec(spec: &DecoderSpec) -> Option<Self> {
        Some(match spec.architecture.as_str() {
            "llama" => HfArchitecture::Llama,
            "qwen2" => HfArchitecture::Qwen2,
            "gemma3" => HfArchitecture::Gemma3,
            "command-r" => HfArchitecture::Cohere,
            "bloom" => HfArchitecture::Bloom,
            _ => return None,
        })
    }

    pub fn class(self) -> &'static str {
        match self {
            HfArchitecture::Llama => "LlamaForCausalLM",
            HfArchitecture::Qwen2 => "Qwen2ForCausalLM",
            HfArchitecture::Gemma3 => "Gemma3ForCausalLM",
            HfArchitecture::Cohere => "CohereForCausalLM",
            HfArchitecture::Bloom => "BloomForCausalLM",
        }
    }

    pub fn model_type(self) -> &'static str {
        match self {
            HfArchitecture::Llama => "llama",
            HfArchitecture::Qwen2 => "qwen2",
            HfArchitecture::Gemma3 => "gemma3_text",
            HfArchitecture::Cohere => "cohere",
            HfArchitecture::Bloom => "bloom",
        }
    }

    /// The graph's (GGUF) architecture name.
    pub fn graph_name(self) -> &'static str {
        match self {
            HfArchitecture::Llama => "llama",
            HfArchitecture::Qwen2 => "qwen2",
            HfArchitecture::Gemma3 => "gemma3",
            HfArchitecture::Cohere => "command-r",
            HfArchitecture::Bloom => "bloom",
        }
    }

    /// transformers' default for `tie_word_embeddings` when the config omits it.
    fn ties_by_default(self) -> bool {
        matches!(self, HfArchitecture::Gemma3 | HfArchitecture::Cohere | HfArchitecture::Bloom)
    }

    /// The activation names transformers accepts for what the graph computes.
    fn activations(self) -> &'static [&'static str] {
        match self {
            HfArchitecture::Gemma3 => &["gelu_pytorch_tanh", "gelu_tanh"],
            _ => &["silu", "swish"],
        }
    }
}

/// A parsed `config.json`.
pub struct HfConfig {
    pub path: PathBuf,
    pub arch: HfArchitecture,
    map: Map<String, Value>,
}

/// The error for a config key polyprune cannot honour.
fn bad_key(path: &Path, key: &str, found: &Value, why: &str) -> ModelError {
    ModelError::Unusable { path: path.to_path_buf(), reason: format!("config key \"{key}\" = {found}: {why}") }
}

impl HfConfig {
    /// Reads `<dir>/config.json` and its architecture.
    pub fn read(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join(CONFIG_FILE);
        if !path.is_file() {
            return Err(ModelError::Unusable {
                path: dir.to_path_buf(),
                reason: format!(
                    "no {CONFIG_FILE}: not a Hugging Face model folder (give `model import` a folder with config.json and model.safetensors, or a .gguf file)"
                ),
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
        Self::parse(&text, &path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ModelError> {
        let unusable = |reason: String| ModelError::Unusable { path: path.to_path_buf(), reason };
        let value: Value = serde_json::from_str(text).map_err(|e| unusable(format!("not valid JSON ({e})")))?;
        let Value::Object(map) = value else { return Err(unusable("not a JSON object".into())) };
        let classes: Vec<String> = match map.get("architectures") {
            Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        };
        let Some(class) = classes.first() else {
            return Err(unusable(format!("no \"architectures\" list; expected one of {}", SUPPORTED.join(", "))));
        };
        let arch = HfArchitecture::from_class(class)
            .ok_or_else(|| unusable(format!("architecture '{class}' is not supported for import (supported: {})", SUPPORTED.join(", "))))?;
        Ok(HfConfig { path: path.to_path_buf(), arch, map })
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn usize(&self, key: &str) -> Result<usize, ModelError> {
        self.opt_usize(key)?.ok_or_else(|| ModelError::Unusable {
            path: self.path.clone(),
            reason: format!("config key \"{key}\" is missing; a {} config needs it", self.arch.class()),
        })
    }

    fn opt_usize(&self, key: &str) -> Result<Option<usize>, ModelError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| bad_key(&self.path, key, v, "expected a whole number")),
        }
    }

    fn opt_f64(&self, key: &str) -> Result<Option<f64>, ModelError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| bad_key(&self.path, key, v, "expected a number")),
        }
    }

    fn f64_or(&self, key: &str, default: f64) -> Result<f64, ModelError> {
        Ok(self.opt_f64(key)?.unwrap_or(default))
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool, ModelError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| bad_key(&self.path, key, v, "expected true or false")),
        }
    }

    /// A token id key (`bos_token_id`, ...): a number, or the first of a list (generation
    /// configs list several end tokens).
    pub fn token_id(&self, key: &str) -> Option<u32> {
        token_id_value(self.get(key)?)
    }

    /// Keys whose only accepted value is the plain one (`None`: absent or null): anything else
    /// changes the outputs in a way the graph does not implement.
    fn refuse_unless_plain(&self) -> Result<(), ModelError> {
        let must_be = |key: &str, plain: Option<Value>, why: &str| -> Result<(), ModelError> {
            match (self.get(key), &plain) {
                (None, _) => Ok(()),
                (Some(v), Some(p)) if v == p => Ok(()),
                (Some(v), _) => Err(bad_key(&self.path, key, v, why)),
            }
        };
        let unsupported = "the graph does not implement it; import refuses rather than compute a different model";
        match self.arch {
            HfArchitecture::Llama => {
                must_be("attention_bias", Some(Value::Bool(false)), unsupported)?;
                must_be("mlp_bias", Some(Value::Bool(false)), unsupported)?;
            }
            HfArchitecture::Qwen2 => {
                must_be("use_sliding_window", Some(Value::Bool(false)), unsupported)?;
            }
            HfArchitecture::Gemma3 => {
                must_be("final_logit_softcapping", None, unsupported)?;
                must_be("attn_logit_softcapping", None, unsupported)?;
                must_be("use_bidirectional_attention", Some(Value::Bool(false)), unsupported)?;
            }
            HfArchitecture::Bloom => {
                must_be(
                    "apply_residual_connection_post_layernorm",
                    Some(Value::Bool(false)),
                    "the residual taken after the norm is not in the graph; BLOOM checkpoints use false",
                )?;
            }
            HfArchitecture::Cohere => {
                must_be(
                    "use_qk_norm",
                    Some(Value::Bool(false)),
                    "Command-R+'s q/k LayerNorms are not in the graph; Aya-23 and Command-R import",
                )?;
            }
        }
        if self.arch == HfArchitecture::Bloom {
            // BLOOM's GELU is fixed in its code; its configs name no activation.
            return Ok(());
        }
        let act_key =
            if self.arch == HfArchitecture::Gemma3 && self.get("hidden_activation").is_some() { "hidden_activation" } else { "hidden_act" };
        if let Some(v) = self.get(act_key) {
            if !v.as_str().is_some_and(|a| self.arch.activations().contains(&a)) {
                return Err(bad_key(&self.path, act_key, v, &format!("the graph computes {} here", self.arch.activations()[0])));
            }
        }
        Ok(())
    }

    /// The decoder this config describes, for a checkpoint whose embedding has `vocab_rows`
    /// rows; rotary tables cover at most `max_positions_cap` positions.
    pub fn spec(&self, vocab_rows: usize, max_positions_cap: usize) -> Result<DecoderSpec, ModelError> {
        self.refuse_unless_plain()?;
        if self.arch == HfArchitecture::Bloom {
            return self.bloom_spec(vocab_rows, max_positions_cap);
        }
        let arch = self.arch;
        let blocks = self.usize("num_hidden_layers")?;
        let d_model = self.usize("hidden_size")?;
        let n_heads = self.usize("num_attention_heads")?;
        let n_kv_heads = self.opt_usize("num_key_value_heads")?.unwrap_or(n_heads);
        let out_of_range = |key: &str, why: &str| bad_key(&self.path, key, self.get(key).unwrap_or(&Value::Null), why);
        if n_heads == 0 {
            return Err(out_of_range("num_attention_heads", "needs at least one head"));
        }
        if n_kv_heads == 0 || !n_heads.is_multiple_of(n_kv_heads) {
            return Err(out_of_range("num_key_value_heads", "must divide num_attention_heads"));
        }
        let head_dim = match self.opt_usize("head_dim")? {
            Some(h) => h,
            None if d_model.is_multiple_of(n_heads) => d_model / n_heads,
            None => return Err(out_of_range("num_attention_heads", "must divide hidden_size when head_dim is absent")),
        };
        if head_dim == 0 || !head_dim.is_multiple_of(2) {
            return Err(out_of_range("head_dim", "rotary embeddings need an even head size"));
        }
        if let Some(v) = self.opt_usize("vocab_size")? {
            if v != vocab_rows {
                return Err(ModelError::Unusable {
                    path: self.path.clone(),
                    reason: format!("config key \"vocab_size\" = {v} but model.embed_tokens.weight has {vocab_rows} rows; the config and weights disagree"),
                });
            }
        }
        let rope = rope(self)?;
        let context = self.opt_usize("max_position_embeddings")?.unwrap_or(max_positions_cap);
        let tied = self.bool_or("tie_word_embeddings", arch.ties_by_default())?;
        let norm_eps_key = if arch == HfArchitecture::Cohere { "layer_norm_eps" } else { "rms_norm_eps" };
        let norm_eps = self.f64_or(norm_eps_key, if arch == HfArchitecture::Gemma3 { 1e-6 } else { 1e-5 })? as f32;
        let mut spec = DecoderSpec {
            architecture: arch.graph_name().into(),
            blocks,
            d_model,
            n_heads,
            n_kv_heads,
            head_dim,
            ffn_dim: self.usize("intermediate_size")?,
            vocab_size: vocab_rows,
            norm: if arch == HfArchitecture::Cohere { Norm::Layer } else { Norm::Rms },
            norm_eps,
            activation: if arch == HfArchitecture::Gemma3 { Activation::GeluTanh } else { Activation::Silu },
            parallel_block: arch == HfArchitecture::Cohere,
            qk_norm: arch == HfArchitecture::Gemma3,
            sandwich_norms: arch == HfArchitecture::Gemma3,
            qkv_bias: arch == HfArchitecture::Qwen2,
            embed_scale: None,
            tied_output: tied,
            logit_scale: None,
            attn_scale: 1.0 / (head_dim as f32).sqrt(),
            rope_base: vec![rope.global; blocks],
            rope_scaling: Vec::new(),
            sliding_window: vec![None; blocks],
            max_positions: context.min(max_positions_cap),
            gpt: Default::default(),
        };
        match arch {
            HfArchitecture::Gemma3 => {
                spec.embed_scale = Some((d_model as f32).sqrt());
                let scalar = self.f64_or("query_pre_attn_scalar", head_dim as f64)?;
                // As the GGUF import computes it, so both imports give the same graph.
                spec.attn_scale = 1.0 / (scalar as f32).sqrt();
                let window = self.usize("sliding_window")?;
                let sliding = gemma3_sliding_layers(self, blocks)?;
                for (i, s) in sliding.into_iter().enumerate() {
                    if s {
                        spec.sliding_window[i] = Some(window);
                        spec.rope_base[i] = rope.local.unwrap_or(GEMMA3_LOCAL_ROPE_BASE);
                    }
                }
            }
            HfArchitecture::Cohere => {
                spec.logit_scale = Some(self.f64_or("logit_scale", 1.0)? as f32);
            }
            HfArchitecture::Llama | HfArchitecture::Qwen2 | HfArchitecture::Bloom => {}
        }
        spec.rope_scaling = self.rope_scaling(&spec.sliding_window)?;
        if spec.rope_scaling.iter().all(Option::is_none) {
            // Unscaled cards stay as they were (the field is left out when empty).
            spec.rope_scaling.clear();
        }
        Ok(spec)
    }
}

impl HfConfig {
    /// The first of `keys` the config has (BLOOM's configs use `n_layer`, `n_head`, `n_embed`
    /// and transformers' names for the same numbers).
    fn usize_of(&self, keys: &[&str]) -> Result<usize, ModelError> {
        for k in keys {
            if let Some(v) = self.opt_usize(k)? {
                return Ok(v);
            }
        }
        self.usize(keys[0])
    }

    /// BLOOM (`BloomForCausalLM`): LayerNorms with biases (one on the embeddings too), ALiBi
    /// instead of rotary, a fused q/k/v projection, a 4x-wide GELU (tanh) MLP without a gate,
    /// biases on every linear layer, and the head tied to the embeddings.
    fn bloom_spec(&self, vocab_rows: usize, max_positions_cap: usize) -> Result<DecoderSpec, ModelError> {
        let blocks = self.usize_of(&["n_layer", "num_hidden_layers"])?;
        let d_model = self.usize_of(&["hidden_size", "n_embed"])?;
        let n_heads = self.usize_of(&["n_head", "num_attention_heads"])?;
        if n_heads == 0 || !d_model.is_multiple_of(n_heads) {
            let key = if self.get("n_head").is_some() { "n_head" } else { "num_attention_heads" };
            return Err(bad_key(&self.path, key, self.get(key).unwrap_or(&Value::Null), "must divide hidden_size"));
        }
        if let Some(v) = self.opt_usize("vocab_size")? {
            if v != vocab_rows {
                return Err(ModelError::Unusable {
                    path: self.path.clone(),
                    reason: format!(
                        "config key \"vocab_size\" = {v} but the word embeddings have {vocab_rows} rows; the config and weights disagree"
                    ),
                });
            }
        }
        let head_dim = d_model / n_heads;
        Ok(DecoderSpec {
            architecture: self.arch.graph_name().into(),
            blocks,
            d_model,
            n_heads,
            n_kv_heads: n_heads,
            head_dim,
            ffn_dim: 4 * d_model,
            vocab_size: vocab_rows,
            norm: Norm::Layer,
            norm_eps: self.f64_or("layer_norm_epsilon", 1e-5)? as f32,
            activation: Activation::GeluTanh,
            parallel_block: false,
            qk_norm: false,
            sandwich_norms: false,
            qkv_bias: false,
            embed_scale: None,
            tied_output: self.bool_or("tie_word_embeddings", true)?,
            logit_scale: None,
            attn_scale: 1.0 / (head_dim as f32).sqrt(),
            rope_base: Vec::new(),
            rope_scaling: Vec::new(),
            sliding_window: vec![None; blocks],
            // ALiBi has no position table: the cap alone bounds the sequences.
            max_positions: max_positions_cap,
            gpt: crate::model::decoder::GptSwitches {
                alibi: true,
                fused_qkv: true,
                plain_mlp: true,
                linear_bias: true,
                norm_bias: true,
                embed_norm: true,
            },
        })
    }

    /// Each block's rotary scaling, by its layer type (sliding or full attention), as
    /// [`crate::model::rope`] reads `rope_scaling` / `rope_parameters`; unknown kinds and keys
    /// are refused there, by name.
    fn rope_scaling(&self, sliding: &[Option<usize>]) -> Result<Vec<Option<crate::model::rope::RopeScaling>>, ModelError> {
        let config = Value::Object(self.map.clone());
        let for_type = |layer_type: &str| {
            crate::model::rope::RopeScaling::from_hf_config_for_layer_type(&config, layer_type).map_err(|e| {
                bad_key(
                    &self.path,
                    &e.key,
                    &Value::String(e.value.clone()),
                    &format!("{}; import refuses rather than compute a different model", e.reason),
                )
            })
        };
        let (full, local) = (for_type("full_attention")?, for_type("sliding_attention")?);
        Ok(sliding.iter().map(|w| if w.is_some() { local.clone() } else { full.clone() }).collect())
    }
}

/// A token id in a config: a number, or the first of a list.
pub fn token_id_value(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().map(|n| n as u32),
        Value::Array(a) => a.first().and_then(token_id_value),
        _ => None,
    }
}

/// Gemma 3's sliding (local) layers' rotary base when the config does not give one.
const GEMMA3_LOCAL_ROPE_BASE: f64 = 10_000.0;

/// Which Gemma 3 layers use the sliding window: `layer_types` when present, else every
/// layer but each `sliding_window_pattern`-th (6).
fn gemma3_sliding_layers(c: &HfConfig, blocks: usize) -> Result<Vec<bool>, ModelError> {
    if let Some(v) = c.get("layer_types") {
        let types: Option<Vec<&str>> = v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect());
        return match types {
            Some(t) if t.len() == blocks && t.iter().all(|s| *s == "sliding_attention" || *s == "full_attention") => {
                Ok(t.iter().map(|s| *s == "sliding_attention").collect())
            }
            _ => Err(bad_key(&c.path, "layer_types", v, "expected one \"sliding_attention\" or \"full_attention\" per layer")),
        };
    }
    let pattern = c.opt_usize("sliding_window_pattern")?.or(c.opt_usize("_sliding_window_pattern")?).unwrap_or(6).max(1);
    Ok((0..blocks).map(|i| !(i + 1).is_multiple_of(pattern)).collect())
}

/// The rotary bases a config gives: the global layers' and (Gemma 3) the local layers'.
pub struct Rope {
    pub global: f64,
    pub local: Option<f64>,
}

/// Reads the rotary settings, in the older layout (`rope_theta`, `rope_scaling`,
/// `rope_local_base_freq`) or transformers 5's `rope_parameters` (one dict, or one per layer
/// type). Scaling is read per layer type by [`HfConfig::rope_scaling`].
pub fn rope(c: &HfConfig) -> Result<Rope, ModelError> {
    let theta = |v: &Value| v.get("rope_theta").and_then(Value::as_f64);
    let mut global = c.opt_f64("rope_theta")?;
    let mut local = c.opt_f64("rope_local_base_freq")?;
    if let Some(p) = c.get("rope_parameters") {
        if p.get("rope_type").is_some() || p.get("rope_theta").is_some() {
            global = theta(p).or(global);
        } else {
            for (layer_type, params) in p.as_object().into_iter().flatten() {
                match layer_type.as_str() {
                    "full_attention" => global = theta(params).or(global),
                    "sliding_attention" => local = theta(params).or(local),
                    _ => return Err(bad_key(&c.path, "rope_parameters", p, "expected full_attention / sliding_attention entries")),
                }
            }
        }
    }
    let default = if c.arch == HfArchitecture::Gemma3 { 1_000_000.0 } else { 10_000.0 };
    Ok(Rope { global: global.unwrap_or(default), local })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HfConfig, ModelError> {
        HfConfig::parse(text, Path::new("/m/config.json"))
    }

    const LLAMA: &str = r#"{"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":96,
        "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":100,"rms_norm_eps":1e-5,
        "rope_theta":500000.0,"max_position_embeddings":128,"tie_word_embeddings":false,"hidden_act":"silu"}"#;

    #[test]
    fn llama_config_gives_the_spec_its_keys_say() {
        let s = parse(LLAMA).unwrap().spec(100, 8192).unwrap();
        assert_eq!((s.blocks, s.d_model, s.n_heads, s.n_kv_heads, s.head_dim, s.ffn_dim), (2, 64, 4, 2, 16, 96));
        assert_eq!(s.rope_base, vec![500000.0; 2]);
        assert_eq!(s.max_positions, 128);
        assert!(!s.tied_output && !s.qkv_bias);
        assert_eq!(s.attn_scale, 0.25);
    }

    #[test]
    fn rope_scaling_is_read_and_unknown_values_are_refused_by_name() {
        let llama31 = r#""rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192},"rope_theta""#;
        let scaled = LLAMA.replace("\"rope_theta\"", llama31);
        let spec = parse(&scaled).unwrap().spec(100, 8192).unwrap();
        assert_eq!(spec.rope_scaling.len(), 2);
        assert!(spec.rope_scaling.iter().all(Option::is_some), "{:?}", spec.rope_scaling);
        assert!(parse(LLAMA).unwrap().spec(100, 8192).unwrap().rope_scaling.is_empty(), "unscaled cards keep no field");
        let unknown = LLAMA.replace("\"rope_theta\"", "\"rope_scaling\":{\"rope_type\":\"longrope\",\"factor\":8.0},\"rope_theta\"");
        let err = parse(&unknown).unwrap().spec(100, 8192).unwrap_err().to_string();
        assert!(err.contains("rope_scaling") && err.contains("/m/config.json"), "{err}");
        let biased = LLAMA.replace("\"hidden_act\"", "\"attention_bias\":true,\"hidden_act\"");
        let err = parse(&biased).unwrap().spec(100, 8192).unwrap_err().to_string();
        assert!(err.contains("attention_bias"), "{err}");
        // transformers 5's `rope_parameters`: a kind polyprune builds is read, another refused by name.
        let v5 = LLAMA.replace("\"rope_theta\":500000.0", "\"rope_parameters\":{\"rope_type\":\"yarn\",\"factor\":4.0,\"rope_theta\":1.0}");
        assert!(parse(&v5).unwrap().spec(100, 8192).unwrap().rope_scaling.iter().all(Option::is_some));
        let v5 =
            LLAMA.replace("\"rope_theta\":500000.0", "\"rope_parameters\":{\"rope_type\":\"dynamic\",\"factor\":4.0,\"rope_theta\":1.0}");
        assert!(parse(&v5).unwrap().spec(100, 8192).unwrap_err().to_string().contains("rope_parameters"));
        let gelu = LLAMA.replace("\"silu\"", "\"gelu\"");
        assert!(parse(&gelu).unwrap().spec(100, 8192).unwrap_err().to_string().contains("hidden_act"));
    }

    #[test]
    fn unknown_architecture_and_vocabulary_mismatch_name_the_file() {
        let err = parse(r#"{"architectures":["GPTNeoXForCausalLM"]}"#).err().unwrap().to_string();
        assert!(err.contains("GPTNeoXForCausalLM") && err.contains("LlamaForCausalLM"), "{err}");
        let err = parse(LLAMA).unwrap().spec(99, 8192).unwrap_err().to_string();
        assert!(err.contains("vocab_size") && err.contains("99 rows"), "{err}");
    }

    #[test]
    fn gemma3_layer_types_and_rope_parameters_per_layer_type() {
        let text = r#"{"architectures":["Gemma3ForCausalLM"],"hidden_size":32,"intermediate_size":64,"num_hidden_layers":3,
            "num_attention_heads":2,"num_key_value_heads":1,"head_dim":16,"vocab_size":50,"sliding_window":4,
            "query_pre_attn_scalar":64,"layer_types":["sliding_attention","full_attention","sliding_attention"],
            "rope_parameters":{"full_attention":{"rope_type":"default","rope_theta":1000000.0},
                               "sliding_attention":{"rope_type":"default","rope_theta":10000.0}}}"#;
        let s = parse(text).unwrap().spec(50, 8192).unwrap();
        assert_eq!(s.sliding_window, vec![Some(4), None, Some(4)]);
        assert_eq!(s.rope_base, vec![10000.0, 1e6, 10000.0]);
        assert_eq!(s.attn_scale, 0.125);
        assert!(s.tied_output && s.qk_norm && s.sandwich_norms);
        assert_eq!(s.embed_scale, Some(32f32.sqrt()));
    }
}
