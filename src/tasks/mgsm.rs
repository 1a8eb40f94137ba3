//! MGSM (Shi et al., 2022, "Language Models are Multilingual Chain-of-Thought
//! Reasoners"): 250 grade-school maths problems from GSM8K (Cobbe et al., 2021), human-
//! translated. Files are `question TAB answer` with no header.
//!
//! Direct-answer prompt: `question_prefix + question + "\n" + answer_prefix`, e.g.
//! `"Question: Janet’s ducks lay 16 eggs per day. ...\nAnswer:"`. Generation stops at a
//! blank line or at the next question prefix; the gold answer is kept canonicalised
//! (see answer.rs) and written after the target delimiter in demonstrations.

use super::answer::normalize_number;
use super::context::Ctx;
use super::error::Result;
use super::example::{GenerationExample, GenerationRequest, TaskItems};
use super::family::Family;
use super::kinds::{OutputType, TaskName};
use super::schema::{MgsmExtra, MgsmWords, Section};

/// The examples of one MGSM file.
pub(super) fn examples(ctx: &Ctx, section: &Section<MgsmWords, MgsmExtra>) -> Result<Vec<GenerationExample>> {
    // The language was resolved from this same table, so the entry exists.
    let words = &section.languages[&ctx.single().code];
    let until = vec!["\n\n".to_string(), words.question_prefix.trim().to_string()];
    let file = ctx.data_file()?;
    file.read_plain_tsv(2)?
        .into_iter()
        .map(|(line, cells)| {
            let gold = normalize_number(&cells[1])
                .ok_or_else(|| file.bad(line, format!("the answer column should be a number, found {:?}", cells[1])))?;
            let context = format!("{}{}\n{}", words.question_prefix, cells[0].trim(), words.answer_prefix);
            Ok(GenerationExample {
                id: ctx.id(format!("line{line}")),
                request: GenerationRequest { context, until: until.clone(), max_new_tokens: section.extra.max_new_tokens },
                gold,
                delimiter: ctx.spec.target_delimiter.clone(),
            })
        })
        .collect()
}

/// MGSM in the family registry.
pub(super) struct Mgsm;

impl Family for Mgsm {
    fn task(&self) -> TaskName {
        TaskName::Mgsm
    }

    fn output(&self) -> OutputType {
        OutputType::Generation
    }

    fn items(&self, ctx: &Ctx) -> Result<TaskItems> {
        Ok(TaskItems::Generation(examples(ctx, &ctx.catalog.file.mgsm)?))
    }
}
