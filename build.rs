//! Generates the ONNX protobuf types (`src/model/onnx.rs` includes them) from the `onnx.proto`
//! that the pinned `onnx` Python package ships, so the schema is complete and current: prost
//! drops fields it does not know when it re-encodes, and a user's model saved after pruning must
//! keep everything its exporter wrote. `protox` compiles the proto in Rust: no `protoc` needed.
//!
//! The proto is looked up in the project's venv (`make venv` installs it), the package version
//! being the one the Makefile pins; `POLYPRUNE_ONNX_PROTO_DIR` names another folder holding
//! `onnx/onnx.proto` (a system-wide install of the same package, for example).

use std::path::{Path, PathBuf};

const PROTO: &str = "onnx/onnx.proto";
const PROTO_DIR_VAR: &str = "POLYPRUNE_ONNX_PROTO_DIR";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Makefile");
    println!("cargo:rerun-if-env-changed={PROTO_DIR_VAR}");
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let include = match proto_dir(&root) {
        Ok(dir) => dir,
        Err(reason) => {
            eprintln!("error: cannot generate the ONNX schema: {reason}");
            std::process::exit(1);
        }
    };
    let proto = include.join(PROTO);
    println!("cargo:rerun-if-changed={}", proto.display());
    let files = protox::compile([PROTO], [&include]).unwrap_or_else(|e| {
        eprintln!("error: {} does not compile: {e:?}", proto.display());
        std::process::exit(1);
    });
    prost_build::Config::new().compile_fds(files).unwrap_or_else(|e| {
        eprintln!("error: generating Rust from {}: {e}", proto.display());
        std::process::exit(1);
    });
}

/// The folder that holds `onnx/onnx.proto`: the variable's when set, else the venv's
/// site-packages with the pinned version of `onnx` installed.
fn proto_dir(root: &Path) -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os(PROTO_DIR_VAR) {
        let dir = PathBuf::from(dir);
        return if dir.join(PROTO).is_file() {
            Ok(dir)
        } else {
            Err(format!("{PROTO_DIR_VAR}={} holds no {PROTO}; point it at an onnx package's parent folder", dir.display()))
        };
    }
    let pin = onnx_pin(&root.join("Makefile"))?;
    let lib = root.join(".cache/venv/lib");
    let missing = || format!("onnx=={pin} is not installed in {}; run `make venv` (or set {PROTO_DIR_VAR})", lib.display());
    let pythons = std::fs::read_dir(&lib).map_err(|_| missing())?;
    let mut candidates: Vec<PathBuf> = pythons.filter_map(|e| e.ok()).map(|e| e.path().join("site-packages")).collect();
    candidates.sort();
    candidates.into_iter().find(|sp| sp.join(format!("onnx-{pin}.dist-info")).is_dir() && sp.join(PROTO).is_file()).ok_or_else(missing)
}

/// The `onnx==X` pin of the Makefile's `PY_PACKAGES`: one place says which schema is current.
fn onnx_pin(makefile: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(makefile).map_err(|e| format!("cannot read {}: {e}", makefile.display()))?;
    text.lines()
        .filter(|l| l.starts_with("PY_PACKAGES"))
        .flat_map(|l| l.split_whitespace())
        .find_map(|w| w.strip_prefix("onnx==").map(str::to_string))
        .ok_or_else(|| format!("{} pins no onnx==VERSION in PY_PACKAGES", makefile.display()))
}
