//! HellaSwag (Zellers et al., 2019), as translated by Okapi (Lai et al., 2023): an
//! activity, the start of a description, and four endings.
//!
//! Prompt, as in lm-evaluation-harness: `activity_label + ": " + ctx_a + " " + ctx_b`
//! with ctx_b's first letter upper-cased (the rest is kept as written, where Python's
//! `capitalize` would lower-case it), cleaned of WikiHow markup; each cleaned ending
//! is a continuation. Fields: `activity_label`, `ctx_a`, `ctx_b` (or a single `ctx`),
//! `endings` (list), `label` (index, as number or text).

use super::context::Ctx;
use super::error::Result;
use super::example::{Choice, Example, TaskItems};
use super::family::Family;
use super::kinds::{OutputType, TaskName};
use super::prompts::{clean_hellaswag, uppercase_first};
use super::records::{DataFile, Record};

/// The examples of one translated HellaSwag file.
pub(super) fn examples(ctx: &Ctx) -> Result<Vec<Example>> {
    let file = ctx.data_file()?;
    file.read_records(false)?.iter().map(|r| example(ctx, &file, r)).collect()
}

fn example(ctx: &Ctx, file: &DataFile, r: &Record) -> Result<Example> {
    let activity = r.text(file, &["activity_label"])?;
    let story = match (r.optional_text(&["ctx_a"]), r.optional_text(&["ctx_b"])) {
        (Some(a), Some(b)) => format!("{} {}", a.trim(), uppercase_first(b.trim())),
        _ => r.text(file, &["ctx"])?,
    };
    let context = clean_hellaswag(&format!("{}: {}", activity.trim(), story.trim()));
    let endings = r.text_list(file, &["endings"])?;
    let choices = endings.iter().map(|e| Choice::new(context.clone(), &ctx.spec.target_delimiter, &clean_hellaswag(e))).collect();
    let gold = r.index(file, &["label"])?;
    let key = r.optional_text(&["ind", "id"]).unwrap_or_else(|| format!("line{}", r.line));
    Example::new(ctx.id(key), gold, choices).map_err(|why| file.bad(r.line, why))
}

/// Translated HellaSwag in the family registry.
pub(super) struct MHellaswag;

impl Family for MHellaswag {
    fn task(&self) -> TaskName {
        TaskName::MHellaswag
    }

    fn output(&self) -> OutputType {
        OutputType::MultipleChoice
    }

    fn items(&self, ctx: &Ctx) -> Result<TaskItems> {
        Ok(TaskItems::Choice(examples(ctx)?))
    }
}
