//! Any local text file as a source: plain text, one document per paragraph or per line (JSON
//! lines and Parquet are record sources, see `records`).
//!
//! A file carries no language tag; it holds whatever language the caller says it does. Document
//! ids are `<file name>:<line>` (the first line of the paragraph). The split rule is keyed on
//! the *text*, not the id, so repeated paragraphs (boilerplate, headers) always fall in the
//! same split and cannot leak from calibration into evaluation.

use std::path::Path;

use super::split_rule::SplitRule;
use super::text_file::read_utf8;
use super::{CorpusSplit, DataResult, Document};

/// How a file is cut into documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileFormat {
    /// Plain text; paragraphs are separated by blank lines.
    Paragraphs,
    /// Plain text; every non-blank line is a document.
    Lines,
}

/// The documents of the file that `rule` assigns to `split`.
pub(super) fn documents(path: &Path, format: &FileFormat, split: CorpusSplit, rule: &SplitRule) -> DataResult<Vec<Document>> {
    let all = parse_documents(path, &read_utf8(path)?, format)?;
    Ok(all.into_iter().filter(|d| rule.assign(&d.text) == split).collect())
}

/// Every document of `content`; `path` names the file in ids and errors.
pub fn parse_documents(path: &Path, content: &str, format: &FileFormat) -> DataResult<Vec<Document>> {
    let file_name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let lines = content.lines().enumerate().map(|(i, line)| (i + 1, line.trim_end()));
    let pieces: Vec<(usize, String)> = match format {
        FileFormat::Paragraphs => paragraphs(lines),
        FileFormat::Lines => lines.filter(|(_, l)| !l.is_empty()).map(|(n, l)| (n, l.to_string())).collect(),
    };
    Ok(pieces
        .into_iter()
        .filter(|(_, text)| !text.trim().is_empty())
        .map(|(line, text)| Document { id: format!("{file_name}:{line}"), text })
        .collect())
}

/// Blank-line-separated paragraphs with the line number each starts on; lines inside a
/// paragraph keep their line breaks.
fn paragraphs<'a>(lines: impl Iterator<Item = (usize, &'a str)>) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (number, line) in lines {
        match (&mut current, line.trim().is_empty()) {
            (Some(_), true) => found.extend(current.take()),
            (None, true) => {}
            (Some((_, text)), false) => {
                text.push('\n');
                text.push_str(line);
            }
            (None, false) => current = Some((number, line.to_string())),
        }
    }
    found.extend(current);
    found
}

#[cfg(test)]
mod tests {
    use super::super::test_files::TempFile;
    use super::*;

    fn texts(documents: &[Document]) -> Vec<&str> {
        documents.iter().map(|d| d.text.as_str()).collect()
    }

    #[test]
    fn paragraphs_are_separated_by_blank_lines() {
        let content = "\nFirst line\nsecond line\r\n\n  \nNext para\n\n\nLast";
        let documents = parse_documents(Path::new("dir/notes.txt"), content, &FileFormat::Paragraphs).unwrap();
        assert_eq!(texts(&documents), vec!["First line\nsecond line", "Next para", "Last"]);
        let ids: Vec<&str> = documents.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, vec!["notes.txt:2", "notes.txt:6", "notes.txt:9"]);
    }

    #[test]
    fn lines_format_gives_one_document_per_non_blank_line() {
        let documents = parse_documents(Path::new("l.txt"), "a\n\n b \nc", &FileFormat::Lines).unwrap();
        assert_eq!(texts(&documents), vec!["a", " b", "c"]);
        assert_eq!(documents[2].id, "l.txt:4");
    }

    #[test]
    fn file_splits_are_disjoint_and_identical_texts_stay_together() {
        let mut content = String::new();
        for i in 0..200 {
            content.push_str(&format!("Paragraph number {i}.\n\nRepeated boilerplate.\n\n"));
        }
        let file = TempFile::with_bytes("many.txt", content.as_bytes());
        let rule = SplitRule::default();
        let calibration = documents(file.path(), &FileFormat::Paragraphs, CorpusSplit::Calibration, &rule).unwrap();
        let evaluation = documents(file.path(), &FileFormat::Paragraphs, CorpusSplit::Evaluation, &rule).unwrap();
        assert_eq!(calibration.len() + evaluation.len(), 400);
        let calibration_ids: std::collections::HashSet<&str> = calibration.iter().map(|d| d.id.as_str()).collect();
        assert!(evaluation.iter().all(|d| !calibration_ids.contains(d.id.as_str())));
        let boilerplate_in = |docs: &[Document]| docs.iter().filter(|d| d.text == "Repeated boilerplate.").count();
        // All 200 copies land on one side, whichever it is.
        assert!([0, 200].contains(&boilerplate_in(&calibration)));
        assert_eq!(boilerplate_in(&calibration) + boilerplate_in(&evaluation), 200);
    }
}
