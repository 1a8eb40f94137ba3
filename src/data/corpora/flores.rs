//! FLORES-200 sentences in the SIB-200 folder layout: `<root>/<flores code>/{train,dev,test}.tsv`,
//! and the one reader of that file format.
//!
//! Each TSV has the header `index_id<TAB>category<TAB>text` and one sentence per row (SIB-200,
//! Adelani et al., 2024: 701 / 99 / 204 rows a language). The same `index_id` names the same
//! sentence in every language. Calibration reads `train.tsv`, evaluation reads `test.tsv`;
//! `dev.tsv` is kept for few-shot prompts. The dataset's own split already separates the
//! sentences; the loader still checks that no `index_id` is in both train and test, so a damaged
//! copy cannot leak evaluation sentences into calibration.
//!
//! The files were written by pandas, which wraps a cell holding a `"` in quotes and doubles the
//! `"` inside (`"He said ""hi"""`). Calibration, perplexity, probes and the SIB-200 and FLORES
//! tasks all read through [`parse_rows`], so every consumer sees the same sentence for a row;
//! two readers once disagreed on those rows, and the share of quoted rows differs by language.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::text_file::read_utf8;
use super::{CorpusSplit, DataError, DataResult, Document, Language};

/// One of the three SIB-200 files of a language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloresPart {
    /// `train.tsv`: the calibration split.
    Train,
    /// `dev.tsv`: kept out of both splits, for few-shot examples.
    Dev,
    /// `test.tsv`: the evaluation split.
    Test,
}

impl FloresPart {
    fn file_name(self) -> &'static str {
        match self {
            FloresPart::Train => "train.tsv",
            FloresPart::Dev => "dev.tsv",
            FloresPart::Test => "test.tsv",
        }
    }

    fn of_split(split: CorpusSplit) -> FloresPart {
        match split {
            CorpusSplit::Calibration => FloresPart::Train,
            CorpusSplit::Evaluation => FloresPart::Test,
        }
    }
}

/// One SIB-200 row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloresRow {
    /// 1-based line of the file where the row starts, for error messages.
    pub line: usize,
    /// FLORES sentence id, shared across languages.
    pub index_id: String,
    /// SIB-200 topic label (one of the seven in `labels.txt`).
    pub category: String,
    /// The sentence.
    pub text: String,
}

/// Path of one part's TSV for a language.
pub fn part_path(root: &Path, language: Language, part: FloresPart) -> PathBuf {
    root.join(language.flores_code()).join(part.file_name())
}

/// Whether the folder holds this language.
pub(super) fn has_language(root: &Path, language: Language) -> bool {
    root.join(language.flores_code()).is_dir()
}

/// All rows of one part (train, dev or test) of a language.
pub fn read_rows(root: &Path, language: Language, part: FloresPart) -> DataResult<Vec<FloresRow>> {
    check_present(root, language)?;
    read_file(&part_path(root, language, part))
}

/// All rows of one SIB-200 TSV file.
pub fn read_file(path: &Path) -> DataResult<Vec<FloresRow>> {
    parse_rows(path, &read_utf8(path)?)
}

/// The documents (one per sentence, id = `index_id`) of a split.
pub(super) fn documents(root: &Path, language: Language, split: CorpusSplit) -> DataResult<Vec<Document>> {
    let calibration = read_rows(root, language, FloresPart::Train)?;
    let evaluation = read_rows(root, language, FloresPart::Test)?;
    check_disjoint(root, language, &calibration, &evaluation)?;
    let rows = match FloresPart::of_split(split) {
        FloresPart::Train => calibration,
        _ => evaluation,
    };
    Ok(rows.into_iter().map(row_document).collect())
}

/// The `dev.tsv` sentences, for few-shot examples; never part of either split.
pub fn few_shot_documents(root: &Path, language: Language) -> DataResult<Vec<Document>> {
    Ok(read_rows(root, language, FloresPart::Dev)?.into_iter().map(row_document).collect())
}

fn row_document(row: FloresRow) -> Document {
    Document { id: row.index_id, text: row.text }
}

fn check_present(root: &Path, language: Language) -> DataResult<()> {
    if !root.is_dir() {
        return Err(DataError::SourceNotInstalled {
            what: "SIB-200 (FLORES-200) folder".to_string(),
            path: root.to_path_buf(),
            fix: "point the source at the folder that holds <lang>/train.tsv, e.g. \
                  --source flores:../shared/data/sib200 (public copy: GitHub dadelani/sib-200, \
                  data/annotated/)"
                .to_string(),
        });
    }
    if !has_language(root, language) {
        return Err(DataError::SourceLacksLanguage {
            source_name: "flores".to_string(),
            language: language.to_string(),
            available: available_languages(root).iter().map(Language::to_string).collect::<Vec<_>>().join(", "),
            hint: missing_folder_hint(root, language),
        });
    }
    Ok(())
}

/// What to do when `root` lacks a table language: the folder to create.
pub(super) fn missing_folder_hint(root: &Path, language: Language) -> String {
    format!(
        "; to add it, create {} with train.tsv, dev.tsv and test.tsv (SIB-200's data/annotated/{language})",
        root.join(language.flores_code()).display()
    )
}

/// The table's languages that have a folder under `root`.
pub(super) fn available_languages(root: &Path) -> Vec<Language> {
    Language::all().filter(|&l| has_language(root, l)).collect()
}

fn check_disjoint(root: &Path, language: Language, calibration: &[FloresRow], evaluation: &[FloresRow]) -> DataResult<()> {
    let evaluation_ids: HashSet<&str> = evaluation.iter().map(|r| r.index_id.as_str()).collect();
    match calibration.iter().find(|r| evaluation_ids.contains(r.index_id.as_str())) {
        Some(shared) => Err(DataError::SplitOverlap {
            calibration: part_path(root, language, FloresPart::Train),
            evaluation: part_path(root, language, FloresPart::Test),
            id: shared.index_id.clone(),
        }),
        None => Ok(()),
    }
}

/// Parses a SIB-200 TSV; `path` only names the file in errors. Columns are found by their header
/// names; cells may be quoted pandas-style (a quoted cell may hold tabs, newlines and doubled
/// `""`). Cells are trimmed, and blank lines skipped.
pub fn parse_rows(path: &Path, content: &str) -> DataResult<Vec<FloresRow>> {
    let bad_row = |line: usize, problem: String| DataError::BadTsvRow { path: path.to_path_buf(), line, problem };
    // The line a record starts on, from its byte offset (csv counts a CRLF's '\n' late).
    let line_of = |position: Option<&csv::Position>| {
        position.map_or(0, |p| {
            let start = (p.byte() as usize).min(content.len());
            let start = start + content[start..].bytes().take_while(|b| matches!(b, b'\r' | b'\n')).count();
            1 + content.as_bytes()[..start].iter().filter(|&&b| b == b'\n').count()
        })
    };
    let mut reader = csv::ReaderBuilder::new().delimiter(b'\t').flexible(true).from_reader(content.as_bytes());
    let header = reader.headers().map_err(|e| bad_row(1, format!("unreadable header ({e})")))?.clone();
    if header.len() == 1 && header[0].trim().is_empty() {
        return Err(bad_row(1, "the file is empty".to_string()));
    }
    let column = |name: &str| header.iter().position(|h| h.trim() == name);
    let (Some(id_column), Some(category_column), Some(text_column)) = (column("index_id"), column("category"), column("text")) else {
        return Err(bad_row(1, format!("header is '{}'", header.iter().collect::<Vec<_>>().join("\t"))));
    };
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| bad_row(line_of(e.position()), format!("unreadable row ({e})")))?;
        let line = line_of(record.position());
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        if record.len() != header.len() {
            return Err(bad_row(
                line,
                format!("{} tab-separated columns under a header of {} (a text holding a tab must be quoted)", record.len(), header.len()),
            ));
        }
        let cell = |i: usize| record[i].trim().to_string();
        let row = FloresRow { line, index_id: cell(id_column), category: cell(category_column), text: cell(text_column) };
        if row.index_id.is_empty() || row.text.is_empty() {
            return Err(bad_row(line, "empty index_id or text".to_string()));
        }
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The SIB-200 copy the project's tests read (../shared/data/sib200 from the crate root).
    pub(crate) fn sib200_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/sib200")
    }

    fn language(code: &str) -> Language {
        Language::parse(code).unwrap()
    }

    #[test]
    fn every_sib200_folder_is_a_table_language() {
        let folders: BTreeSet<String> = std::fs::read_dir(sib200_root())
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(folders.len(), 27);
        for folder in &folders {
            assert_eq!(language(folder).flores_code(), folder.as_str());
        }
        let available: BTreeSet<String> = available_languages(&sib200_root()).iter().map(Language::to_string).collect();
        assert_eq!(available, folders);
    }

    #[test]
    fn reads_the_sib200_files_with_their_documented_sizes() {
        let root = sib200_root();
        let english = language("en");
        // Row counts from ../shared/data/README.md (and `wc -l` minus the header).
        assert_eq!(read_rows(&root, english, FloresPart::Train).unwrap().len(), 701);
        assert_eq!(read_rows(&root, english, FloresPart::Dev).unwrap().len(), 99);
        let test = documents(&root, english, CorpusSplit::Evaluation).unwrap();
        assert_eq!(test.len(), 204);
        let train = documents(&root, english, CorpusSplit::Calibration).unwrap();
        assert_eq!(train[0].id, "431");
        assert!(train[0].text.starts_with("Turkey is encircled by seas on three sides"));
        assert_eq!(few_shot_documents(&root, english).unwrap().len(), 99);
    }

    #[test]
    fn splits_are_disjoint_and_parallel_across_languages() {
        let root = sib200_root();
        let ids = |code: &str, split| -> BTreeSet<String> {
            documents(&root, language(code), split).unwrap().into_iter().map(|d| d.id).collect()
        };
        let calibration = ids("sw", CorpusSplit::Calibration);
        let evaluation = ids("sw", CorpusSplit::Evaluation);
        assert!(calibration.is_disjoint(&evaluation));
        assert_eq!(calibration.len() + evaluation.len(), 701 + 204);
        // Same sentence ids in every language: FLORES is a parallel corpus.
        assert_eq!(evaluation, ids("zh", CorpusSplit::Evaluation));
    }

    #[test]
    fn missing_language_and_missing_root_are_explained() {
        let message = documents(&sib200_root(), language("cat_Latn"), CorpusSplit::Calibration).unwrap_err().to_string();
        assert!(message.starts_with("source 'flores' has no text for cat_Latn; available: eng_Latn, "), "{message}");
        let message = documents(Path::new("/nonexistent/sib"), language("en"), CorpusSplit::Calibration).unwrap_err().to_string();
        assert!(message.contains("SIB-200 (FLORES-200) folder not found at /nonexistent/sib"), "{message}");
    }

    #[test]
    fn malformed_tsv_rows_name_file_and_line() {
        let path = Path::new("x/train.tsv");
        let good = parse_rows(path, "index_id\tcategory\ttext\r\n7\ttravel\t\"A\tB\"\n\n").unwrap();
        assert_eq!(good, vec![FloresRow { line: 2, index_id: "7".into(), category: "travel".into(), text: "A\tB".into() }]);
        let message = parse_rows(path, "index_id\tcategory\ttext\n1\ttravel\n").unwrap_err().to_string();
        assert!(message.starts_with("x/train.tsv line 2: 2 tab-separated columns under a header of 3"), "{message}");
        let message = parse_rows(path, "index_id\tcategory\ttext\n1\ttravel\tA\tB\n").unwrap_err().to_string();
        assert!(message.contains("a text holding a tab must be quoted"), "{message}");
        let message = parse_rows(path, "id\ttext\n").unwrap_err().to_string();
        assert!(message.starts_with("x/train.tsv line 1: header is 'id\ttext'"), "{message}");
    }

    #[test]
    fn pandas_quoting_is_undone() {
        let text = "index_id\tcategory\ttext\n\
            1\tscience\t\"He said \"\"Today Apple\"\" twice.\"\n\
            2\ttravel\tNo quotes at all.\n\
            3\ttravel\t\"\"\"Quoted\"\" whole.\"\n";
        let rows = parse_rows(Path::new("x/test.tsv"), text).unwrap();
        let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(texts, ["He said \"Today Apple\" twice.", "No quotes at all.", "\"Quoted\" whole."]);
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 3, 4]);
    }

    #[test]
    fn missing_language_says_which_folder_to_create() {
        let message = documents(&sib200_root(), language("fao_Latn"), CorpusSplit::Calibration).unwrap_err().to_string();
        assert!(message.contains("sib200/fao_Latn with train.tsv, dev.tsv and test.tsv"), "{message}");
    }

    #[test]
    fn overlapping_train_and_test_are_refused() {
        let row = |id: &str| FloresRow { line: 2, index_id: id.into(), category: "c".into(), text: "t".into() };
        let error = check_disjoint(Path::new("r"), language("en"), &[row("1"), row("2")], &[row("2")]);
        let message = error.unwrap_err().to_string();
        assert!(message.contains("both contain index_id 2"), "{message}");
    }
}
