//! `polyprune model ...`: fetch, import, export, inspect, synth.

use anyhow::Result;

use polyprune::model::seq2seq::synth as seq2seq_synth;
use polyprune::model::{fetch, hf, import, synth, ModelDir};

use super::{spinner, Bars};
use crate::cli::{ExportDtype, ExportFormat, ModelCommand};

pub fn run(cmd: ModelCommand) -> Result<()> {
    match cmd {
        ModelCommand::Fetch { name } => {
            let known = fetch::known(&name)?;
            let path = fetch::fetch(known, &polyprune::util::cache_dir())?;
            println!("{}", path.display());
            eprintln!("licence: {}", known.licence);
        }
        ModelCommand::Import { source, out, dtype, .. }
            if (source.is_dir() && hf::t5::seq2seq_class(&source).is_some())
                || (source.is_file() && polyprune::model::seq2seq::import::is_t5_gguf(&source)) =>
        {
            // The encoder-decoder graphs read f32 weights only (mT5's published checkpoints are f32).
            if dtype.is_some_and(|d| d.float_type() != polyprune::runtime::FloatType::F32) {
                anyhow::bail!(
                    "{}: encoder-decoder (mT5/T5) folders are stored in f32 only; drop --dtype (or give --dtype f32)",
                    source.display()
                );
            }
            let spinner = spinner(&format!("importing {}", source.display()));
            let card = if source.is_dir() {
                polyprune::model::seq2seq::import::import_hf_seq2seq(&source, &out)?
            } else {
                polyprune::model::seq2seq::import::import_gguf_seq2seq(&source, &out)?
            };
            spinner.finish_and_clear();
            let s = &card.spec;
            println!(
                "imported {} ({}, encoder-decoder: {} encoder and {} decoder blocks, {} prunable layers) into {}; `eval ppl`, `eval tasks`, `prune`, `gate`, `analyze`, `model export` and `study run` read it",
                card.name,
                s.architecture,
                s.encoder_blocks,
                s.decoder_blocks,
                s.layers().len(),
                out.display()
            );
        }
        ModelCommand::Import { source, out, max_positions, dtype } => {
            if source.is_dir() {
                polyprune::model::seq2seq::import::refuse_optimum_export(&source)?;
            }
            let spinner = spinner(&format!("importing {}", source.display()));
            let opts = import::ImportOptions { max_positions };
            let dtype = dtype.map(ExportDtype::float_type);
            let card = if source.is_dir() {
                hf::import::import_hf_as(&source, &out, &opts, dtype)?
            } else {
                import::import_gguf_as(&source, &out, &opts, dtype.unwrap_or_default())?
            };
            spinner.finish_and_clear();
            println!(
                "imported {} ({}, {} blocks, {} prunable layers, weights in {}) into {}",
                card.name,
                card.architecture,
                card.blocks,
                card.layers.len(),
                card.matrix_type(),
                out.display()
            );
        }
        ModelCommand::Export { dir, format: ExportFormat::Hf, out, dtype } => {
            let dtype = dtype.map(ExportDtype::float_type);
            let spinner = spinner(&format!("exporting {}", dir.display()));
            let r = hf::export::export_hf(&dir, &out, &hf::export::ExportOptions { dtype })?;
            spinner.finish_and_clear();
            let sparsity = if r.prunable > 0 { 100.0 * r.zeros as f64 / r.prunable as f64 } else { 0.0 };
            println!(
                "wrote {} (model.safetensors, {} tensors in {}, prunable weights {:.2}% zero{}) into {}",
                r.architecture,
                r.tensors,
                r.dtype.torch_name(),
                sparsity,
                if r.masks { ", masks copied" } else { "" },
                r.out.display()
            );
        }
        ModelCommand::Inspect { dir, .. } if dir.join(polyprune::model::seq2seq::SEQ2SEQ_CARD_FILE).is_file() => {
            let folder = polyprune::model::seq2seq::Seq2SeqFolder::open(&dir)?;
            let s = &folder.card.spec;
            println!("model: {} ({}, encoder-decoder)", folder.card.name, s.architecture);
            println!(
                "vocabulary: {}   encoder blocks: {}   decoder blocks: {}   relative buckets: {} (max distance {})   head: {}",
                s.vocab_size,
                s.encoder_blocks,
                s.decoder_blocks,
                s.buckets,
                s.max_distance,
                if s.tied_output { "tied to the embeddings" } else { "untied" }
            );
            println!("{:<36} {:<8} {:>5} {:>14} input", "layer", "stack", "block", "shape [in,out]");
            let layers = s.layers();
            for l in &layers {
                let stack = match l.stack {
                    polyprune::model::seq2seq::Stack::Encoder => "encoder",
                    polyprune::model::seq2seq::Stack::Decoder => "decoder",
                };
                let shape = format!("{}x{}", l.shape[0], l.shape[1]);
                println!("{:<36} {:<8} {:>5} {:>14} {}", l.name, stack, l.block, shape, l.input);
            }
            let params: usize = layers.iter().map(|l| l.shape[0] * l.shape[1]).sum();
            println!("{} prunable layers, {} prunable weights", layers.len(), params);
        }
        ModelCommand::Inspect { dir, plan_memory } => {
            let card = ModelDir::card_of(&dir)?;
            if let Some(size) = plan_memory {
                let budget = polyprune::model::memory::parse_size(&size).map_err(|e| anyhow::anyhow!("--plan-memory: {e}"))?;
                let model = ModelDir::open(&dir)?;
                let opts = polyprune::runtime::RuntimeOptions { max_memory: Some(budget), ..Default::default() };
                match polyprune::eval::scorer::memory_plan(&model, &opts)? {
                    Some(plan) => println!("{}", plan?),
                    None => println!("{}: no decoder spec or per-block graphs; it runs resident only", dir.display()),
                }
                return Ok(());
            }
            let c = &card;
            println!("model: {} ({})", c.name, c.architecture);
            println!("inputs: {}", c.inputs.join(", "));
            println!("vocabulary: {}   blocks: {}   max positions: {}", c.vocab_size, c.blocks, c.max_positions);
            println!("weights: matrices in {}, norms and biases in f32", c.matrix_type());
            if let Some(o) = &c.synthetic {
                let blocks = if o.truncated { format!(", first {} of its {} blocks", o.blocks, o.shape_blocks) } else { String::new() };
                println!("synthetic: shape of {}, random weights (seed {}{blocks}); tokenizer {}", o.like, o.seed, o.tokenizer);
            }
            println!("scoring path: {}", import::cache_status(&dir, c)?);
            println!("{:<44} {:>5} {:>6} {:>14} input", "layer", "block", "role", "shape [in,out]");
            for l in &c.layers {
                let shape = format!("{}x{}", l.shape[0], l.shape[1]);
                println!("{:<44} {:>5} {:>6} {:>14} {}", l.name, l.block, l.role.as_str(), shape, l.input);
            }
            let params: usize = c.layers.iter().map(|l| l.shape[0] * l.shape[1]).sum();
            println!("{} prunable layers, {} prunable weights", c.layers.len(), params);
        }
        ModelCommand::Synth { like, out, seed, blocks, tokenizer_from, max_positions, dtype, plan, list } => {
            if list {
                print_shapes();
                return Ok(());
            }
            let like = like.expect("clap requires --like without --list");
            if let Some(shape) = seq2seq_synth::seq2seq_shape(&like) {
                return synth_seq2seq(
                    shape,
                    out,
                    seed,
                    blocks,
                    tokenizer_from.is_some() || dtype.float_type() != polyprune::runtime::FloatType::F32,
                    plan,
                );
            }
            if plan {
                println!("{}", synth::plan_typed(&like, blocks, max_positions, dtype.float_type())?);
                return Ok(());
            }
            let out = out.expect("clap requires -o without --list or --plan");
            let opts = synth::SynthOptions {
                seed,
                blocks,
                tokenizer_from,
                max_positions,
                dtype: dtype.float_type(),
                ..synth::SynthOptions::new(&like, &out)
            };
            let report = synth::synthesize(&opts, &mut Bars::default())?;
            let p = &report.plan;
            println!(
                "wrote {} into {}: blocks {}, prunable layers {}, parameters {} ({:.2} GiB weight file); tokenizer {}",
                report.card.name,
                report.out.display(),
                p.spec.blocks,
                report.card.layers.len(),
                p.params,
                p.weight_bytes as f64 / (1u64 << 30) as f64,
                report.tokenizer
            );
        }
    }
    Ok(())
}

/// `model synth --like mt5-*`: the encoder-decoder shapes (f32, byte-level tokenizer).
fn synth_seq2seq(
    shape: &seq2seq_synth::Seq2SeqShape,
    out: Option<std::path::PathBuf>,
    seed: u64,
    blocks: Option<usize>,
    other_options: bool,
    plan: bool,
) -> Result<()> {
    if other_options {
        anyhow::bail!("{}: --tokenizer-from and --dtype are not supported for encoder-decoder shapes; drop them", shape.name);
    }
    let spec = shape.spec(blocks)?;
    let params = seq2seq_synth::parameters(&spec);
    if plan {
        println!(
            "{} (mt5): {} encoder and {} decoder blocks, d_model {}, heads {} x d_kv {}, d_ff {}, vocabulary {}, {} buckets to distance {}; {} parameters ({:.2} GiB in f32)",
            shape.name, spec.encoder_blocks, spec.decoder_blocks, spec.d_model, spec.n_heads, spec.head_dim, spec.ffn_dim,
            spec.vocab_size, spec.buckets, spec.max_distance, params, params as f64 * 4.0 / (1u64 << 30) as f64
        );
        return Ok(());
    }
    let out = out.expect("clap requires -o without --list or --plan");
    let report = seq2seq_synth::synthesize_seq2seq(shape, &out, seed, blocks, &mut Bars::default())?;
    println!(
        "wrote {} into {}: {} encoder and {} decoder blocks, prunable layers {}, parameters {}",
        report.card.name,
        report.out.display(),
        report.card.spec.encoder_blocks,
        report.card.spec.decoder_blocks,
        report.card.spec.layers().len(),
        report.parameters
    );
    Ok(())
}

fn print_shapes() {
    println!(
        "{:<14} {:<10} {:>6} {:>6} {:>9} {:>6} {:>8} {:>14}  source",
        "shape", "arch", "blocks", "d", "heads/kv", "ffn", "vocab", "parameters"
    );
    for s in synth::SHAPES {
        let params = synth::plan(s.name, None, 1).map(|p| p.params.to_string()).unwrap_or_else(|e| format!("({e})"));
        let arch = match s.family {
            synth::Family::Gemma3 { .. } => "gemma3",
            synth::Family::Llama => "llama",
            synth::Family::Qwen2 => "qwen2",
            synth::Family::CommandR { .. } => "command-r",
            synth::Family::Bloom => "bloom",
        };
        println!(
            "{:<14} {:<10} {:>6} {:>6} {:>9} {:>6} {:>8} {:>14}  {}",
            s.name,
            arch,
            s.blocks,
            s.d_model,
            format!("{}/{}", s.n_heads, s.n_kv_heads),
            s.ffn_dim,
            s.vocab_size,
            params,
            s.source
        );
    }
    for s in seq2seq_synth::SEQ2SEQ_SHAPES {
        let params = s.spec(None).map(|spec| seq2seq_synth::parameters(&spec).to_string()).unwrap_or_default();
        println!(
            "{:<14} {:<10} {:>6} {:>6} {:>9} {:>6} {:>8} {:>14}  {} (encoder-decoder: blocks per stack)",
            s.name,
            "mt5",
            s.blocks,
            s.d_model,
            format!("{}/{}", s.n_heads, s.n_heads),
            s.ffn_dim,
            seq2seq_synth::MT5_VOCAB,
            params,
            s.source
        );
    }
}
