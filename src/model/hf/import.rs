//! A Hugging Face folder to a polyprune model folder, written as a GGUF import writes it.
//!
//! The config becomes a [`DecoderSpec`] ([`super::config`]); each tensor the spec needs is
//! read from its shard, widened to f32, laid out for the graph ([`super::names`]) and appended
//! to the weight file before the next is read, so memory holds one tensor at a time. The
//! folder's `tokenizer.json` is used as it is. Gemma's norm tensors are also kept verbatim in
//! a small side file: `1 + w` in f32 cannot always be undone exactly, and an export must give
//! back the bytes it was given.

use std::path::Path;

use super::config::{HfArchitecture, HfConfig, CONFIG_FILE};
use super::names::{hf_name, hf_shape, layout, qkv_heads_to_blocks, unpermute_rotary_rows, Layout, BLOOM_PREFIX};
use super::safetensors::{Checkpoint, FloatType, Writer, INDEX_FILE};
use super::tokens::{self, GENERATION_CONFIG, SPECIAL_TOKENS_MAP, TOKENIZER_CONFIG};
use super::HfOrigin;
use crate::model::builder::WeightFile;
use crate::model::card::{ModelCard, SourceFile};
use crate::model::decoder::WeightTable;
use crate::model::import::{
    append_rope_tables, card_dtype, decoder_card, transpose, write_graphs, ImportOptions, SpecialTokens, TOKENIZER_FILE, WEIGHTS_FILE,
};
use crate::model::ModelError;

/// The side file holding the checkpoint's own bytes of tensors whose graph form cannot be
/// turned back exactly (Gemma's norms), under their checkpoint names.
pub const ORIGINALS_FILE: &str = "hf-originals.safetensors";

/// Files of the Hugging Face folder kept beside the model for export (when present).
pub const KEPT_FILES: &[&str] = &[TOKENIZER_CONFIG, GENERATION_CONFIG, SPECIAL_TOKENS_MAP];

/// Imports the Hugging Face folder `src` into the model folder `out_dir` and returns its card.
pub fn import_hf(src: &Path, out_dir: &Path, opts: &ImportOptions) -> Result<ModelCard, ModelError> {
    import_hf_as(src, out_dir, opts, None)
}

/// As [`import_hf`], storing the weight matrices in `dtype` (`None`: the checkpoint's own,
/// the dtype most of its weights have).
pub fn import_hf_as(src: &Path, out_dir: &Path, opts: &ImportOptions, dtype: Option<FloatType>) -> Result<ModelCard, ModelError> {
    let config = HfConfig::read(src)?;
    let checkpoint = Checkpoint::open(src)?;
    let embed = stored_name(&checkpoint, hf_name(config.arch, "token_embd.weight"));
    if !checkpoint.contains(&embed) {
        return Err(ModelError::MissingTensor { path: checkpoint.file_of(&embed), tensor: embed });
    }
    let (_, embed_shape) = checkpoint.info(&embed)?;
    if embed_shape.len() != 2 {
        return Err(ModelError::Unusable {
            path: checkpoint.file_of(&embed),
            reason: format!("tensor '{embed}' has shape {embed_shape:?}, not [vocabulary, hidden]"),
        });
    }
    let spec = config.spec(embed_shape[0], opts.max_positions)?;
    let tok_path = src.join(TOKENIZER_FILE);
    if !tok_path.is_file() {
        return Err(ModelError::Unusable {
            path: src.to_path_buf(),
            reason: format!("no {TOKENIZER_FILE}: copy the model's tokenizer.json into the folder"),
        });
    }
    let tokenizer = tokenizers::Tokenizer::from_file(&tok_path)
        .map_err(|e| ModelError::Tokenizer { path: tok_path.clone(), message: e.to_string() })?;
    let config_value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join(CONFIG_FILE)).map_err(|e| ModelError::io(&src.join(CONFIG_FILE), e))?)
            .map_err(|e| ModelError::Unusable { path: src.join(CONFIG_FILE), reason: e.to_string() })?;
    let special = tokens::read(src, &config_value, &tokenizer)?;
    let checkpoint_dtype = checkpoint.main_dtype()?;

    let staged = crate::util::StagedDir::begin(out_dir).map_err(|e| ModelError::io(out_dir, e))?;
    let dir = staged.path();
    let stored = dtype.unwrap_or(checkpoint_dtype);
    let weights = write_weights(&checkpoint, config.arch, &spec, stored, dir)?;
    let parts = write_graphs(&spec, &weights, dir)?;
    let to = dir.join(TOKENIZER_FILE);
    std::fs::copy(&tok_path, &to).map_err(|e| ModelError::io(&to, e))?;
    for file in KEPT_FILES {
        if src.join(file).is_file() {
            std::fs::copy(src.join(file), dir.join(file)).map_err(|e| ModelError::io(&dir.join(file), e))?;
        }
    }
    let name = config_value
        .get("_name_or_path")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| src.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| config.arch.class().into()));
    let source = SourceFile { file: format!("{} ({})", name, config.arch.class()), sha256: folder_sha256(src, &checkpoint)? };
    let card_tokens = SpecialTokens { bos: special.bos, eos: special.eos, start: special.start };
    let mut card = decoder_card(name, source, spec, parts, card_tokens, None);
    card.hf = Some(HfOrigin { dtype: checkpoint_dtype, special_tokens: special.sources });
    card.weight_dtype = card_dtype(stored);
    card.write(dir)?;
    staged.commit().map_err(|e| ModelError::io(out_dir, e))?;
    Ok(card)
}

/// The checkpoint's own name for `hf`: BLOOM checkpoints saved from the bare model store
/// their tensors without the `transformer.` prefix `save_pretrained` writes.
fn stored_name(checkpoint: &Checkpoint, hf: String) -> String {
    match hf.strip_prefix(BLOOM_PREFIX) {
        Some(bare) if !checkpoint.contains(&hf) && checkpoint.contains(bare) => bare.to_string(),
        _ => hf,
    }
}

/// One SHA-256 over the config and every weight file (each hashed, names and hashes joined).
fn folder_sha256(src: &Path, checkpoint: &Checkpoint) -> Result<String, ModelError> {
    let mut files = vec![CONFIG_FILE.to_string()];
    if src.join(INDEX_FILE).is_file() {
        files.push(INDEX_FILE.into());
    }
    files.extend(checkpoint.shard_files());
    let mut listing = String::new();
    for f in files {
        let p = src.join(&f);
        let sha = crate::util::sha256_file(&p).map_err(|e| ModelError::io(&p, e))?;
        listing.push_str(&format!("{f} {sha}\n"));
    }
    Ok(crate::util::sha256_bytes(listing.as_bytes()))
}

/// Streams every tensor the spec needs from the checkpoint into the weight file.
fn write_weights(
    checkpoint: &Checkpoint,
    arch: HfArchitecture,
    spec: &crate::model::decoder::DecoderSpec,
    dtype: FloatType,
    out_dir: &Path,
) -> Result<WeightTable, ModelError> {
    let mut file = WeightFile::create(out_dir, WEIGHTS_FILE).map_err(|e| ModelError::io(out_dir, e))?.with_matrix_type(dtype);
    let io = |e| ModelError::io(&out_dir.join(WEIGHTS_FILE), e);
    let mut table = WeightTable::new();
    let mut originals: Vec<(String, FloatType, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, shape) in spec.weight_shapes() {
        let lay = layout(arch, spec, &name);
        let hf = stored_name(checkpoint, hf_name(arch, &name));
        if !checkpoint.contains(&hf) {
            let hint = if hf == "lm_head.weight" { " (config.json says the head is not tied to the embeddings)" } else { "" };
            return Err(ModelError::Unusable {
                path: checkpoint.file_of(&hf),
                reason: format!(
                    "tensor '{hf}' is missing{hint}; the checkpoint is incomplete or not a standard {} checkpoint",
                    arch.class()
                ),
            });
        }
        let t = checkpoint.read(&hf, &hf_shape(lay, &shape), lay == Layout::OffsetNorm)?;
        let data = match lay {
            Layout::Same => t.values,
            Layout::OffsetNorm => {
                originals.push((hf, t.dtype, t.shape.clone(), t.raw.expect("raw bytes kept for norms")));
                t.values.iter().map(|w| 1.0 + w).collect()
            }
            Layout::Linear { rotary_heads } => {
                let (rows, cols) = (shape[1], shape[0]);
                let rows_data = match rotary_heads {
                    Some(heads) => unpermute_rotary_rows(&t.values, heads, spec.head_dim, cols),
                    None => t.values,
                };
                transpose(&rows_data, rows, cols)
            }
            Layout::InterleavedQkv { heads, linear } => {
                let cols = if linear { shape[0] } else { 1 };
                let blocks = qkv_heads_to_blocks(&t.values, heads, spec.head_dim, cols);
                if linear {
                    transpose(&blocks, shape[1], cols)
                } else {
                    blocks
                }
            }
        };
        let tensor = file.append_weight(&name, &shape, &data).map_err(io)?;
        table.insert(name, tensor);
    }
    append_rope_tables(&mut file, spec, &mut table).map_err(io)?;
    file.finish().map_err(io)?;
    if !originals.is_empty() {
        let declared: Vec<_> = originals.iter().map(|(n, d, s, _)| (n.clone(), *d, s.clone())).collect();
        let mut w = Writer::create(&out_dir.join(ORIGINALS_FILE), &declared)?;
        for (n, _, _, raw) in &originals {
            w.append(n, &[], Some(raw))?;
        }
        w.finish()?;
    }
    Ok(table)
}
