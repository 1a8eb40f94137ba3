//! Reading data files into records, keeping line numbers for error messages.
//!
//! One reader serves every format family: JSON Lines, a JSON array of objects, and
//! tab-separated files with or without a header. Each record becomes a map from field
//! name to JSON value (TSV cells become strings), and loaders ask for fields by the
//! names the published releases use, listing aliases where releases disagree.

use std::path::PathBuf;

use serde_json::{Map, Value};

use super::error::{Result, TaskError};
use super::kinds::TaskName;

/// A data file being read: its path and the task it belongs to (for error messages).
#[derive(Debug, Clone)]
pub struct DataFile {
    /// Path of the file.
    pub path: PathBuf,
    /// Task the file belongs to.
    pub task: TaskName,
}

impl DataFile {
    /// A data file of `task` at `path`.
    pub fn new(path: impl Into<PathBuf>, task: TaskName) -> Self {
        Self { path: path.into(), task }
    }

    /// Error for a bad record at 1-based `line`.
    pub fn bad(&self, line: usize, problem: impl Into<String>) -> TaskError {
        TaskError::BadRecord { path: self.path.clone(), line, task: self.task.to_string(), problem: problem.into() }
    }

    /// Error for a file that has too few usable records.
    pub fn too_few(&self, problem: impl Into<String>) -> TaskError {
        TaskError::TooFewRecords { path: self.path.clone(), task: self.task.to_string(), problem: problem.into() }
    }

    /// The whole file as UTF-8 text.
    pub fn read_text(&self) -> Result<String> {
        let bytes = std::fs::read(&self.path).map_err(|source| TaskError::MissingFile {
            path: self.path.clone(),
            task: self.task.to_string(),
            source,
        })?;
        String::from_utf8(bytes).map_err(|e| {
            let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()].iter().filter(|&&b| b == b'\n').count();
            self.bad(line, "the text is not valid UTF-8")
        })
    }

    /// Non-empty lines with their 1-based numbers, for line-aligned files.
    pub fn read_lines(&self) -> Result<Vec<(usize, String)>> {
        Ok(numbered_lines(&self.read_text()?).map(|(n, l)| (n, l.to_string())).collect())
    }

    /// Every line with its 1-based number, blank ones included, for files whose lines are
    /// aligned with another file's (a final newline adds no line).
    pub fn read_aligned_lines(&self) -> Result<Vec<(usize, String)>> {
        let text = self.read_text()?;
        Ok(text.lines().enumerate().map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l).to_string())).collect())
    }

    /// Rows of a tab-separated file without header and without quoting.
    pub fn read_plain_tsv(&self, columns: usize) -> Result<Vec<(usize, Vec<String>)>> {
        let text = self.read_text()?;
        numbered_lines(&text)
            .map(|(n, line)| {
                let cells: Vec<String> = line.split('\t').map(str::to_string).collect();
                if cells.len() == columns {
                    Ok((n, cells))
                } else {
                    Err(self.bad(n, format!("expected {columns} tab-separated columns, found {}", cells.len())))
                }
            })
            .collect()
    }

    /// Records of a file whose format follows from its content: a JSON array, JSON
    /// Lines, or (for `.tsv`) tab-separated columns under a header row. `quoted` says
    /// whether TSV cells may be wrapped in double quotes (pandas writes them so).
    pub fn read_records(&self, quoted: bool) -> Result<Vec<Record>> {
        let is_tsv = self.path.extension().is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
        if is_tsv {
            return if quoted { self.quoted_tsv_records() } else { self.plain_tsv_records() };
        }
        let text = self.read_text()?;
        if text.trim_start().starts_with('[') {
            self.json_array_records(&text)
        } else {
            self.json_lines_records(&text)
        }
    }

    fn json_lines_records(&self, text: &str) -> Result<Vec<Record>> {
        numbered_lines(text)
            .map(|(n, line)| match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(fields)) => Ok(Record { line: n, fields }),
                Ok(_) => Err(self.bad(n, "expected a JSON object on this line")),
                Err(e) => Err(self.bad(n, format!("not valid JSON ({e})"))),
            })
            .collect()
    }

    fn json_array_records(&self, text: &str) -> Result<Vec<Record>> {
        let items: Vec<Value> = serde_json::from_str(text).map_err(|e| self.bad(e.line(), format!("not a valid JSON array ({e})")))?;
        // A JSON array gives no per-record line; the position in the array stands in.
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(fields) => Ok(Record { line: i + 1, fields }),
                _ => Err(self.bad(i + 1, format!("array item {} is not a JSON object", i + 1))),
            })
            .collect()
    }

    fn plain_tsv_records(&self) -> Result<Vec<Record>> {
        let text = self.read_text()?;
        let mut lines = numbered_lines(&text);
        let Some((_, header)) = lines.next() else {
            return Err(self.too_few("the file is empty; a header row and data rows are needed"));
        };
        let names: Vec<&str> = header.split('\t').map(str::trim).collect();
        lines
            .map(|(n, line)| {
                let cells: Vec<&str> = line.split('\t').collect();
                if cells.len() != names.len() {
                    return Err(self.bad(n, format!("{} columns under a header of {}", cells.len(), names.len())));
                }
                let fields = names.iter().zip(cells).map(|(k, v)| (k.to_string(), Value::String(v.to_string())));
                Ok(Record { line: n, fields: fields.collect() })
            })
            .collect()
    }

    fn quoted_tsv_records(&self) -> Result<Vec<Record>> {
        let text = self.read_text()?;
        let mut reader = csv::ReaderBuilder::new().delimiter(b'\t').has_headers(true).from_reader(text.as_bytes());
        let names: Vec<String> =
            reader.headers().map_err(|e| self.bad(1, format!("unreadable header ({e})")))?.iter().map(|h| h.trim().to_string()).collect();
        let mut records = Vec::new();
        for row in reader.records() {
            let row = row.map_err(|e| {
                let line = e.position().map_or(0, |p| p.line() as usize);
                self.bad(line, format!("unreadable row ({e})"))
            })?;
            let line = row.position().map_or(0, |p| p.line() as usize);
            if row.len() != names.len() {
                return Err(self.bad(line, format!("{} columns under a header of {}", row.len(), names.len())));
            }
            let fields = names.iter().zip(row.iter()).map(|(k, v)| (k.clone(), Value::String(v.to_string())));
            records.push(Record { line, fields: fields.collect() });
        }
        Ok(records)
    }
}

/// Non-blank lines with 1-based numbers; a trailing '\r' is dropped.
fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l))).filter(|(_, l)| !l.trim().is_empty())
}

/// One record of a data file.
#[derive(Debug, Clone)]
pub struct Record {
    /// 1-based line (or array position) of the record.
    pub line: usize,
    /// Field name to value.
    pub fields: Map<String, Value>,
}

impl Record {
    /// The first present field among `names`, as text (numbers are written out).
    pub fn text(&self, file: &DataFile, names: &[&str]) -> Result<String> {
        let value = self.value(file, names)?;
        scalar_text(value).ok_or_else(|| file.bad(self.line, format!("field '{}' is not text", names[0])))
    }

    /// Like [`Record::text`] but `None` when none of the names is present.
    pub fn optional_text(&self, names: &[&str]) -> Option<String> {
        names.iter().find_map(|n| self.fields.get(*n)).and_then(scalar_text)
    }

    /// The first present field among `names`, as a non-negative integer (also from text).
    pub fn index(&self, file: &DataFile, names: &[&str]) -> Result<usize> {
        let text = self.text(file, names)?;
        text.trim()
            .parse::<usize>()
            .map_err(|_| file.bad(self.line, format!("field '{}' should be a whole number, found {text:?}", names[0])))
    }

    /// The first present field among `names`, as a list of texts.
    pub fn text_list(&self, file: &DataFile, names: &[&str]) -> Result<Vec<String>> {
        match self.value(file, names)? {
            Value::Array(items) => items
                .iter()
                .map(|v| scalar_text(v).ok_or_else(|| file.bad(self.line, format!("'{}' holds a non-text item", names[0]))))
                .collect(),
            _ => Err(file.bad(self.line, format!("field '{}' should be a list", names[0]))),
        }
    }

    /// The raw value of the first present field among `names`.
    pub fn value(&self, file: &DataFile, names: &[&str]) -> Result<&Value> {
        names.iter().find_map(|n| self.fields.get(*n)).ok_or_else(|| {
            let wanted = names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(" or ");
            file.bad(self.line, format!("missing field {wanted}"))
        })
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(name: &str, text: &str) -> (tempfile::TempDir, DataFile) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, DataFile::new(path, TaskName::Xnli))
    }

    #[test]
    fn json_lines_keep_their_line_numbers_across_blank_lines() {
        let (_d, f) = file_with("a.jsonl", "{\"x\": 1}\n\n{\"x\": \"two\"}\n");
        let recs = f.read_records(false).unwrap();
        assert_eq!(recs.iter().map(|r| r.line).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(recs[0].text(&f, &["x"]).unwrap(), "1");
        assert_eq!(recs[1].text(&f, &["y", "x"]).unwrap(), "two");
    }

    #[test]
    fn broken_json_names_file_line_and_fix() {
        let (_d, f) = file_with("a.jsonl", "{\"x\": 1}\n{\"x\": \n");
        let err = f.read_records(false).unwrap_err().to_string();
        assert!(err.contains("a.jsonl, line 2: not valid JSON"), "{err}");
        assert!(err.contains("polyprune data fetch xnli"), "{err}");
    }

    #[test]
    fn missing_field_lists_the_aliases() {
        let (_d, f) = file_with("a.jsonl", "{\"x\": 1}\n");
        let recs = f.read_records(false).unwrap();
        let err = recs[0].text(&f, &["premise", "sentence1"]).unwrap_err().to_string();
        assert!(err.contains("line 1: missing field 'premise' or 'sentence1'"), "{err}");
    }

    #[test]
    fn quoted_and_plain_tsv_differ_only_in_quote_handling() {
        let text = "id\ttext\n1\t\"\"\"Hi,\"\" she said.\"\n";
        let (_d, f) = file_with("a.tsv", text);
        let quoted = f.read_records(true).unwrap();
        assert_eq!(quoted[0].text(&f, &["text"]).unwrap(), "\"Hi,\" she said.");
        assert_eq!(quoted[0].line, 2);
        let plain = f.read_records(false).unwrap();
        assert_eq!(plain[0].text(&f, &["text"]).unwrap(), "\"\"\"Hi,\"\" she said.\"");
    }

    #[test]
    fn json_array_positions_stand_in_for_lines() {
        let (_d, f) = file_with("a.json", "[{\"a\": [\"p\", \"q\"]}, 3]");
        let err = f.read_records(false).unwrap_err().to_string();
        assert!(err.contains("line 2: array item 2 is not a JSON object"), "{err}");
    }

    #[test]
    fn missing_file_points_to_fetch() {
        let f = DataFile::new("/nonexistent/xcopa/val.it.jsonl", TaskName::Xcopa);
        let err = f.read_text().unwrap_err().to_string();
        assert!(err.starts_with("cannot read data file /nonexistent/xcopa/val.it.jsonl"), "{err}");
        assert!(err.ends_with("run `polyprune data fetch xcopa` or copy the file there by hand"), "{err}");
    }
}
