//! A model folder (dense, or pruned and saved with `prune --save`) to a Hugging Face folder
//! that transformers' `AutoModelForCausalLM.from_pretrained` loads.
//!
//! The weights are read from the folder's ONNX weight file one tensor at a time, turned back
//! into the checkpoint's layout ([`super::names`]) and streamed into `model.safetensors` in the
//! source folder's dtype (the type its matrices are stored in, `--dtype` at import or synth;
//! for older cards, the checkpoint's recorded at import, else f32) or the one asked for. Pruned weights are stored zeros, and zero is exact in every dtype. The written
//! `config.json` is read back through the importer's own config reader and must give the
//! card's spec again, so an export never writes a config that describes another model.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::config::{HfArchitecture, HfConfig, CONFIG_FILE};
use super::import::{KEPT_FILES, ORIGINALS_FILE};
use super::names::{hf_name, hf_shape, layout, permute_rotary_rows, qkv_blocks_to_heads, Layout};
use super::safetensors::{Checkpoint, FloatType, Writer, SINGLE_FILE};
use super::tokens::{GENERATION_CONFIG, TOKENIZER_CONFIG};
use crate::model::decoder::DecoderSpec;
use crate::model::import::transpose;
use crate::model::weights::WeightStore;
use crate::model::{ModelDir, ModelError};

#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// The dtype of the written weights; the source's when `None`.
    pub dtype: Option<FloatType>,
}

#[derive(Clone, Debug)]
pub struct ExportReport {
    pub out: PathBuf,
    pub architecture: &'static str,
    pub dtype: FloatType,
    pub tensors: usize,
    /// Weights of the prunable layers that are exactly zero, and how many there are.
    pub zeros: u64,
    pub prunable: u64,
    /// Whether `masks/` (and `pruning.json`) were copied beside the weights.
    pub masks: bool,
}

fn unusable(path: &Path, reason: String) -> ModelError {
    ModelError::Unusable { path: path.to_path_buf(), reason }
}

/// Exports the model folder `model` to the Hugging Face folder `out` (replaced whole).
pub fn export_hf(model: &Path, out: &Path, opts: &ExportOptions) -> Result<ExportReport, ModelError> {
    if crate::model::seq2seq::is_seq2seq_folder(model) {
        return export_seq2seq_hf(model, out, opts);
    }
    let model = ModelDir::open(model)?;
    let card = &model.card;
    let Some(spec) = &card.spec else {
        return Err(unusable(
            &model.dir,
            "the card has no decoder spec: only folders written by `model import` or `model synth` (and their pruned copies) export".into(),
        ));
    };
    let arch = HfArchitecture::from_spec(spec)
        .ok_or_else(|| unusable(&model.dir, format!("architecture '{}' has no Hugging Face export", spec.architecture)))?;
    let dtype = opts.dtype.or(card.weight_dtype).or(card.hf.as_ref().map(|h| h.dtype)).unwrap_or(FloatType::F32);
    let pad = card.hf.as_ref().and_then(|h| h.special_tokens.iter().find(|t| t.role == "pad").map(|t| t.id));
    let config = config_json(arch, spec, dtype, card.bos_token_id, card.eos_token_id, pad, &model.dir)?;

    let staged = crate::util::StagedDir::begin(out).map_err(|e| ModelError::io(out, e))?;
    let dir = staged.path();
    let config_path = dir.join(CONFIG_FILE);
    crate::util::write_atomic(&config_path, serde_json::to_string_pretty(&config).expect("json").as_bytes())
        .map_err(|e| ModelError::io(&config_path, e))?;
    let (tensors, zeros, prunable) = write_weights(&model, arch, spec, dtype, &dir.join(SINGLE_FILE))?;
    copy_tokenizer_files(&model, dir, pad)?;
    let masks = copy_masks(&model.dir, dir)?;
    staged.commit().map_err(|e| ModelError::io(out, e))?;
    Ok(ExportReport { out: out.to_path_buf(), architecture: arch.class(), dtype, tensors, zeros, prunable, masks })
}

/// A float as JSON through its shortest decimal form (`1e-6`, not `9.99999997e-7`).
fn num(v: f32) -> Value {
    json!(v.to_string().parse::<f64>().expect("a float prints as a number"))
}

/// The `config.json` of `spec` as `arch`; refused when the spec is not expressible in it.
fn config_json(
    arch: HfArchitecture,
    spec: &DecoderSpec,
    dtype: FloatType,
    bos: Option<u32>,
    eos: Option<u32>,
    pad: Option<u32>,
    dir: &Path,
) -> Result<Value, ModelError> {
    if arch == HfArchitecture::Bloom {
        return checked_config(bloom_config(spec, dtype, bos, eos, pad), arch, spec, dir);
    }
    let rope = |base: f64| json!({"rope_type": "default", "rope_theta": base});
    let mut c = Map::new();
    c.insert("architectures".into(), json!([arch.class()]));
    c.insert("model_type".into(), json!(arch.model_type()));
    for (k, v) in [
        ("vocab_size", spec.vocab_size),
        ("hidden_size", spec.d_model),
        ("intermediate_size", spec.ffn_dim),
        ("num_hidden_layers", spec.blocks),
        ("num_attention_heads", spec.n_heads),
        ("num_key_value_heads", spec.n_kv_heads),
        ("head_dim", spec.head_dim),
        ("max_position_embeddings", spec.max_positions),
    ] {
        c.insert(k.into(), json!(v));
    }
    c.insert("tie_word_embeddings".into(), json!(spec.tied_output));
    c.insert("bos_token_id".into(), json!(bos));
    c.insert("eos_token_id".into(), json!(eos));
    c.insert("pad_token_id".into(), json!(pad));
    c.insert("dtype".into(), json!(dtype.torch_name()));
    c.insert("attention_bias".into(), json!(false));
    c.insert("attention_dropout".into(), json!(0.0));
    c.insert("use_cache".into(), json!(true));
    let eps_key = if arch == HfArchitecture::Cohere { "layer_norm_eps" } else { "rms_norm_eps" };
    c.insert(eps_key.into(), num(spec.norm_eps));
    match arch {
        HfArchitecture::Gemma3 => {
            c.insert("hidden_activation".into(), json!("gelu_pytorch_tanh"));
            let scalar = 1.0 / (spec.attn_scale as f64).powi(2);
            c.insert("query_pre_attn_scalar".into(), json!(scalar.round() as u64));
            let window = spec.sliding_window.iter().flatten().next().copied().unwrap_or(spec.max_positions);
            c.insert("sliding_window".into(), json!(window));
            let types: Vec<&str> =
                spec.sliding_window.iter().map(|w| if w.is_some() { "sliding_attention" } else { "full_attention" }).collect();
            c.insert("layer_types".into(), json!(types));
            let base_of =
                |sliding: bool| spec.sliding_window.iter().zip(&spec.rope_base).find(|(w, _)| w.is_some() == sliding).map(|(_, b)| *b);
            c.insert(
                "rope_parameters".into(),
                json!({"sliding_attention": rope(base_of(true).unwrap_or(10_000.0)), "full_attention": rope(base_of(false).unwrap_or(1_000_000.0))}),
            );
            c.insert("final_logit_softcapping".into(), Value::Null);
            c.insert("attn_logit_softcapping".into(), Value::Null);
        }
        _ => {
            c.insert("hidden_act".into(), json!("silu"));
            c.insert("rope_parameters".into(), rope(spec.rope_base.first().copied().unwrap_or(10_000.0)));
            match arch {
                HfArchitecture::Llama => {
                    c.insert("mlp_bias".into(), json!(false));
                }
                HfArchitecture::Qwen2 => {
                    c.insert("use_sliding_window".into(), json!(false));
                    c.insert("layer_types".into(), json!(vec!["full_attention"; spec.blocks]));
                }
                HfArchitecture::Cohere => {
                    c.insert("logit_scale".into(), num(spec.logit_scale.unwrap_or(1.0)));
                    c.insert("use_qk_norm".into(), json!(false));
                }
                HfArchitecture::Gemma3 | HfArchitecture::Bloom => unreachable!(),
            }
        }
    }
    checked_config(Value::Object(c), arch, spec, dir)
}

/// BLOOM's `config.json`, with the keys `save_pretrained` writes under their BLOOM names.
fn bloom_config(spec: &DecoderSpec, dtype: FloatType, bos: Option<u32>, eos: Option<u32>, pad: Option<u32>) -> Value {
    let arch = HfArchitecture::Bloom;
    json!({
        "architectures": [arch.class()],
        "model_type": arch.model_type(),
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.d_model,
        "n_layer": spec.blocks,
        "n_head": spec.n_heads,
        "layer_norm_epsilon": num(spec.norm_eps),
        "tie_word_embeddings": spec.tied_output,
        "apply_residual_connection_post_layernorm": false,
        "hidden_dropout": 0.0,
        "attention_dropout": 0.0,
        "pretraining_tp": 1,
        "slow_but_exact": false,
        "use_cache": true,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "dtype": dtype.torch_name(),
    })
}

/// `config` when reading it back as an import would gives the card's very spec, else an error.
fn checked_config(config: Value, arch: HfArchitecture, spec: &DecoderSpec, dir: &Path) -> Result<Value, ModelError> {
    // Read back as an import would: it must describe the very model the card does.
    let text = config.to_string();
    let again = HfConfig::parse(&text, &dir.join(CONFIG_FILE))?.spec(spec.vocab_size, spec.max_positions)?;
    let comparable = |s: &DecoderSpec| serde_json::to_value(s).expect("json");
    if comparable(&again) != comparable(spec) {
        return Err(unusable(
            dir,
            format!(
                "this model's spec cannot be written as a {} config.json without changing it (spec {}; the config would give {})",
                arch.class(),
                comparable(spec),
                comparable(&again)
            ),
        ));
    }
    Ok(config)
}

/// Streams every weight into `path`; returns the tensor count and the prunable layers' zeros.
fn write_weights(
    model: &ModelDir,
    arch: HfArchitecture,
    spec: &DecoderSpec,
    dtype: FloatType,
    path: &Path,
) -> Result<(usize, u64, u64), ModelError> {
    let store = WeightStore::open(&model.dir, &model.card.graph)?;
    let originals = if model.dir.join(ORIGINALS_FILE).is_file() { Some(Checkpoint::open_file(&model.dir, ORIGINALS_FILE)?) } else { None };
    let shapes = spec.weight_shapes();
    let declared: Vec<(String, FloatType, Vec<usize>)> =
        shapes.iter().map(|(name, shape)| (hf_name(arch, name), dtype, hf_shape(layout(arch, spec, name), shape))).collect();
    let mut writer = Writer::create(path, &declared)?;
    let (mut zeros, mut prunable) = (0u64, 0u64);
    for ((name, shape), (hf, _, _)) in shapes.iter().zip(&declared) {
        let stored = store.read(name)?;
        let mut raw = None;
        let values = match layout(arch, spec, name) {
            Layout::Same => stored,
            Layout::OffsetNorm => {
                raw = original_bytes(originals.as_ref(), hf, dtype, &stored)?;
                stored.iter().map(|v| v - 1.0).collect()
            }
            Layout::InterleavedQkv { heads, linear: false } => qkv_blocks_to_heads(&stored, heads, spec.head_dim, 1),
            Layout::InterleavedQkv { heads, linear: true } => {
                let (d_in, d_out) = (shape[0], shape[1]);
                let rows = transpose(&stored, d_in, d_out);
                zeros += rows.iter().filter(|v| **v == 0.0).count() as u64;
                prunable += rows.len() as u64;
                qkv_blocks_to_heads(&rows, heads, spec.head_dim, d_in)
            }
            Layout::Linear { rotary_heads } => {
                let (d_in, d_out) = (shape[0], shape[1]);
                let rows = transpose(&stored, d_in, d_out);
                zeros += rows.iter().filter(|v| **v == 0.0).count() as u64;
                prunable += rows.len() as u64;
                match rotary_heads {
                    Some(heads) => permute_rotary_rows(&rows, heads, spec.head_dim, d_in),
                    None => rows,
                }
            }
        };
        writer.append(hf, &values, raw.as_deref())?;
    }
    writer.finish()?;
    Ok((declared.len(), zeros, prunable))
}

/// The checkpoint's own bytes of a Gemma norm, when the import kept them, they are in the
/// dtype being written, and the graph's `1 + w` still equals them (nothing changed the norm).
fn original_bytes(originals: Option<&Checkpoint>, hf: &str, dtype: FloatType, stored: &[f32]) -> Result<Option<Vec<u8>>, ModelError> {
    let Some(ck) = originals.filter(|c| c.contains(hf)) else { return Ok(None) };
    let (orig_dtype, shape) = ck.info(hf)?;
    if orig_dtype != dtype {
        return Ok(None);
    }
    let t = ck.read(hf, &shape, true)?;
    let unchanged = t.values.len() == stored.len() && t.values.iter().zip(stored).all(|(w, s)| (1.0 + w).to_bits() == s.to_bits());
    Ok(if unchanged { t.raw } else { None })
}

/// tokenizer.json, plus the tokenizer and generation configs (copied when the import kept
/// them, else written from the card's special tokens).
fn copy_tokenizer_files(model: &ModelDir, dir: &Path, pad: Option<u32>) -> Result<(), ModelError> {
    let tok_to = dir.join("tokenizer.json");
    std::fs::copy(model.tokenizer_path(), &tok_to).map_err(|e| ModelError::io(&tok_to, e))?;
    for file in KEPT_FILES {
        let from = model.dir.join(file);
        if from.is_file() {
            std::fs::copy(&from, dir.join(file)).map_err(|e| ModelError::io(&dir.join(file), e))?;
        }
    }
    let card = &model.card;
    if !dir.join(TOKENIZER_CONFIG).is_file() {
        let tok = model.tokenizer()?;
        let text = |id: Option<u32>| id.and_then(|i| tok.id_to_token(i));
        let adds_bos = card.bos_token_id.is_some_and(|b| tok.encode("a", true).map(|e| e.get_ids().first() == Some(&b)).unwrap_or(false));
        let cfg = json!({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": text(card.bos_token_id),
            "eos_token": text(card.eos_token_id),
            "pad_token": text(pad),
            "add_bos_token": adds_bos,
            "model_max_length": card.max_positions,
        });
        let p = dir.join(TOKENIZER_CONFIG);
        crate::util::write_atomic(&p, serde_json::to_string_pretty(&cfg).expect("json").as_bytes()).map_err(|e| ModelError::io(&p, e))?;
    }
    if !dir.join(GENERATION_CONFIG).is_file() {
        let cfg = json!({"bos_token_id": card.bos_token_id, "eos_token_id": card.eos_token_id, "pad_token_id": pad});
        let p = dir.join(GENERATION_CONFIG);
        crate::util::write_atomic(&p, serde_json::to_string_pretty(&cfg).expect("json").as_bytes()).map_err(|e| ModelError::io(&p, e))?;
    }
    Ok(())
}

/// The folder and record `prune --save` writes beside a pruned model (`pruned::saved`, a
/// layer above this module).
const MASK_DIR: &str = "masks";

/// Copies a pruned folder's `masks/` and `pruning.json` beside the export; false when dense.
fn copy_masks(from: &Path, to: &Path) -> Result<bool, ModelError> {
    let masks = from.join(MASK_DIR);
    if !masks.is_dir() {
        return Ok(false);
    }
    let dest = to.join(MASK_DIR);
    std::fs::create_dir_all(&dest).map_err(|e| ModelError::io(&dest, e))?;
    for entry in std::fs::read_dir(&masks).map_err(|e| ModelError::io(&masks, e))? {
        let entry = entry.map_err(|e| ModelError::io(&masks, e))?;
        if entry.path().is_file() {
            std::fs::copy(entry.path(), dest.join(entry.file_name())).map_err(|e| ModelError::io(&dest, e))?;
        }
    }
    let record = from.join("pruning.json");
    if record.is_file() {
        std::fs::copy(&record, to.join("pruning.json")).map_err(|e| ModelError::io(&to.join("pruning.json"), e))?;
    }
    Ok(true)
}

/// An encoder-decoder folder (mT5, T5 v1.1; dense, pruned or imported from GGUF) to a Hugging
/// Face folder that `MT5ForConditionalGeneration` / `T5ForConditionalGeneration` load: the
/// config (read back through the importer's reader, which must give the card's spec again),
/// `model.safetensors` with every tensor under its checkpoint name (`shared.weight` once, the
/// head as `lm_head.weight` when untied), the tokenizer and generation configs, and a pruned
/// folder's `masks/` and `pruning.json`.
pub fn export_seq2seq_hf(model: &Path, out: &Path, opts: &ExportOptions) -> Result<ExportReport, ModelError> {
    use crate::model::hf::t5;
    use crate::model::seq2seq::{Seq2SeqFolder, Seq2SeqSpec, CROSS_GRAPH_FILE, DECODER_GRAPH_FILE, ENCODER_GRAPH_FILE};

    let folder = Seq2SeqFolder::open(model)?;
    let spec = &folder.card.spec;
    let mt5 = spec.architecture == "mt5";
    let class = if mt5 { "MT5ForConditionalGeneration" } else { "T5ForConditionalGeneration" };
    // transformers' T5 multiplies a tied head's input by d_model^-0.5; a tied model without
    // that scale (llama.cpp computes none) has no T5 config that reproduces it.
    if !mt5 && spec.tied_output && spec.output_scale.is_none() {
        return Err(unusable(
            model,
            "the head is tied to the embeddings without T5's d_model^-0.5 scale, which no T5ForConditionalGeneration config \
             expresses (transformers would scale it)"
                .into(),
        ));
    }
    let dtype = opts.dtype.unwrap_or(FloatType::F32);
    let config = json!({
        "architectures": [class],
        "model_type": if mt5 { "mt5" } else { "t5" },
        "vocab_size": spec.vocab_size,
        "d_model": spec.d_model,
        "d_kv": spec.head_dim,
        "d_ff": spec.ffn_dim,
        "num_heads": spec.n_heads,
        "num_layers": spec.encoder_blocks,
        "num_decoder_layers": spec.decoder_blocks,
        "relative_attention_num_buckets": spec.buckets,
        "relative_attention_max_distance": spec.max_distance,
        "layer_norm_epsilon": num(spec.norm_eps),
        "feed_forward_proj": "gated-gelu",
        "dense_act_fn": "gelu_new",
        "is_gated_act": true,
        "is_encoder_decoder": true,
        "tie_word_embeddings": spec.tied_output,
        "decoder_start_token_id": spec.decoder_start_token_id,
        "eos_token_id": spec.eos_token_id,
        "pad_token_id": spec.pad_token_id,
        "dropout_rate": 0.0,
        "use_cache": true,
        "dtype": dtype.torch_name(),
    });
    let text = serde_json::to_string_pretty(&config).expect("json");
    let again = t5::spec(&text, &model.join(CONFIG_FILE), spec.vocab_size, !spec.tied_output)?;
    if again != *spec {
        return Err(unusable(model, format!("this model's spec cannot be written as a {class} config.json without changing it")));
    }

    let staged = crate::util::StagedDir::begin(out).map_err(|e| ModelError::io(out, e))?;
    let dir = staged.path();
    let config_path = dir.join(CONFIG_FILE);
    crate::util::write_atomic(&config_path, text.as_bytes()).map_err(|e| ModelError::io(&config_path, e))?;
    let graphs = [ENCODER_GRAPH_FILE, CROSS_GRAPH_FILE, DECODER_GRAPH_FILE];
    let stores = graphs.iter().map(|g| WeightStore::open(&folder.dir, g)).collect::<Result<Vec<_>, _>>()?;
    let shapes = spec.weight_shapes();
    let hf_shape = |name: &str, shape: &[usize]| if Seq2SeqSpec::is_linear(name) { vec![shape[1], shape[0]] } else { shape.to_vec() };
    let declared: Vec<(String, FloatType, Vec<usize>)> =
        shapes.iter().map(|(name, shape)| (t5::hf_name(name), dtype, hf_shape(name, shape))).collect();
    let mut writer = Writer::create(&dir.join(SINGLE_FILE), &declared)?;
    let (mut zeros, mut prunable) = (0u64, 0u64);
    for ((name, shape), (hf, _, _)) in shapes.iter().zip(&declared) {
        let graph = Seq2SeqFolder::graph_of(name);
        let store = &stores[graphs.iter().position(|g| *g == graph).expect("one of the three graphs")];
        let stored = store.read(name)?;
        let values = if Seq2SeqSpec::is_linear(name) {
            let rows = transpose(&stored, shape[0], shape[1]);
            zeros += rows.iter().filter(|v| **v == 0.0).count() as u64;
            prunable += rows.len() as u64;
            rows
        } else {
            stored
        };
        writer.append(hf, &values, None)?;
    }
    writer.finish()?;

    let tok_to = dir.join("tokenizer.json");
    let tok_from = folder.dir.join(&folder.card.tokenizer);
    std::fs::copy(&tok_from, &tok_to).map_err(|e| ModelError::io(&tok_to, e))?;
    let tok = folder.tokenizer()?;
    let piece = |id: u32| tok.id_to_token(id);
    let unk = tok.get_vocab(true).contains_key("<unk>").then_some("<unk>");
    let tok_cfg = json!({"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": piece(spec.eos_token_id),
                         "pad_token": piece(spec.pad_token_id), "unk_token": unk});
    let gen_cfg = json!({"decoder_start_token_id": spec.decoder_start_token_id, "eos_token_id": spec.eos_token_id,
                         "pad_token_id": spec.pad_token_id});
    for (file, value) in [(TOKENIZER_CONFIG, tok_cfg), (GENERATION_CONFIG, gen_cfg)] {
        let p = dir.join(file);
        crate::util::write_atomic(&p, serde_json::to_string_pretty(&value).expect("json").as_bytes()).map_err(|e| ModelError::io(&p, e))?;
    }
    let masks = copy_masks(&folder.dir, dir)?;
    staged.commit().map_err(|e| ModelError::io(out, e))?;
    Ok(ExportReport { out: out.to_path_buf(), architecture: class, dtype, tensors: declared.len(), zeros, prunable, masks })
}
