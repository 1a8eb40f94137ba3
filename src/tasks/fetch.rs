//! `polyprune data fetch <task>`: download a task's files from their public source.
//!
//! Where each file comes from and the SHA-256 it must have are data (`tasks/sources.toml`,
//! pinned from the copies the project was developed against). A download is accepted
//! only if its digest matches; it is written to a temporary file in the destination
//! folder and renamed into place, so an interrupted or rejected download never leaves a
//! partial file under the real name. Files already present with the right digest are
//! not downloaded again.
//!
//! A mirror (the `POLYPRUNE_DATA_MIRROR` environment variable, or the `mirror` option)
//! replaces the upstream URLs: the file `xcopa/val.it.jsonl` is then fetched from
//! `<mirror>/xcopa/val.it.jsonl`, i.e. a mirror has the same layout as the data folder.
//! That is also how the tests serve the files from a loopback HTTP server.
//! HTTP goes through the `ureq` crate (version 2).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::error::{Result, TaskError};
use super::spec::{Catalog, TaskName};

const SOURCES_TOML: &str = include_str!("../../tasks/sources.toml");

/// Environment variable naming a mirror base URL.
pub const MIRROR_ENV: &str = "POLYPRUNE_DATA_MIRROR";

/// Environment variable naming the data directory.
pub const DATA_DIR_ENV: &str = "POLYPRUNE_DATA_DIR";

/// No task file is near this size; a larger body means a wrong URL, not data.
const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourcesFile {
    source: Vec<SourceGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceGroup {
    tasks: Vec<String>,
    upstream: String,
    file: Vec<PinnedFile>,
}

/// One file a task needs, where it comes from, and its pinned digest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedFile {
    /// Path under the data directory (and under a mirror).
    pub local: String,
    /// Path under the upstream base URL.
    pub remote: String,
    /// Expected SHA-256, lower-case hex.
    pub sha256: String,
}

/// Where and how to fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Data directory the files go into.
    pub data_dir: PathBuf,
    /// Base URL replacing the upstream sources, if any.
    pub mirror: Option<String>,
    /// Limit for connecting and for each whole download.
    pub timeout: Duration,
}

impl FetchOptions {
    /// Options for `data_dir`, with the mirror taken from `POLYPRUNE_DATA_MIRROR`.
    pub fn from_env(data_dir: PathBuf) -> Self {
        let mirror = std::env::var(MIRROR_ENV).ok().filter(|m| !m.trim().is_empty());
        Self { data_dir, mirror, timeout: Duration::from_secs(60) }
    }
}

/// What a fetch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchReport {
    /// Files downloaded and verified.
    pub downloaded: Vec<PathBuf>,
    /// Files that were already there with the right digest.
    pub already_present: Vec<PathBuf>,
}

/// The default data directory: `$POLYPRUNE_DATA_DIR`, else `$XDG_CACHE_HOME/polyprune/data`,
/// else `$HOME/.cache/polyprune/data`, else `./polyprune-data`.
pub fn default_data_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    var(DATA_DIR_ENV)
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("polyprune").join("data")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("polyprune").join("data")))
        .unwrap_or_else(|| PathBuf::from("polyprune-data"))
}

fn sources() -> &'static SourcesFile {
    static SOURCES: std::sync::OnceLock<SourcesFile> = std::sync::OnceLock::new();
    SOURCES.get_or_init(|| {
        // Compiled in and checked by the tests: failing here is a build defect.
        toml::from_str(SOURCES_TOML).unwrap_or_else(|e| panic!("embedded tasks/sources.toml is invalid: {e}"))
    })
}

/// The files `task` downloads and their full upstream URLs; `None` for tasks whose
/// files users bring themselves.
pub fn pinned_files(task: TaskName) -> Option<Vec<(String, PinnedFile)>> {
    let group = sources().source.iter().find(|g| g.tasks.iter().any(|t| t == task.as_str()))?;
    Some(group.file.iter().map(|f| (format!("{}/{}", group.upstream.trim_end_matches('/'), f.remote), f.clone())).collect())
}

/// The URL a file is fetched from, given the upstream URL and an optional mirror.
fn url_for(upstream_url: &str, file: &PinnedFile, mirror: Option<&str>) -> String {
    match mirror {
        Some(base) => format!("{}/{}", base.trim_end_matches('/'), file.local),
        None => upstream_url.to_string(),
    }
}

/// Downloads every file of `task` that is not already present and verified.
pub fn fetch(task: TaskName, options: &FetchOptions) -> Result<FetchReport> {
    let files = pinned_files(task).ok_or_else(|| no_download(task, &options.data_dir))?;
    let agent = ureq::AgentBuilder::new().timeout_connect(options.timeout).timeout(options.timeout).build();
    let mut report = FetchReport::default();
    for (upstream_url, file) in &files {
        let path = options.data_dir.join(&file.local);
        if digest_of_file(&path).as_deref() == Some(file.sha256.as_str()) {
            report.already_present.push(path);
            continue;
        }
        let url = url_for(upstream_url, file, options.mirror.as_deref());
        let bytes = download(&agent, &url, &options.data_dir)?;
        let actual = hex_sha256(&bytes);
        if actual != file.sha256 {
            return Err(TaskError::ChecksumMismatch { url, expected: file.sha256.clone(), actual, path });
        }
        crate::util::write_atomic(&path, &bytes).map_err(|source| TaskError::Write { path: path.clone(), source })?;
        report.downloaded.push(path);
    }
    Ok(report)
}

fn no_download(task: TaskName, dir: &Path) -> TaskError {
    let spec = Catalog::get().spec(task);
    let layout = spec.files.iter().map(|(split, path)| format!("{split}: {path}")).collect::<Vec<_>>().join("; ");
    TaskError::NoDownload { task: task.to_string(), dir: dir.to_path_buf(), layout }
}

fn download(agent: &ureq::Agent, url: &str, dir: &Path) -> Result<Vec<u8>> {
    let response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::Status(status, _) => TaskError::HttpStatus { url: url.to_string(), status, dir: dir.to_path_buf() },
        ureq::Error::Transport(t) => TaskError::Unreachable { url: url.to_string(), reason: t.to_string(), dir: dir.to_path_buf() },
    })?;
    let mut bytes = Vec::new();
    response.into_reader().take(MAX_FILE_BYTES).read_to_end(&mut bytes).map_err(|e| TaskError::Unreachable {
        url: url.to_string(),
        reason: format!("download cut off: {e}"),
        dir: dir.to_path_buf(),
    })?;
    Ok(bytes)
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn digest_of_file(path: &Path) -> Option<String> {
    std::fs::read(path).ok().map(|bytes| hex_sha256(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};

    fn shared_data() -> Option<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
        if dir.is_dir() {
            Some(dir)
        } else {
            crate::util::prerequisite_missing(&format!("{} is absent (CI and the workplace provide ../shared/data)", dir.display()))
        }
    }

    /// A minimal HTTP/1.1 file server on 127.0.0.1: answers GET requests for files under
    /// `root` (404 otherwise), one connection per request, and stops after `requests`.
    fn serve(root: PathBuf, requests: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(requests).flatten() {
                answer(&root, stream);
            }
        });
        format!("http://{address}")
    }

    fn answer(root: &Path, mut stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        // Skip the headers, up to the blank line.
        let mut header = String::new();
        while reader.read_line(&mut header).unwrap() > 2 {
            header.clear();
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
        let body = (!path.contains("..")).then(|| std::fs::read(root.join(&path)).ok()).flatten();
        let (status, body) = match body {
            Some(b) => ("200 OK", b),
            None => ("404 Not Found", b"not found".to_vec()),
        };
        let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body).unwrap();
    }

    fn options(dir: &Path, mirror: String) -> FetchOptions {
        FetchOptions { data_dir: dir.to_path_buf(), mirror: Some(mirror), timeout: Duration::from_secs(10) }
    }

    #[test]
    fn pinned_sources_cover_the_downloadable_tasks() {
        let mgsm = pinned_files(TaskName::Mgsm).unwrap();
        assert_eq!(mgsm.len(), 11);
        let (url, en) = mgsm.iter().find(|(_, f)| f.local == "mgsm/mgsm_en.tsv").unwrap();
        assert_eq!(url, "https://raw.githubusercontent.com/google-research/url-nlp/HEAD/mgsm/mgsm_en.tsv");
        assert_eq!(url_for(url, en, Some("http://127.0.0.1:9/")), "http://127.0.0.1:9/mgsm/mgsm_en.tsv");
        // FLORES pairs read the SIB-200 files: 27 languages x 3 splits + labels.txt.
        assert_eq!(pinned_files(TaskName::Flores).unwrap().len(), 82);
        assert!(pinned_files(TaskName::Xnli).is_none());
        for task in [TaskName::Xcopa, TaskName::Xwinograd, TaskName::Sib200, TaskName::Tatoeba] {
            assert!(pinned_files(task).unwrap().iter().all(|(_, f)| f.sha256.len() == 64), "{task}");
        }
    }

    #[test]
    fn pinned_digests_match_the_shared_copies() {
        let Some(data) = shared_data() else { return };
        for task in [TaskName::Xcopa, TaskName::Xwinograd, TaskName::Mgsm, TaskName::Tatoeba, TaskName::Sib200] {
            for (_, f) in pinned_files(task).unwrap() {
                assert_eq!(digest_of_file(&data.join(&f.local)).as_deref(), Some(f.sha256.as_str()), "{}", f.local);
            }
        }
    }

    #[test]
    fn sha256_of_a_known_string() {
        // FIPS 180-2 test vector for "abc".
        assert_eq!(hex_sha256(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn fetch_over_real_http_verifies_and_then_skips_present_files() {
        let Some(data) = shared_data() else { return };
        let dest = tempfile::tempdir().unwrap();
        let mirror = serve(data.clone(), 11);
        let report = fetch(TaskName::Mgsm, &options(dest.path(), mirror.clone())).unwrap();
        assert_eq!(report.downloaded.len(), 11);
        for (_, f) in pinned_files(TaskName::Mgsm).unwrap() {
            assert_eq!(std::fs::read(dest.path().join(&f.local)).unwrap(), std::fs::read(data.join(&f.local)).unwrap());
        }
        // The server has stopped answering; a second fetch must not need it.
        let again = fetch(TaskName::Mgsm, &options(dest.path(), mirror)).unwrap();
        assert_eq!((again.downloaded.len(), again.already_present.len()), (0, 11));
        // No temporary file is left behind.
        let leftovers = std::fs::read_dir(dest.path().join("mgsm")).unwrap().filter_map(|e| e.ok());
        assert!(leftovers.into_iter().all(|e| !e.file_name().to_string_lossy().contains(".part-")));
    }

    #[test]
    fn a_tampered_file_is_rejected_and_not_written() {
        let tampered = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tampered.path().join("xwinograd")).unwrap();
        std::fs::write(tampered.path().join("xwinograd/dataset.tsv"), "en\tx\n").unwrap();
        let dest = tempfile::tempdir().unwrap();
        let mirror = serve(tampered.path().to_path_buf(), 1);
        let err = fetch(TaskName::Xwinograd, &options(dest.path(), mirror.clone())).unwrap_err();
        let expected = format!(
            "checksum mismatch for {mirror}/xwinograd/dataset.tsv: expected sha256 {}, got {}",
            pinned_files(TaskName::Xwinograd).unwrap()[0].1.sha256,
            hex_sha256(b"en\tx\n")
        );
        assert!(err.to_string().starts_with(&expected), "{err}");
        assert!(!dest.path().join("xwinograd/dataset.tsv").exists());
    }

    #[test]
    fn missing_file_on_the_server_is_an_http_error() {
        let empty = tempfile::tempdir().unwrap();
        let dest = tempfile::tempdir().unwrap();
        let mirror = serve(empty.path().to_path_buf(), 1);
        let err = fetch(TaskName::Xwinograd, &options(dest.path(), mirror.clone())).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{mirror}/xwinograd/dataset.tsv answered HTTP 404")), "{err}");
    }

    #[test]
    fn refused_connection_says_how_to_work_offline() {
        // Bind to learn a free port, then close it so the connection is refused.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dest = tempfile::tempdir().unwrap();
        let err = fetch(TaskName::Xwinograd, &options(dest.path(), format!("http://127.0.0.1:{port}"))).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, TaskError::Unreachable { .. }), "{text}");
        assert!(text.starts_with(&format!("could not reach http://127.0.0.1:{port}/xwinograd/dataset.tsv: ")), "{text}");
        assert!(
            text.ends_with(&format!("; copy the files into {} by hand or set POLYPRUNE_DATA_MIRROR=<base url>", dest.path().display())),
            "{text}"
        );
    }

    #[test]
    fn tasks_without_a_source_say_where_files_go() {
        let err = fetch(TaskName::Xnli, &options(Path::new("/data"), String::new())).unwrap_err().to_string();
        assert!(err.starts_with("task 'xnli' has no automatic download; get its files from their publisher and place them under /data as: dev: xnli/dev.{lang}.jsonl; test: xnli/test.{lang}.jsonl"), "{err}");
    }
}
