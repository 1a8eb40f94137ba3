//! XNLI (Conneau et al., 2018, "XNLI: Evaluating Cross-lingual Sentence
//! Representations"): premise, hypothesis and a label entailment/neutral/contradiction.
//!
//! Prompt, after lm-evaluation-harness: the premise, without its final punctuation,
//! followed by a tag question (", right?") is the context; the three continuations are
//! the delimiter, the word for yes / also / no, and the hypothesis:
//! `"The cat sat, right?" + " " + "Yes, An animal sat."`. The harness keeps the premise's
//! full stop ("sat., right?"); dropping it reads as the language does. The harness also
//! scores the whole string from an empty context; since premise and tag are common to
//! all three choices, the argmax (acc) is the same either way.
//!
//! Read from JSON Lines/JSON (`premise`, `hypothesis`, `label` as 0/1/2 or as a word) or
//! from TSV with a header; the original XNLI-1.0 TSV (`language`, `gold_label`,
//! `sentence1`, `sentence2`, all languages in one file) also loads: rows of other
//! languages are skipped.

use super::context::Ctx;
use super::error::Result;
use super::example::{Choice, Example, TaskItems};
use super::family::Family;
use super::kinds::{OutputType, TaskName};
use super::prompts::strip_final_punctuation;
use super::records::{DataFile, Record};
use super::schema::{NoExtra, Section, XnliWords};

/// The examples of one XNLI file, in the resolved language.
pub(super) fn examples(ctx: &Ctx, section: &Section<XnliWords, NoExtra>) -> Result<Vec<Example>> {
    let code = &ctx.single().code;
    // The language was resolved from this same table, so the entry exists.
    let words = &section.languages[code];
    let file = ctx.data_file()?;
    file.read_records(false)?
        .iter()
        .filter(|r| r.optional_text(&["language"]).is_none_or(|l| l == *code))
        .map(|r| example(ctx, &file, words, r))
        .collect()
}

fn example(ctx: &Ctx, file: &DataFile, words: &XnliWords, r: &Record) -> Result<Example> {
    let premise = r.text(file, &["premise", "sentence1"])?;
    let hypothesis = r.text(file, &["hypothesis", "sentence2"])?;
    let gold = label(file, r)?;
    let context = format!("{}{}", strip_final_punctuation(&premise), words.tag);
    let choices = [&words.yes, &words.also, &words.no]
        .iter()
        .map(|word| Choice::new(context.clone(), &ctx.spec.target_delimiter, &format!("{word}{}", hypothesis.trim())))
        .collect();
    let key = r.optional_text(&["id", "pairID"]).unwrap_or_else(|| format!("line{}", r.line));
    Example::new(ctx.id(key), gold, choices).map_err(|why| file.bad(r.line, why))
}

fn label(file: &DataFile, r: &Record) -> Result<usize> {
    let text = r.text(file, &["label", "gold_label"])?;
    match text.trim() {
        "0" | "entailment" => Ok(0),
        "1" | "neutral" => Ok(1),
        "2" | "contradiction" => Ok(2),
        other => Err(file.bad(r.line, format!("label must be 0/1/2 or entailment/neutral/contradiction, found {other:?}"))),
    }
}

/// XNLI in the family registry.
pub(super) struct Xnli;

impl Family for Xnli {
    fn task(&self) -> TaskName {
        TaskName::Xnli
    }

    fn output(&self) -> OutputType {
        OutputType::MultipleChoice
    }

    fn items(&self, ctx: &Ctx) -> Result<TaskItems> {
        Ok(TaskItems::Choice(examples(ctx, &ctx.catalog.file.xnli)?))
    }
}
