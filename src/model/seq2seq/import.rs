//! A Hugging Face T5-family folder, or a GGUF `t5` file as llama.cpp writes it, to an
//! encoder-decoder model folder: the three graphs of [`super::graphs`] sharing one weight file,
//! a `tokenizer.json` (the folder's own; for GGUF, rebuilt from its unigram vocabulary by
//! [`crate::model::import::unigram`]), and `seq2seq.json`. Tensors are read one at a time
//! (safetensors through the decoder import's reader, GGUF dequantized), widened to f32 and laid
//! out `[in, out]` for the linear layers. The graph's tensor names are llama.cpp's, so a GGUF
//! tensor is found under the very name the graph uses.

use std::path::Path;

use prost::Message;

use super::graphs::{cross_kv_model, decoder_model, encoder_model};
use super::{
    Seq2SeqCard, Seq2SeqSpec, CROSS_GRAPH_FILE, DECODER_GRAPH_FILE, ENCODER_GRAPH_FILE, SEQ2SEQ_CARD_FILE, SEQ2SEQ_CARD_FORMAT,
    SEQ2SEQ_WEIGHTS_FILE,
};
use crate::model::builder::WeightFile;
use crate::model::card::SourceFile;
use crate::model::decoder::WeightTable;
use crate::model::hf::config::CONFIG_FILE;
use crate::model::hf::safetensors::Checkpoint;
use crate::model::hf::t5;
use crate::model::import::{transpose, TOKENIZER_FILE};
use crate::model::ModelError;

/// The files optimum's ONNX export writes for an encoder-decoder (`optimum-cli export onnx`
/// on mT5 / T5): the encoder, the decoder without and with a key/value cache, and the two
/// decoders merged behind an `If`.
pub const OPTIMUM_SEQ2SEQ_FILES: &[&str] =
    &["encoder_model.onnx", "decoder_model.onnx", "decoder_with_past_model.onnx", "decoder_model_merged.onnx"];

/// Refuses a folder holding an encoder-decoder ONNX export as optimum writes it (and no
/// checkpoint to import instead), saying why and what to do. Why, as checked on a real export
/// (`tests/mt5_import.rs`, written with torch's TorchScript exporter as optimum uses it):
/// constant folding stores every linear layer's weight transposed under an anonymous name
/// (`onnx::MatMul_427`), so nothing ties a matrix to its block, stack or role, and the encoder
/// and the decoder are separate graphs with their own copy of the shared embedding, while
/// polyprune's encoder-decoder runs its own three graphs over one weight file (the
/// cross-attention keys and values computed once per context). The Hugging Face folder the
/// export was made from has every weight under its name.
pub fn refuse_optimum_export(dir: &Path) -> Result<(), ModelError> {
    let found: Vec<&str> = OPTIMUM_SEQ2SEQ_FILES.iter().copied().filter(|f| dir.join(f).is_file()).collect();
    let has_checkpoint = dir.join("model.safetensors").is_file() || dir.join("model.safetensors.index.json").is_file();
    if found.is_empty() || has_checkpoint {
        return Ok(());
    }
    Err(ModelError::Unusable {
        path: dir.to_path_buf(),
        reason: format!(
            "an encoder-decoder ONNX export as optimum writes it ({}) cannot be imported: its graphs keep the linear layers' \
             weights as anonymous, transposed constants (onnx::MatMul_N after constant folding), so they cannot be mapped to \
             the encoder's and decoder's layers, and the encoder and decoder are separate graphs, each with its own copy of \
             the shared embedding. Import the Hugging Face folder it was exported from instead (config.json, \
             model.safetensors, tokenizer.json): `polyprune model import <that folder> -o <dir>`",
            found.join(", ")
        ),
    })
}

/// Imports the Hugging Face folder `src` (an mT5 or T5 v1.1 checkpoint) into `out_dir`.
pub fn import_hf_seq2seq(src: &Path, out_dir: &Path) -> Result<Seq2SeqCard, ModelError> {
    refuse_optimum_export(src)?;
    let config_path = src.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&config_path).map_err(|e| ModelError::io(&config_path, e))?;
    let checkpoint = Checkpoint::open(src)?;
    let embed = "shared.weight";
    if !checkpoint.contains(embed) {
        return Err(ModelError::MissingTensor { path: checkpoint.file_of(embed), tensor: embed.into() });
    }
    let (_, embed_shape) = checkpoint.info(embed)?;
    if embed_shape.len() != 2 {
        return Err(ModelError::Unusable {
            path: checkpoint.file_of(embed),
            reason: format!("tensor '{embed}' has shape {embed_shape:?}, not [vocabulary, d_model]"),
        });
    }
    let spec = t5::spec(&text, &config_path, embed_shape[0], checkpoint.contains("lm_head.weight"))?;
    let tok_path = src.join(TOKENIZER_FILE);
    if !tok_path.is_file() {
        return Err(ModelError::Unusable {
            path: src.to_path_buf(),
            reason: format!("no {TOKENIZER_FILE}: copy the model's tokenizer.json into the folder"),
        });
    }
    tokenizers::Tokenizer::from_file(&tok_path).map_err(|e| ModelError::Tokenizer { path: tok_path.clone(), message: e.to_string() })?;

    let staged = crate::util::StagedDir::begin(out_dir).map_err(|e| ModelError::io(out_dir, e))?;
    let dir = staged.path();
    let weights = write_weights(&checkpoint, &spec, dir)?;
    write_graphs(&spec, &weights, dir)?;
    let to = dir.join(TOKENIZER_FILE);
    std::fs::copy(&tok_path, &to).map_err(|e| ModelError::io(&to, e))?;
    let name = src.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| spec.architecture.clone());
    let mut listing = String::new();
    let mut files = vec![CONFIG_FILE.to_string()];
    files.extend(checkpoint.shard_files());
    for f in files {
        let p = src.join(&f);
        let sha = crate::util::sha256_file(&p).map_err(|e| ModelError::io(&p, e))?;
        listing.push_str(&format!("{f} {sha}\n"));
    }
    let class = if spec.architecture == "mt5" { "MT5ForConditionalGeneration" } else { "T5ForConditionalGeneration" };
    let card = Seq2SeqCard {
        format: SEQ2SEQ_CARD_FORMAT.into(),
        name: name.clone(),
        source: SourceFile { file: format!("{name} ({class})"), sha256: crate::util::sha256_bytes(listing.as_bytes()) },
        spec,
        tokenizer: TOKENIZER_FILE.into(),
    };
    write_card(&card, dir)?;
    staged.commit().map_err(|e| ModelError::io(out_dir, e))?;
    Ok(card)
}

fn write_graphs(spec: &Seq2SeqSpec, weights: &WeightTable, dir: &Path) -> Result<(), ModelError> {
    for (file, model) in [
        (ENCODER_GRAPH_FILE, encoder_model(spec, weights)),
        (CROSS_GRAPH_FILE, cross_kv_model(spec, weights)),
        (DECODER_GRAPH_FILE, decoder_model(spec, weights)),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, model.encode_to_vec()).map_err(|e| ModelError::io(&path, e))?;
    }
    Ok(())
}

fn write_card(card: &Seq2SeqCard, dir: &Path) -> Result<(), ModelError> {
    let card_path = dir.join(SEQ2SEQ_CARD_FILE);
    let json = serde_json::to_string_pretty(card).expect("card serialises");
    crate::util::write_atomic(&card_path, json.as_bytes()).map_err(|e| ModelError::io(&card_path, e))
}

/// `general.architecture` of llama.cpp's encoder-decoder T5 files (mT5, T5 v1.1, Flan-T5).
pub const GGUF_T5_ARCHITECTURE: &str = "t5";

/// The relative-position distance from which llama.cpp puts every position in the last bucket.
/// GGUF has no key for it: llama.cpp computes the buckets with 128, the value of every T5 v1.1
/// and mT5 checkpoint, so the import does too.
pub const GGUF_T5_MAX_DISTANCE: usize = 128;

/// True when `path` is a GGUF file whose `general.architecture` is `t5`.
pub fn is_t5_gguf(path: &Path) -> bool {
    crate::model::gguf::GgufFile::open(path)
        .ok()
        .is_some_and(|g| g.metadata().get_opt::<&str>("general.architecture").ok().flatten() == Some(GGUF_T5_ARCHITECTURE))
}

/// The spec of a GGUF `t5` file, from the keys llama.cpp's converter writes (`t5.block_count`,
/// `t5.decoder_block_count`, `t5.embedding_length`, `t5.feed_forward_length`,
/// `t5.attention.head_count`, `.key_length`, `.value_length`, `.layer_norm_rms_epsilon`,
/// `.relative_buckets_count`, `t5.decoder_start_token_id`) and its tensors (vocabulary rows,
/// whether `output.weight` exists). `eos`/`pad` come from the tokenizer.
pub fn gguf_spec(g: &crate::model::gguf::GgufFile, eos: u32, pad: u32) -> Result<Seq2SeqSpec, ModelError> {
    use crate::model::gguf::GgufError;
    let m = g.metadata();
    let arch = m.get_str("general.architecture")?;
    if arch != GGUF_T5_ARCHITECTURE {
        return Err(ModelError::UnsupportedArchitecture { path: g.path().to_path_buf(), found: arch.to_string() });
    }
    let key = |s: &str| format!("{GGUF_T5_ARCHITECTURE}.{s}");
    let out_of_range = |k: &str, expected: &'static str, value: String| {
        ModelError::Gguf(GgufError::ValueOutOfRange { path: g.path().to_path_buf(), key: key(k), expected, value })
    };
    let encoder_blocks = m.get_u32(&key("block_count"))? as usize;
    let decoder_blocks = m.get_opt::<u32>(&key("decoder_block_count"))?.map(|v| v as usize).unwrap_or(encoder_blocks);
    let d_model = m.get_u32(&key("embedding_length"))? as usize;
    let ffn_dim = m.get_u32(&key("feed_forward_length"))? as usize;
    let n_heads = m.get_u32(&key("attention.head_count"))? as usize;
    let head_dim = m.get_opt::<u32>(&key("attention.key_length"))?.map(|v| v as usize).unwrap_or(d_model.checked_div(n_heads).unwrap_or(0));
    if let Some(v) = m.get_opt::<u32>(&key("attention.value_length"))? {
        if v as usize != head_dim {
            return Err(out_of_range("attention.value_length", "the key length (T5's d_kv is both)", v.to_string()));
        }
    }
    for (k, v) in [
        ("block_count", encoder_blocks),
        ("decoder_block_count", decoder_blocks),
        ("attention.head_count", n_heads),
        ("attention.key_length", head_dim),
    ] {
        if v == 0 {
            return Err(out_of_range(k, "at least 1", "0".into()));
        }
    }
    let eps = match m.get_opt::<f32>(&key("attention.layer_norm_rms_epsilon"))? {
        Some(e) => e,
        None => m.get_opt::<f32>(&key("attention.layer_norm_epsilon"))?.unwrap_or(1e-6),
    };
    let buckets = m.get_opt::<u32>(&key("attention.relative_buckets_count"))?.map(|v| v as usize).unwrap_or(32);
    if buckets < 4 || !buckets.is_multiple_of(4) || buckets / 2 > GGUF_T5_MAX_DISTANCE {
        return Err(out_of_range("attention.relative_buckets_count", "a multiple of 4 from 4 to 256", buckets.to_string()));
    }
    let embed = "token_embd.weight";
    let vocab_size = match g.tensor_info(embed) {
        Some(t) if t.dims().len() == 2 && t.dims()[0] as usize == d_model => t.dims()[1] as usize,
        Some(t) => {
            return Err(ModelError::TensorShape { tensor: embed.into(), expected: vec![d_model, 0], found: t.dims().to_vec() });
        }
        None => return Err(ModelError::MissingTensor { path: g.path().to_path_buf(), tensor: embed.into() }),
    };
    let gate = "enc.blk.0.ffn_gate.weight";
    if g.tensor_info(gate).is_none() {
        return Err(ModelError::Unusable {
            path: g.path().to_path_buf(),
            reason: format!(
                "tensor '{gate}' is missing: this is the original T5's ReLU MLP (one ffn_up per block), which the graphs \
                 do not implement; they implement T5 v1.1 / mT5's gated-GELU MLP"
            ),
        });
    }
    let pad_default = pad;
    Ok(Seq2SeqSpec {
        architecture: GGUF_T5_ARCHITECTURE.into(),
        encoder_blocks,
        decoder_blocks,
        d_model,
        n_heads,
        head_dim,
        ffn_dim,
        vocab_size,
        norm_eps: eps,
        buckets,
        max_distance: GGUF_T5_MAX_DISTANCE,
        tied_output: g.tensor_info("output.weight").is_none(),
        // llama.cpp applies no d_model^-0.5 to a tied head (mT5 and T5 v1.1 have untied heads).
        output_scale: None,
        decoder_start_token_id: m.get_opt::<u32>(&key("decoder_start_token_id"))?.unwrap_or(pad_default),
        eos_token_id: eos,
        pad_token_id: pad,
    })
}

/// Imports the GGUF `t5` file `src` (llama.cpp's layout: mT5, T5 v1.1) into `out_dir`.
pub fn import_gguf_seq2seq(src: &Path, out_dir: &Path) -> Result<Seq2SeqCard, ModelError> {
    let g = crate::model::gguf::GgufFile::open(src)?;
    let arch = g.metadata().get_str("general.architecture")?;
    if arch != GGUF_T5_ARCHITECTURE {
        return Err(ModelError::UnsupportedArchitecture { path: src.to_path_buf(), found: arch.to_string() });
    }
    let tok = crate::model::import::unigram::t5_tokenizer_json(&g)?;
    let spec = gguf_spec(&g, tok.eos, tok.pad)?;
    let staged = crate::util::StagedDir::begin(out_dir).map_err(|e| ModelError::io(out_dir, e))?;
    let dir = staged.path();
    let weights = write_gguf_weights(&g, &spec, dir)?;
    write_graphs(&spec, &weights, dir)?;
    let tok_path = dir.join(TOKENIZER_FILE);
    crate::util::write_atomic(&tok_path, tok.json.as_bytes()).map_err(|e| ModelError::io(&tok_path, e))?;
    let file = src.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name = g.metadata().get_opt::<&str>("general.name")?.map(str::to_string).unwrap_or_else(|| file.clone());
    let sha256 = crate::util::sha256_file(src).map_err(|e| ModelError::io(src, e))?;
    let card = Seq2SeqCard {
        format: SEQ2SEQ_CARD_FORMAT.into(),
        name,
        source: SourceFile { file: format!("{file} (GGUF t5)"), sha256 },
        spec,
        tokenizer: TOKENIZER_FILE.into(),
    };
    write_card(&card, dir)?;
    staged.commit().map_err(|e| ModelError::io(out_dir, e))?;
    Ok(card)
}

fn write_gguf_weights(g: &crate::model::gguf::GgufFile, spec: &Seq2SeqSpec, out_dir: &Path) -> Result<WeightTable, ModelError> {
    let mut file = WeightFile::create(out_dir, SEQ2SEQ_WEIGHTS_FILE).map_err(|e| ModelError::io(out_dir, e))?;
    let io = |e| ModelError::io(&out_dir.join(SEQ2SEQ_WEIGHTS_FILE), e);
    let mut table = WeightTable::new();
    for (name, shape) in spec.weight_shapes() {
        let info = g.tensor_info(&name).ok_or_else(|| ModelError::MissingTensor { path: g.path().to_path_buf(), tensor: name.clone() })?;
        let linear = Seq2SeqSpec::is_linear(&name);
        // GGUF lists dims innermost first: a PyTorch [out, in] matrix is [in, out] there.
        let stored: Vec<u64> =
            if linear { vec![shape[0] as u64, shape[1] as u64] } else { shape.iter().rev().map(|&d| d as u64).collect() };
        if info.dims() != stored.as_slice() {
            return Err(ModelError::TensorShape { tensor: name, expected: shape, found: info.dims().to_vec() });
        }
        let data = g.dequantize(&name)?;
        let data = if linear { transpose(&data, shape[1], shape[0]) } else { data };
        let tensor = file.append_f32(&name, &shape, &data).map_err(io)?;
        table.insert(name, tensor);
    }
    file.finish().map_err(io)?;
    Ok(table)
}

fn write_weights(checkpoint: &Checkpoint, spec: &Seq2SeqSpec, out_dir: &Path) -> Result<WeightTable, ModelError> {
    let mut file = WeightFile::create(out_dir, SEQ2SEQ_WEIGHTS_FILE).map_err(|e| ModelError::io(out_dir, e))?;
    let io = |e| ModelError::io(&out_dir.join(SEQ2SEQ_WEIGHTS_FILE), e);
    let mut table = WeightTable::new();
    for (name, shape) in spec.weight_shapes() {
        let hf = t5::hf_name(&name);
        if !checkpoint.contains(&hf) {
            return Err(ModelError::Unusable {
                path: checkpoint.file_of(&hf),
                reason: format!(
                    "tensor '{hf}' is missing; the checkpoint is incomplete or not a standard {} checkpoint",
                    spec.architecture
                ),
            });
        }
        let linear = Seq2SeqSpec::is_linear(&name);
        let stored: Vec<usize> = if linear { vec![shape[1], shape[0]] } else { shape.clone() };
        let t = checkpoint.read(&hf, &stored, false)?;
        let data = if linear { transpose(&t.values, shape[1], shape[0]) } else { t.values };
        let tensor = file.append_f32(&name, &shape, &data).map_err(io)?;
        table.insert(name, tensor);
    }
    file.finish().map_err(io)?;
    Ok(table)
}
