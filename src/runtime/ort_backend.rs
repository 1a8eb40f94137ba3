//! ONNX Runtime through the `ort` crate, loaded dynamically from the project cache.
//!
//! The library is found at run time (no build-time linking), so a missing or wrong library is a
//! clear error at the first use, not a failed build. The execution provider is chosen in one
//! place ([`ExecutionProvider`]); CPU is the default and needs nothing else.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ort::environment::Environment;
use ort::session::builder::{GraphOptimizationLevel, PrepackedWeights, SessionBuilder};
use ort::session::{OutputSelector, RunOptions, Session};
use ort::value::{DynValue, Tensor};

use super::{ComputeChoice, FloatType, WeightOverride};

/// The ONNX Runtime release the `ort` binding was built against (API 24).
pub const ORT_VERSION: &str = "1.31.1";

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("ONNX Runtime library not found at {path}. Run `make runtime` in the polyprune checkout (it unpacks onnxruntime {ORT_VERSION} into .cache/ort), or set ORT_DYLIB_PATH to a libonnxruntime.so of version >= 1.24")]
    LibraryMissing { path: PathBuf },
    #[error("cannot load ONNX Runtime from {path}: {message}. Re-run `make runtime`, or point ORT_DYLIB_PATH at a working libonnxruntime.so (version >= 1.24)")]
    LibraryLoad { path: PathBuf, message: String },
    #[error("ONNX Runtime could not {action} ({target}): {message}")]
    Ort { action: &'static str, target: String, message: String },
    #[error("cannot run on {device}: {reason}")]
    Cuda { device: String, reason: String },
    #[error("--compute {choice} for {target} on {device}: {reason}")]
    Compute { choice: super::ComputeChoice, target: String, device: String, reason: String },
    #[error("graph {target} has no output '{name}'")]
    MissingOutput { target: String, name: String },
    /// Boxed: it is rare, and every result that can carry a runtime error pays for its size.
    #[error(transparent)]
    Spill(Box<super::SpillReadError>),
}

impl From<super::SpillReadError> for RuntimeError {
    fn from(e: super::SpillReadError) -> Self {
        RuntimeError::Spill(Box::new(e))
    }
}

fn ort_err<'a, R>(action: &'static str, target: &'a str) -> impl FnOnce(ort::Error<R>) -> RuntimeError + 'a {
    move |e| RuntimeError::Ort { action, target: target.to_string(), message: e.message().to_string() }
}

/// Where the computation runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExecutionProvider {
    #[default]
    Cpu,
    /// CUDA device `n`; needs the GPU build of ONNX Runtime (see README).
    Cuda(i32),
}

impl std::str::FromStr for ExecutionProvider {
    type Err = String;

    /// `cpu`, `cuda` (device 0) or `cuda:N`, as `--device` and a study file's `device` take them.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "cpu" => Ok(ExecutionProvider::Cpu),
            "cuda" => Ok(ExecutionProvider::Cuda(0)),
            d => match d.strip_prefix("cuda:").map(str::parse::<i32>) {
                Some(Ok(n)) if n >= 0 => Ok(ExecutionProvider::Cuda(n)),
                _ => Err(format!("device '{d}': expected cpu, cuda or cuda:N (N a device number, e.g. cuda:1)")),
            },
        }
    }
}

impl std::fmt::Display for ExecutionProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecutionProvider::Cpu => f.write_str("cpu"),
            ExecutionProvider::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    pub provider: ExecutionProvider,
    /// Threads ONNX Runtime uses inside one operator; 0 = one per core.
    pub intra_threads: usize,
    /// Memory budget in bytes (`--max-memory`); `None`: the memory the machine has free.
    /// Loading a model plans within it (`model::memory`).
    pub max_memory: Option<u64>,
    /// The float type the graphs polyprune built compute in (`--compute`, [`ComputeChoice`]).
    pub compute: ComputeChoice,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions { provider: ExecutionProvider::Cpu, intra_threads: 0, max_memory: None, compute: ComputeChoice::Auto }
    }
}

/// The ONNX Runtime library a provider needs: `ORT_DYLIB_PATH` when set, else the CPU build in
/// `<cache>/ort/` or, for CUDA, the GPU build `make gpu-runtime` unpacks into `<cache>/ort-gpu/`.
pub fn find_library(provider: ExecutionProvider) -> PathBuf {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        return PathBuf::from(p);
    }
    let folder = match provider {
        ExecutionProvider::Cpu => "ort",
        ExecutionProvider::Cuda(_) => "ort-gpu",
    };
    crate::util::cache_dir().join(folder).join(format!("libonnxruntime.so.{ORT_VERSION}"))
}

/// The library loaded by this process; the first use decides, and a later CUDA use in a
/// process that loaded the CPU build is refused (the GPU build serves both).
struct Loaded {
    gpu_build: bool,
    env: Result<Environment, RuntimeError>,
}

fn environment(provider: ExecutionProvider) -> Result<&'static Environment, RuntimeError> {
    static ENV: OnceLock<Loaded> = OnceLock::new();
    let loaded = ENV.get_or_init(|| Loaded { gpu_build: provider != ExecutionProvider::Cpu, env: load_library(provider) });
    if provider != ExecutionProvider::Cpu && !loaded.gpu_build {
        return Err(RuntimeError::Cuda {
            device: provider.to_string(),
            reason: "this process already loaded the CPU build of ONNX Runtime for an earlier step; run the whole command with the same --device".into(),
        });
    }
    loaded.env.as_ref().map_err(|e| match e {
        RuntimeError::LibraryMissing { path } => RuntimeError::LibraryMissing { path: path.clone() },
        RuntimeError::LibraryLoad { path, message } => RuntimeError::LibraryLoad { path: path.clone(), message: message.clone() },
        RuntimeError::Cuda { device, reason } => RuntimeError::Cuda { device: device.clone(), reason: reason.clone() },
        other => RuntimeError::LibraryLoad { path: find_library(provider), message: other.to_string() },
    })
}

fn load_library(provider: ExecutionProvider) -> Result<Environment, RuntimeError> {
    let path = find_library(provider);
    if provider != ExecutionProvider::Cpu {
        cuda_preflight(provider, &path)?;
    }
    if !path.is_file() {
        return Err(RuntimeError::LibraryMissing { path });
    }
    let builder = ort::init_from(&path).map_err(|e| RuntimeError::LibraryLoad { path: path.clone(), message: e.to_string() })?;
    builder.with_name("polyprune").build().map_err(|e| RuntimeError::LibraryLoad { path: path.clone(), message: e.message().to_string() })
}

/// What a CUDA run needs before ONNX Runtime is asked for it, each missing piece named: the GPU
/// build of the library, its CUDA provider beside it, and an NVIDIA driver. Without this a
/// machine without a GPU would only hear "provider not available" from deep inside a session.
fn cuda_preflight(provider: ExecutionProvider, library: &Path) -> Result<(), RuntimeError> {
    let refuse = |reason: String| Err(RuntimeError::Cuda { device: provider.to_string(), reason });
    if !cfg!(feature = "cuda") {
        return refuse("this polyprune was built without the `cuda` feature (a default one); rebuild with `cargo build --release`".into());
    }
    if !library.is_file() {
        return refuse(format!(
            "the CUDA build of ONNX Runtime is not at {}: run `make gpu-runtime` (it unpacks onnxruntime-gpu {ORT_VERSION} into .cache/ort-gpu), or set ORT_DYLIB_PATH to the libonnxruntime.so of an onnxruntime-gpu install",
            library.display()
        ));
    }
    let provider_library = library.with_file_name("libonnxruntime_providers_cuda.so");
    if !provider_library.is_file() {
        return refuse(format!(
            "{} is missing beside {}: that library is a CPU build; run `make gpu-runtime` or point ORT_DYLIB_PATH at an onnxruntime-gpu install",
            provider_library.file_name().unwrap_or_default().to_string_lossy(),
            library.display()
        ));
    }
    if !shared_library_loads("libcuda.so.1") {
        return refuse(
            "no NVIDIA driver on this machine (libcuda.so.1 cannot be loaded): run on a machine with an NVIDIA GPU and its driver, or use --device cpu"
                .into(),
        );
    }
    Ok(())
}

/// Whether the dynamic loader finds `name` (the library stays loaded, as the CUDA provider
/// would load it anyway).
fn shared_library_loads(name: &str) -> bool {
    let Ok(name) = std::ffi::CString::new(name) else { return false };
    // SAFETY: dlopen with a valid NUL-terminated name; the handle is deliberately kept.
    !unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) }.is_null()
}

/// Where a graph comes from: a file, or bytes built in memory whose external weights live in `folder`.
pub enum GraphSource<'a> {
    File(&'a Path),
    Memory { bytes: &'a [u8], folder: &'a Path, label: &'a str },
}

impl GraphSource<'_> {
    fn label(&self) -> String {
        match self {
            GraphSource::File(p) => p.display().to_string(),
            GraphSource::Memory { label, .. } => label.to_string(),
        }
    }
}

/// What a run leaves in its session's memory arena.
///
/// ONNX Runtime's CPU arena keeps every region it ever grew and hands out pieces of them; when
/// the shapes of a graph's runs change from call to call (context batches of other widths,
/// continuation batches, head chunks of other row counts) the pieces fragment, and the arena
/// grows past what any single run needs: on Gemma 3 270M the full SIB-200 English test set
/// peaked at 2.64 GB with [`Arena::Keep`] everywhere and 2.13 GB with [`Arena::Release`] on
/// those runs (2 cores).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arena {
    /// Keep the regions for the next run: best when the next run has the same shapes.
    Keep,
    /// Give back the regions the run no longer uses once it returns (the outputs it returns
    /// stay): costs fresh pages on the next run, bounds peak memory by the live tensors.
    Release,
}

pub enum Input<'a> {
    I64 {
        shape: Vec<usize>,
        data: Vec<i64>,
    },
    F32 {
        shape: Vec<usize>,
        data: &'a [f32],
    },
    /// An output of an earlier run fed back as it is (a key/value cache), with no copy.
    Kept(&'a Value),
}

/// A tensor left inside the runtime by [`Graph::run_keep`], to be fed back or read.
pub struct Value(DynValue);

impl Value {
    pub fn shape(&self) -> Vec<usize> {
        match self.0.try_extract_tensor::<f32>() {
            Ok((shape, _)) => shape.iter().map(|&d| d as usize).collect(),
            Err(_) => self.0.try_extract_tensor::<i64>().map(|(s, _)| s.iter().map(|&d| d as usize).collect()).unwrap_or_default(),
        }
    }

    /// The values of a float or int64 tensor, borrowed.
    pub fn view(&self) -> Option<OutputView<'_>> {
        if let Ok((_, d)) = self.0.try_extract_tensor::<f32>() {
            return Some(OutputView::F32(d));
        }
        self.0.try_extract_tensor::<i64>().ok().map(|(_, d)| OutputView::I64(d))
    }
}

enum Fed<'a> {
    Owned(DynValue),
    Borrowed(&'a DynValue),
}

/// One output read back: its shape and values.
pub struct Output<T> {
    pub shape: Vec<usize>,
    pub data: Vec<T>,
}

/// Prepacked weights shared by the sessions of one model: graphs of the same weights (the
/// key/value-cache graphs) then hold one packed copy of each matrix instead of one each.
/// ONNX Runtime keys the packed buffers by their content, so differing weights never mix.
#[derive(Clone)]
pub struct SharedWeights(PrepackedWeights);

impl SharedWeights {
    /// Needs the runtime library loaded first (the container is created through its API).
    pub fn new(opts: &RuntimeOptions) -> Result<Self, RuntimeError> {
        environment(opts.provider)?;
        Ok(SharedWeights(PrepackedWeights::new()))
    }
}

/// A loaded graph, ready to run.
pub struct Graph {
    session: Session,
    label: String,
    provider: ExecutionProvider,
}

// ort hands the builder back inside its error so a caller could retry; its size is ort's choice.
#[allow(clippy::result_large_err)]
fn configure(
    mut b: SessionBuilder,
    opts: &RuntimeOptions,
    overrides: &[(String, Arc<DynValue>)],
) -> Result<SessionBuilder, ort::Error<SessionBuilder>> {
    b = b.with_optimization_level(GraphOptimizationLevel::Level3)?;
    // Per-operator timings for performance work: POLYPRUNE_ORT_PROFILE=<file prefix>.
    if let Some(prefix) = std::env::var_os("POLYPRUNE_ORT_PROFILE") {
        b = b.with_profiling(prefix)?;
    }
    if opts.intra_threads > 0 {
        b = b.with_intra_threads(opts.intra_threads)?;
    }
    // error_on_failure: a CUDA provider that cannot start (no device, missing CUDA or cuDNN
    // libraries) fails the session instead of quietly running it on the CPU.
    #[cfg(feature = "cuda")]
    if let ExecutionProvider::Cuda(device) = opts.provider {
        b = b.with_execution_providers([ort::ep::CUDA::default().with_device_id(device).build().error_on_failure()])?;
    }
    for (name, value) in overrides {
        b = b.with_initializer(name, value.clone())?;
    }
    Ok(b)
}

fn override_values(overrides: &[WeightOverride], label: &str) -> Result<Vec<(String, Arc<DynValue>)>, RuntimeError> {
    overrides
        .iter()
        .map(|w| {
            let shape: Vec<i64> = w.shape.iter().map(|&d| d as i64).collect();
            // In the stored type; a spilled override comes straight from its file's bytes.
            let bytes = w.data.stored_bytes(w.stored)?;
            let halves = || bytes.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]]));
            let value = match w.stored {
                FloatType::F32 => Tensor::from_array((shape, FloatType::F32.widen(&bytes))).map(Tensor::into_dyn),
                FloatType::F16 => Tensor::from_array((shape, halves().map(half::f16::from_bits).collect::<Vec<_>>())).map(Tensor::into_dyn),
                FloatType::Bf16 => {
                    Tensor::from_array((shape, halves().map(half::bf16::from_bits).collect::<Vec<_>>())).map(Tensor::into_dyn)
                }
            }
            .map_err(ort_err("build a weight tensor", label))?;
            Ok((w.name.clone(), Arc::new(value)))
        })
        .collect()
}

impl Graph {
    /// Loads a graph, replacing the named initializers by `overrides` (pruned weights) without
    /// rewriting any file.
    pub fn load(source: GraphSource, opts: &RuntimeOptions, overrides: &[WeightOverride]) -> Result<Self, RuntimeError> {
        Self::load_sharing(source, opts, overrides, None)
    }

    /// As [`Graph::load`], sharing prepacked weights with the other sessions given `shared`.
    pub fn load_sharing(
        source: GraphSource,
        opts: &RuntimeOptions,
        overrides: &[WeightOverride],
        shared: Option<&SharedWeights>,
    ) -> Result<Self, RuntimeError> {
        let env = environment(opts.provider)?;
        let label = source.label();
        // A graph polyprune built is rebuilt here in the compute type the options resolve to,
        // the one place every path (resident, streamed, calibration, probes) passes through.
        let rebuilt = super::compute::rebuild_for_compute(&source, opts).map_err(|reason| RuntimeError::Compute {
            choice: opts.compute,
            target: label.clone(),
            device: opts.provider.to_string(),
            reason,
        })?;
        let source = match &rebuilt {
            Some((bytes, folder)) => GraphSource::Memory { bytes, folder, label: &label },
            None => source,
        };
        let overrides = override_values(overrides, &label)?;
        let builder = Session::builder(env).map_err(ort_err("create a session builder", &label))?;
        let mut builder = configure(builder, opts, &overrides).map_err(ort_err("configure the session", &label))?;
        if let Some(shared) = shared {
            builder = builder.with_prepacked_weights(&shared.0).map_err(ort_err("configure the session", &label))?;
        }
        let session = match source {
            GraphSource::File(path) => builder.commit_from_file(path),
            GraphSource::Memory { bytes, folder, .. } => {
                let folder = folder.to_string_lossy().into_owned();
                builder = builder
                    .with_config_entry("session.model_external_initializers_file_folder_path", folder)
                    .map_err(ort_err("configure the session", &label))?;
                builder.commit_from_memory(bytes)
            }
        }
        .map_err(ort_err("load the graph", &label))?;
        Ok(Graph { session, label, provider: opts.provider })
    }

    pub fn input_names(&self) -> Vec<String> {
        self.session.inputs().iter().map(|i| i.name().to_string()).collect()
    }

    pub fn output_names(&self) -> Vec<String> {
        self.session.outputs().iter().map(|o| o.name().to_string()).collect()
    }

    /// Runs the graph and reads back only the named outputs, each handed to `read` without an
    /// intermediate copy.
    pub fn run_with<F>(&mut self, inputs: Vec<(&str, Input)>, outputs: &[&str], mut read: F) -> Result<(), RuntimeError>
    where
        F: FnMut(&str, &[usize], OutputView) -> Result<(), RuntimeError>,
    {
        let kept = self.run_keep(inputs, outputs)?;
        for (name, value) in outputs.iter().zip(&kept) {
            let view = value.view().ok_or_else(|| RuntimeError::Ort {
                action: "read an output",
                target: self.label.clone(),
                message: format!("'{name}' is neither float nor int64"),
            })?;
            read(name, &value.shape(), view)?;
        }
        Ok(())
    }

    /// Runs the graph and keeps the named outputs inside the runtime, in the order asked.
    pub fn run_keep(&mut self, inputs: Vec<(&str, Input)>, outputs: &[&str]) -> Result<Vec<Value>, RuntimeError> {
        self.run_keep_with(inputs, outputs, Arena::Keep)
    }

    /// As [`Graph::run_keep`], saying what the run leaves in the arena ([`Arena`]).
    pub fn run_keep_with(&mut self, inputs: Vec<(&str, Input)>, outputs: &[&str], arena: Arena) -> Result<Vec<Value>, RuntimeError> {
        let label = self.label.clone();
        let mut values: Vec<(String, Fed)> = Vec::with_capacity(inputs.len());
        for (name, input) in inputs {
            let v = match input {
                Input::I64 { shape, data } => {
                    Fed::Owned(Tensor::from_array((shape, data)).map_err(ort_err("build an input tensor", &label))?.into_dyn())
                }
                Input::F32 { shape, data } => {
                    Fed::Owned(Tensor::from_array((shape, data.to_vec())).map_err(ort_err("build an input tensor", &label))?.into_dyn())
                }
                Input::Kept(v) => Fed::Borrowed(&v.0),
            };
            values.push((name.to_string(), v));
        }
        let mut selector = OutputSelector::no_default();
        for o in outputs {
            selector = selector.with(o.to_string());
        }
        let mut run_options = RunOptions::new().map_err(ort_err("create run options", &label))?.with_outputs(selector);
        if arena == Arena::Release {
            // The arena of the device the graph runs on; "cpu:0" is the CPU arena.
            let device = match self.provider {
                ExecutionProvider::Cpu => "cpu:0".to_string(),
                ExecutionProvider::Cuda(n) => format!("gpu:{n}"),
            };
            run_options.set("memory.enable_memory_arena_shrinkage", device).map_err(ort_err("create run options", &label))?;
        }
        let inputs: Vec<(std::borrow::Cow<str>, ort::session::SessionInputValue)> = values
            .iter()
            .map(|(n, v)| {
                let v: &DynValue = match v {
                    Fed::Owned(v) => v,
                    Fed::Borrowed(v) => v,
                };
                (std::borrow::Cow::from(n.as_str()), v.into())
            })
            .collect();
        let mut result = self.session.run_with_options(inputs, &run_options).map_err(ort_err("run the graph", &label))?;
        outputs
            .iter()
            .map(|name| {
                result.remove(*name).map(Value).ok_or_else(|| RuntimeError::MissingOutput { target: label.clone(), name: name.to_string() })
            })
            .collect()
    }

    /// Runs and copies the named float outputs out.
    pub fn run_f32(&mut self, inputs: Vec<(&str, Input)>, outputs: &[&str]) -> Result<Vec<Output<f32>>, RuntimeError> {
        let mut out = Vec::new();
        self.run_with(inputs, outputs, |_, shape, view| {
            if let OutputView::F32(d) = view {
                out.push(Output { shape: shape.to_vec(), data: d.to_vec() });
            }
            Ok(())
        })?;
        Ok(out)
    }

    pub fn label(&self) -> &str {
        &self.label
    }
}

/// A borrowed view of one output tensor's values.
pub enum OutputView<'a> {
    F32(&'a [f32]),
    I64(&'a [i64]),
}
