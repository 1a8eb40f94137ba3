//! SIB-200 (Adelani et al., 2024, "SIB-200: A Simple, Inclusive, and Big Evaluation
//! Dataset for Topic Classification in 200+ Languages"): FLORES-200 sentences labelled
//! with one of seven topics.
//!
//! The files are read by the data layer's SIB-200 reader (`data::corpora::flores`), the same
//! one calibration and perplexity use, so a sentence is the same text in every role. Each
//! example scores the seven labels of `labels.txt`, in that file's order, after the prompt
//! template (by default `"Text: {text}\nTopic:"`).

use super::context::Ctx;
use super::error::Result;
use super::example::{Choice, Example, TaskItems};
use super::family::Family;
use super::kinds::{OutputType, TaskName};
use super::records::DataFile;
use super::schema::Sib200Extra;
use crate::data::corpora::flores::{self, FloresRow};
use crate::data::DataError;

/// Reads a SIB-200 split file through the data layer's reader; problems name the task's file.
pub(super) fn read_rows(file: &DataFile) -> Result<Vec<FloresRow>> {
    let text = file.read_text()?;
    flores::parse_rows(&file.path, &text).map_err(|e| match e {
        DataError::BadTsvRow { line, problem, .. } => file.bad(line, problem),
        other => file.bad(0, other.to_string()),
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

/// SIB-200 in the family registry.
pub(super) struct Sib200;

impl Family for Sib200 {
    fn task(&self) -> TaskName {
        TaskName::Sib200
    }

    fn output(&self) -> OutputType {
        OutputType::MultipleChoice
    }

    fn items(&self, ctx: &Ctx) -> Result<TaskItems> {
        Ok(TaskItems::Choice(examples(ctx, &ctx.catalog.file.sib200.extra)?))
    }
}
