//! Bad input gets one line on stderr that names the cause and the fix, a non-zero exit code,
//! and never a panic trace.

mod common;

use std::path::Path;

fn fails_clearly(args: &[&str], env: &[(&str, &str)], needles: &[&str]) {
    let mut cmd = common::bin();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{args:?}: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{args:?}: one line expected, got {err}");
    assert!(lines[0].starts_with("error:"), "{err}");
    for n in needles {
        assert!(lines[0].contains(n), "{args:?}: '{n}' missing from: {err}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn tiny_gpt2() -> std::path::PathBuf {
    common::model_fixture("tiny-gpt2")
}

#[test]
fn missing_runtime_library_names_the_fix() {
    let m = tiny_gpt2();
    fails_clearly(
        &["eval", "ppl", "--model", m.to_str().unwrap(), "--file", "Cargo.toml"],
        &[("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")],
        &["ONNX Runtime library not found", "make runtime"],
    );
}

/// `--device cuda` never falls back to the CPU: each missing piece is named with its fix. The
/// GPU build is absent at the first path, and where it is present (after `make gpu-runtime`) a
/// machine without an NVIDIA driver is told so; a file that is not the GPU build is named too.
#[test]
fn cuda_without_its_library_or_a_driver_names_what_is_missing() {
    let m = tiny_gpt2();
    let args = ["eval", "ppl", "--model", m.to_str().unwrap(), "--file", "Cargo.toml", "--device", "cuda"];
    fails_clearly(&args, &[("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")], &["cannot run on cuda:0", "make gpu-runtime"]);
    let cpu_build = polyprune::runtime::find_library(polyprune::runtime::ExecutionProvider::Cpu);
    if cpu_build.is_file() {
        let cpu_build = cpu_build.to_str().unwrap();
        fails_clearly(&args, &[("ORT_DYLIB_PATH", cpu_build)], &["libonnxruntime_providers_cuda.so is missing", "CPU build"]);
    }
    let gpu_build = polyprune::runtime::find_library(polyprune::runtime::ExecutionProvider::Cuda(0));
    let driver = std::path::Path::new("/proc/driver/nvidia/version").exists();
    if gpu_build.is_file() && !driver {
        fails_clearly(&args, &[], &["cannot run on cuda:0", "no NVIDIA driver", "--device cpu"]);
    }
}

#[test]
fn truncated_and_corrupt_gguf_files_are_named() {
    let dir = common::temp_dir("bad-gguf");
    let good = std::fs::read(common::model_fixture("tiny-llama").join("model.gguf")).unwrap();
    let truncated = dir.join("truncated.gguf");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let out = dir.join("out");
    fails_clearly(&["model", "import", truncated.to_str().unwrap(), "-o", out.to_str().unwrap()], &[], &["truncated.gguf"]);
    let garbage = dir.join("garbage.gguf");
    std::fs::write(&garbage, b"this is not a gguf file at all").unwrap();
    fails_clearly(&["model", "import", garbage.to_str().unwrap(), "-o", out.to_str().unwrap()], &[], &["garbage.gguf"]);
    fails_clearly(&["model", "import", dir.join("absent.gguf").to_str().unwrap(), "-o", out.to_str().unwrap()], &[], &["absent.gguf"]);
}

/// A GGUF whose architecture is not one we import: the error lists the supported ones.
#[test]
fn unsupported_architecture_is_named() {
    let dir = common::temp_dir("arch");
    let mut bytes = std::fs::read(common::model_fixture("tiny-llama").join("model.gguf")).unwrap();
    // The value of general.architecture is the first length-prefixed "llama" after the key.
    let key = b"general.architecture";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    let value = bytes[at..].windows(5).position(|w| w == b"llama").unwrap() + at;
    bytes[value..value + 5].copy_from_slice(b"mamba");
    let path = dir.join("mamba.gguf");
    std::fs::write(&path, bytes).unwrap();
    fails_clearly(
        &["model", "import", path.to_str().unwrap(), "-o", dir.join("o").to_str().unwrap()],
        &[],
        &["mamba", "bloom, command-r, gemma3, llama, qwen2"],
    );
}

#[test]
fn unknown_language_suggests_one() {
    let m = tiny_gpt2();
    fails_clearly(&["eval", "ppl", "--model", m.to_str().unwrap(), "--langs", "deu_Ltn"], &[], &["deu_Ltn", "deu_Latn"]);
}

#[test]
fn empty_text_is_refused() {
    let dir = common::temp_dir("empty");
    let f = dir.join("blank.txt");
    std::fs::write(&f, "\n   \n\n").unwrap();
    let m = tiny_gpt2();
    fails_clearly(&["eval", "ppl", "--model", m.to_str().unwrap(), "--file", f.to_str().unwrap(), "--per-line"], &[], &["blank.txt"]);
    fails_clearly(&["eval", "ppl", "--model", m.to_str().unwrap(), "--file", f.to_str().unwrap()], &[], &["blank.txt", "empty"]);
}

#[test]
fn unreadable_tokenizer_and_missing_model_are_named() {
    let dir = common::temp_dir("badtok");
    copy_dir(&tiny_gpt2(), &dir);
    std::fs::write(dir.join("tokenizer.json"), "{ not json").unwrap();
    fails_clearly(&["eval", "ppl", "--model", dir.to_str().unwrap(), "--file", "Cargo.toml"], &[], &["tokenizer.json"]);
    let empty = common::temp_dir("nomodel");
    fails_clearly(
        &["eval", "ppl", "--model", empty.to_str().unwrap(), "--file", "Cargo.toml"],
        &[],
        &["model.onnx", "polyprune model import"],
    );
}

#[test]
fn corrupt_onnx_graph_is_named() {
    let dir = common::temp_dir("badgraph");
    copy_dir(&tiny_gpt2(), &dir);
    let bytes = std::fs::read(dir.join("model.onnx")).unwrap();
    std::fs::write(dir.join("model.onnx"), &bytes[..bytes.len() / 3]).unwrap();
    fails_clearly(&["model", "inspect", dir.to_str().unwrap()], &[], &["model.onnx"]);
}

/// The scripted form prints exactly a header and one row per non-empty line on stdout.
#[test]
fn per_line_csv_is_exactly_one_row_per_line() {
    let dir = common::temp_dir("csv");
    let f = dir.join("lines.txt");
    std::fs::write(&f, "Hello world\n\nthe cat sat\nand then\n").unwrap();
    let m = tiny_gpt2();
    let out = common::bin()
        .args(["eval", "ppl", "--model", m.to_str().unwrap(), "--file", f.to_str().unwrap(), "--per-line", "--format", "csv", "--results"])
        .arg(dir.join("results"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "line,nll,tokens,bytes");
    assert_eq!(lines.len(), 4);
    let first: Vec<&str> = lines[1].split(',').collect();
    assert_eq!((first[0], first[3]), ("1", "11"));
    assert_eq!(lines[2].split(',').next(), Some("3"), "line numbers are the file's");
    let nll: f64 = first[1].parse().unwrap();
    assert!(nll.is_finite() && nll > 0.0);
}

/// `polyprune model inspect dir | head`: a reader that goes away ends the tool quietly
/// (killed by SIGPIPE like any C tool), never with a panic message.
#[test]
fn closed_stdout_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_polyprune"))
        .args(["model", "inspect", tiny_gpt2().to_str().unwrap()])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run polyprune");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(SIGPIPE), "status {:?}, stderr {stderr}", out.status);
}

/// SIGPIPE's number on Linux (every architecture this project builds for).
const SIGPIPE: i32 = 13;

/// The help of `prune` (the command list's line, its own summary, and `--method`) names every
/// pruning method, taken from the method list itself so that a new method cannot be left out.
#[test]
fn prune_help_names_every_method() {
    let help = |args: &[&str]| {
        let out = common::bin().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    // The entry that starts with `start` (after indentation) and the wrapped lines under it.
    fn entry(help: &str, start: &str) -> String {
        let mut lines = help.lines().skip_while(|l| !l.trim_start().starts_with(start));
        let first = lines.next().unwrap_or_else(|| panic!("no '{start}' in {help}"));
        let wrapped = lines.take_while(|l| l.starts_with("    ") && !l.trim_start().starts_with('-'));
        std::iter::once(first).chain(wrapped).collect::<Vec<_>>().join(" ")
    }
    let listed = entry(&help(&["--help"]), "prune ");
    let own = help(&["prune", "--help"]);
    let summary = own.split("Usage:").next().unwrap().to_string();
    let method_flag = entry(&own, "--method ");
    for (what, text) in [("polyprune --help", &listed), ("prune --help summary", &summary), ("prune --help --method", &method_flag)] {
        for method in polyprune::prune::Method::all() {
            assert!(text.to_lowercase().contains(method.name()), "{what} does not name {}: {text}", method.name());
        }
    }
}
