//! Belebele (Bandarkar et al., 2024, "The Belebele Benchmark: a Parallel Reading
//! Comprehension Dataset in 122 Language Variants"): a FLORES passage, a question and
//! four answers, one right.
//!
//! Prompt, as in lm-evaluation-harness: passage, question and the four answers labelled
//! A-D in the prompt, then "Answer:"; the continuations are the letters. Published files
//! are JSON Lines named by FLORES code, with `flores_passage`, `question`,
//! `mc_answer1`..`mc_answer4` and `correct_answer_num` (1-4).

use super::context::Ctx;
use super::error::Result;
use super::example::{Choice, Example, TaskItems};
use super::family::Family;
use super::kinds::{OutputType, TaskName};
use super::records::{DataFile, Record};
use super::schema::BelebeleExtra;

const ANSWERS: [&str; 4] = ["mc_answer1", "mc_answer2", "mc_answer3", "mc_answer4"];

/// The examples of one Belebele file.
pub(super) fn examples(ctx: &Ctx, extra: &BelebeleExtra) -> Result<Vec<Example>> {
    let file = ctx.data_file()?;
    file.read_records(false)?.iter().map(|r| example(ctx, &file, extra, r)).collect()
}

fn example(ctx: &Ctx, file: &DataFile, extra: &BelebeleExtra, r: &Record) -> Result<Example> {
    let passage = r.text(file, &["flores_passage"])?;
    let question = r.text(file, &["question"])?;
    let answers = ANSWERS.iter().map(|name| r.text(file, &[name])).collect::<Result<Vec<_>>>()?;
    let context = extra.template.render(&[
        ("passage", passage.trim()),
        ("question", question.trim()),
        ("a", answers[0].trim()),
        ("b", answers[1].trim()),
        ("c", answers[2].trim()),
        ("d", answers[3].trim()),
    ]);
    let choices = extra.letters.iter().map(|l| Choice::new(context.clone(), &ctx.spec.target_delimiter, l)).collect();
    let correct = r.index(file, &["correct_answer_num"])?;
    let key = match (r.optional_text(&["link"]), r.optional_text(&["question_number"])) {
        (Some(link), Some(n)) => format!("{link}#{n}"),
        _ => format!("line{}", r.line),
    };
    let gold = correct.checked_sub(1).ok_or_else(|| file.bad(r.line, format!("correct_answer_num must be 1-4, found {correct}")))?;
    Example::new(ctx.id(key), gold, choices).map_err(|why| file.bad(r.line, why))
}

/// Belebele in the family registry.
pub(super) struct Belebele;

impl Family for Belebele {
    fn task(&self) -> TaskName {
        TaskName::Belebele
    }

    fn output(&self) -> OutputType {
        OutputType::MultipleChoice
    }

    fn items(&self, ctx: &Ctx) -> Result<TaskItems> {
        Ok(TaskItems::Choice(examples(ctx, &ctx.catalog.file.belebele.extra)?))
    }
}
