//! SIB-200 (Adelani et al., 2024, "SIB-200: A Simple, Inclusive, and Big Evaluation
//! Dataset for Topic Classification in 200+ Languages"): FLORES-200 sentences labelled
//! with one of seven topics.
//!
//! Files are tab-separated with a header (`index_id`, `category`, `text`) and pandas-style
//! quoting. Each example scores the seven labels of `labels.txt`, in that file's order,
//! after the prompt template (by default `"Text: {text}\nTopic:"`).

use super::error::Result;
use super::example::{Choice, Example};
use super::load::Ctx;
use super::records::{DataFile, Record};
use super::spec::Sib200Extra;

/// One row of a SIB-200 file.
pub(super) struct Sib200Row {
    /// 1-based line of the row.
    pub line: usize,
    /// The FLORES sentence id, shared by all languages.
    pub index_id: String,
    /// Topic label.
    pub category: String,
    /// The sentence.
    pub text: String,
}

/// Reads a SIB-200 split file.
pub(super) fn read_rows(file: &DataFile) -> Result<Vec<Sib200Row>> {
    file.read_records(true)?.iter().map(|r| row(file, r)).collect()
}

fn row(file: &DataFile, r: &Record) -> Result<Sib200Row> {
    Ok(Sib200Row {
        line: r.line,
        index_id: r.text(file, &["index_id"])?,
        category: r.text(file, &["category"])?,
        text: r.text(file, &["text"])?,
    })
}

/// The examples of one SIB-200 split.
pub(super) fn examples(ctx: &Ctx, extra: &Sib200Extra) -> Result<Vec<Example>> {
    let labels = read_labels(&ctx.layout_file(extra.labels_file.clone()))?;
    let file = ctx.data_file()?;
    read_rows(&file)?
        .iter()
        .map(|row| {
            let gold = labels
                .iter()
                .position(|l| *l == row.category)
                .ok_or_else(|| file.bad(row.line, format!("category {:?} is not in labels.txt ({})", row.category, labels.join(", "))))?;
            let context = extra.template.render(&[("text", row.text.trim())]);
            let choices = labels.iter().map(|l| Choice::new(context.clone(), &ctx.spec.target_delimiter, l)).collect();
            Example::new(ctx.id(&row.index_id), gold, choices).map_err(|why| file.bad(row.line, why))
        })
        .collect()
}

fn read_labels(file: &DataFile) -> Result<Vec<String>> {
    let labels: Vec<String> = file.read_lines()?.into_iter().map(|(_, l)| l.trim().to_string()).collect();
    if labels.len() < 2 {
        return Err(file.too_few(format!("{} label(s); SIB-200 has seven, one per line", labels.len())));
    }
    Ok(labels)
}
