//! The paper tables end to end without a model: a small multi-seed study written through the
//! store's own writers (dense baseline and Wanda cells calibrated on English, German and Chinese,
//! two seeds, per-document perplexity built so that the paired tests have a known answer), then
//! `polyprune report --latex --markdown` on it, and the LaTeX compiled with pdflatex.
//!
//! pdflatex is a prerequisite like Chromium for the HTML test: `make texlive` installs it; a
//! missing one skips with a message, and fails under `CI=true`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use polyprune::design::{AnalysisPlan, Cell, DenseBaseline};
use polyprune::eval::{DocumentScore, LanguageScore};
use polyprune::report::grid::{Better, Column, ColumnKind, Grid, GridCell, GridRow, Mark, RowRole};
use polyprune::store::{EvaluationRecord, MachineRecord, Provenance, StudyDir, StudyRecord, Unit, UnitRecord, UnitStatus};

const DOCUMENTS: usize = 24;
const BYTES: usize = 200;

fn cell(calibration: &str, seed: u64) -> Cell {
    serde_json::from_value(serde_json::json!({
        "id": format!("wanda-u50-{calibration}-s{seed}-test"), "model": "tiny", "method": { "method": "wanda" },
        "pattern": "unstructured", "sparsity": 0.5,
        "calibration": { "languages": [calibration], "mix": "even", "samples": 4, "seqlen": 64, "source": null },
        "seed": seed, "mode": "sequential"
    }))
    .unwrap()
}

fn record(id: &str, seed: Option<u64>) -> UnitRecord {
    UnitRecord {
        id: id.into(),
        status: UnitStatus::Done,
        runs: 1,
        model: "tiny".into(),
        model_hash: "hash".into(),
        config_hash: "hash".into(),
        tool_version: "test".into(),
        seed,
        started_unix: 0,
        timings: Default::default(),
        eval_tokens: 0,
        calibration_tokens: 0,
        overall_sparsity: Some(0.5),
        machine: MachineRecord { hostname: "h".into(), cores: 2, os: "linux".into(), device: "cpu".into(), compute: "f32".into() },
    }
}

/// Bits per byte of document `d` in `language` for a unit: a per-document base (documents
/// differ a lot, as real ones do) plus the unit's shift, plus a wobble of the unit's own that
/// pairs of documents cancel (+w, -w), so that paired differences vary while the mean is
/// exactly the shift.
fn bits_per_byte(language: &str, d: usize, shift: f64, wobble_seed: u64) -> f64 {
    let base = if language == "eng_Latn" { 1.0 } else { 1.2 };
    let spread = ((d * 7 % 11) as f64) * 0.05;
    let w = (((d / 2) as u64 * 31 + wobble_seed * 17) % 7) as f64 * 0.002;
    base + spread + shift + if d.is_multiple_of(2) { w } else { -w }
}

/// The pruning penalty of a calibration on an evaluation language, per seed. German text is
/// clearly easier after German calibration than after English (both seeds); Chinese calibration
/// costs English a little in both seeds; on German text Chinese is worse than English in seed
/// 0 but better in seed 1 (no agreement, no mark).
fn shift(calibration: &str, language: &str, seed: u64) -> f64 {
    match (calibration, language, seed) {
        ("eng_Latn", "eng_Latn", _) => 0.10,
        ("eng_Latn", "deu_Latn", _) => 0.20,
        ("deu_Latn", "eng_Latn", _) => 0.10,
        ("deu_Latn", "deu_Latn", _) => 0.12,
        ("zho_Hans", "eng_Latn", _) => 0.14,
        ("zho_Hans", "deu_Latn", 0) => 0.25,
        ("zho_Hans", "deu_Latn", _) => 0.15,
        _ => unreachable!(),
    }
}

fn scores(shift_of: impl Fn(&str) -> f64, wobble_seed: u64) -> Vec<LanguageScore> {
    ["eng_Latn", "deu_Latn"]
        .iter()
        .map(|&language| LanguageScore {
            language: language.into(),
            source: "flores".into(),
            documents: (0..DOCUMENTS)
                .map(|d| DocumentScore {
                    id: d.to_string(),
                    nll: bits_per_byte(language, d, shift_of(language), wobble_seed) * BYTES as f64 * std::f64::consts::LN_2,
                    tokens: 50,
                    bytes: BYTES,
                })
                .collect(),
        })
        .collect()
}

const STUDY_FILE: &str = r#"[study]
name = "tiny-seeds"
seeds = [0, 1]

[[models]]
name = "tiny"
path = "models/tiny"

[pruning]
methods = ["wanda"]
sparsities = [0.5]

[report]
languages = { deu_Latn = "German", zho_Hans = "Chinese", eng_Latn = "English" }
methods = { wanda = "Wanda" }
models = { tiny = "Tiny LM & co" }
"#;

/// The study folder, written once per test binary run.
fn study() -> PathBuf {
    study_with("report-tables", STUDY_FILE)
}

/// The study, with `study_file` as the study file it records (its `[report]` names).
fn study_with(tag: &str, study_file: &str) -> PathBuf {
    let root = common::temp_dir(tag).join("study");
    let dir = StudyDir::new(&root);
    let calibrations = ["eng_Latn", "deu_Latn", "zho_Hans"];
    let cells: Vec<Cell> = calibrations.iter().flat_map(|c| [0, 1].map(|s| cell(c, s))).collect();
    let study = StudyRecord {
        study: "tiny-seeds".into(),
        config_hash: "hash".into(),
        tool_version: "test".into(),
        cells: cells.clone(),
        dense: vec![DenseBaseline::for_model("tiny")],
        models: vec![("tiny".into(), PathBuf::from("models/tiny"))],
        evaluation: EvaluationRecord { perplexity: None, tasks: None },
        analysis: AnalysisPlan::default(),
    };
    dir.write_study(&study, study_file).unwrap();
    let provenance = Provenance::new("test", "hash".into(), serde_json::json!({}), std::time::Instant::now());
    let dense = DenseBaseline::for_model("tiny");
    dir.dense("tiny").perplexity().write(&scores(|_| 0.0, 99), &provenance).unwrap();
    dir.write_record(&Unit::Dense(dense.clone()), &record(&dense.id, None)).unwrap();
    for c in &cells {
        let calibration = c.calibration.as_ref().unwrap().languages_label();
        let seed = c.seed.unwrap();
        let wobble = seed * 3 + calibrations.iter().position(|k| *k == calibration).unwrap() as u64;
        dir.cell(&c.id).perplexity().write(&scores(|lang| shift(&calibration, lang, seed), wobble), &provenance).unwrap();
        dir.write_record(&Unit::Cell(c.clone()), &record(&c.id, Some(seed))).unwrap();
    }
    root
}

/// `polyprune report` with HTML, LaTeX and Markdown outputs.
fn report(study: &Path, html: &Path, latex: &Path, markdown: &Path) -> std::process::Output {
    let mut command = common::bin();
    command.arg("report").arg(study).arg("-o").arg(html).arg("--latex").arg(latex).arg("--markdown").arg(markdown);
    command.output().unwrap()
}

fn row<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no row '{label}' in\n{text}"))
}

fn compile(dir: &Path, file: &str) {
    let Some(pdflatex) = common::pdflatex() else { return };
    let o = Command::new(pdflatex).args(["-interaction=nonstopmode", "-halt-on-error", file]).current_dir(dir).output().unwrap();
    assert!(o.status.success(), "pdflatex {file} failed:\n{}", String::from_utf8_lossy(&o.stdout));
    let pdf = dir.join(file.replace(".tex", ".pdf"));
    assert!(std::fs::metadata(&pdf).map(|m| m.len() > 1000).unwrap_or(false), "{} was not written", pdf.display());
}

#[test]
fn a_multi_seed_study_gets_marked_tables_in_latex_markdown_and_html_and_the_latex_compiles() {
    let study = study();
    let out = study.parent().unwrap().to_path_buf();
    let (html, latex, markdown) = (out.join("report.html"), out.join("latex"), out.join("markdown"));
    let o = report(&study, &html, &latex, &markdown);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    // Two marks: German and Chinese calibration on the text they differ from English on in
    // both seeds.
    assert!(stderr.contains("2 paper tables, 2 cells marked significant"), "{stderr}");

    let tex = std::fs::read_to_string(latex.join("perplexity-bpb_change_tiny_wanda_u50.tex")).unwrap();
    // Columns English, German, average; rows English (the reference), German, Chinese.
    assert!(tex.contains(r"Calibration & \multicolumn{2}{c}{English} & \multicolumn{2}{c}{German} & \multicolumn{2}{c}{Avg.} \\"), "{tex}");
    assert!(tex.contains(r"\caption{Wanda at 50\% unstructured on Tiny LM \& co: change in bits per byte"), "{tex}");
    // Δ bits per byte, mean ± sd over the two seeds: German calibration loses 0.120 on German
    // text against English calibration's 0.200 (lower is better: bold, and significantly lower).
    let german = row(&tex, "German &");
    assert!(german.contains(r"\bfseries +0.120 & {\footnotesize$\pm$0.000}\,$\downarrow$"), "{german}");
    let chinese = row(&tex, "Chinese &");
    assert!(
        chinese.starts_with(r"Chinese & +0.140 & {\footnotesize$\pm$0.000}\,$\uparrow$ & +0.200 & {\footnotesize$\pm$0.071} &"),
        "{chinese}"
    );
    let english = row(&tex, "English (ref.) &");
    assert!(!english.contains("arrow") && english.contains(r"\bfseries +0.100"), "{english}");
    assert_eq!(tex.matches(r"\bfseries").count(), 4, "English and German tie on English text; German best on German and on average: {tex}");
    assert!(tex.contains(r"$\uparrow$/$\downarrow$: significantly higher/lower than calibration on English (paired permutation test on the same documents, Holm correction within each evaluation set, $\alpha$ = 0.05, in each of the 2 seeds)."), "{tex}");
    // The dense table has one row: nothing bold.
    let dense = std::fs::read_to_string(latex.join("perplexity-dense_bpb.tex")).unwrap();
    assert!(!dense.contains(r"\bfseries") && dense.contains("Tiny LM \\& co & 1."), "{dense}");

    let md = std::fs::read_to_string(markdown.join("tables.md")).unwrap();
    assert!(md.contains("| German | **+0.100** ± 0.000 | **+0.120** ± 0.000 ↓ |"), "{md}");
    assert!(md.contains("| Chinese | +0.140 ± 0.000 ↑ | +0.200 ± 0.071 |"), "{md}");
    assert!(markdown.join("perplexity-bpb_change_tiny_wanda_u50.md").is_file());

    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<span class=\"mark\">").count(), 2, "the same marks in the HTML");
    assert!(page.contains("<strong>+0.120</strong> <span class=\"sd\">± 0.000</span> <span class=\"mark\">↓</span>"));

    // The data behind the tables, with the other exports.
    let csv = std::fs::read_to_string(study.join("report/paper-perplexity-bpb_change_tiny_wanda_u50.csv")).unwrap();
    assert!(csv.starts_with("Calibration,English,English sd,English mark,German,German sd,German mark,"), "{csv}");
    assert!(csv.lines().any(|l| l.starts_with("German,") && l.contains(",lower,")), "{csv}");

    compile(&latex, "tables.tex");
}

/// Every character LaTeX treats specially, in every place a name can go, still compiles; so do
/// a signed Δ column, missing values and marks.
#[test]
fn a_hand_made_grid_with_special_characters_compiles() {
    let dir = common::temp_dir("report-tables-specials");
    let value = |mean: f64, sd: Option<f64>, mark: Option<Mark>| GridCell { mean, sd, mark };
    let grid = Grid {
        name: "tasks-x_y_#1".into(),
        caption: r"Accuracy (%) of model_1 & co: 50% sparsity, $5 ~ ^ \ {} <> – Δ ± α →".into(),
        row_header: "Calibration #".into(),
        columns: vec![
            Column { name: "de_DE".into(), kind: ColumnKind::Measured },
            Column { name: "zh{Hans}".into(), kind: ColumnKind::Measured },
            Column { name: "Avg.".into(), kind: ColumnKind::Average },
            Column { name: "Δ vs dense".into(), kind: ColumnKind::Delta },
        ],
        rows: vec![
            GridRow {
                label: "Dense & co".into(),
                role: RowRole::Dense,
                cells: vec![value(71.25, None, None), value(64.0, None, None), value(67.6, None, None), GridCell::missing()],
            },
            GridRow {
                label: "en_US".into(),
                role: RowRole::Reference,
                cells: vec![value(55.0, Some(1.5), None), GridCell::missing(), value(52.0, Some(0.5), None), value(-15.6, Some(0.5), None)],
            },
            GridRow {
                label: "100% de".into(),
                role: RowRole::Pruned,
                cells: vec![
                    value(60.0, Some(2.0), Some(Mark::Higher)),
                    value(49.0, Some(1.0), Some(Mark::Lower)),
                    value(54.5, Some(1.0), None),
                    value(-13.1, Some(1.0), None),
                ],
            },
        ],
        better: Better::Higher,
        signed: false,
        notes: vec!["Notes with [report] {braces}, 5% and ↑/↓.".into()],
    };
    std::fs::write(dir.join("grid.tex"), polyprune::report::latex::table(&grid)).unwrap();
    std::fs::write(dir.join("doc.tex"), polyprune::report::latex::document(&["grid.tex".to_string()])).unwrap();
    compile(&dir, "doc.tex");
}

/// Names from the study file reach every output as text, never as markup: HTML elements and a
/// script in display names are escaped in the page (tables, charts) and the Markdown, and the
/// LaTeX still compiles.
#[test]
fn markup_in_names_is_escaped_in_every_output() {
    let hostile = STUDY_FILE
        .replace(r#"deu_Latn = "German""#, r#"deu_Latn = "<i>German</i>""#)
        .replace(r#"wanda = "Wanda""#, r#"wanda = "Wanda <script>alert('m')</script>""#)
        .replace(r#"tiny = "Tiny LM & co""#, r#"tiny = "Tiny \"LM\" <b>&amp; co</b>""#);
    assert_ne!(hostile, STUDY_FILE);
    let study = study_with("report-tables-markup", &hostile);
    let out = study.parent().unwrap().to_path_buf();
    let (html, latex, markdown) = (out.join("report.html"), out.join("latex"), out.join("markdown"));
    let o = report(&study, &html, &latex, &markdown);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = std::fs::read_to_string(&html).unwrap();
    for raw in ["<script", "<i>German", "<b>&amp;"] {
        assert!(!page.contains(raw), "{raw} reached the page unescaped");
    }
    assert!(page.contains("&lt;i&gt;German&lt;&#x2F;i&gt;") || page.contains("&lt;i&gt;German&lt;/i&gt;"), "the name is shown as text");
    assert!(page.contains("&lt;script&gt;alert("), "the method name is shown as text");
    let md = std::fs::read_to_string(markdown.join("tables.md")).unwrap();
    assert!(md.contains(r"\<i\>German\</i\>") && md.contains(r"\<b\>\&amp; co"), "{md}");
    // Outside the document's own anchors (`<a id=...>`), every < and & is escaped.
    for line in md.lines().filter(|l| !l.starts_with("<a id=")) {
        assert!(line.match_indices(['<', '&']).all(|(i, _)| line[..i].ends_with('\\')), "{line}");
    }
    let tex: String = std::fs::read_dir(&latex)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "tex"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(!tex.contains("<script") && tex.contains(r"Wanda \textless{}script\textgreater{}"), "{tex}");
    compile(&latex, "tables.tex");
}
