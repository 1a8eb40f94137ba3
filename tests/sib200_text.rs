//! One sentence, one text: calibration, perplexity and the SIB-200 / FLORES tasks must read the
//! same bytes for every row of every language of the shared SIB-200 copy, and that text must be
//! what an independent RFC 4180 reading of the file gives (pandas-quoted rows unwrapped, `""`
//! undone). Two readers once disagreed on exactly those rows, and their share differs by language.

mod common;

use std::path::{Path, PathBuf};

use polyprune::data::{CorpusSplit, Language, TextRegistry};
use polyprune::eval::text_sets::{evaluation_sets, registry};
use polyprune::tasks::{load, LoadOptions, TaskItems, TaskName};

/// `../shared`, or `None` after saying why; under `CI=true` a missing prerequisite fails.
fn shared_or_skip() -> Option<PathBuf> {
    let shared = common::shared();
    assert!(shared.is_some() || std::env::var("CI").as_deref() != Ok("true"), "CI=true: ../shared/data is required");
    shared
}

fn languages(root: &Path) -> Vec<String> {
    let mut codes: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("test.tsv").is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    codes.sort();
    codes
}

/// (index_id, text) of a split file by the independent reader in tests/common.
fn independent(root: &Path, lang: &str, split: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root.join(lang).join(format!("{split}.tsv"))).unwrap();
    let rows = common::rfc4180_rows(&text, '\t');
    let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
    let (id, sentence) = (col("index_id"), col("text"));
    rows[1..].iter().map(|r| (r[id].trim().to_string(), r[sentence].trim().to_string())).collect()
}

/// (index_id, raw text cell) of the rows whose text cell is quoted in the file.
fn quoted_cells(root: &Path, lang: &str, split: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root.join(lang).join(format!("{split}.tsv"))).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut cells = line.trim_end_matches('\r').splitn(3, '\t');
            let (id, _, cell) = (cells.next()?, cells.next()?, cells.next()?);
            cell.starts_with('"').then(|| (id.to_string(), cell.to_string()))
        })
        .collect()
}

fn sib200_texts(data: &Path, lang: &str, split: polyprune::tasks::TaskSplit) -> Vec<(String, String)> {
    let loaded = load(TaskName::Sib200, lang, data, &LoadOptions { split, ..LoadOptions::default() }).unwrap();
    let TaskItems::Choice(examples) = loaded.items else { panic!("sib200 gives choices") };
    examples
        .into_iter()
        .map(|e| {
            let context = e.choices[0].context();
            let text = context.strip_prefix("Text: ").and_then(|c| c.strip_suffix("\nTopic:")).expect("the sib200 template");
            (e.id.rsplit('/').next().unwrap().to_string(), text.to_string())
        })
        .collect()
}

#[test]
fn calibration_perplexity_and_tasks_read_identical_text_for_every_row() {
    let Some(shared) = shared_or_skip() else { return };
    let data = shared.join("data");
    let root = data.join("sib200");
    let registry: TextRegistry = registry(Some(&root));
    let flores = registry.source("flores").unwrap();
    let (mut rows, mut quoted) = (0, 0);
    for lang in languages(&root) {
        let language = Language::parse(&lang).unwrap();
        // Calibration reads train.tsv, perplexity test.tsv, both through the registry.
        let calibration = registry.documents(language, &flores, CorpusSplit::Calibration).unwrap();
        let perplexity = &evaluation_sets(std::slice::from_ref(&lang), Some("flores"), &registry).unwrap()[0].documents;
        for (split, data_side) in
            [("train", calibration.iter().map(|d| (d.id.clone(), d.text.clone())).collect::<Vec<_>>()), ("test", perplexity.clone())]
        {
            let reference = independent(&root, &lang, split);
            assert_eq!(data_side, reference, "{lang} {split}: data layer vs independent reader");
            let task_side = sib200_texts(&data, &lang, split.parse().unwrap());
            assert_eq!(task_side, reference, "{lang} {split}: sib200 task vs independent reader");
            let by_id: std::collections::HashMap<&str, &str> = reference.iter().map(|(i, t)| (i.as_str(), t.as_str())).collect();
            for (id, cell) in quoted_cells(&root, &lang, split) {
                // Outer quotes gone, inner "" back to ".
                let unquoted = cell.strip_prefix('"').and_then(|c| c.strip_suffix('"')).expect("a quoted cell ends with a quote");
                assert_eq!(by_id[id.as_str()], unquoted.replace("\"\"", "\"").trim(), "{lang} {split} {id}");
                assert_ne!(by_id[id.as_str()], cell.trim(), "{lang} {split} {id}: the raw cell came through");
                quoted += 1;
            }
            rows += reference.len();
        }
        // dev.tsv: the few-shot pool, read by the task loader.
        let dev = sib200_texts(&data, &lang, polyprune::tasks::TaskSplit::Dev);
        assert_eq!(dev, independent(&root, &lang, "dev"), "{lang} dev");
    }
    assert!(rows > 20_000, "{rows} rows read");
    assert!(quoted > 800, "only {quoted} quoted rows seen");
    // The row the bug report quoted, by hand.
    let english = independent(&root, "eng_Latn", "test");
    let apple = &english.iter().find(|(id, _)| id == "61").unwrap().1;
    assert!(apple.starts_with("During his 2 hour speech he stated that \"Today Apple is going"), "{apple}");
    assert!(apple.ends_with("history today\"."), "{apple}");
}

#[test]
fn flores_translation_pairs_use_the_same_text() {
    let Some(shared) = shared_or_skip() else { return };
    let data = shared.join("data");
    let loaded = load(TaskName::Flores, "eng_Latn-por_Latn", &data, &LoadOptions::default()).unwrap();
    let TaskItems::Choice(examples) = loaded.items else { panic!("flores gives choices") };
    let english: std::collections::HashMap<String, String> = independent(&data.join("sib200"), "eng_Latn", "test").into_iter().collect();
    for e in &examples {
        let id = e.id.rsplit('/').next().unwrap();
        let expected = format!("English: {}\nPortuguese:", english[id]);
        assert_eq!(e.choices[0].context(), expected);
    }
}
