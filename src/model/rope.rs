//! Rotary position embeddings: the inverse frequency of each rotary pair, with the scalings
//! checkpoints use to stretch a model past the context it was trained on, and the cos/sin
//! tables the graph reads.
//!
//! A block rotates the pair `(j, j + head_dim/2)` of each head at position `p` by the angle
//! `p * inv_freq[j]`, with `inv_freq[j] = base^(-2j / head_dim)` for plain rotary. A scaling
//! changes `inv_freq` (and, for YaRN, multiplies cos and sin by an attention factor):
//! * linear: every frequency divided by `factor` (positions divided by `factor`);
//! * llama3 (Llama 3.1): low frequencies (wavelength above `original / low_freq_factor`)
//!   divided by `factor`, high ones (wavelength below `original / high_freq_factor`) kept, and
//!   a linear blend in `original / wavelength` between them;
//! * yarn: a ramp over the pair index between interpolation (`inv_freq / factor`, long
//!   wavelengths) and extrapolation (`inv_freq`, short wavelengths), its ends where a pair
//!   turns `beta_slow` and `beta_fast` times over the original context; cos and sin are then
//!   multiplied by the attention factor (`0.1 ln(factor) + 1` unless the checkpoint gives it);
//! * per-frequency divisors: `inv_freq[j] / divisors[j]`, the form llama.cpp stores Llama 3.1's
//!   scaling in (`rope_freqs.weight`).
//!
//! Each is the computation of transformers' `ROPE_INIT_FUNCTIONS` (and llama.cpp's), done here
//! in f64; `tests/fixtures/rope_reference.json` (from `scripts/rope_reference.py`) pins them.
//! Import reads the scaling from the checkpoint and refuses, by key, any kind it does not
//! implement: computing something else silently would be worse than not importing.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A rotary scaling, as a block's spec records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RopeScaling {
    /// Positions divided by `factor`.
    Linear { factor: f64 },
    /// Llama 3.1's per-frequency smoothing.
    Llama3 { factor: f64, low_freq_factor: f64, high_freq_factor: f64, original_max_positions: usize },
    /// YaRN, with its attention factor resolved.
    Yarn {
        factor: f64,
        original_max_positions: usize,
        beta_fast: f64,
        beta_slow: f64,
        /// Multiplies cos and sin.
        attention_factor: f64,
        /// Whether the ramp's ends are rounded outwards to whole pair indices (transformers'
        /// `truncate`, true unless a config says otherwise; llama.cpp always rounds).
        truncate: bool,
    },
    /// Each inverse frequency divided by its own divisor (`head_dim / 2` of them).
    FrequencyDivisors { divisors: Vec<f64> },
}

/// One block's rotary embedding: what its cos/sin tables are computed from.
#[derive(Clone, Debug, PartialEq)]
pub struct Rotary {
    pub base: f64,
    pub scaling: Option<RopeScaling>,
}

/// A rotary setting in a checkpoint that polyprune does not implement, or a value it cannot use.
#[derive(Debug, thiserror::Error)]
#[error("{key} = {value}: {reason}")]
pub struct RopeConfigError {
    /// The key, as the checkpoint spells it (`rope_scaling.rope_type`, `llama.rope.scaling.type`).
    pub key: String,
    pub value: String,
    pub reason: String,
}

impl RopeConfigError {
    fn new(key: impl Into<String>, value: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        RopeConfigError { key: key.into(), value: value.to_string(), reason: reason.into() }
    }
}

/// The scaling kinds import implements, for error messages.
pub const IMPLEMENTED: &str = "linear, llama3 and yarn (or none)";

/// YaRN's attention factor when the checkpoint gives none: `0.1 ln(factor) + 1` (1 for
/// `factor <= 1`), the YaRN paper's `sqrt(1/t)`.
pub fn yarn_default_attention_factor(factor: f64) -> f64 {
    if factor <= 1.0 {
        1.0
    } else {
        0.1 * factor.ln() + 1.0
    }
}

impl RopeScaling {
    /// YaRN with the paper's defaults for what is not given (`beta_fast` 32, `beta_slow` 1,
    /// the attention factor from `factor`, truncated ramp ends).
    pub fn yarn(
        factor: f64,
        original_max_positions: usize,
        beta_fast: Option<f64>,
        beta_slow: Option<f64>,
        attention_factor: Option<f64>,
    ) -> Self {
        RopeScaling::Yarn {
            factor,
            original_max_positions,
            beta_fast: beta_fast.unwrap_or(32.0),
            beta_slow: beta_slow.unwrap_or(1.0),
            attention_factor: attention_factor.unwrap_or_else(|| yarn_default_attention_factor(factor)),
            truncate: true,
        }
    }

    /// Llama 3.1's published scaling (factor 8, low 1, high 4, original context 8192).
    pub const fn llama_3_1() -> Self {
        RopeScaling::Llama3 { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_positions: 8192 }
    }

    /// What cos and sin are multiplied by (1 except for YaRN).
    pub fn attention_factor(&self) -> f64 {
        match self {
            RopeScaling::Yarn { attention_factor, .. } => *attention_factor,
            _ => 1.0,
        }
    }

    /// Checks the parameters against each other and the head size; `key` names the setting in errors.
    pub fn validate(&self, head_dim: usize, key: &str) -> Result<(), RopeConfigError> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(RopeConfigError::new(format!("{key}.{name}"), v, "must be a positive number"))
            }
        };
        match self {
            RopeScaling::Linear { factor } => positive("factor", *factor),
            RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_positions } => {
                positive("factor", *factor)?;
                positive("low_freq_factor", *low_freq_factor)?;
                positive("high_freq_factor", *high_freq_factor)?;
                positive("original_max_position_embeddings", *original_max_positions as f64)?;
                if high_freq_factor <= low_freq_factor {
                    return Err(RopeConfigError::new(
                        format!("{key}.high_freq_factor"),
                        high_freq_factor,
                        format!("must exceed low_freq_factor ({low_freq_factor}), or the smoothing divides by zero"),
                    ));
                }
                Ok(())
            }
            RopeScaling::Yarn { factor, original_max_positions, beta_fast, beta_slow, attention_factor, .. } => {
                positive("factor", *factor)?;
                positive("original_max_position_embeddings", *original_max_positions as f64)?;
                positive("beta_fast", *beta_fast)?;
                positive("beta_slow", *beta_slow)?;
                positive("attention_factor", *attention_factor)
            }
            RopeScaling::FrequencyDivisors { divisors } => {
                if divisors.len() != head_dim / 2 {
                    return Err(RopeConfigError::new(
                        key,
                        format!("{} values", divisors.len()),
                        format!("needs one divisor per rotary pair: head size {head_dim} has {}", head_dim / 2),
                    ));
                }
                match divisors.iter().find(|d| !(d.is_finite() && **d > 0.0)) {
                    Some(d) => Err(RopeConfigError::new(key, d, "holds a divisor that is not a positive number")),
                    None => Ok(()),
                }
            }
        }
    }

    /// A short name that tells two scalings apart, for the names of their tables.
    fn label(&self) -> String {
        match self {
            RopeScaling::Linear { factor } => format!("linear{factor}"),
            RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_positions } => {
                format!("llama3-{factor}-{low_freq_factor}-{high_freq_factor}-{original_max_positions}")
            }
            RopeScaling::Yarn { factor, original_max_positions, beta_fast, beta_slow, attention_factor, truncate } => {
                format!("yarn-{factor}-{original_max_positions}-{beta_fast}-{beta_slow}-{attention_factor}-{truncate}")
            }
            RopeScaling::FrequencyDivisors { divisors } => {
                let bytes: Vec<u8> = divisors.iter().flat_map(|d| d.to_le_bytes()).collect();
                let digest = Sha256::digest(&bytes);
                format!("divisors-{}", digest[..8].iter().map(|b| format!("{b:02x}")).collect::<String>())
            }
        }
    }

    /// The scaling a Hugging Face `config.json` declares for its (one) rotary embedding: the
    /// `rope_scaling` object, or transformers 5's flat `rope_parameters`. `Ok(None)` for none
    /// or `default`; unknown kinds and keys that would change the result are refused by name.
    /// Configs with one rotary setting per layer type (Gemma 3) go through
    /// [`RopeScaling::from_hf_config_for_layer_type`].
    pub fn from_hf_config(config: &Value) -> Result<Option<RopeScaling>, RopeConfigError> {
        let (key, params) = match (config.get("rope_scaling"), config.get("rope_parameters")) {
            (Some(s), _) if !s.is_null() => ("rope_scaling", s),
            (_, Some(p)) if !p.is_null() => ("rope_parameters", p),
            _ => return Ok(None),
        };
        if is_nested(params) {
            return Err(RopeConfigError::new(
                key,
                "one object per layer type",
                "this config sets rotary parameters per layer type; read them with from_hf_config_for_layer_type",
            ));
        }
        parse_hf_params(key, params, config)
    }

    /// The scaling of the layers of `layer_type` (`full_attention`, `sliding_attention`): from
    /// `rope_parameters` nested by layer type (transformers 5's Gemma 3), else the config's one
    /// scaling, which applies to every layer, except in Gemma 3 (`model_type` `gemma3*`),
    /// where transformers applies `rope_scaling` to the `full_attention` layers only.
    pub fn from_hf_config_for_layer_type(config: &Value, layer_type: &str) -> Result<Option<RopeScaling>, RopeConfigError> {
        match config.get("rope_parameters") {
            Some(p) if is_nested(p) => match p.get(layer_type) {
                Some(params) if !params.is_null() => parse_hf_params(&format!("rope_parameters.{layer_type}"), params, config),
                _ => Ok(None),
            },
            _ => {
                let gemma3 = config.get("model_type").and_then(Value::as_str).is_some_and(|t| t.starts_with("gemma3"));
                if gemma3 && layer_type != "full_attention" {
                    return Ok(None);
                }
                Self::from_hf_config(config)
            }
        }
    }
}

/// Whether a `rope_parameters` object is keyed by layer type rather than holding the parameters.
fn is_nested(params: &Value) -> bool {
    params.as_object().is_some_and(|o| !o.is_empty() && o.values().all(Value::is_object))
}

/// The rotary base a Hugging Face config gives the layers of `layer_type` (`rope_theta` in
/// `rope_parameters`, nested or flat, else top-level; Gemma 3's local layers also read
/// `rope_local_base_freq`), if any.
pub fn hf_rope_theta(config: &Value, layer_type: Option<&str>) -> Option<f64> {
    let params = config.get("rope_parameters").filter(|p| !p.is_null());
    let nested = params.filter(|p| is_nested(p)).and_then(|p| layer_type.and_then(|t| p.get(t)));
    nested
        .or(params.filter(|p| !is_nested(p)))
        .and_then(|p| p.get("rope_theta"))
        .and_then(Value::as_f64)
        .or_else(|| if layer_type == Some("sliding_attention") { config.get("rope_local_base_freq").and_then(Value::as_f64) } else { None })
        .or_else(|| config.get("rope_theta").and_then(Value::as_f64))
}

/// Keys of a rotary parameter object that change nothing polyprune computes.
const HF_NEUTRAL_KEYS: &[&str] = &["rope_type", "type", "rope_theta"];

fn parse_hf_params(key: &str, params: &Value, config: &Value) -> Result<Option<RopeScaling>, RopeConfigError> {
    let obj = params.as_object().ok_or_else(|| RopeConfigError::new(key, params, "must be an object"))?;
    let kind = obj.get("rope_type").or_else(|| obj.get("type")).and_then(Value::as_str).unwrap_or("default");
    let kind_key = if obj.contains_key("rope_type") { format!("{key}.rope_type") } else { format!("{key}.type") };
    let number = |name: &str| -> Result<Option<f64>, RopeConfigError> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| RopeConfigError::new(format!("{key}.{name}"), v, "must be a number")),
        }
    };
    let required = |name: &str| {
        number(name)?.ok_or_else(|| RopeConfigError::new(format!("{key}.{name}"), "absent", format!("{kind} scaling needs it")))
    };
    // transformers falls back to the config's max_position_embeddings for the original context.
    let original = || -> Result<usize, RopeConfigError> {
        let v = number("original_max_position_embeddings")?
            .or_else(|| config.get("original_max_position_embeddings").and_then(Value::as_f64))
            .or_else(|| config.get("max_position_embeddings").and_then(Value::as_f64))
            .ok_or_else(|| {
                RopeConfigError::new(
                    format!("{key}.original_max_position_embeddings"),
                    "absent",
                    "needed, and the config has no max_position_embeddings",
                )
            })?;
        Ok(v as usize)
    };
    // Every other key must be one the kind reads: an unread key may change the maths.
    let known: &[&str] = match kind {
        "default" => &[],
        "linear" => &["factor"],
        "llama3" => &["factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"],
        "yarn" => &[
            "factor",
            "original_max_position_embeddings",
            "beta_fast",
            "beta_slow",
            "attention_factor",
            "mscale",
            "mscale_all_dim",
            "truncate",
        ],
        other => {
            return Err(RopeConfigError::new(
                kind_key,
                other,
                format!("polyprune implements {IMPLEMENTED} rotary scaling; this checkpoint's would be computed wrongly, so it is refused"),
            ));
        }
    };
    if let Some(extra) = obj.keys().find(|k| !HF_NEUTRAL_KEYS.contains(&k.as_str()) && !known.contains(&k.as_str())) {
        let v = &obj[extra];
        let neutral = match extra.as_str() {
            "partial_rotary_factor" => v.as_f64() == Some(1.0),
            _ => false,
        };
        if !neutral {
            return Err(RopeConfigError::new(
                format!("{key}.{extra}"),
                v,
                format!("polyprune does not implement this key of {kind} rotary scaling"),
            ));
        }
    }
    let scaling = match kind {
        "default" => return Ok(None),
        "linear" => RopeScaling::Linear { factor: required("factor")? },
        "llama3" => RopeScaling::Llama3 {
            factor: required("factor")?,
            low_freq_factor: required("low_freq_factor")?,
            high_freq_factor: required("high_freq_factor")?,
            original_max_positions: original()?,
        },
        _ => {
            let original_max_positions = original()?;
            let factor = match number("factor")? {
                Some(f) => f,
                None => config
                    .get("max_position_embeddings")
                    .and_then(Value::as_f64)
                    .map(|m| m / original_max_positions as f64)
                    .ok_or_else(|| {
                        RopeConfigError::new(format!("{key}.factor"), "absent", "yarn scaling needs a factor (or max_position_embeddings)")
                    })?,
            };
            if let Some(all) = number("mscale_all_dim")?.filter(|&m| m != 0.0) {
                // transformers then divides the attention factor by it and folds it into the
                // attention scale of DeepSeek-style (MLA) attention, which polyprune does not build.
                return Err(RopeConfigError::new(
                    format!("{key}.mscale_all_dim"),
                    all,
                    "changes the attention scale of DeepSeek-style attention, which polyprune does not build",
                ));
            }
            // Without mscale_all_dim, transformers ignores mscale: the factor comes from `factor`.
            let attention_factor = number("attention_factor")?;
            let truncate = match obj.get("truncate") {
                None | Some(Value::Null) => true,
                Some(v) => v.as_bool().ok_or_else(|| RopeConfigError::new(format!("{key}.truncate"), v, "must be true or false"))?,
            };
            let mut y = RopeScaling::yarn(factor, original_max_positions, number("beta_fast")?, number("beta_slow")?, attention_factor);
            if let RopeScaling::Yarn { truncate: t, .. } = &mut y {
                *t = truncate;
            }
            y
        }
    };
    Ok(Some(scaling))
}

impl Rotary {
    pub fn plain(base: f64) -> Self {
        Rotary { base, scaling: None }
    }

    /// The names of this rotary's cos and sin tables in a weight file. Unscaled tables keep
    /// the names of folders written before scaling existed.
    pub fn table_names(&self) -> (String, String) {
        let stem = match &self.scaling {
            None => format!("rope.{}", self.base),
            Some(s) => format!("rope.{}.{}", self.base, s.label()),
        };
        (format!("{stem}.cos"), format!("{stem}.sin"))
    }

    /// `inv_freq[j]` for the pairs `j < head_dim / 2`, in f64.
    pub fn inverse_frequencies(&self, head_dim: usize) -> Vec<f64> {
        let half = head_dim / 2;
        let plain = |j: usize| self.base.powf(-(2.0 * j as f64) / head_dim as f64);
        match &self.scaling {
            None => (0..half).map(plain).collect(),
            Some(RopeScaling::Linear { factor }) => (0..half).map(|j| plain(j) / factor).collect(),
            Some(RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_positions }) => {
                let original = *original_max_positions as f64;
                let (low_wavelength, high_wavelength) = (original / low_freq_factor, original / high_freq_factor);
                (0..half)
                    .map(|j| {
                        let inv = plain(j);
                        let wavelength = 2.0 * std::f64::consts::PI / inv;
                        if wavelength < high_wavelength {
                            inv
                        } else if wavelength > low_wavelength {
                            inv / factor
                        } else {
                            let smooth = (original / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor);
                            (1.0 - smooth) * inv / factor + smooth * inv
                        }
                    })
                    .collect()
            }
            Some(RopeScaling::Yarn { factor, original_max_positions, beta_fast, beta_slow, truncate, .. }) => {
                let d = head_dim as f64;
                // The pair index at which a frequency turns `rotations` times over the original context.
                let pair_turning = |rotations: f64| {
                    d * (*original_max_positions as f64 / (rotations * 2.0 * std::f64::consts::PI)).ln() / (2.0 * self.base.ln())
                };
                let (mut low, mut high) = (pair_turning(*beta_fast), pair_turning(*beta_slow));
                if *truncate {
                    (low, high) = (low.floor(), high.ceil());
                }
                let (low, mut high) = (low.max(0.0), high.min(d - 1.0));
                if low == high {
                    high += 0.001; // as transformers and llama.cpp: no division by zero
                }
                (0..half)
                    .map(|j| {
                        let ramp = ((j as f64 - low) / (high - low)).clamp(0.0, 1.0);
                        let extrapolation = 1.0 - ramp;
                        let inv = plain(j);
                        inv / factor * (1.0 - extrapolation) + inv * extrapolation
                    })
                    .collect()
            }
            Some(RopeScaling::FrequencyDivisors { divisors }) => {
                (0..half).map(|j| plain(j) / divisors.get(j).copied().unwrap_or(1.0)).collect()
            }
        }
    }

    /// What cos and sin are multiplied by.
    pub fn attention_factor(&self) -> f64 {
        self.scaling.as_ref().map_or(1.0, RopeScaling::attention_factor)
    }

    /// Tables `[positions, head_dim]` of `attention_factor * cos` and `* sin` of each
    /// position's angles, each half repeated (the rotate-half layout: pairs `(j, j + hd/2)`),
    /// in f64; `round` turns each value into the caller's float type.
    pub fn tables<F: Copy>(&self, head_dim: usize, positions: usize, round: impl Fn(f64) -> F) -> (Vec<F>, Vec<F>) {
        let half = head_dim / 2;
        let inv = self.inverse_frequencies(head_dim);
        let scale = self.attention_factor();
        let mut cos = vec![round(0.0); positions * head_dim];
        let mut sin = vec![round(0.0); positions * head_dim];
        for p in 0..positions {
            for (j, &f) in inv.iter().enumerate() {
                let (s, c) = (p as f64 * f).sin_cos();
                for k in [j, j + half] {
                    cos[p * head_dim + k] = round(scale * c);
                    sin[p * head_dim + k] = round(scale * s);
                }
            }
        }
        (cos, sin)
    }
}

#[cfg(test)]
mod tests;
