//! XCOPA (Ponti et al., 2020, "XCOPA: A Multilingual Dataset for Causal Commonsense
//! Reasoning"): a premise, a question (cause or effect) and two alternatives.
//!
//! Prompt, as in lm-evaluation-harness: the premise loses its final punctuation and is
//! followed by the language's connector ("because" for a cause, "therefore" for an
//! effect), then each alternative with a lower-cased first letter:
//! `"L'uomo aprì il rubinetto quindi" + " " + "il gabinetto si riempì d'acqua."`

use super::context::Ctx;
use super::error::Result;
use super::example::{Choice, Example, TaskItems};
use super::family::Family;
use super::kinds::{OutputType, TaskName};
use super::prompts::{lowercase_first, strip_final_punctuation};
use super::records::{DataFile, Record};
use super::schema::{NoExtra, Section, XcopaWords};

/// The examples of one XCOPA file (fields `premise`, `choice1`, `choice2`, `question`,
/// `label`, `idx`).
pub(super) fn examples(ctx: &Ctx, section: &Section<XcopaWords, NoExtra>) -> Result<Vec<Example>> {
    let language = ctx.single();
    // The language was resolved from this same table, so the entry exists.
    let words = &section.languages[&language.code];
    let file = ctx.data_file()?;
    file.read_records(false)?.iter().map(|r| example(ctx, &file, words, r)).collect()
}

fn example(ctx: &Ctx, file: &DataFile, words: &XcopaWords, r: &Record) -> Result<Example> {
    let premise = r.text(file, &["premise"])?;
    let connector = match r.text(file, &["question"])?.trim() {
        "cause" => &words.cause,
        "effect" => &words.effect,
        other => return Err(file.bad(r.line, format!("question must be 'cause' or 'effect', found {other:?}"))),
    };
    let context = format!("{} {connector}", strip_final_punctuation(&premise));
    let delimiter = &ctx.spec.target_delimiter;
    let choices = ["choice1", "choice2"]
        .iter()
        .map(|field| Ok(Choice::new(context.clone(), delimiter, &lowercase_first(r.text(file, &[field])?.trim()))))
        .collect::<Result<Vec<_>>>()?;
    let key = r.optional_text(&["idx"]).unwrap_or_else(|| format!("line{}", r.line));
    let gold = r.index(file, &["label"])?;
    Example::new(ctx.id(key), gold, choices).map_err(|why| file.bad(r.line, why))
}

/// XCOPA in the family registry.
pub(super) struct Xcopa;

impl Family for Xcopa {
    fn task(&self) -> TaskName {
        TaskName::Xcopa
    }

    fn output(&self) -> OutputType {
        OutputType::MultipleChoice
    }

    fn items(&self, ctx: &Ctx) -> Result<TaskItems> {
        Ok(TaskItems::Choice(examples(ctx, &ctx.catalog.file.xcopa)?))
    }
}
