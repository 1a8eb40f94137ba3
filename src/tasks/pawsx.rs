//! PAWS-X (Yang et al., 2019, "PAWS-X: A Cross-lingual Adversarial Dataset for
//! Paraphrase Identification"): two sentences and whether they are paraphrases.
//!
//! Prompt, after lm-evaluation-harness: sentence1, without its final punctuation (the
//! harness keeps it), plus a tag question is the context;
//! the continuations are delimiter + "No, " + sentence2 and delimiter + "Yes, " +
//! sentence2, in that order so the choice index equals the label (1 = paraphrase).
//! Published files are TSV with a header `id sentence1 sentence2 label`, unquoted.

use super::context::Ctx;
use super::error::Result;
use super::example::{Choice, Example, TaskItems};
use super::family::Family;
use super::kinds::{OutputType, TaskName};
use super::prompts::strip_final_punctuation;
use super::records::{DataFile, Record};
use super::schema::{NoExtra, PawsxWords, Section};

/// The examples of one PAWS-X file.
pub(super) fn examples(ctx: &Ctx, section: &Section<PawsxWords, NoExtra>) -> Result<Vec<Example>> {
    // The language was resolved from this same table, so the entry exists.
    let words = &section.languages[&ctx.single().code];
    let file = ctx.data_file()?;
    file.read_records(false)?.iter().map(|r| example(ctx, &file, words, r)).collect()
}

fn example(ctx: &Ctx, file: &DataFile, words: &PawsxWords, r: &Record) -> Result<Example> {
    let first = r.text(file, &["sentence1"])?;
    let second = r.text(file, &["sentence2"])?;
    let gold = r.index(file, &["label"])?;
    let context = format!("{}{}", strip_final_punctuation(&first), words.tag);
    let choices = [&words.no, &words.yes]
        .iter()
        .map(|word| Choice::new(context.clone(), &ctx.spec.target_delimiter, &format!("{word}{}", second.trim())))
        .collect();
    let key = r.optional_text(&["id"]).unwrap_or_else(|| format!("line{}", r.line));
    Example::new(ctx.id(key), gold, choices).map_err(|why| file.bad(r.line, why))
}

/// PAWS-X in the family registry.
pub(super) struct Pawsx;

impl Family for Pawsx {
    fn task(&self) -> TaskName {
        TaskName::Pawsx
    }

    fn output(&self) -> OutputType {
        OutputType::MultipleChoice
    }

    fn items(&self, ctx: &Ctx) -> Result<TaskItems> {
        Ok(TaskItems::Choice(examples(ctx, &ctx.catalog.file.pawsx)?))
    }
}
