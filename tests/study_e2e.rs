//! A whole study end to end on a real model (SmolLM2-135M, the real ONNX Runtime, SIB-200
//! text): resume after a kill, shards merged, a failing cell recorded while the others finish,
//! config errors, and the report (HTML in headless Chromium, LaTeX compiled with pdflatex).
//!
//! The study is tiny (Magnitude and Wanda at 50% on the first two blocks, 4 x 64 calibration
//! windows, perplexity on 2 languages x 3 documents, XCOPA on 4 Italian examples) so each
//! run takes seconds. The uninterrupted run is made once and shared by the tests that compare
//! against it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn study_config(models: &[(&str, &Path)], shared: &Path, tasks: bool) -> String {
    let mut s = String::from("[study]\nname = \"tiny\"\nseeds = [0]\nthreads = 2\n\n");
    for (name, path) in models {
        s.push_str(&format!("[[models]]\nname = \"{name}\"\npath = \"{}\"\n\n", path.display()));
    }
    s.push_str(
        "[pruning]\nmethods = [\"magnitude\", \"wanda\"]\nsparsities = [0.5]\ninclude = [\"blk.0.\", \"blk.1.\"]\n\n\
         [calibration]\nsource = \"flores\"\nsamples = 4\nseqlen = 64\nsets = [{ languages = [\"eng_Latn\"] }]\n\n\
         [perplexity]\nlanguages = [\"eng_Latn\", \"deu_Latn\"]\nsource = \"flores\"\nlimit = 3\n\n",
    );
    if tasks {
        s.push_str(&format!(
            "[tasks]\nnames = [\"xcopa\"]\nlanguages = [\"it\"]\nlimit = 4\ndata = \"{}\"\n",
            shared.join("data").display()
        ));
    }
    s
}

struct Setup {
    config: PathBuf,
}

/// The config file for SmolLM2, or `None` (after saying why) when the model or data are absent.
fn setup() -> Option<Setup> {
    let shared = common::shared()?;
    let model = common::model("smollm2-135m")?;
    let dir = common::temp_dir("study-config");
    let config = dir.join("tiny.toml");
    std::fs::write(&config, study_config(&[("smollm2", &model)], &shared, true)).unwrap();
    Some(Setup { config })
}

fn run_study(config: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    common::bin().args(["study", "run"]).arg(config).arg("--out").arg(out).args(extra).output().unwrap()
}

/// `study run` in the background, silent, for a test to kill.
fn spawn_study(config: &Path, out: &Path) -> std::process::Child {
    common::bin().args(["study", "run"]).arg(config).arg("--out").arg(out).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
}

/// The uninterrupted run every comparison is against (made once per test binary).
fn uninterrupted() -> Option<&'static PathBuf> {
    uninterrupted_run().map(|(dir, _)| dir)
}

/// The uninterrupted run and how long it took.
fn uninterrupted_run() -> Option<&'static (PathBuf, Duration)> {
    static DIR: OnceLock<Option<(PathBuf, Duration)>> = OnceLock::new();
    DIR.get_or_init(|| {
        let s = setup()?;
        let out = common::temp_dir("study-full").join("out");
        let t0 = Instant::now();
        let o = run_study(&s.config, &out, &[]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        eprintln!("uninterrupted study: {:.1} s", t0.elapsed().as_secs_f64());
        Some((out, t0.elapsed()))
    })
    .as_ref()
}

/// Every result file of every unit (relative path -> bytes), records excluded (they hold times).
fn result_files(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    fn walk(dir: &Path, root: &Path, files: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, root, files);
                continue;
            }
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            // Results only: tasks/summary.csv also holds seconds, and the records hold times.
            let timed = name == "summary.csv" && p.parent().is_some_and(|d| d.ends_with("tasks"));
            let keep = (name.ends_with(".csv") && !timed) || name.ends_with(".mask") || name == "index.json";
            if keep {
                files.insert(p.strip_prefix(root).unwrap().display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    for sub in ["cells", "dense"] {
        if root.join(sub).is_dir() {
            walk(&root.join(sub), root, &mut files);
        }
    }
    files
}

fn assert_same_results(a: &Path, b: &Path) {
    let (fa, fb) = (result_files(a), result_files(b));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>(), "same files");
    assert!(fa.keys().filter(|k| k.ends_with("ppl/documents.csv")).count() == 3, "three units with per-document NLL: {:?}", fa.keys());
    for (k, v) in &fa {
        assert!(v == &fb[k], "{k} differs");
    }
}

fn records(out: &Path) -> Vec<(PathBuf, serde_json::Value)> {
    let mut found = Vec::new();
    for sub in ["cells", "dense"] {
        let Ok(entries) = std::fs::read_dir(out.join(sub)) else { continue };
        for e in entries {
            let dir = e.unwrap().path();
            for name in ["cell.json", "dense.json"] {
                let p = dir.join(name);
                if p.is_file() {
                    found.push((p.clone(), serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()));
                }
            }
        }
    }
    found
}

#[test]
fn a_killed_study_resumes_without_recomputing_and_ends_equal_to_an_uninterrupted_run() {
    let (Some(s), Some(full)) = (setup(), uninterrupted()) else { return };
    let out = common::temp_dir("study-killed").join("out");
    let t0 = Instant::now();
    let mut child = spawn_study(&s.config, &out);
    // Kill it (SIGKILL: no chance to tidy up) as soon as the first unit is done.
    loop {
        if records(&out).iter().any(|(_, r)| r["status"] == "done") {
            child.kill().unwrap();
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the study ended ({status}) before it could be killed");
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "no unit finished in 2 minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait().unwrap();
    let before: Vec<(PathBuf, Vec<u8>)> =
        records(&out).iter().filter(|(_, r)| r["status"] == "done").map(|(p, _)| (p.clone(), std::fs::read(p).unwrap())).collect();
    assert!(!before.is_empty() && before.len() < 3, "killed mid-study: {} of 3 units done", before.len());

    let o = run_study(&s.config, &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains(&format!("{} already done", before.len())), "{stderr}");
    // Finished units were not recomputed: their records are byte-identical and say one run.
    for (path, bytes) in &before {
        assert_eq!(&std::fs::read(path).unwrap(), bytes, "{} was rewritten", path.display());
        let r: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        assert_eq!(r["runs"], 1);
    }
    assert!(records(&out).iter().all(|(_, r)| r["status"] == "done"));
    assert_same_results(full, &out);

    eprintln!("kill and resume: {:.1} s", t0.elapsed().as_secs_f64());
}

/// Files a write in progress leaves: atomic writers' temporaries and staged folders.
fn leftovers(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name.contains(".tmp") || name.contains(".staging-") || name.contains(".old-") {
                found.push(p.clone());
            }
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    found
}

/// Kills (SIGKILL) at moments spread over a whole run, wherever they fall: loading the model,
/// mid-calibration, mid-evaluation, while a results file or mask is being written. Every run
/// resumed after a kill ends with results equal to the uninterrupted run's, and no temporary
/// file or staged folder is left behind.
#[test]
fn kills_at_random_moments_each_resume_to_the_uninterrupted_results() {
    let (Some(s), Some((full, took))) = (setup(), uninterrupted_run()) else { return };
    // A fixed, printed sequence of moments (fractions of the uninterrupted run's time), so a
    // failure names the moment that caused it; xorshift keeps the test free of a random crate.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        0.1 + 0.8 * (state % 10_000) as f64 / 10_000.0
    };
    for k in 0..3 {
        let fraction = next();
        let at = took.mul_f64(fraction);
        let out = common::temp_dir(&format!("study-kill-{k}")).join("out");
        let mut child = spawn_study(&s.config, &out);
        std::thread::sleep(at);
        let finished = child.try_wait().unwrap().is_some();
        child.kill().ok();
        child.wait().unwrap();
        eprintln!("kill {k} at {:.0}% ({:.2} s){}", fraction * 100.0, at.as_secs_f64(), if finished { ": the run had ended" } else { "" });
        let o = run_study(&s.config, &out, &[]);
        assert!(o.status.success(), "resume after the kill at {:.0}%: {}", fraction * 100.0, String::from_utf8_lossy(&o.stderr));
        assert!(records(&out).iter().all(|(_, r)| r["status"] == "done"));
        assert_same_results(full, &out);
        assert_eq!(leftovers(&out), Vec::<PathBuf>::new(), "after the kill at {:.0}%", fraction * 100.0);
    }
}

#[test]
fn two_shards_merged_equal_one_unsharded_run() {
    let (Some(s), Some(full)) = (setup(), uninterrupted()) else { return };
    let t0 = Instant::now();
    let root = common::temp_dir("study-shards");
    let shards: Vec<PathBuf> = (0..2).map(|i| root.join(format!("shard{i}"))).collect();
    for (i, dir) in shards.iter().enumerate() {
        let o = run_study(&s.config, dir, &["--shard", &format!("{i}/2")]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // Shard 0 holds the dense baseline; the two cells are split one each.
    assert_eq!(records(&shards[0]).len(), 2);
    assert_eq!(records(&shards[1]).len(), 1);
    let merged = root.join("merged");
    let o = common::bin().args(["study", "merge"]).args(&shards).arg("-o").arg(&merged).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same_results(full, &merged);
    assert_eq!(std::fs::read(full.join("study.json")).unwrap(), std::fs::read(merged.join("study.json")).unwrap());

    // Shards of another study file are refused.
    let other = root.join("other.toml");
    std::fs::write(&other, std::fs::read_to_string(&s.config).unwrap().replace("limit = 3", "limit = 2")).unwrap();
    // (--max-cells 0: a controlled interruption before the first unit; the folder is claimed.)
    let o = run_study(&other, &root.join("other"), &["--shard", "0/2", "--max-cells", "0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("2 left for a later run"), "{}", String::from_utf8_lossy(&o.stderr));
    let o =
        common::bin().args(["study", "merge"]).arg(&shards[0]).arg(root.join("other")).arg("-o").arg(root.join("bad")).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("comes from another study file"), "{e}");
    eprintln!("shards and merge: {:.1} s", t0.elapsed().as_secs_f64());
}

#[test]
fn a_failing_cell_is_recorded_with_its_cause_and_the_others_still_run() {
    let (Some(shared), Some(model)) = (common::shared(), common::model("smollm2-135m")) else { return };
    let dir = common::temp_dir("study-fail");
    let missing = dir.join("no-such-model");
    let config = dir.join("two.toml");
    let text = study_config(&[("smollm2", &model), ("ghost", &missing)], &shared, false)
        .replace("methods = [\"magnitude\", \"wanda\"]", "methods = [\"magnitude\"]")
        .replace("limit = 3", "limit = 2");
    std::fs::write(&config, text).unwrap();
    let out = dir.join("out");
    let o = run_study(&config, &out, &[]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("2 computed, 0 already done, 2 failed"), "{stderr}");
    let recs = records(&out);
    assert_eq!(recs.len(), 4);
    for (path, r) in &recs {
        if r["model"] == "ghost" {
            assert_eq!(r["status"], "failed");
            let error = r["error"].as_str().unwrap();
            assert!(error.contains("no-such-model"), "the cause names the path: {error}");
        } else {
            assert_eq!(r["status"], "done", "{}", path.display());
            assert!(path.parent().unwrap().join("ppl/documents.csv").is_file());
        }
    }
    assert!(stderr.lines().last().unwrap().contains("2 of the study's cells failed"), "{stderr}");
}

#[test]
fn config_errors_name_the_key_and_the_line_before_any_work() {
    let dir = common::temp_dir("study-bad-config");
    let config = dir.join("bad.toml");
    let good = "[study]\nname = \"x\"\n[[models]]\nname = \"m\"\npath = \"m\"\n[pruning]\nmethods = [\"magnitude\"]\nsparsities = [0.5]\n[perplexity]\nlanguages = [\"eng_Latn\"]\nsource = \"udhr\"\n";
    for (text, expected) in [
        (
            good.replace("sparsities = [0.5]", "sparsities = [0.3]\npatterns = [\"2:4\"]"),
            "bad.toml:8: pruning.sparsities: pattern 2:4 (line 9)",
        ),
        (good.replace("[\"eng_Latn\"]", "[\"english-ish\"]"), "bad.toml:10: perplexity.languages:"),
        (good.replace("name = \"x\"", "name = \"x\"\ncolour = \"red\""), "bad.toml:3: unknown field `colour`"),
    ] {
        std::fs::write(&config, text).unwrap();
        for sub in ["run", "plan"] {
            let o = common::bin().args(["study", sub]).arg(&config).arg("--out").arg(dir.join("out")).output().unwrap();
            let e = String::from_utf8_lossy(&o.stderr);
            assert!(!o.status.success() && e.contains(expected), "study {sub}: {e}");
            assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
        }
        assert!(!dir.join("out").exists(), "nothing written before the config is valid");
    }
}

#[test]
fn plan_lists_every_cell_with_a_cost_and_measures_throughput_from_finished_ones() {
    let (Some(s), Some(full)) = (setup(), uninterrupted()) else { return };
    let o = common::bin().args(["study", "plan"]).arg(&s.config).arg("--out").arg(full).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(text.contains("dense-smollm2") && text.contains("magnitude-u50-nocalib-") && text.contains("wanda-u50-eng_Latn-s0-"), "{text}");
    assert!(text.contains("measured on 3 finished units") && text.contains("3 units (0 to run)"), "{text}");
    let fresh = common::temp_dir("plan-fresh");
    let o = common::bin().args(["study", "plan"]).arg(&s.config).arg("--out").arg(&fresh).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("3 units (3 to run)"));
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| common::skip("the browser check: chromium is absent (`make chromium` installs it)"))
}

/// Every figure of the page is a PDF in the LaTeX folder that the compiled document read (its
/// log names each included file), not the box that stands in when rsvg-convert is missing.
fn figures_are_drawn_in_the_latex(latex: &Path, figures: usize) {
    if std::env::var_os("PATH").is_none_or(|p| !std::env::split_paths(&p).any(|d| d.join("rsvg-convert").is_file())) {
        common::skip::<()>("the LaTeX figures: rsvg-convert is absent (`make texlive` installs librsvg2-bin)");
        return;
    }
    let pdfs: Vec<_> = std::fs::read_dir(latex.join("figures")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(pdfs.len(), figures, "one PDF per figure: {pdfs:?}");
    let log = String::from_utf8_lossy(&std::fs::read(latex.join("tables.log")).unwrap()).replace('\n', "");
    for pdf in &pdfs {
        let name = pdf.file_name().unwrap().to_string_lossy();
        assert!(std::fs::read(pdf).unwrap().starts_with(b"%PDF"), "{name} is a PDF");
        assert!(log.contains(&format!("figures/{name}")), "tables.tex included {name}");
    }
}

#[test]
fn the_report_of_a_finished_study_renders_in_headless_chromium() {
    let Some(full) = uninterrupted() else { return };
    let dir = common::temp_dir("study-report");
    let html = dir.join("report.html");
    let latex = dir.join("latex");
    let o = common::bin()
        .arg("report")
        .arg(full)
        .arg("-o")
        .arg(&html)
        .arg("--latex")
        .arg(&latex)
        .arg("--markdown")
        .arg(dir.join("markdown"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = std::fs::read_to_string(&html).unwrap();
    for id in ["setup", "perplexity", "tasks", "sparsity", "timings"] {
        assert!(page.contains(&format!("<section id=\"{id}\">")), "section {id}");
    }
    // Heatmaps for magnitude and wanda, SIB-200 bars, sparsity bars, timing bars, and the mask
    // overlap of wanda (eng_Latn) against magnitude at the same sparsity (two figures).
    let svgs = page.matches("<svg").count();
    assert_eq!(svgs, 7, "figures");
    assert!(page.contains("<section id=\"masks\">"), "mask overlap section");
    assert!(page.contains("smollm2: Δ bits per byte vs dense") && page.contains("xcopa: accuracy by language"));
    for export in ["perplexity-dense_bpb.csv", "tasks-downstream.json", "timings-timings.csv", "sparsity-sparsity.csv"] {
        assert!(full.join("report").join(export).is_file(), "{export}");
    }
    let tex = std::fs::read_to_string(latex.join("perplexity-bpb_change_smollm2_wanda_u50.tex")).unwrap();
    // One calibration set per method: nothing to choose between, so nothing is bold; columns
    // carry ISO 639-1 names, values their sign.
    assert!(tex.contains("\\toprule") && !tex.contains("\\bfseries"), "{tex}");
    assert!(tex.contains("\\multicolumn{2}{c}{en} & \\multicolumn{2}{c}{de}") && tex.contains("en & +"), "{tex}");
    let markdown = std::fs::read_to_string(dir.join("markdown/tables.md")).unwrap();
    assert!(markdown.contains("| Calibration | en | de | Avg. |"), "{markdown}");
    match common::pdflatex() {
        Some(pdflatex) => {
            let o = Command::new(pdflatex)
                .args(["-interaction=nonstopmode", "-halt-on-error", "tables.tex"])
                .current_dir(&latex)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
            figures_are_drawn_in_the_latex(&latex, svgs);
        }
        None => eprintln!("LaTeX checked for structure only"),
    }
    let Some(browser) = chromium() else { return };
    let o = Command::new(&browser)
        .args(["--headless", "--disable-gpu", "--no-sandbox", "--dump-dom"])
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dom = String::from_utf8_lossy(&o.stdout);
    for id in ["setup", "perplexity", "tasks", "sparsity", "timings"] {
        assert!(dom.contains(&format!("<section id=\"{id}\">")), "DOM has section {id}");
    }
    assert_eq!(dom.matches("<svg").count(), svgs, "every chart is in the DOM");
    assert!(dom.matches("<rect").count() > 20 && dom.contains("<text"), "the charts have drawn content");
    let shot = dir.join("report.png");
    let o = Command::new(&browser)
        .args(["--headless", "--disable-gpu", "--no-sandbox", "--window-size=1280,2000"])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(
        o.status.success() && std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let overlaps = overlapping_labels(&browser, &html, &dir);
    assert!(overlaps.is_empty(), "labels drawn over each other:\n{}", overlaps.join("\n"));
}

/// Pairs of texts in one chart whose boxes, as Chromium lays the page out, overlap by more
/// than 2 px each way (legend entries over axis labels, crowded tick labels). Found by a
/// script added to a copy of the page, whose answer `--dump-dom` carries out.
fn overlapping_labels(browser: &Path, html: &Path, dir: &Path) -> Vec<String> {
    const PROBE: &str = r#"<script>
(() => {
  const found = [];
  document.querySelectorAll('svg').forEach((svg, k) => {
    const texts = [...svg.querySelectorAll('text')].filter(t => t.textContent.trim())
      .map(t => [t.textContent.trim(), t.getBoundingClientRect()]);
    for (let a = 0; a < texts.length; a++) for (let b = a + 1; b < texts.length; b++) {
      const [p, r] = [texts[a][1], texts[b][1]];
      const w = Math.min(r.right, p.right) - Math.max(r.left, p.left);
      const h = Math.min(r.bottom, p.bottom) - Math.max(r.top, p.top);
      if (w > 2 && h > 2) found.push(`chart ${k + 1}: "${texts[a][0]}" and "${texts[b][0]}"`);
    }
  });
  const out = document.createElement('pre');
  out.id = 'overlaps';
  out.textContent = `[${found.length}]\n` + found.join('\n');
  document.body.appendChild(out);
})();
</script>"#;
    let page = std::fs::read_to_string(html).unwrap();
    let probed = dir.join("report-probed.html");
    std::fs::write(&probed, page.replace("</body>", &format!("{PROBE}</body>"))).unwrap();
    let o = Command::new(browser)
        .args(["--headless", "--disable-gpu", "--no-sandbox", "--window-size=1280,2000", "--dump-dom"])
        .arg(format!("file://{}", probed.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&o.stdout);
    let start = dom.find("<pre id=\"overlaps\">[").expect("the overlap probe ran") + "<pre id=\"overlaps\">".len();
    let answer = &dom[start..dom[start..].find("</pre>").unwrap() + start];
    answer.lines().skip(1).map(str::to_string).collect()
}
