//! `polyprune model ...`: fetch, import, inspect.

use anyhow::Result;

use polyprune::model::{fetch, import, ModelDir};

use super::spinner;
use crate::cli::ModelCommand;

pub fn run(cmd: ModelCommand) -> Result<()> {
    match cmd {
        ModelCommand::Fetch { name } => {
            let known = fetch::known(&name)?;
            let path = fetch::fetch(known, &polyprune::util::cache_dir())?;
            println!("{}", path.display());
            eprintln!("licence: {}", known.licence);
        }
        ModelCommand::Import { gguf, out, max_positions } => {
            let spinner = spinner(&format!("importing {}", gguf.display()));
            let card = import::import_gguf(&gguf, &out, &import::ImportOptions { max_positions })?;
            spinner.finish_and_clear();
            println!(
                "imported {} ({}, {} blocks, {} prunable layers) into {}",
                card.name,
                card.architecture,
                card.blocks,
                card.layers.len(),
                out.display()
            );
        }
        ModelCommand::Inspect { dir } => {
            let card = ModelDir::card_of(&dir)?;
            let c = &card;
            println!("model: {} ({})", c.name, c.architecture);
            println!("inputs: {}", c.inputs.join(", "));
            println!("vocabulary: {}   blocks: {}   max positions: {}", c.vocab_size, c.blocks, c.max_positions);
            println!("scoring path: {}", import::cache_status(&dir, c)?);
            println!("{:<44} {:>5} {:>6} {:>14} input", "layer", "block", "role", "shape [in,out]");
            for l in &c.layers {
                let shape = format!("{}x{}", l.shape[0], l.shape[1]);
                println!("{:<44} {:>5} {:>6} {:>14} {}", l.name, l.block, l.role.as_str(), shape, l.input);
            }
            let params: usize = c.layers.iter().map(|l| l.shape[0] * l.shape[1]).sum();
            println!("{} prunable layers, {} prunable weights", c.layers.len(), params);
        }
    }
    Ok(())
}
