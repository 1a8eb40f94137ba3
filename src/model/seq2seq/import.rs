//! A Hugging Face T5-family folder to an encoder-decoder model folder: the three graphs of
//! [`super::graphs`] sharing one weight file, the folder's `tokenizer.json`, and
//! `seq2seq.json`. Tensors are read one at a time through the same safetensors reader the
//! decoder import uses, widened to f32 and laid out `[in, out]` for the linear layers.

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

/// Imports the Hugging Face folder `src` (an mT5 or T5 v1.1 checkpoint) into `out_dir`.
pub fn import_hf_seq2seq(src: &Path, out_dir: &Path) -> Result<Seq2SeqCard, ModelError> {
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
    for (file, model) in [
        (ENCODER_GRAPH_FILE, encoder_model(&spec, &weights)),
        (CROSS_GRAPH_FILE, cross_kv_model(&spec, &weights)),
        (DECODER_GRAPH_FILE, decoder_model(&spec, &weights)),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, model.encode_to_vec()).map_err(|e| ModelError::io(&path, e))?;
    }
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
    let card_path = dir.join(SEQ2SEQ_CARD_FILE);
    let json = serde_json::to_string_pretty(&card).expect("card serialises");
    crate::util::write_atomic(&card_path, json.as_bytes()).map_err(|e| ModelError::io(&card_path, e))?;
    staged.commit().map_err(|e| ModelError::io(out_dir, e))?;
    Ok(card)
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
