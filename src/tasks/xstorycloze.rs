//! XStoryCloze (Lin et al., 2022, "Few-shot Learning with Multilingual Generative
//! Language Models"): four sentences of a story and two candidate endings.
//!
//! Prompt, as in lm-evaluation-harness: the four sentences joined by single spaces;
//! each ending follows after the target delimiter. Both the published TSV column names
//! (`InputSentence1`, `RandomFifthSentenceQuiz1`, `AnswerRightEnding`) and the JSON ones
//! (`input_sentence_1`, `sentence_quiz1`, `answer_right_ending`) are read.

use super::context::Ctx;
use super::error::Result;
use super::example::{Choice, Example, TaskItems};
use super::family::Family;
use super::kinds::{OutputType, TaskName};
use super::records::{DataFile, Record};

const SENTENCES: [[&str; 2]; 4] = [
    ["input_sentence_1", "InputSentence1"],
    ["input_sentence_2", "InputSentence2"],
    ["input_sentence_3", "InputSentence3"],
    ["input_sentence_4", "InputSentence4"],
];
const ENDINGS: [[&str; 2]; 2] = [["sentence_quiz1", "RandomFifthSentenceQuiz1"], ["sentence_quiz2", "RandomFifthSentenceQuiz2"]];

/// The examples of one XStoryCloze file.
pub(super) fn examples(ctx: &Ctx) -> Result<Vec<Example>> {
    let file = ctx.data_file()?;
    file.read_records(false)?.iter().map(|r| example(ctx, &file, r)).collect()
}

fn example(ctx: &Ctx, file: &DataFile, r: &Record) -> Result<Example> {
    let story = SENTENCES.iter().map(|names| Ok(r.text(file, names)?.trim().to_string())).collect::<Result<Vec<_>>>()?.join(" ");
    let choices = ENDINGS
        .iter()
        .map(|names| Ok(Choice::new(story.clone(), &ctx.spec.target_delimiter, r.text(file, names)?.trim())))
        .collect::<Result<Vec<_>>>()?;
    let right = r.index(file, &["answer_right_ending", "AnswerRightEnding"])?;
    let key = r.optional_text(&["story_id", "InputStoryid"]).unwrap_or_else(|| format!("line{}", r.line));
    let gold = right.checked_sub(1).ok_or_else(|| file.bad(r.line, format!("the right ending must be 1 or 2, found {right}")))?;
    Example::new(ctx.id(key), gold, choices).map_err(|why| file.bad(r.line, why))
}

/// XStoryCloze in the family registry.
pub(super) struct Xstorycloze;

impl Family for Xstorycloze {
    fn task(&self) -> TaskName {
        TaskName::Xstorycloze
    }

    fn output(&self) -> OutputType {
        OutputType::MultipleChoice
    }

    fn items(&self, ctx: &Ctx) -> Result<TaskItems> {
        Ok(TaskItems::Choice(examples(ctx)?))
    }
}
