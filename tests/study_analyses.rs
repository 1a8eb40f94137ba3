//! A library caller of `study::run_study` gets the study file's `[analysis]`: the model analyses
//! run after the cells, from the library, with the file's parameters (here 4 parallel sentences
//! and block 1, which the exported tables must show), and a re-run keeps what is done.

mod common;

use polyprune::design::StudyConfig;
use polyprune::study::{run_study, Observer, RunOptions, Silent, StudyDir};

/// What a study run tells its observer about the model analyses, in order.
#[derive(Default)]
struct Recorder {
    events: Vec<String>,
}

impl Observer for Recorder {
    fn analyses_begin(&mut self, total: usize) {
        self.events.push(format!("begin {total}"));
    }
    fn analysis_started(&mut self, name: &str) {
        self.events.push(format!("start {name}"));
    }
    fn analysis_finished(&mut self, name: &str, failure: Option<&str>) {
        self.events.push(format!("end {name} {failure:?}"));
    }
}

fn config_text(model: &std::path::Path) -> String {
    format!(
        "[study]\nname = \"analyses\"\nseeds = [0]\nthreads = 2\n\n\
         [[models]]\nname = \"smollm2\"\npath = \"{}\"\n\n\
         [pruning]\nmethods = [\"wanda\"]\nsparsities = [0.5]\ninclude = [\"blk.0.\", \"blk.1.\"]\n\n\
         [calibration]\nsource = \"flores\"\nsamples = 2\nseqlen = 32\nsets = [{{ languages = [\"eng_Latn\"] }}]\n\n\
         [perplexity]\nlanguages = [\"eng_Latn\", \"deu_Latn\"]\nsource = \"flores\"\nlimit = 2\n\n\
         [analysis]\nsubspaces = true\nneurons = true\nsentences = 4\nbatch = 4\nlayers = [1]\n",
        model.display()
    )
}

/// Column `name` of every row of a CSV export.
fn column(csv_path: &std::path::Path, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(csv_path).unwrap_or_else(|e| panic!("{}: {e}", csv_path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let i = header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    lines.map(|l| l.split(',').nth(i).expect("cell").to_string()).collect()
}

#[test]
fn run_study_runs_the_model_analyses_with_the_study_files_parameters() {
    let (Some(_shared), Some(model)) = (common::shared(), common::model("smollm2-135m")) else { return };
    let dir = common::temp_dir("study-analyses");
    let path = dir.join("analyses.toml");
    let text = config_text(&model);
    std::fs::write(&path, &text).unwrap();
    let config = StudyConfig::parse(&text, &path, &polyprune::eval::registry(None)).unwrap();
    let out = StudyDir::new(dir.join("out"));

    let mut recorder = Recorder::default();
    let summary = run_study(&config, &text, &out, &RunOptions::default(), &mut recorder).unwrap();
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    // One step per analysis, as the log prints one line per step.
    assert_eq!(
        recorder.events,
        ["begin 2", "start smollm2/subspace", "end smollm2/subspace None", "start smollm2/neurons", "end smollm2/neurons None"]
    );
    assert_eq!(summary.analyses, vec!["smollm2/subspace".to_string(), "smollm2/neurons".to_string()]);

    let subspace = dir.join("out/analysis/subspace/subspace_summary.csv");
    // Dense and the one Wanda cell, each at block 1 only (`layers = [1]`).
    assert_eq!(column(&subspace, "block"), vec!["1", "1"]);
    // Retrieval among 4 parallel sentences is right by chance 1 time in 4 (`sentences = 4`).
    for chance in column(&subspace, "retrieval_chance") {
        assert!((chance.parse::<f64>().unwrap() - 0.25).abs() < 1e-12, "{chance}");
    }
    assert!(dir.join("out/analysis/neurons/section.json").is_file());

    // Everything is done: a second run computes nothing, analyses included.
    let again = run_study(&config, &text, &out, &RunOptions::default(), &mut Silent).unwrap();
    assert!(again.computed.is_empty() && again.analyses.is_empty(), "{again:?}");
}
