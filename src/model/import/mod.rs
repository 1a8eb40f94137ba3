//! GGUF to ONNX, natively: read a (possibly quantized) GGUF checkpoint, dequantize it, and
//! write `model.onnx` + `model.onnx.data`, the key/value-cache graphs, per-block parts,
//! `tokenizer.json` and `card.json`. Folders imported before the cache graphs existed get them
//! on first use ([`ensure_cached_graphs`]); they reference the same weight file.
//!
//! One file per architecture maps GGUF metadata to a [`DecoderSpec`]; the graph itself is
//! written once, in `decoder.rs`. Tensors are streamed: each is dequantized, laid out for
//! the graph and appended to the weight file before the next is read.

mod bloom;
mod command_r;
mod gemma3;
pub(crate) use gemma3::attn_scale as gemma3_attn_scale;
pub(crate) mod llama;
pub mod tokenizer;
pub mod unigram;

#[cfg(test)]
mod rope_tests;

use std::path::{Path, PathBuf};

use prost::Message;

use super::builder::WeightFile;
use super::card::{ModelCard, Parts, SourceFile, CARD_FORMAT};
use super::decoder::{self, rope_tables, DecoderSpec, WeightTable};
use super::gguf::{GgufError, GgufFile};
use super::rope::RopeScaling;
use super::ModelError;
use crate::runtime::FloatType;

pub const GRAPH_FILE: &str = "model.onnx";
/// The same model with a `logits` output instead of the scoring heads.
pub const LOGITS_GRAPH_FILE: &str = "model.logits.onnx";
pub const WEIGHTS_FILE: &str = "model.onnx.data";
/// The key/value-cache graphs (see `decoder::cached_body` and `decoder::head_model`): a context
/// run once, continuations run on its cache, the output layer only on scored rows.
pub const PREFIX_GRAPH_FILE: &str = "model.prefix.onnx";
pub const CONTINUATION_GRAPH_FILE: &str = "model.continuation.onnx";
pub const HEAD_GRAPH_FILE: &str = "model.head.onnx";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// The attention head counts under `<prefix>.attention.*`: query heads that divide the width,
/// key/value heads (as many as the queries when absent) that divide the query heads.
fn head_counts(g: &GgufFile, prefix: &str, d_model: usize) -> Result<(usize, usize), GgufError> {
    let key = |s: &str| format!("{prefix}.attention.{s}");
    let out_of_range = |k: &str, expected: &'static str, value: String| GgufError::ValueOutOfRange {
        path: g.path().to_path_buf(),
        key: key(k),
        expected,
        value,
    };
    let n_heads = g.metadata().get_u32(&key("head_count"))? as usize;
    if n_heads == 0 || !d_model.is_multiple_of(n_heads) {
        let value = format!("{n_heads} heads for embedding length {d_model}");
        return Err(out_of_range("head_count", "a head count that divides the embedding length", value));
    }
    let n_kv_heads = g.metadata().get_opt::<u32>(&key("head_count_kv"))?.map(|v| v as usize).unwrap_or(n_heads);
    if n_kv_heads == 0 || !n_heads.is_multiple_of(n_kv_heads) {
        let value = format!("{n_kv_heads} key/value heads for {n_heads} heads");
        return Err(out_of_range("head_count_kv", "a key/value head count that divides the head count", value));
    }
    Ok((n_heads, n_kv_heads))
}

/// The rotary scaling a GGUF file declares for `arch` (whose heads are `head_dim` wide), as
/// llama.cpp reads it: `<arch>.rope.scaling.type` (absent: linear), the factor from
/// `<arch>.rope.scaling.factor` (or the older `<arch>.rope.scale_linear`; 0 or 1: none), YaRN's
/// `original_context_length` and beta keys, and the per-frequency divisors of
/// `rope_freqs.weight` (Llama 3.1's scaling, which the converter stores that way). Anything
/// else that would change the rotary angles (another scaling type, a partial rotary
/// dimension, YaRN's extra attention factors) is refused, naming the key and the file.
pub(crate) fn gguf_rope_scaling(g: &GgufFile, arch: &str, head_dim: usize) -> Result<Option<RopeScaling>, GgufError> {
    let m = g.metadata();
    let key = |s: &str| format!("{arch}.rope.{s}");
    // A value import does not implement: named with its key, so the user sees what differs.
    let unsupported = |k: String, value: String, hint: &'static str| GgufError::UnsupportedVariant {
        path: g.path().to_path_buf(),
        feature: format!("metadata '{k}' = {value}"),
        hint,
    };
    let refuse = |k: String, value: String, expected: &'static str| GgufError::ValueOutOfRange {
        path: g.path().to_path_buf(),
        key: k,
        expected,
        value,
    };
    if let Some(dims) = m.get_opt::<u32>(&key("dimension_count"))? {
        if dims as usize != head_dim {
            return Err(unsupported(
                key("dimension_count"),
                format!("{dims} (the head size is {head_dim})"),
                "rotary embeddings over part of each head are not implemented, and importing would compute different attention",
            ));
        }
    }
    let factor = match m.get_opt::<f32>(&key("scaling.factor"))? {
        Some(f) => Some((key("scaling.factor"), f)),
        None => m.get_opt::<f32>(&key("scale_linear"))?.map(|f| (key("scale_linear"), f)),
    };
    if let Some((k, f)) = &factor {
        if !(f.is_finite() && *f >= 0.0) {
            return Err(refuse(k.clone(), f.to_string(), "a positive rotary scaling factor (0 or 1: none)"));
        }
    }
    let factor = factor.map(|(_, f)| f64::from(f)).filter(|&f| f != 0.0 && f != 1.0);
    let kind = m.get_opt::<&str>(&key("scaling.type"))?.unwrap_or("linear");
    let scaling = match kind {
        "none" | "linear" => factor.map(|factor| RopeScaling::Linear { factor }),
        "yarn" => {
            let factor = factor.ok_or_else(|| GgufError::MissingKey { path: g.path().to_path_buf(), key: key("scaling.factor") })?;
            let original = match m.get_opt::<u32>(&key("scaling.original_context_length"))? {
                Some(n) => n as usize,
                None => m.get_u32(&format!("{arch}.context_length"))? as usize,
            };
            // Keys whose non-default values llama.cpp folds into the angles or the attention
            // factor in ways transformers' YaRN does not: refused rather than guessed.
            for (k, neutral) in [
                ("scaling.yarn_ext_factor", 1.0),
                ("scaling.yarn_attn_factor", 1.0),
                ("scaling.attn_factor", 1.0),
                ("scaling.yarn_log_multiplier", 0.0),
            ] {
                if let Some(v) = m.get_opt::<f32>(&key(k))? {
                    if f64::from(v) != neutral {
                        return Err(unsupported(
                            key(k),
                            v.to_string(),
                            "only YaRN as transformers computes it (this key at its default) is implemented; importing would compute different attention",
                        ));
                    }
                }
            }
            let beta = |k: &str| m.get_opt::<f32>(&key(k)).map(|v| v.map(f64::from));
            Some(RopeScaling::yarn(factor, original, beta("scaling.yarn_beta_fast")?, beta("scaling.yarn_beta_slow")?, None))
        }
        other => {
            return Err(unsupported(
                key("scaling.type"),
                format!("'{other}'"),
                "polyprune implements the rotary scalings none, linear and yarn (and Llama 3.1's rope_freqs.weight); importing would compute different attention",
            ));
        }
    };
    let scaling = match (scaling, g.tensor_info(ROPE_FREQS)) {
        (scaling, None) => scaling,
        (None, Some(_)) => {
            Some(RopeScaling::FrequencyDivisors { divisors: g.dequantize(ROPE_FREQS)?.into_iter().map(f64::from).collect() })
        }
        (Some(_), Some(_)) => {
            return Err(GgufError::UnsupportedVariant {
                path: g.path().to_path_buf(),
                feature: format!("per-frequency rotary divisors ({ROPE_FREQS}) together with {kind} scaling ({})", key("scaling.type")),
                hint:
                    "files converted from Llama 3.1 carry the divisors alone; re-convert the checkpoint with a current llama.cpp converter",
            });
        }
    };
    if let Some(s) = &scaling {
        let k = if matches!(s, RopeScaling::FrequencyDivisors { .. }) { ROPE_FREQS.to_string() } else { key("scaling") };
        s.validate(head_dim, &k).map_err(|e| GgufError::ValueOutOfRange {
            path: g.path().to_path_buf(),
            key: e.key,
            expected: "rotary scaling parameters polyprune can use",
            value: format!("{} ({})", e.value, e.reason),
        })?;
    }
    Ok(scaling)
}

/// llama.cpp's tensor of per-frequency rotary divisors (Llama 3.1).
const ROPE_FREQS: &str = "rope_freqs.weight";

/// The special token ids a card records (`start`: what calibration windows begin with).
pub(crate) struct SpecialTokens {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub start: Option<u32>,
}

/// What a card records of a folder's matrix type: nothing for f32, so f32 cards stay as
/// they were before 16-bit weights.
pub(crate) fn card_dtype(dtype: FloatType) -> Option<FloatType> {
    (dtype != FloatType::F32).then_some(dtype)
}

/// The card of a folder written from a decoder spec, imported or synthetic: the graphs and
/// tokenizer under their standard names, the spec's layers and parts.
pub(crate) fn decoder_card(
    name: String,
    source: SourceFile,
    spec: DecoderSpec,
    parts: Parts,
    tokens: SpecialTokens,
    synthetic: Option<super::card::SyntheticOrigin>,
) -> ModelCard {
    ModelCard {
        format: CARD_FORMAT.into(),
        name,
        architecture: spec.architecture.clone(),
        source: Some(source),
        graph: GRAPH_FILE.into(),
        tokenizer: TOKENIZER_FILE.into(),
        bos_token_id: tokens.bos,
        eos_token_id: tokens.eos,
        start_token_id: tokens.start,
        max_positions: spec.max_positions,
        vocab_size: spec.vocab_size,
        blocks: spec.blocks,
        inputs: vec!["input_ids".into()],
        has_scoring_heads: true,
        layers: spec.linear_layers(),
        spec: Some(spec),
        parts: Some(parts),
        synthetic,
        hf: None,
        weight_dtype: None,
    }
}

/// Architectures polyprune can import, with the GGUF `general.architecture` names.
pub const SUPPORTED: &[&str] = &["bloom", "command-r", "gemma3", "llama", "qwen2"];

#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Cap on the rotary tables' length (the checkpoint's context can be far longer than any
    /// evaluation window; the tables cost `2 x positions x head_dim` floats per rope base).
    pub max_positions: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { max_positions: 8192 }
    }
}

/// How one architecture turns GGUF metadata into a spec and GGUF tensors into graph weights.
trait Architecture {
    fn spec(&self, gguf: &GgufFile, opts: &ImportOptions) -> Result<DecoderSpec, GgufError>;
    /// Rewrites a dequantized tensor (row-major, PyTorch layout) before it is laid out
    /// (e.g. undoing a converter's row permutation).
    fn adjust(&self, _name: &str, _spec: &DecoderSpec, data: Vec<f32>) -> Vec<f32> {
        data
    }
}

fn architecture(name: &str) -> Option<Box<dyn Architecture>> {
    match name {
        "bloom" => Some(Box::new(bloom::Bloom)),
        "command-r" => Some(Box::new(command_r::CommandR)),
        "gemma3" => Some(Box::new(gemma3::Gemma3)),
        "llama" => Some(Box::new(llama::Llama { qwen2: false })),
        "qwen2" => Some(Box::new(llama::Llama { qwen2: true })),
        _ => None,
    }
}

/// The decoder a GGUF file describes, as import would build it, from its metadata alone.
pub fn decoder_spec(gguf: &GgufFile, opts: &ImportOptions) -> Result<DecoderSpec, ModelError> {
    read_spec(gguf, opts).map(|(_, _, spec)| spec)
}

fn read_spec(gguf: &GgufFile, opts: &ImportOptions) -> Result<(String, Box<dyn Architecture>, DecoderSpec), ModelError> {
    let arch_name = gguf.metadata().get_str("general.architecture")?.to_string();
    let arch = architecture(&arch_name)
        .ok_or_else(|| ModelError::UnsupportedArchitecture { path: gguf.path().to_path_buf(), found: arch_name.clone() })?;
    let spec = arch.spec(gguf, opts)?;
    Ok((arch_name, arch, spec))
}

/// Imports `gguf_path` into the folder `out_dir` (created if needed) and returns its card.
pub fn import_gguf(gguf_path: &Path, out_dir: &Path, opts: &ImportOptions) -> Result<ModelCard, ModelError> {
    import_gguf_as(gguf_path, out_dir, opts, FloatType::F32)
}

/// As [`import_gguf`], storing the weight matrices in `dtype`. A GGUF import defaults to f32
/// (`model import --dtype`): quantized blocks dequantize to `scale x quant (- min)` products
/// that neither 16-bit format holds exactly, so f32 keeps the checkpoint's values and f16 or
/// bf16 rounds them a second time (the choice of users short of memory).
pub fn import_gguf_as(gguf_path: &Path, out_dir: &Path, opts: &ImportOptions, dtype: FloatType) -> Result<ModelCard, ModelError> {
    let gguf = GgufFile::open(gguf_path)?;
    let (arch_name, arch, spec) = read_spec(&gguf, opts)?;
    // Built beside the target and swapped in whole: a killed import leaves the previous
    // folder (or none), never a folder with graphs but half its weights.
    let staged = crate::util::StagedDir::begin(out_dir).map_err(|e| ModelError::io(out_dir, e))?;
    let card = write_model_folder(&gguf, gguf_path, arch.as_ref(), arch_name, spec, dtype, staged.path())?;
    staged.commit().map_err(|e| ModelError::io(out_dir, e))?;
    Ok(card)
}

fn write_model_folder(
    gguf: &GgufFile,
    gguf_path: &Path,
    arch: &dyn Architecture,
    arch_name: String,
    spec: DecoderSpec,
    dtype: FloatType,
    out_dir: &Path,
) -> Result<ModelCard, ModelError> {
    let weights = write_weights(gguf, arch, &spec, dtype, out_dir)?;
    let parts = write_graphs(&spec, &weights, out_dir)?;
    let tok = tokenizer::tokenizer_json(gguf)?;
    let tok_path = out_dir.join(TOKENIZER_FILE);
    crate::util::write_atomic(&tok_path, tok.json.as_bytes()).map_err(|e| ModelError::io(&tok_path, e))?;

    let sha = crate::util::sha256_file(gguf_path).map_err(|e| ModelError::io(gguf_path, e))?;
    let name = gguf.metadata().get_opt::<&str>("general.name")?.map(str::to_string).unwrap_or_else(|| arch_name.clone());
    let tokens = SpecialTokens { bos: tok.bos, eos: tok.eos, start: tok.start };
    let mut card = decoder_card(name, SourceFile { file: file_name(gguf_path), sha256: sha }, spec, parts, tokens, None);
    card.weight_dtype = card_dtype(dtype);
    card.write(out_dir)?;
    Ok(card)
}

/// Rows of the embedding table: the vocabulary the graph scores over. Converters may pad it
/// beyond the tokenizer's pieces (Qwen2 does), so the tensor, not the token list, decides.
fn vocab_rows(g: &GgufFile) -> Result<usize, GgufError> {
    match g.tensor_info("token_embd.weight") {
        Some(t) if t.dims().len() == 2 => Ok(t.dims()[1] as usize),
        _ => Ok(g.metadata().get_str_array("tokenizer.ggml.tokens")?.len()),
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Dequantizes every weight the graph needs and appends it to the weight file.
fn write_weights(
    gguf: &GgufFile,
    arch: &dyn Architecture,
    spec: &DecoderSpec,
    dtype: FloatType,
    out_dir: &Path,
) -> Result<WeightTable, ModelError> {
    let mut file = WeightFile::create(out_dir, WEIGHTS_FILE).map_err(|e| ModelError::io(out_dir, e))?.with_matrix_type(dtype);
    let io = |e| ModelError::io(&out_dir.join(WEIGHTS_FILE), e);
    let mut table = WeightTable::new();
    let linear: std::collections::HashSet<String> = spec.linear_layers().into_iter().map(|l| l.name).collect();
    for (name, shape) in spec.weight_shapes() {
        let info =
            gguf.tensor_info(&name).ok_or_else(|| ModelError::MissingTensor { path: gguf.path().to_path_buf(), tensor: name.clone() })?;
        let expected: usize = shape.iter().product();
        let data = gguf.dequantize(&name)?;
        if data.len() != expected {
            return Err(ModelError::TensorShape { tensor: name, expected: shape, found: info.dims().to_vec() });
        }
        let data = arch.adjust(&name, spec, data);
        // GGUF rows are outputs ([out][in]); MatMul wants [in][out].
        let data = if linear.contains(&name) { transpose(&data, shape[1], shape[0]) } else { data };
        let t = file.append_weight(&name, &shape, &data).map_err(io)?;
        table.insert(name, t);
    }
    append_rope_tables(&mut file, spec, &mut table).map_err(io)?;
    file.finish().map_err(io)?;
    Ok(table)
}

/// Appends the rotary tables of every distinct rotary embedding (after the weights, as import lays
/// them out) and records them in `table`.
pub(crate) fn append_rope_tables(file: &mut WeightFile, spec: &DecoderSpec, table: &mut WeightTable) -> std::io::Result<()> {
    for rotary in spec.distinct_rotaries() {
        let (cos, sin) = rope_tables(&rotary, spec.head_dim, spec.max_positions);
        let (cn, sn) = rotary.table_names();
        let dims = [spec.max_positions, spec.head_dim];
        table.insert(cn.clone(), file.append_f32(&cn, &dims, &cos)?);
        table.insert(sn.clone(), file.append_f32(&sn, &dims, &sin)?);
    }
    Ok(())
}

/// `rows x cols` row-major to `cols x rows` row-major.
pub fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; data.len()];
    const TILE: usize = 32;
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    out[c * rows + r] = data[r * cols + c];
                }
            }
        }
    }
    out
}

/// Writes every graph of a model folder (full, logits, key/value cache, per-block parts) over
/// one weight table; import and `model synth` share it so their folders are alike.
pub(crate) fn write_graphs(spec: &DecoderSpec, weights: &WeightTable, out_dir: &Path) -> Result<Parts, ModelError> {
    let write = |file: &str, model: onnx_model::ModelProto| -> Result<String, ModelError> {
        let path: PathBuf = out_dir.join(file);
        crate::util::write_atomic(&path, &model.encode_to_vec()).map_err(|e| ModelError::io(&path, e))?;
        Ok(file.to_string())
    };
    write(GRAPH_FILE, decoder::full_model(spec, weights, decoder::Heads::Scoring))?;
    write_cached_graphs(spec, weights, out_dir)?;
    write(LOGITS_GRAPH_FILE, decoder::full_model(spec, weights, decoder::Heads::Logits))?;
    let embed = write("model.embed.onnx", decoder::embed_part(spec, weights))?;
    let blocks = (0..spec.blocks)
        .map(|i| write(&format!("model.block{i:02}.onnx"), decoder::block_part(spec, weights, i)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Parts { embed, blocks })
}

use super::onnx as onnx_model;

fn write_cached_graphs(spec: &DecoderSpec, weights: &WeightTable, out_dir: &Path) -> Result<(), ModelError> {
    let write = |file: &str, model: onnx_model::ModelProto| -> Result<(), ModelError> {
        let path: PathBuf = out_dir.join(file);
        crate::util::write_atomic(&path, &model.encode_to_vec()).map_err(|e| ModelError::io(&path, e))
    };
    write(PREFIX_GRAPH_FILE, decoder::cached_body(spec, weights, false))?;
    write(CONTINUATION_GRAPH_FILE, decoder::cached_body(spec, weights, true))?;
    write(HEAD_GRAPH_FILE, decoder::head_model(spec, weights))
}

/// Whether the key/value-cache graphs in `dir` are present and of the current format.
fn cached_graphs_current(dir: &Path) -> bool {
    [PREFIX_GRAPH_FILE, CONTINUATION_GRAPH_FILE, HEAD_GRAPH_FILE].iter().all(|f| {
        std::fs::read(dir.join(f))
            .ok()
            .and_then(|b| onnx_model::ModelProto::decode(b.as_slice()).ok())
            .is_some_and(|m| m.metadata_props.iter().any(|p| p.key() == "polyprune.cache_format" && p.value() == decoder::CACHE_FORMAT))
    })
}

/// How a model folder will be scored, as `model inspect` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    /// The key/value-cache graphs are there.
    Cached,
    /// Built by polyprune before the cache graphs existed: they are written on first use.
    WrittenOnFirstUse,
    /// Not built by polyprune (or weights inside the graph): whole sequences every time.
    FullSequence,
}

impl std::fmt::Display for CacheStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CacheStatus::Cached => "cached (key/value-cache graphs present)",
            CacheStatus::WrittenOnFirstUse => "cached (key/value-cache graphs are written beside model.onnx on first use)",
            CacheStatus::FullSequence => "full-sequence (graph not built by polyprune: no key/value cache)",
        })
    }
}

/// Which path scoring will take for this folder, without writing anything.
pub fn cache_status(dir: &Path, card: &ModelCard) -> Result<CacheStatus, ModelError> {
    if card.spec.is_some() && cached_graphs_current(dir) {
        return Ok(CacheStatus::Cached);
    }
    Ok(if cache_weights(dir, card)?.is_some() { CacheStatus::WrittenOnFirstUse } else { CacheStatus::FullSequence })
}

/// The weight table the cache graphs would reference: `model.onnx`'s external initializers,
/// when the card has a spec and every weight it names is stored externally.
fn cache_weights(dir: &Path, card: &ModelCard) -> Result<Option<WeightTable>, ModelError> {
    let Some(spec) = &card.spec else { return Ok(None) };
    let model = super::graph::read_model(&dir.join(&card.graph))?;
    let Some(graph) = &model.graph else { return Ok(None) };
    let table: WeightTable = graph.initializer.iter().map(|t| (t.name().to_string(), t.clone())).collect();
    let mut needed: Vec<String> = spec.weight_shapes().into_iter().map(|(n, _)| n).collect();
    for rotary in spec.distinct_rotaries() {
        let (c, s) = rotary.table_names();
        needed.extend([c, s]);
    }
    let usable = needed.iter().all(|n| table.get(n).is_some_and(|t| t.is_external()));
    Ok(usable.then_some(table))
}

/// Makes sure a model folder built by polyprune has its key/value-cache graphs, writing them
/// (atomically, beside `model.onnx`) when missing: folders imported before they existed get
/// them on first use. The graphs reuse `model.onnx`'s external weights, so nothing large is
/// written. Returns false, writing nothing, for graphs polyprune did not build (no spec in the
/// card, or weights stored inside the graph): those keep the full-sequence path.
pub fn ensure_cached_graphs(dir: &Path, card: &ModelCard) -> Result<bool, ModelError> {
    let Some(spec) = &card.spec else { return Ok(false) };
    if cached_graphs_current(dir) {
        return Ok(true);
    }
    let Some(table) = cache_weights(dir, card)? else { return Ok(false) };
    write_cached_graphs(spec, &table, dir)?;
    Ok(true)
}
