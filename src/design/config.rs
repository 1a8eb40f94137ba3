//! The study file: one TOML document that names the whole grid (models, methods, targets,
//! calibration sets, seeds, evaluation), parsed in two steps as ripgrep splits low- and
//! high-level arguments: `Raw*` structs mirror the file (unknown keys rejected, every value
//! that can be wrong kept with its byte span), then [`StudyConfig::parse`] resolves them into
//! typed values and checks every combination before any work starts. Each error names the
//! key and the line, so a typo in a grid of hundreds of cells costs a second, not an hour.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::calibrate::{CaptureMode, Mix, Objective};
use crate::data::{Language, TextRegistry, TextSource};
use crate::eval::WindowOptions;
use crate::prune::{Method, Pattern, SparseGptConfig, Sparsity, SparsityTarget};
use crate::runtime::{ComputeChoice, ExecutionProvider, RuntimeOptions};
use crate::stats::Alpha;
use crate::tasks::{Catalog, LanguageEntry, TaskName, TaskSplit};

/// A study file that cannot be used, with where it went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read study config {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Syntax { path: PathBuf, line: usize, message: String },
    #[error("{path}:{line}: {key}: {message}")]
    Invalid { path: PathBuf, line: usize, key: String, message: String },
}

// ---------------------------------------------------------------------------------------------
// The file as written.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    study: RawStudy,
    models: Vec<RawModel>,
    pruning: RawPruning,
    calibration: Option<RawCalibration>,
    perplexity: Option<RawPerplexity>,
    tasks: Option<RawTasks>,
    analysis: Option<RawAnalysis>,
    advice: Option<RawAdvice>,
    report: Option<RawReport>,
}

/// `[advice]` as written: the `advise` search for the study's languages (see [`AdvicePlan`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdvice {
    targets: Option<Spanned<Vec<Spanned<String>>>>,
    candidates: Option<Spanned<Vec<Spanned<String>>>>,
    method: Option<Spanned<String>>,
    sparsity: Option<Spanned<f64>>,
    objective: Option<Spanned<String>>,
    budget: Option<Spanned<usize>>,
    validate: Option<Spanned<usize>>,
    limit: Option<Spanned<usize>>,
    confirm: Option<bool>,
}

/// `[report]` as written: which calibration the significance marks compare against, and the
/// names a reader sees instead of internal codes. Each map goes from an internal name (a
/// language in any spelling the language table accepts, a calibration set, a method, a task, a
/// model) to its display name.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReport {
    reference_calibration: Option<Spanned<String>>,
    #[serde(default)]
    languages: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    calibrations: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    methods: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    tasks: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    models: BTreeMap<String, Spanned<String>>,
}

/// The study file with nothing but its `[report]` read (the other tables are skipped unread),
/// for `polyprune report`, which must not depend on the study's data still being where it was.
#[derive(Deserialize)]
struct RawReportOnly {
    report: Option<RawReport>,
}

/// `[analysis]` as written: switches and parameters side by side (one flat table for users).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAnalysis {
    #[serde(default)]
    masks: bool,
    #[serde(default)]
    subspaces: bool,
    #[serde(default)]
    neurons: bool,
    #[serde(default)]
    pruning_error: bool,
    #[serde(default)]
    significance: bool,
    #[serde(default)]
    probes: bool,
    sentences: Option<Spanned<usize>>,
    batch: Option<Spanned<usize>>,
    layers: Option<Vec<usize>>,
    rank: Option<Spanned<usize>>,
    filter_percentile: Option<Spanned<f64>>,
    entropy_fraction: Option<Spanned<f64>>,
    error_windows: Option<Spanned<usize>>,
    error_seqlen: Option<Spanned<usize>>,
    probe_sentences: Option<Spanned<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStudy {
    name: Spanned<String>,
    out: Option<PathBuf>,
    seeds: Option<Spanned<Vec<u64>>>,
    mode: Option<Spanned<String>>,
    device: Option<Spanned<String>>,
    #[serde(default)]
    threads: usize,
    /// Memory budget of every model run, e.g. "6GiB" (default: the machine's free memory).
    max_memory: Option<Spanned<String>>,
    /// What the graphs compute in: auto, f32 or half (`--compute`).
    compute: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    name: Spanned<String>,
    path: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPruning {
    methods: Spanned<Vec<Spanned<String>>>,
    sparsities: Option<Vec<Spanned<f64>>>,
    patterns: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    percdamp: Option<Spanned<f64>>,
    blocksize: Option<Spanned<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalibration {
    source: Option<Spanned<String>>,
    samples: Spanned<usize>,
    seqlen: Spanned<usize>,
    batch: Option<Spanned<usize>>,
    sets: Spanned<Vec<RawCalibrationSet>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalibrationSet {
    languages: Spanned<Vec<Spanned<String>>>,
    mix: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPerplexity {
    languages: Spanned<Vec<Spanned<String>>>,
    source: Option<Spanned<String>>,
    limit: Option<Spanned<usize>>,
    context: Option<Spanned<usize>>,
    stride: Option<Spanned<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTasks {
    names: Spanned<Vec<Spanned<String>>>,
    languages: Spanned<Vec<Spanned<String>>>,
    limit: Option<Spanned<usize>>,
    #[serde(default)]
    shots: usize,
    #[serde(default = "default_task_seed")]
    seed: u64,
    split: Option<Spanned<String>>,
    data: Option<PathBuf>,
    /// `"full"` (default) or `"decided"`.
    stop: Option<Spanned<String>>,
    margin: Option<Spanned<f64>>,
    alpha: Option<Spanned<f64>>,
    round: Option<Spanned<usize>>,
}

fn default_task_seed() -> u64 {
    1234
}

// ---------------------------------------------------------------------------------------------
// The resolved study.

/// Which analyses run on the finished cells.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AnalysisSwitches {
    pub masks: bool,
    pub subspaces: bool,
    pub neurons: bool,
    pub pruning_error: bool,
    pub significance: bool,
    /// Language and topic probes, clusters and PCA pictures. Left out of the serialised plan
    /// while off, so studies written before it keep their hash.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub probes: bool,
}

impl AnalysisSwitches {
    /// Whether an analysis that runs models (not only reads stored results) is asked for.
    pub fn runs_models(&self) -> bool {
        self.subspaces || self.neurons || self.pruning_error || self.probes
    }
}

/// The knobs of the model analyses (`crate::analysis::workflow`), as the study file's `[analysis]`
/// names them. Defaults are the ones the methods' papers use where they name one (LAPE's
/// 0.95 / 0.01), else sizes that keep a study's analysis step to minutes on two CPU cores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalysisParams {
    /// Parallel sentences per language (the first ones every language has).
    pub sentences: usize,
    /// Sentences per runtime call.
    pub batch: usize,
    /// Blocks whose pooled states the subspace analysis compares; empty = the middle block.
    pub layers: Vec<usize>,
    /// Rank of the language subspace; `None` = languages - 1 (the span of the centred means).
    pub rank: Option<usize>,
    /// LAPE's activation-probability quantile.
    pub filter_percentile: f64,
    /// LAPE's share of neurons kept as language-specific.
    pub entropy_fraction: f64,
    /// Pruning error: windows of evaluation text per language.
    pub error_windows: usize,
    /// Pruning error: tokens per window.
    pub error_seqlen: usize,
    /// Probes: parallel sentences per language; `None` = every SIB-200 test sentence (204).
    /// Left out of the serialised plan when unset, so older studies keep their hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_sentences: Option<usize>,
}

impl Default for AnalysisParams {
    fn default() -> Self {
        AnalysisParams {
            sentences: 50,
            batch: 8,
            layers: Vec::new(),
            rank: None,
            filter_percentile: 0.95,
            entropy_fraction: 0.01,
            error_windows: 8,
            error_seqlen: 128,
            probe_sentences: None,
        }
    }
}

/// The study file's `[analysis]`: which analyses run and with which parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AnalysisPlan {
    pub switches: AnalysisSwitches,
    pub params: AnalysisParams,
}

/// The study file's `[advice]`: the `advise` mixture search run for the study's languages after
/// its cells, with the study's calibration and evaluation text, so the report can set the
/// searched mixture beside the grid's best cell. Resolved from the file and the rest of the
/// study, so that it names exactly what runs (the runner keeps it with the result and reruns
/// the search when it changes).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AdvicePlan {
    /// Languages the pruned model will serve (default: the `[perplexity]` languages).
    pub targets: Vec<String>,
    /// Languages the calibration may mix (default: the targets plus English).
    pub candidates: Vec<String>,
    /// Wanda or SparseGPT, with the study's SparseGPT settings.
    pub method: Method,
    /// `None` for an N:M pattern, whose sparsity the pattern implies.
    pub sparsity: Option<Sparsity>,
    pub pattern: Pattern,
    pub objective: Objective,
    /// Proxy evaluations the search may spend.
    pub budget: usize,
    /// Best searched mixtures validated on text (besides the single languages).
    pub validate: usize,
    /// Documents per target in each of the development and test halves (`None` = all).
    pub limit: Option<usize>,
    /// Confirm the recommendation with one sequential calibration on the mixture.
    pub confirm: bool,
    /// From `[calibration]`.
    pub samples: usize,
    pub seqlen: usize,
    pub batch: usize,
    pub calib_source: Option<String>,
    /// From `[perplexity]` (`None` when the study has none: each language's default).
    pub source: Option<String>,
}

impl AdvicePlan {
    /// The `advise` command's defaults (`polyprune advise --help`), which `[advice]` shares.
    pub const DEFAULT_BUDGET: usize = 24;
    pub const DEFAULT_VALIDATE: usize = 3;
}

/// The study file's `[report]`: how tables name things and what they compare against. It
/// changes no result, so it stays out of the study's hash: names can be edited after a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportPlan {
    /// The calibration set significance marks compare against, spelled as
    /// [`CalibrationChoice::languages_label`] spells it (`eng_Latn`); `None`: English where a
    /// table has it.
    pub reference_calibration: Option<String>,
    pub names: DisplayNames,
}

/// Display names by internal name; what a map leaves out gets the report's default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DisplayNames {
    /// By FLORES-200 code (`deu_Latn` -> `German`).
    pub languages: BTreeMap<String, String>,
    /// By calibration label (`deu_Latn+eng_Latn` -> `de+en`).
    pub calibrations: BTreeMap<String, String>,
    /// By method name (`wanda` -> `Wanda`).
    pub methods: BTreeMap<String, String>,
    /// By task name (`sib200` -> `SIB-200`).
    pub tasks: BTreeMap<String, String>,
    /// By the model's name in the study file.
    pub models: BTreeMap<String, String>,
}

impl ReportPlan {
    /// Reads the `[report]` table of a study file and nothing else, checking what can be checked
    /// without the rest of the study (languages are known, names are not empty). `polyprune
    /// report` uses this on the copy of the study file kept in the results folder.
    pub fn from_study_file(text: &str, path: &Path) -> Result<ReportPlan, ConfigError> {
        let raw: RawReportOnly = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            line: e.span().map(|s| line_of(text, s.start)).unwrap_or(1),
            message: e.message().trim().to_string(),
        })?;
        let checker = ReportChecker { text, path };
        checker.plan(raw.report.unwrap_or_default()).map(|(plan, _)| plan)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelSpec {
    /// Short name used in cell ids and folder names (`dense/<name>`).
    pub name: String,
    /// Model folder; a relative path is taken from the folder the study runs in.
    pub path: PathBuf,
}

/// One calibration set of the grid, without its seed (seeds are a grid axis of their own).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationChoice {
    pub languages: Vec<Language>,
    pub mix: Mix,
    pub samples: usize,
    pub seqlen: usize,
    /// Text source (`flores`, `handbook`, `udhr`, `file:...`, `jsonl[.<field>][+skip-bad-lines]:<glob>`,
    /// `parquet...:<glob>`); `None` = each language's default.
    pub source: Option<String>,
}

impl CalibrationChoice {
    /// `eng_Latn`, or `deu_Latn+eng_Latn` for a mixture (plus its mix when not even).
    pub fn languages_label(&self) -> String {
        let codes: Vec<&str> = self.languages.iter().map(|l| l.flores_code()).collect();
        let mix = match &self.mix {
            Mix::Even => String::new(),
            Mix::Concat if self.languages.len() > 1 => "(concat)".to_string(),
            Mix::Concat => String::new(),
            Mix::Weights(w) => format!("({})", w.iter().map(|x| format!("{x}")).collect::<Vec<_>>().join(":")),
        };
        format!("{}{mix}", codes.join("+"))
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CalibrationGrid {
    pub sets: Vec<CalibrationChoice>,
    /// Windows per runtime call during calibration.
    pub batch: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct PerplexityPlan {
    pub languages: Vec<Language>,
    pub source: Option<String>,
    pub limit: Option<usize>,
    pub context: usize,
    pub stride: usize,
}

impl PerplexityPlan {
    pub fn window(&self) -> WindowOptions {
        WindowOptions { context: self.context, stride: self.stride }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TaskPlan {
    pub names: Vec<TaskName>,
    /// As the user wrote them: a plain entry goes to every task, `task:lang` to that task only
    /// (tasks rarely share their languages: XCOPA has no English, XWinograd no German).
    pub languages: Vec<String>,
    pub limit: Option<usize>,
    pub shots: usize,
    pub seed: u64,
    pub split: TaskSplit,
    pub data: PathBuf,
    pub stop: StopRule,
}

/// When a study stops scoring a task in a language.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "rule")]
pub enum StopRule {
    /// Every example (up to `limit`): the default, and what fixed-n tests need.
    Full,
    /// Rounds of examples until every comparison of the set is decided by its anytime-valid
    /// confidence sequence, or the examples (up to `limit`) run out.
    Decided(DecidedStop),
}

/// The settings of [`StopRule::Decided`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct DecidedStop {
    /// Accuracy a calibration may lose against its comparator and still count as not worse.
    pub margin: f64,
    /// Error rate of each comparison's decision, at whatever round it is made.
    pub alpha: Alpha,
    /// Examples per task and language per round.
    pub round: usize,
}

impl DecidedStop {
    pub const DEFAULT_MARGIN: f64 = 0.02;
    pub const DEFAULT_ALPHA: f64 = 0.05;
    pub const DEFAULT_ROUND: usize = 50;
}

impl TaskPlan {
    /// The languages `task` is evaluated in, in the order written (the entries were checked
    /// when the file was read).
    pub fn languages_of(&self, task: TaskName) -> Vec<String> {
        self.languages.iter().filter_map(|entry| LanguageEntry::parse(entry).ok()?.language_for(task).map(str::to_string)).collect()
    }
}

/// Everything a study needs, checked.
#[derive(Clone, Debug)]
pub struct StudyConfig {
    pub name: String,
    /// Where results go unless `--out` says otherwise.
    pub out: PathBuf,
    pub seeds: Vec<u64>,
    pub mode: CaptureMode,
    /// `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    pub threads: usize,
    /// Memory budget in bytes (`max_memory`); `None`: the machine's free memory.
    pub max_memory: Option<u64>,
    /// What the graphs compute in (`compute`; default auto: half on CUDA for 16-bit folders).
    pub compute: ComputeChoice,
    pub models: Vec<ModelSpec>,
    pub methods: Vec<Method>,
    pub targets: Vec<SparsityTarget>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub calibration: Option<CalibrationGrid>,
    pub perplexity: Option<PerplexityPlan>,
    pub tasks: Option<TaskPlan>,
    pub analysis: AnalysisPlan,
    /// `[advice]`, when the file has one (not part of the hash: adding it to a finished study
    /// runs the search without redoing the grid).
    pub advice: Option<AdvicePlan>,
    /// `[report]`: names and the reference calibration (not part of the hash).
    pub report: ReportPlan,
    /// SHA-256 (hex) of the study file's bytes (without `[report]`, which changes no result)
    /// and the resolved analysis parameters (so a changed default changes it too): shards and
    /// resumed runs must agree on it.
    pub hash: String,
}

impl StudyConfig {
    /// Reads and checks a study file.
    pub fn load(path: &Path, registry: &TextRegistry) -> Result<StudyConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })?;
        StudyConfig::parse(&text, path, registry)
    }

    /// Parses and checks the text of a study file; `path` only names it in errors.
    pub fn parse(text: &str, path: &Path, registry: &TextRegistry) -> Result<StudyConfig, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            line: e.span().map(|s| line_of(text, s.start)).unwrap_or(1),
            message: e.message().trim().to_string(),
        })?;
        let mut config = Resolver { text, path, registry }.resolve(raw, String::new())?;
        config.hash = config_hash(&without_tables(text, &["report", "advice"]), &config.analysis);
        Ok(config)
    }

    pub fn runtime(&self) -> RuntimeOptions {
        // `resolve` refused any device that does not parse, so this cannot fall back silently.
        let provider: ExecutionProvider = self.device.parse().expect("study.device was checked when the file was read");
        RuntimeOptions { provider, intra_threads: self.threads, max_memory: self.max_memory, compute: self.compute }
    }

    pub fn model(&self, name: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.name == name)
    }

    /// The first 12 hex digits of [`StudyConfig::hash`], for ids and messages.
    pub fn short_hash(&self) -> &str {
        &self.hash[..12]
    }
}

/// The study's identity: the file's bytes plus the resolved analysis plan, so that the
/// analyses' parameters enter it even where the file leaves them to their defaults.
fn config_hash(text: &str, analysis: &AnalysisPlan) -> String {
    let mut bytes = text.as_bytes().to_vec();
    bytes.extend_from_slice(b"\n\0analysis:");
    bytes.extend_from_slice(&serde_json::to_vec(analysis).expect("the analysis plan serialises"));
    crate::util::sha256_bytes(&bytes)
}

/// The study file without the tables `names` (and their sub-tables): the text the hash covers.
/// `[report]` changes no result; `[advice]` has its own record beside its result. A header
/// line starts a table; the table runs to the next header line. A text without them is
/// returned as it is (the hashes of existing studies stand).
fn without_tables(text: &str, names: &[&str]) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut in_dropped = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            let header = trimmed.trim_start_matches('[').trim_start();
            let was_in_dropped = in_dropped;
            in_dropped = !trimmed.starts_with("[[")
                && names.iter().any(|name| header.strip_prefix(name).is_some_and(|rest| rest.trim_start().starts_with([']', '.'])));
            // The blank lines that set the table apart go with it, so appending a [report]
            // table to a study file leaves its hash as it was.
            if in_dropped && !was_in_dropped {
                let end = kept.trim_end().len();
                kept.truncate(end);
                if !kept.is_empty() {
                    kept.push('\n');
                }
            }
        }
        if !in_dropped {
            kept.push_str(line);
        }
    }
    kept
}

/// Where `[report]` named a calibration set, method, task or model, for the checks that need
/// the rest of the study.
#[derive(Default)]
struct ReportMentions {
    reference: Option<NamedSpan>,
    calibrations: Vec<NamedSpan>,
    methods: Vec<NamedSpan>,
    tasks: Vec<NamedSpan>,
    models: Vec<NamedSpan>,
}

/// The error for `key` at `span` of the study file `text` read from `path`, with its line.
fn invalid_at(path: &Path, text: &str, key: &str, span: std::ops::Range<usize>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { path: path.to_path_buf(), line: line_of(text, span.start), key: key.to_string(), message: message.into() }
}

/// Checks `[report]` on its own (see [`ReportPlan::from_study_file`]).
struct ReportChecker<'a> {
    text: &'a str,
    path: &'a Path,
}

impl ReportChecker<'_> {
    fn err(&self, key: &str, span: std::ops::Range<usize>, message: impl Into<String>) -> ConfigError {
        invalid_at(self.path, self.text, key, span, message)
    }

    /// A calibration set as `languages_label` spells it: each language by its FLORES-200 code,
    /// joined by `+`, a mix suffix such as `(concat)` kept as written.
    fn calibration_label(&self, key: &str, written: &str, span: std::ops::Range<usize>) -> Result<String, ConfigError> {
        let (languages, mix) = match written.find('(') {
            Some(i) => (&written[..i], written[i..].trim()),
            None => (written, ""),
        };
        let codes = languages
            .split('+')
            .map(|l| Language::parse(l).map(|l| l.flores_code()).map_err(|e| self.err(key, span.clone(), e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(format!("{}{mix}", codes.join("+")))
    }

    /// Display names must say something: an empty one would leave a blank header.
    fn names(
        &self,
        key: &str,
        raw: BTreeMap<String, Spanned<String>>,
    ) -> Result<Vec<(String, String, std::ops::Range<usize>)>, ConfigError> {
        raw.into_iter()
            .map(|(internal, shown)| {
                let span = shown.span();
                let shown = shown.into_inner().trim().to_string();
                if shown.is_empty() {
                    return Err(self.err(key, span, format!("the display name of '{internal}' is empty; give a name or drop the entry")));
                }
                Ok((internal.trim().to_string(), shown, span))
            })
            .collect()
    }

    fn plan(&self, raw: RawReport) -> Result<(ReportPlan, ReportMentions), ConfigError> {
        let mut mentions = ReportMentions::default();
        let reference_calibration = match &raw.reference_calibration {
            Some(r) => {
                let label = self.calibration_label("report.reference_calibration", r.get_ref(), r.span())?;
                mentions.reference = Some((label.clone(), r.span()));
                Some(label)
            }
            None => None,
        };
        let mut names = DisplayNames::default();
        for (code, shown, span) in self.names("report.languages", raw.languages)? {
            let language = Language::parse(&code).map_err(|e| self.err("report.languages", span.clone(), e.to_string()))?;
            names.languages.insert(language.flores_code().to_string(), shown);
        }
        for (label, shown, span) in self.names("report.calibrations", raw.calibrations)? {
            let label = self.calibration_label("report.calibrations", &label, span.clone())?;
            mentions.calibrations.push((label.clone(), span));
            names.calibrations.insert(label, shown);
        }
        for (key, map, into, seen) in [
            ("report.methods", raw.methods, &mut names.methods, &mut mentions.methods),
            ("report.tasks", raw.tasks, &mut names.tasks, &mut mentions.tasks),
            ("report.models", raw.models, &mut names.models, &mut mentions.models),
        ] {
            for (internal, shown, span) in self.names(key, map)? {
                seen.push((internal.clone(), span));
                into.insert(internal, shown);
            }
        }
        Ok((ReportPlan { reference_calibration, names }, mentions))
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// What `[advice]` takes its defaults from and is checked against.
struct AdviceContext<'a> {
    methods: &'a [Method],
    targets: &'a [SparsityTarget],
    calibration: Option<&'a CalibrationGrid>,
    perplexity: Option<&'a PerplexityPlan>,
    calib_source: Option<&'a Spanned<String>>,
    eval_source: Option<&'a Spanned<String>>,
}

/// A name and where the file wrote it.
type NamedSpan = (String, std::ops::Range<usize>);

struct Resolver<'a> {
    text: &'a str,
    path: &'a Path,
    registry: &'a TextRegistry,
}

impl Resolver<'_> {
    fn err(&self, key: &str, span: std::ops::Range<usize>, message: impl Into<String>) -> ConfigError {
        invalid_at(self.path, self.text, key, span, message)
    }

    fn analysis(&self, raw: RawAnalysis) -> Result<AnalysisPlan, ConfigError> {
        let switches = AnalysisSwitches {
            masks: raw.masks,
            subspaces: raw.subspaces,
            neurons: raw.neurons,
            pruning_error: raw.pruning_error,
            significance: raw.significance,
            probes: raw.probes,
        };
        let defaults = AnalysisParams::default();
        let at_least = |key: &str, v: &Option<Spanned<usize>>, min: usize, default: usize| match v {
            Some(s) if *s.get_ref() < min => Err(self.err(key, s.span(), format!("{} is too small; give at least {min}", s.get_ref()))),
            Some(s) => Ok(*s.get_ref()),
            None => Ok(default),
        };
        let fraction = |key: &str, v: &Option<Spanned<f64>>, upper_closed: bool, default: f64| match v {
            Some(s) => {
                let x = *s.get_ref();
                let ok = x > 0.0 && (x < 1.0 || (upper_closed && x == 1.0));
                if ok {
                    Ok(x)
                } else {
                    Err(self.err(
                        key,
                        s.span(),
                        format!("{x} is not in (0, 1{}; the default is {default}", if upper_closed { "]" } else { ")" }),
                    ))
                }
            }
            None => Ok(default),
        };
        let params = AnalysisParams {
            sentences: at_least("analysis.sentences", &raw.sentences, 2, defaults.sentences)?,
            batch: at_least("analysis.batch", &raw.batch, 1, defaults.batch)?,
            layers: raw.layers.unwrap_or_default(),
            rank: raw.rank.as_ref().map(|r| at_least("analysis.rank", &raw.rank, 1, 1).map(|_| *r.get_ref())).transpose()?,
            filter_percentile: fraction("analysis.filter_percentile", &raw.filter_percentile, false, defaults.filter_percentile)?,
            entropy_fraction: fraction("analysis.entropy_fraction", &raw.entropy_fraction, true, defaults.entropy_fraction)?,
            error_windows: at_least("analysis.error_windows", &raw.error_windows, 1, defaults.error_windows)?,
            error_seqlen: at_least("analysis.error_seqlen", &raw.error_seqlen, 2, defaults.error_seqlen)?,
            probe_sentences: raw
                .probe_sentences
                .as_ref()
                .map(|s| at_least("analysis.probe_sentences", &raw.probe_sentences, 10, 10).map(|_| *s.get_ref()))
                .transpose()?,
        };
        Ok(AnalysisPlan { switches, params })
    }

    fn resolve(&self, raw: RawConfig, hash: String) -> Result<StudyConfig, ConfigError> {
        let name = raw.study.name.get_ref().trim().to_string();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(self.err(
                "study.name",
                raw.study.name.span(),
                "use letters, digits, '-', '_' or '.' (it names the results folder)",
            ));
        }
        let seeds = match &raw.study.seeds {
            None => vec![0],
            Some(s) if s.get_ref().is_empty() => return Err(self.err("study.seeds", s.span(), "give at least one seed, e.g. seeds = [0]")),
            Some(s) => dedup(s.get_ref().clone()),
        };
        let mode = match raw.study.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
            None | Some(("sequential", _)) => CaptureMode::Sequential,
            Some(("one-shot", _)) => CaptureMode::OneShot,
            Some((other, span)) => {
                return Err(self.err("study.mode", span, format!("'{other}' is not a capture mode; use \"sequential\" or \"one-shot\"")))
            }
        };
        let device = match raw.study.device.as_ref() {
            None => "cpu".to_string(),
            Some(d) => {
                let v = d.get_ref().trim();
                v.parse::<ExecutionProvider>().map_err(|message| self.err("study.device", d.span(), message))?;
                v.to_string()
            }
        };
        let max_memory = match &raw.study.max_memory {
            None => None,
            Some(m) => {
                Some(crate::model::memory::parse_size(m.get_ref()).map_err(|e| self.err("study.max_memory", m.span(), e.to_string()))?)
            }
        };
        let compute = match &raw.study.compute {
            None => ComputeChoice::Auto,
            Some(c) => c.get_ref().parse().map_err(|message: String| self.err("study.compute", c.span(), message))?,
        };
        let analysis = self.analysis(raw.analysis.unwrap_or_default())?;
        let models = self.models(&raw.models)?;
        let (methods, needs_calibration) = self.methods(&raw.pruning)?;
        let targets = self.targets(&raw.pruning)?;
        let calib_source = raw.calibration.as_ref().and_then(|c| c.source.clone());
        let calibration = match (raw.calibration, needs_calibration) {
            (Some(c), _) => Some(self.calibration(c)?),
            (None, Some((method, span))) => {
                return Err(self.err(
                    "pruning.methods",
                    span,
                    format!("{method} needs calibration data: add a [calibration] table with samples, seqlen and sets"),
                ))
            }
            (None, None) => None,
        };
        let eval_source = raw.perplexity.as_ref().and_then(|p| p.source.clone());
        let perplexity = raw.perplexity.map(|p| self.perplexity(p)).transpose()?;
        let tasks = raw.tasks.map(|t| self.tasks(t)).transpose()?;
        if perplexity.is_none() && tasks.is_none() {
            return Err(ConfigError::Invalid {
                path: self.path.to_path_buf(),
                line: 1,
                key: "perplexity".into(),
                message: "the study measures nothing: add a [perplexity] or [tasks] table".into(),
            });
        }
        let advice = match raw.advice {
            Some(a) => Some(self.advice(
                a,
                AdviceContext {
                    methods: &methods,
                    targets: &targets,
                    calibration: calibration.as_ref(),
                    perplexity: perplexity.as_ref(),
                    calib_source: calib_source.as_ref(),
                    eval_source: eval_source.as_ref(),
                },
            )?),
            None => None,
        };
        let report = self.report(raw.report.unwrap_or_default(), &models, &methods, calibration.as_ref(), tasks.as_ref())?;
        let out = raw.study.out.unwrap_or_else(|| PathBuf::from("results/studies").join(&name));
        Ok(StudyConfig {
            name,
            out,
            seeds,
            mode,
            device,
            threads: raw.study.threads,
            max_memory,
            compute,
            models,
            methods,
            targets,
            include: raw.pruning.include,
            exclude: raw.pruning.exclude,
            calibration,
            perplexity,
            tasks,
            analysis,
            advice,
            report,
            hash,
        })
    }

    /// `[advice]`, with its defaults taken from the rest of the study.
    fn advice(&self, raw: RawAdvice, study: AdviceContext<'_>) -> Result<AdvicePlan, ConfigError> {
        // Errors about the table as a whole point at its header line (a wrapped `Spanned`
        // table would move the unknown-key errors there too).
        let table = self
            .text
            .match_indices("[advice]")
            .find(|(i, _)| self.text[..*i].trim_end_matches([' ', '\t']).ends_with('\n') || *i == 0)
            .map_or(0..0, |(i, m)| i..i + m.len());
        let Some(calibration) = study.calibration else {
            return Err(self.err(
                "advice",
                table,
                "the search calibrates with the study's [calibration] samples and seqlen: add a [calibration] table",
            ));
        };
        let languages = |key: &str, list: &Spanned<Vec<Spanned<String>>>, source: Option<&Spanned<String>>| {
            if list.get_ref().is_empty() {
                return Err(self.err(key, list.span(), "give at least one language, or drop the key for the default"));
            }
            let mut codes: Vec<String> = Vec::new();
            for code in list.get_ref() {
                let language = self.language(key, code)?;
                self.has_text(key, code, language, source)?;
                if codes.iter().any(|c| c == language.flores_code()) {
                    return Err(self.err(key, code.span(), format!("{language} is listed twice")));
                }
                codes.push(language.flores_code().to_string());
            }
            Ok(codes)
        };
        let targets = match (&raw.targets, study.perplexity) {
            (Some(list), _) => languages("advice.targets", list, study.eval_source)?,
            (None, Some(p)) => p.languages.iter().map(|l| l.flores_code().to_string()).collect(),
            (None, None) => {
                return Err(self.err("advice.targets", table, "no [perplexity] languages to default to: give targets = [\"...\"]"));
            }
        };
        let candidates = match &raw.candidates {
            Some(list) => languages("advice.candidates", list, study.calib_source)?,
            None => {
                let mut c = targets.clone();
                if !c.iter().any(|t| t == "eng_Latn") {
                    c.push("eng_Latn".to_string());
                }
                c
            }
        };
        let searchable = |m: &&Method| matches!(m, Method::Wanda | Method::SparseGpt(_));
        let method = match &raw.method {
            Some(name) => {
                let wanted = name.get_ref().trim();
                match study.methods.iter().filter(searchable).find(|m| m.name() == wanted) {
                    Some(m) => *m,
                    None => {
                        let offered: Vec<&str> = study.methods.iter().filter(searchable).map(|m| m.name()).collect();
                        return Err(self.err(
                            "advice.method",
                            name.span(),
                            format!(
                                "'{wanted}' is not a wanda or sparsegpt method of this study's [pruning] methods{}",
                                if offered.is_empty() { String::new() } else { format!("; use one of: {}", offered.join(", ")) }
                            ),
                        ));
                    }
                }
            }
            None => match study.methods.iter().find(searchable) {
                Some(m) => *m,
                None => {
                    return Err(self.err(
                        "advice.method",
                        table,
                        "the search mixes Wanda or SparseGPT statistics, and [pruning] methods has neither: add wanda or sparsegpt",
                    ))
                }
            },
        };
        let target = match &raw.sparsity {
            None => study.targets[0],
            Some(s) => {
                let x = *s.get_ref();
                match study.targets.iter().find(|t| matches!(t, SparsityTarget::Unstructured(u) if (u.get() - x).abs() < 1e-9)) {
                    Some(t) => *t,
                    None => {
                        let offered: Vec<String> = study
                            .targets
                            .iter()
                            .filter_map(|t| match t {
                                SparsityTarget::Unstructured(u) => Some(u.get().to_string()),
                                SparsityTarget::NM(_) => None,
                            })
                            .collect();
                        return Err(self.err(
                            "advice.sparsity",
                            s.span(),
                            format!(
                                "{x} is not one of this study's unstructured [pruning] sparsities ({}), so the grid has no cell to set beside it",
                                if offered.is_empty() { "none".to_string() } else { offered.join(", ") }
                            ),
                        ));
                    }
                }
            }
        };
        let objective = match &raw.objective {
            None => Objective::Worst,
            Some(o) => Objective::parse(o.get_ref().trim()).ok_or_else(|| {
                self.err("advice.objective", o.span(), format!("'{}' is not an objective; use \"worst\" or \"mean\"", o.get_ref()))
            })?,
        };
        let at_least_one = |key: &str, v: &Option<Spanned<usize>>, default: usize| match v {
            Some(s) if *s.get_ref() == 0 => Err(self.err(key, s.span(), "0 is too small; give at least 1")),
            Some(s) => Ok(*s.get_ref()),
            None => Ok(default),
        };
        let budget = at_least_one("advice.budget", &raw.budget, AdvicePlan::DEFAULT_BUDGET)?;
        let validate = at_least_one("advice.validate", &raw.validate, AdvicePlan::DEFAULT_VALIDATE)?;
        let limit = match &raw.limit {
            Some(l) if *l.get_ref() < 2 => {
                return Err(self.err(
                    "advice.limit",
                    l.span(),
                    format!("{} is too small: paired tests need at least 2 documents per half", l.get_ref()),
                ))
            }
            l => l.as_ref().map(|l| *l.get_ref()),
        };
        let first_set = &calibration.sets[0];
        let (sparsity, pattern) = match target {
            SparsityTarget::Unstructured(s) => (Some(s), Pattern::Unstructured),
            SparsityTarget::NM(_) => (None, target.pattern()),
        };
        Ok(AdvicePlan {
            targets,
            candidates,
            method,
            sparsity,
            pattern,
            objective,
            budget,
            validate,
            limit,
            confirm: raw.confirm.unwrap_or(true),
            samples: first_set.samples,
            seqlen: first_set.seqlen,
            batch: calibration.batch,
            calib_source: first_set.source.clone(),
            source: study.perplexity.and_then(|p| p.source.clone()),
        })
    }

    /// `[report]`, checked on its own and then against the grid: every name it maps and the
    /// reference calibration must be part of this study, so a typo is not silently ignored.
    fn report(
        &self,
        raw: RawReport,
        models: &[ModelSpec],
        methods: &[Method],
        calibration: Option<&CalibrationGrid>,
        tasks: Option<&TaskPlan>,
    ) -> Result<ReportPlan, ConfigError> {
        let (plan, mentions) = ReportChecker { text: self.text, path: self.path }.plan(raw)?;
        let labels: Vec<String> = calibration.map(|c| c.sets.iter().map(|s| s.languages_label()).collect()).unwrap_or_default();
        let method_names: Vec<String> = methods.iter().map(|m| m.name().to_string()).collect();
        let task_names: Vec<String> = tasks.map(|t| t.names.iter().map(|n| n.as_str().to_string()).collect()).unwrap_or_default();
        let model_names: Vec<String> = models.iter().map(|m| m.name.clone()).collect();
        let check = |key: &str, what: &str, mentioned: &[NamedSpan], known: &[String]| {
            for (name, span) in mentioned {
                if !known.contains(name) {
                    let listed = if known.is_empty() { "none".to_string() } else { known.join(", ") };
                    return Err(self.err(key, span.clone(), format!("'{name}' is not a {what} of this study; use one of: {listed}")));
                }
            }
            Ok(())
        };
        check("report.reference_calibration", "calibration set", mentions.reference.as_slice(), &labels)?;
        check("report.calibrations", "calibration set", &mentions.calibrations, &labels)?;
        check("report.methods", "method", &mentions.methods, &method_names)?;
        check("report.tasks", "task", &mentions.tasks, &task_names)?;
        check("report.models", "model", &mentions.models, &model_names)?;
        Ok(plan)
    }

    fn models(&self, raw: &[RawModel]) -> Result<Vec<ModelSpec>, ConfigError> {
        if raw.is_empty() {
            return Err(ConfigError::Invalid {
                path: self.path.to_path_buf(),
                line: 1,
                key: "models".into(),
                message: "no model: add [[models]] with name and path".into(),
            });
        }
        let mut models: Vec<ModelSpec> = Vec::new();
        for m in raw {
            let name = m.name.get_ref().trim();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(self.err("models.name", m.name.span(), "use letters, digits, '-', '_' or '.' (it names folders)"));
            }
            if models.iter().any(|x| x.name == name) {
                return Err(self.err(
                    "models.name",
                    m.name.span(),
                    format!("model '{name}' is listed twice; give each model its own name"),
                ));
            }
            models.push(ModelSpec { name: name.to_string(), path: m.path.clone() });
        }
        Ok(models)
    }

    /// The methods, and the first one that needs calibration data (for the error if none is given).
    fn methods(&self, raw: &RawPruning) -> Result<(Vec<Method>, Option<NamedSpan>), ConfigError> {
        if raw.methods.get_ref().is_empty() {
            return Err(self.err(
                "pruning.methods",
                raw.methods.span(),
                "give at least one method: magnitude, wanda, sparsegpt, snip or grasp (snip-global, grasp-global rank all layers together)",
            ));
        }
        let percdamp = raw.percdamp.as_ref().map(|p| (*p.get_ref(), p.span()));
        let blocksize = raw.blocksize.as_ref().map(|b| (*b.get_ref(), b.span()));
        let mut methods = Vec::new();
        let mut needs = None;
        for m in raw.methods.get_ref() {
            let method: Method =
                m.get_ref().parse().map_err(|e: crate::prune::PruneError| self.err("pruning.methods", m.span(), e.to_string()))?;
            let method = match method {
                Method::SparseGpt(_) => {
                    let config = SparseGptConfig::new(percdamp.as_ref().map_or(0.01, |p| p.0), blocksize.as_ref().map_or(128, |b| b.0))
                        .map_err(|e| {
                            self.err(
                                "pruning.percdamp",
                                percdamp.as_ref().map(|x| x.1.clone()).or(blocksize.as_ref().map(|x| x.1.clone())).unwrap_or(m.span()),
                                e.to_string(),
                            )
                        })?;
                    Method::SparseGpt(config)
                }
                other => other,
            };
            if methods.contains(&method) {
                return Err(self.err("pruning.methods", m.span(), format!("'{}' is listed twice", m.get_ref())));
            }
            if method.statistics_need() != crate::prune::StatisticsNeed::None && needs.is_none() {
                needs = Some((method.name().to_string(), m.span()));
            }
            methods.push(method);
        }
        Ok((methods, needs))
    }

    /// Every (pattern, sparsity) pair of the grid; an N:M pattern with a sparsity other than N/M is an error.
    fn targets(&self, raw: &RawPruning) -> Result<Vec<SparsityTarget>, ConfigError> {
        let mut patterns = Vec::new();
        for p in raw.patterns.as_deref().unwrap_or_default() {
            let pattern: Pattern =
                p.get_ref().parse().map_err(|e: crate::prune::PruneError| self.err("pruning.patterns", p.span(), e.to_string()))?;
            patterns.push((pattern, p.span()));
        }
        if patterns.is_empty() {
            patterns.push((Pattern::Unstructured, raw.methods.span()));
        }
        let mut sparsities = Vec::new();
        for s in raw.sparsities.as_deref().unwrap_or_default() {
            let value = Sparsity::new(*s.get_ref()).map_err(|e| self.err("pruning.sparsities", s.span(), e.to_string()))?;
            sparsities.push((value, s.span()));
        }
        let mut targets: Vec<SparsityTarget> = Vec::new();
        for (pattern, pspan) in &patterns {
            match pattern {
                Pattern::Unstructured if sparsities.is_empty() => {
                    return Err(self.err(
                        "pruning.sparsities",
                        pspan.clone(),
                        "the unstructured pattern needs sparsities, e.g. sparsities = [0.5]",
                    ))
                }
                Pattern::Unstructured => {
                    for (s, _) in &sparsities {
                        targets.push(SparsityTarget::Unstructured(*s));
                    }
                }
                Pattern::NM(nm) => {
                    for (s, sspan) in &sparsities {
                        if (s.get() - nm.implied_sparsity()).abs() > 1e-4 {
                            return Err(self.err(
                                "pruning.sparsities",
                                sspan.clone(),
                                format!(
                                    "pattern {nm} (line {}) prunes exactly {} of the weights, so sparsity {} is impossible with it; drop {} or list the {nm} pattern in a study of its own",
                                    line_of(self.text, pspan.start),
                                    nm.implied_sparsity(),
                                    s.get(),
                                    s.get()
                                ),
                            ));
                        }
                    }
                    targets.push(SparsityTarget::NM(*nm));
                }
            }
        }
        let mut unique: Vec<SparsityTarget> = Vec::new();
        for t in targets {
            if !unique.contains(&t) {
                unique.push(t);
            }
        }
        Ok(unique)
    }

    fn language(&self, key: &str, code: &Spanned<String>) -> Result<Language, ConfigError> {
        Language::parse(code.get_ref()).map_err(|e| self.err(key, code.span(), e.to_string()))
    }

    /// Checks that `source` (or each language's default) has text for `language`.
    fn has_text(&self, key: &str, code: &Spanned<String>, language: Language, source: Option<&Spanned<String>>) -> Result<(), ConfigError> {
        let text_source = match source {
            Some(s) => {
                let source_error = |e: crate::data::DataError| self.err(&key.replace("languages", "source"), s.span(), e.to_string());
                let text_source = self.registry.source(s.get_ref()).map_err(source_error)?;
                // A JSON-lines or Parquet glob must name files now, not after hours of other cells.
                if let TextSource::Records(records) = &text_source {
                    records.shards().map_err(source_error)?;
                }
                text_source
            }
            None => self.registry.default_for(language),
        };
        if text_source.has_language(language) {
            Ok(())
        } else {
            Err(self.err(
                key,
                code.span(),
                format!(
                    "{} has no text in source '{}' ({}); pick another source or language",
                    language.flores_code(),
                    text_source.name(),
                    text_source.location().display()
                ),
            ))
        }
    }

    fn calibration(&self, raw: RawCalibration) -> Result<CalibrationGrid, ConfigError> {
        if *raw.samples.get_ref() == 0 {
            return Err(self.err("calibration.samples", raw.samples.span(), "zero samples: give at least 1 window (the paper used 128)"));
        }
        if *raw.seqlen.get_ref() < 2 {
            return Err(self.err(
                "calibration.seqlen",
                raw.seqlen.span(),
                "a window needs at least 2 tokens (the start token and one of text)",
            ));
        }
        let batch = match &raw.batch {
            Some(b) if *b.get_ref() == 0 => return Err(self.err("calibration.batch", b.span(), "batch must be at least 1")),
            Some(b) => *b.get_ref(),
            None => 4,
        };
        if raw.sets.get_ref().is_empty() {
            return Err(self.err(
                "calibration.sets",
                raw.sets.span(),
                "no calibration set: add e.g. sets = [{ languages = [\"eng_Latn\"] }]",
            ));
        }
        let source = raw.source.as_ref().map(|s| s.get_ref().clone());
        let mut sets: Vec<CalibrationChoice> = Vec::new();
        for set in raw.sets.get_ref() {
            if set.languages.get_ref().is_empty() {
                return Err(self.err("calibration.sets.languages", set.languages.span(), "a calibration set needs at least one language"));
            }
            let mut languages = Vec::new();
            for code in set.languages.get_ref() {
                let language = self.language("calibration.sets.languages", code)?;
                self.has_text("calibration.sets.languages", code, language, raw.source.as_ref())?;
                if languages.contains(&language) {
                    return Err(self.err("calibration.sets.languages", code.span(), format!("{language} is listed twice in one set")));
                }
                languages.push(language);
            }
            let mix = match &set.mix {
                None => Mix::Even,
                Some(m) => {
                    Mix::parse(m.get_ref(), languages.len()).map_err(|e| self.err("calibration.sets.mix", m.span(), e.to_string()))?
                }
            };
            let choice = CalibrationChoice {
                languages,
                mix,
                samples: *raw.samples.get_ref(),
                seqlen: *raw.seqlen.get_ref(),
                source: source.clone(),
            };
            if sets.contains(&choice) {
                return Err(self.err("calibration.sets", set.languages.span(), "this calibration set is listed twice"));
            }
            sets.push(choice);
        }
        Ok(CalibrationGrid { sets, batch })
    }

    fn perplexity(&self, raw: RawPerplexity) -> Result<PerplexityPlan, ConfigError> {
        if raw.languages.get_ref().is_empty() {
            return Err(self.err("perplexity.languages", raw.languages.span(), "give at least one evaluation language"));
        }
        let mut languages = Vec::new();
        for code in raw.languages.get_ref() {
            let language = self.language("perplexity.languages", code)?;
            self.has_text("perplexity.languages", code, language, raw.source.as_ref())?;
            if !languages.contains(&language) {
                languages.push(language);
            }
        }
        if let Some(l) = raw.limit.as_ref().filter(|l| *l.get_ref() == 0) {
            return Err(self.err("perplexity.limit", l.span(), "limit 0 scores nothing; give at least 1 document or drop the key"));
        }
        let context = raw.context.as_ref().map_or(512, |c| *c.get_ref());
        let stride = raw.stride.as_ref().map_or(256, |s| *s.get_ref());
        if context < 2 {
            return Err(self.err(
                "perplexity.context",
                raw.context.as_ref().map_or(0..0, |c| c.span()),
                "context must be at least 2 tokens",
            ));
        }
        if stride == 0 {
            return Err(self.err("perplexity.stride", raw.stride.as_ref().map_or(0..0, |c| c.span()), "stride must be at least 1 token"));
        }
        Ok(PerplexityPlan {
            languages,
            source: raw.source.map(|s| s.into_inner()),
            limit: raw.limit.map(|l| l.into_inner()),
            context,
            stride,
        })
    }

    /// `[tasks] stop` with its `margin`, `alpha` and `round`, which mean nothing without it.
    fn stop_rule(&self, raw: &RawTasks) -> Result<StopRule, ConfigError> {
        let decided = match &raw.stop {
            None => false,
            Some(s) => match s.get_ref().as_str() {
                "full" => false,
                "decided" => true,
                other => {
                    return Err(self.err(
                        "tasks.stop",
                        s.span(),
                        format!("'{other}' is not a stop rule; use \"full\" (every example) or \"decided\" (rounds until the comparisons are decided)"),
                    ))
                }
            },
        };
        if !decided {
            let stray = [
                ("tasks.margin", raw.margin.as_ref().map(|m| m.span())),
                ("tasks.alpha", raw.alpha.as_ref().map(|a| a.span())),
                ("tasks.round", raw.round.as_ref().map(|r| r.span())),
            ];
            if let Some((key, Some(span))) = stray.into_iter().find(|(_, span)| span.is_some()) {
                return Err(self.err(key, span, "only used with stop = \"decided\"; add that line or drop this key"));
            }
            return Ok(StopRule::Full);
        }
        let margin = raw.margin.as_ref().map_or(DecidedStop::DEFAULT_MARGIN, |m| *m.get_ref());
        if let Some(m) = raw.margin.as_ref().filter(|m| !(m.get_ref().is_finite() && (0.0..1.0).contains(m.get_ref()))) {
            return Err(self.err("tasks.margin", m.span(), "give an accuracy difference in [0, 1), e.g. 0.02"));
        }
        let alpha = match &raw.alpha {
            None => Alpha::new(DecidedStop::DEFAULT_ALPHA).expect("0.05 is a level"),
            Some(a) => Alpha::new(*a.get_ref()).map_err(|e| self.err("tasks.alpha", a.span(), e.to_string()))?,
        };
        let round = raw.round.as_ref().map_or(DecidedStop::DEFAULT_ROUND, |r| *r.get_ref());
        if let Some(r) = raw.round.as_ref().filter(|r| *r.get_ref() == 0) {
            return Err(self.err("tasks.round", r.span(), "a round of 0 examples never ends; give at least 1 (e.g. 50)"));
        }
        Ok(StopRule::Decided(DecidedStop { margin, alpha, round }))
    }

    fn tasks(&self, raw: RawTasks) -> Result<TaskPlan, ConfigError> {
        if raw.names.get_ref().is_empty() {
            return Err(self.err("tasks.names", raw.names.span(), "give at least one task, e.g. names = [\"sib200\"]"));
        }
        if raw.languages.get_ref().is_empty() {
            return Err(self.err("tasks.languages", raw.languages.span(), "give at least one language"));
        }
        let catalog = Catalog::get();
        let mut names = Vec::new();
        for n in raw.names.get_ref() {
            let task: TaskName =
                n.get_ref().parse().map_err(|e: crate::tasks::TaskError| self.err("tasks.names", n.span(), e.to_string()))?;
            if !names.contains(&task) {
                names.push(task);
            }
        }
        let mut entries = Vec::new();
        for code in raw.languages.get_ref() {
            let entry = LanguageEntry::parse(code.get_ref()).map_err(|e| self.err("tasks.languages", code.span(), e.to_string()))?;
            if let LanguageEntry::ForTask(task, _) = &entry {
                if !names.contains(task) {
                    return Err(self.err(
                        "tasks.languages",
                        code.span(),
                        format!("'{}' is for task '{task}', which is not in tasks.names; add it there or drop the entry", code.get_ref()),
                    ));
                }
            }
            for &task in &names {
                let Some(language) = entry.language_for(task) else { continue };
                crate::tasks::load::resolve_language(catalog, catalog.spec(task), language)
                    .map_err(|e| self.err("tasks.languages", code.span(), e.to_string()))?;
            }
            entries.push(entry);
        }
        for &task in &names {
            if !entries.iter().any(|entry| entry.language_for(task).is_some()) {
                return Err(self.err(
                    "tasks.languages",
                    raw.languages.span(),
                    format!("task '{task}' got no language: add a plain entry or '{task}:<code>'"),
                ));
            }
        }
        if let Some(l) = raw.limit.as_ref().filter(|l| *l.get_ref() == 0) {
            return Err(self.err("tasks.limit", l.span(), "limit 0 evaluates nothing; give at least 1 example or drop the key"));
        }
        let split = match &raw.split {
            None => TaskSplit::Test,
            Some(s) => s.get_ref().parse().map_err(|e: crate::tasks::TaskError| self.err("tasks.split", s.span(), e.to_string()))?,
        };
        let stop = self.stop_rule(&raw)?;
        Ok(TaskPlan {
            stop,
            names,
            languages: raw.languages.into_inner().into_iter().map(|l| l.into_inner()).collect(),
            limit: raw.limit.map(|l| l.into_inner()),
            shots: raw.shots,
            seed: raw.seed,
            split,
            data: raw.data.unwrap_or_else(crate::tasks::default_data_dir),
        })
    }
}

fn dedup(v: Vec<u64>) -> Vec<u64> {
    let mut out = Vec::new();
    for x in v {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn registry() -> TextRegistry {
        TextRegistry::for_project(Path::new("/nonexistent-project"))
    }

    pub(crate) fn parse(text: &str) -> Result<StudyConfig, ConfigError> {
        StudyConfig::parse(text, Path::new("study.toml"), &registry())
    }

    pub(crate) fn parse_ok(text: &str) -> StudyConfig {
        parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    pub(crate) const GOOD: &str = r#"[study]
name = "demo"
seeds = [0]

[[models]]
name = "gemma"
path = "models/gemma"

[pruning]
methods = ["wanda", "sparsegpt"]
sparsities = [0.5]
patterns = ["unstructured", "2:4"]

[calibration]
source = "udhr"
samples = 16
seqlen = 128
sets = [{ languages = ["eng_Latn"] }, { languages = ["deu_Latn"] }]

[perplexity]
languages = ["eng_Latn", "deu_Latn"]
source = "udhr"
limit = 5

[tasks]
names = ["xcopa"]
languages = ["it"]
limit = 10
"#;

    fn error(text: &str) -> String {
        match parse(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    /// `[study] compute` and `max_memory` reach the runtime options every model run gets;
    /// the defaults are auto and no budget (the free memory), and a value of neither kind is
    /// refused naming the key and its line.
    #[test]
    fn compute_and_max_memory_keys_reach_the_runtime_options() {
        let with = |extra: &str| GOOD.replacen("seeds = [0]\n", &format!("seeds = [0]\n{extra}\n"), 1);
        let runtime = parse_ok(GOOD).runtime();
        assert_eq!((runtime.compute, runtime.max_memory), (ComputeChoice::Auto, None));
        let runtime = parse_ok(&with("compute = \"half\"\nmax_memory = \"6GiB\"")).runtime();
        assert_eq!((runtime.compute, runtime.max_memory), (ComputeChoice::Half, Some(6 << 30)));
        assert_eq!(parse_ok(&with("compute = \"f32\"")).runtime().compute, ComputeChoice::F32);
        let e = error(&with("compute = \"fp8\""));
        assert!(e.starts_with("study.toml:4: study.compute") && e.contains("expected auto, f32 or half"), "{e}");
        let e = error(&with("max_memory = \"lots\""));
        assert!(e.starts_with("study.toml:4: study.max_memory") && e.contains("6GiB"), "{e}");
    }

    /// `stop = "decided"` with its defaults or given settings; the settings alone, an unknown
    /// rule and out-of-range values are refused naming the key and line.
    #[test]
    fn the_decided_stop_rule_is_read_with_defaults_and_checked() {
        let plan = |text: &str| parse_ok(text).tasks.unwrap().stop;
        assert_eq!(plan(GOOD), StopRule::Full);
        let decided = format!("{GOOD}stop = \"decided\"\n");
        let d = DecidedStop { margin: 0.02, alpha: Alpha::new(0.05).unwrap(), round: 50 };
        assert_eq!(plan(&decided), StopRule::Decided(d));
        let given = format!("{decided}margin = 0.05\nalpha = 0.01\nround = 25\n");
        assert_eq!(plan(&given), StopRule::Decided(DecidedStop { margin: 0.05, alpha: Alpha::new(0.01).unwrap(), round: 25 }));
        let e = error(&format!("{GOOD}margin = 0.05\n"));
        assert!(e.starts_with("study.toml:29: tasks.margin") && e.contains("stop = \"decided\""), "{e}");
        let e = error(&format!("{GOOD}stop = \"sometimes\"\n"));
        assert!(e.contains("tasks.stop") && e.contains("'sometimes' is not a stop rule"), "{e}");
        let e = error(&format!("{decided}round = 0\n"));
        assert!(e.contains("tasks.round"), "{e}");
        let e = error(&format!("{decided}margin = 1.5\n"));
        assert!(e.contains("tasks.margin"), "{e}");
        let e = error(&format!("{decided}alpha = 2.0\n"));
        assert!(e.contains("tasks.alpha"), "{e}");
    }

    #[test]
    fn a_good_file_resolves_to_typed_values() {
        let c = parse_ok(GOOD);
        assert_eq!(c.name, "demo");
        assert_eq!(c.methods.len(), 2);
        assert_eq!(c.targets.len(), 2);
        assert_eq!(c.calibration.as_ref().unwrap().sets.len(), 2);
        assert_eq!(c.perplexity.as_ref().unwrap().limit, Some(5));
        assert_eq!(c.tasks.as_ref().unwrap().names, vec![TaskName::Xcopa]);
        assert_eq!(c.mode, CaptureMode::Sequential);
        assert_eq!(c.hash.len(), 64);
        assert_eq!(c.out, PathBuf::from("results/studies/demo"));
    }

    /// `[advice]` alone takes everything from the study: the `[perplexity]` languages as targets,
    /// them plus English as candidates, the first Wanda/SparseGPT method, the first sparsity,
    /// the `[calibration]` windows and both text sources; and it stays out of the study's hash.
    #[test]
    fn the_advice_table_defaults_to_the_studys_languages_and_settings() {
        let plain = parse_ok(GOOD);
        assert!(plain.advice.is_none());
        let c = parse_ok(&format!("{GOOD}\n[advice]\n"));
        let a = c.advice.as_ref().unwrap();
        assert_eq!(a.targets, ["eng_Latn", "deu_Latn"]);
        assert_eq!(a.candidates, ["eng_Latn", "deu_Latn"], "English is a target already");
        assert_eq!(a.method, Method::Wanda);
        assert_eq!((a.sparsity.map(|s| s.get()), a.pattern), (Some(0.5), Pattern::Unstructured));
        assert_eq!(a.objective, Objective::Worst);
        assert_eq!((a.budget, a.validate, a.limit, a.confirm), (24, 3, None, true));
        assert_eq!((a.samples, a.seqlen, a.batch), (16, 128, 4));
        assert_eq!((a.calib_source.as_deref(), a.source.as_deref()), (Some("udhr"), Some("udhr")));
        assert_eq!(c.hash, plain.hash, "adding [advice] keeps the grid's results");

        let given = parse_ok(&format!(
            "{GOOD}\n[advice]\ntargets = [\"deu\"]\nmethod = \"sparsegpt\"\nsparsity = 0.5\nobjective = \"mean\"\n\
             budget = 8\nvalidate = 2\nlimit = 10\nconfirm = false\n"
        ));
        let a = given.advice.unwrap();
        assert_eq!(a.targets, ["deu_Latn"]);
        assert_eq!(a.candidates, ["deu_Latn", "eng_Latn"], "the targets plus English");
        assert!(matches!(a.method, Method::SparseGpt(_)));
        assert_eq!(a.objective, Objective::Mean);
        assert_eq!((a.budget, a.validate, a.limit, a.confirm), (8, 2, Some(10), false));
        let explicit = parse_ok(&format!("{GOOD}\n[advice]\ncandidates = [\"deu_Latn\"]\n")).advice.unwrap();
        assert_eq!(explicit.candidates, ["deu_Latn"]);
    }

    /// Each bad `[advice]` entry is refused naming its key and line (the table's first key is on line 31).
    #[test]
    fn bad_advice_entries_are_named_with_their_line() {
        let advice = |body: &str| error(&format!("{GOOD}\n[advice]\n{body}\n"));
        let e = advice("budgett = 3");
        assert!(e.starts_with("study.toml:31: ") && e.contains("unknown field `budgett`"), "{e}");
        let e = advice("method = \"magnitude\"");
        assert!(
            e.starts_with("study.toml:31: advice.method: 'magnitude' is not a wanda or sparsegpt method") && e.contains("wanda, sparsegpt"),
            "{e}"
        );
        let e = advice("sparsity = 0.7");
        assert!(
            e.starts_with("study.toml:31: advice.sparsity: 0.7 is not one of this study's unstructured [pruning] sparsities (0.5)"),
            "{e}"
        );
        let e = advice("objective = \"best\"");
        assert!(e.starts_with("study.toml:31: advice.objective: 'best' is not an objective"), "{e}");
        let e = advice("budget = 0");
        assert!(e.starts_with("study.toml:31: advice.budget: 0 is too small"), "{e}");
        let e = advice("validate = 1\nlimit = 1");
        assert!(e.starts_with("study.toml:32: advice.limit: 1 is too small"), "{e}");
        let e = advice("targets = [\"xx_Fake\"]");
        assert!(e.starts_with("study.toml:31: advice.targets:"), "{e}");
        let e = advice("targets = []");
        assert!(e.starts_with("study.toml:31: advice.targets: give at least one language"), "{e}");
        let e = advice("candidates = [\"deu_Latn\", \"deu\"]");
        assert!(e.starts_with("study.toml:31: advice.candidates: ") && e.contains("listed twice"), "{e}");
        let e = error(&format!("{}\n[advice]\n", GOOD.replace("[\"wanda\", \"sparsegpt\"]", "[\"magnitude\"]")));
        assert!(e.contains("advice.method: the search mixes Wanda or SparseGPT statistics"), "{e}");
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let text = GOOD.replace("seqlen = 128", "seqlen = 128\nsampels = 3");
        let e = error(&text);
        assert!(e.starts_with("study.toml:18: "), "{e}");
        assert!(e.contains("unknown field `sampels`"), "{e}");
    }

    #[test]
    fn an_nm_pattern_with_another_sparsity_is_impossible() {
        let text = GOOD.replace("sparsities = [0.5]", "sparsities = [0.5, 0.3]");
        let e = error(&text);
        assert!(e.starts_with("study.toml:11: pruning.sparsities: pattern 2:4 (line 12) prunes exactly 0.5"), "{e}");
    }

    #[test]
    fn a_bad_language_is_named_with_its_line() {
        let e = error(&GOOD.replace("languages = [\"deu_Latn\"] }]", "languages = [\"klingon\"] }]"));
        assert!(e.starts_with("study.toml:18: calibration.sets.languages: "), "{e}");
        assert!(e.contains("klingon"), "{e}");
        let e = error(&GOOD.replace("languages = [\"eng_Latn\", \"deu_Latn\"]", "languages = [\"eng_Latn\", \"xx_Yyyy\"]"));
        assert!(e.starts_with("study.toml:21: perplexity.languages: "), "{e}");
    }

    #[test]
    fn a_language_without_text_in_the_source_is_an_error() {
        let root = std::env::temp_dir().join(format!("polyprune-config-flores-{}", std::process::id()));
        std::fs::create_dir_all(root.join("eng_Latn")).unwrap();
        let text = GOOD.replace("source = \"udhr\"\nsamples", &format!("source = \"flores:{}\"\nsamples", root.display()));
        let e = error(&text);
        assert!(e.starts_with("study.toml:18: calibration.sets.languages: deu_Latn has no text in source 'flores'"), "{e}");
        std::fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn record_sources_are_checked_for_files_before_any_work() {
        let dir = std::env::temp_dir().join(format!("polyprune-config-jsonl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("c4-de.00000.json.gz"), b"").unwrap();
        let with_source = |spec: &str| GOOD.replace("source = \"udhr\"\nsamples", &format!("source = \"{spec}\"\nsamples"));
        let good = format!("jsonl.content+skip-bad-lines:{}/c4-de.*.json.gz", dir.display());
        let c = parse_ok(&with_source(&good));
        assert_eq!(c.calibration.as_ref().unwrap().sets[0].source.as_deref(), Some(good.as_str()));
        let e = error(&with_source(&format!("parquet:{}/*.parquet", dir.display())));
        assert!(e.starts_with("study.toml:15: calibration.sets.source: no file matches '"), "{e}");
        let e = error(&with_source("jsonl.:x.jsonl"));
        assert!(e.starts_with("study.toml:15: calibration.sets.source: unknown text source 'jsonl.:x.jsonl'"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn unknown_methods_tasks_and_zero_samples_are_errors() {
        let e = error(&GOOD.replace("\"sparsegpt\"]", "\"sparsegtp\"]"));
        assert!(e.starts_with("study.toml:10: pruning.methods: "), "{e}");
        let e = error(&GOOD.replace("names = [\"xcopa\"]", "names = [\"xcopaa\"]"));
        assert!(e.starts_with("study.toml:26: tasks.names: "), "{e}");
        let e = error(&GOOD.replace("samples = 16", "samples = 0"));
        assert!(e.starts_with("study.toml:16: calibration.samples: zero samples"), "{e}");
        let e = error(&GOOD.replace("languages = [\"it\"]", "languages = [\"de\"]"));
        assert!(e.starts_with("study.toml:27: tasks.languages: "), "{e}");
        let e = error(&GOOD.replace("seeds = [0]", "seeds = []"));
        assert!(e.starts_with("study.toml:3: study.seeds: "), "{e}");
        let e = error(&GOOD.replace("[calibration]", "[calibrations]"));
        assert!(e.starts_with("study.toml:14: unknown field `calibrations`"), "{e}");
    }

    #[test]
    fn task_prefixed_languages_go_to_their_task_only() {
        // German has no XCOPA file and Italian no XWinograd: each is valid only for its task.
        let text = GOOD
            .replace("names = [\"xcopa\"]", "names = [\"xcopa\", \"xwinograd\"]")
            .replace("languages = [\"it\"]", "languages = [\"xcopa:it\", \"xwinograd:fr\", \"xwinograd:en\"]");
        let plan = parse_ok(&text).tasks.expect("tasks");
        assert_eq!(plan.languages_of(TaskName::Xcopa), vec!["it".to_string()]);
        assert_eq!(plan.languages_of(TaskName::Xwinograd), vec!["fr".to_string(), "en".to_string()]);
        // The same entry without its prefix is checked against both tasks, and XWinograd lacks it.
        let e = error(&text.replace("\"xcopa:it\"", "\"it\""));
        assert!(e.starts_with("study.toml:27: tasks.languages: "), "{e}");
        // A prefix naming a task the study does not run, and a task left without a language.
        let e = error(&GOOD.replace("languages = [\"it\"]", "languages = [\"it\", \"mgsm:en\"]"));
        assert!(e.contains("'mgsm:en' is for task 'mgsm', which is not in tasks.names"), "{e}");
        let e = error(&text.replace("\"xcopa:it\", ", ""));
        assert!(e.contains("task 'xcopa' got no language"), "{e}");
    }

    #[test]
    fn syntax_errors_carry_their_line() {
        let e = error(&GOOD.replace("limit = 5", "limit = "));
        assert!(e.starts_with("study.toml:23: "), "{e}");
    }

    #[test]
    fn analysis_parameters_are_keys_with_defaults_and_enter_the_hash() {
        let plain = parse_ok(GOOD);
        assert_eq!(plain.analysis.params, AnalysisParams::default());
        assert_eq!(plain.analysis.switches, AnalysisSwitches::default());
        let with = |table: &str| parse_ok(&format!("{GOOD}\n[analysis]\n{table}\n"));
        let neurons = with("neurons = true\nsentences = 40\nfilter_percentile = 0.9");
        assert!(neurons.analysis.switches.neurons && neurons.analysis.switches.runs_models());
        assert_eq!(neurons.analysis.params.sentences, 40);
        assert_eq!(neurons.analysis.params.filter_percentile, 0.9);
        // Every parameter moves the hash, so a study cannot resume with other analysis settings.
        let base = with("neurons = true");
        for table in [
            "neurons = true\nsentences = 49",
            "neurons = true\nbatch = 4",
            "neurons = true\nlayers = [3]",
            "neurons = true\nrank = 2",
            "neurons = true\nfilter_percentile = 0.96",
            "neurons = true\nentropy_fraction = 0.02",
            "neurons = true\nerror_windows = 4",
            "neurons = true\nerror_seqlen = 64",
        ] {
            assert_ne!(with(table).hash, base.hash, "{table}");
        }
        // The hash covers the resolved plan, not only the text: the same text hashes the same,
        // and it differs from the plain file hash.
        assert_eq!(with("neurons = true").hash, base.hash);
        assert_ne!(base.hash, crate::util::sha256_bytes(format!("{GOOD}\n[analysis]\nneurons = true\n").as_bytes()));
    }

    #[test]
    fn bad_analysis_parameters_are_named_with_their_line() {
        let e = error(&format!("{GOOD}\n[analysis]\nneurons = true\nfilter_percentile = 1.5\n"));
        assert!(e.starts_with("study.toml:32: analysis.filter_percentile: 1.5 is not in (0, 1)"), "{e}");
        let e = error(&format!("{GOOD}\n[analysis]\nsentences = 1\n"));
        assert!(e.starts_with("study.toml:31: analysis.sentences: 1 is too small"), "{e}");
        let e = error(&format!("{GOOD}\n[analysis]\nsentence = 10\n"));
        assert!(e.contains("unknown field `sentence`"), "{e}");
    }

    #[test]
    fn report_names_and_reference_resolve_and_stay_out_of_the_hash() {
        let plain = parse_ok(GOOD);
        assert_eq!(plain.report, ReportPlan::default());
        let table = "[report]\nreference_calibration = \"de\"\nlanguages = { de = \"German\", eng_Latn = \"English\" }\n\
                     methods = { wanda = \"Wanda\" }\ntasks = { xcopa = \"XCOPA\" }\nmodels = { gemma = \"Gemma 3 270M\" }\n\
                     calibrations = { \"en\" = \"EN\" }\n";
        let named = parse_ok(&format!("{GOOD}\n{table}"));
        // Any spelling the language table accepts becomes the FLORES-200 code the results use.
        assert_eq!(named.report.reference_calibration.as_deref(), Some("deu_Latn"));
        assert_eq!(named.report.names.languages["deu_Latn"], "German");
        assert_eq!(named.report.names.languages["eng_Latn"], "English");
        assert_eq!(named.report.names.calibrations["eng_Latn"], "EN");
        assert_eq!(named.report.names.methods["wanda"], "Wanda");
        assert_eq!(named.report.names.models["gemma"], "Gemma 3 270M");
        // Names change no result: the study keeps its hash (a finished study can be renamed).
        assert_eq!(named.hash, plain.hash);
        let renamed = parse_ok(&format!("{GOOD}\n{}", table.replace("German", "Deutsch")));
        assert_eq!(renamed.hash, plain.hash);
        // ... while a table after it still counts.
        let after = parse_ok(&format!("{GOOD}\n{table}\n[analysis]\nmasks = true\n"));
        assert_ne!(after.hash, plain.hash);
        // The report reads the same table from the study file alone.
        let alone = ReportPlan::from_study_file(&format!("{GOOD}\n{table}"), Path::new("study.toml")).unwrap();
        assert_eq!(alone, named.report);
        assert_eq!(without_tables(GOOD, &["report", "advice"]), GOOD, "a file without [report] hashes as before");
        assert_eq!(
            without_tables("[a]\nx = 1\n[report]\ny = 2\n[report.languages]\nde = \"D\"\n[[b]]\nz = 3\n", &["report"]),
            "[a]\nx = 1\n[[b]]\nz = 3\n"
        );
    }

    #[test]
    fn report_entries_outside_the_study_are_named_with_their_line() {
        let e = error(&format!("{GOOD}\n[report]\nreference_calibration = \"fra_Latn\"\n"));
        assert!(e.starts_with("study.toml:31: report.reference_calibration: 'fra_Latn' is not a calibration set of this study; use one of: eng_Latn, deu_Latn"), "{e}");
        let e = error(&format!("{GOOD}\n[report]\nmethods = {{ magnitude = \"Magnitude\" }}\n"));
        assert!(
            e.starts_with("study.toml:31: report.methods: 'magnitude' is not a method of this study; use one of: wanda, sparsegpt"),
            "{e}"
        );
        let e = error(&format!("{GOOD}\n[report]\nlanguages = {{ klingon = \"Klingon\" }}\n"));
        assert!(e.starts_with("study.toml:31: report.languages: ") && e.contains("klingon"), "{e}");
        let e = error(&format!("{GOOD}\n[report]\nlanguages = {{ de = \" \" }}\n"));
        assert!(e.contains("the display name of 'de' is empty"), "{e}");
        let e = error(&format!("{GOOD}\n[report]\nreference = \"en\"\n"));
        assert!(e.starts_with("study.toml:31: ") && e.contains("unknown field `reference`"), "{e}");
    }
}
