//! Translated multiple-choice question sets: ARC (Clark et al., 2018) and MMLU
//! (Hendrycks et al., 2021) as machine-translated by Okapi (Lai et al., 2023).
//!
//! Two prompt styles, chosen per task in tasks.toml (`score_letters`):
//! * ARC style: `"Question: {question}\nAnswer:"`, each answer text is a continuation;
//! * MMLU style: question and lettered answers in the prompt, the letters are scored.
//!
//! Fields are read under the names the releases use: the question as `instruction` or
//! `question`; the answers as `option_a`..`option_e`, or `choices` (a list, or an object
//! with a `text` list and optional `label` list); the answer as `answer`/`answerKey`/
//! `label`. An answer that is a letter A-E indexes the answers; a JSON integer is a
//! 0-based index (MMLU's convention); a digit string is looked up among the `choices`
//! labels when there are any, else taken as 1-based (ARC's digit keys).

use serde_json::Value;

use super::context::Ctx;
use super::error::Result;
use super::example::{Choice, Example, TaskItems};
use super::family::Family;
use super::kinds::{OutputType, TaskName};
use super::records::{DataFile, Record};
use super::schema::McqaExtra;

const LETTERS: [&str; 5] = ["A", "B", "C", "D", "E"];
const OPTION_FIELDS: [&str; 5] = ["option_a", "option_b", "option_c", "option_d", "option_e"];
const SLOTS: [&str; 5] = ["a", "b", "c", "d", "e"];

/// The examples of one translated ARC or MMLU file.
pub(super) fn examples(ctx: &Ctx, extra: &McqaExtra) -> Result<Vec<Example>> {
    let file = ctx.data_file()?;
    file.read_records(false)?.iter().map(|r| example(ctx, &file, extra, r)).collect()
}

fn example(ctx: &Ctx, file: &DataFile, extra: &McqaExtra, r: &Record) -> Result<Example> {
    let question = r.text(file, &["instruction", "question"])?;
    let (answers, labels) = answers(file, r)?;
    if answers.len() < 2 || answers.len() > LETTERS.len() {
        return Err(file.bad(r.line, format!("{} answers; 2 to 5 are needed", answers.len())));
    }
    let mut values: Vec<(&str, &str)> = vec![("question", question.trim())];
    values.extend(SLOTS.iter().enumerate().map(|(i, slot)| (*slot, answers.get(i).map_or("", |a| a.trim()))));
    let context = extra.template.render(&values);
    let delimiter = &ctx.spec.target_delimiter;
    let choices = if extra.score_letters {
        LETTERS[..answers.len()].iter().map(|l| Choice::new(context.clone(), delimiter, l)).collect()
    } else {
        answers.iter().map(|a| Choice::new(context.clone(), delimiter, a.trim())).collect()
    };
    let gold = gold_index(file, r, &labels)?;
    let key = r.optional_text(&["id"]).unwrap_or_else(|| format!("line{}", r.line));
    Example::new(ctx.id(key), gold, choices).map_err(|why| file.bad(r.line, why))
}

/// Answer texts, and the `choices.label` list when the record has one.
fn answers(file: &DataFile, r: &Record) -> Result<(Vec<String>, Vec<String>)> {
    let options: Vec<String> = OPTION_FIELDS.iter().map_while(|f| r.optional_text(&[f])).collect();
    if !options.is_empty() {
        return Ok((options, Vec::new()));
    }
    match r.value(file, &["choices"])? {
        Value::Array(_) => Ok((r.text_list(file, &["choices"])?, Vec::new())),
        Value::Object(obj) => {
            // 'label' may be absent (answers are then matched by position); what is present
            // must be a list of texts, or the gold answer could silently point elsewhere.
            let list = |key: &str, required: bool| -> Result<Vec<String>> {
                match obj.get(key) {
                    None if !required => Ok(Vec::new()),
                    None => Err(file.bad(r.line, format!("'choices' has no '{key}' list"))),
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(|v| {
                            v.as_str().map(str::to_string).ok_or_else(|| file.bad(r.line, format!("'choices.{key}' holds a non-text item")))
                        })
                        .collect(),
                    Some(_) => Err(file.bad(r.line, format!("'choices.{key}' should be a list of texts"))),
                }
            };
            Ok((list("text", true)?, list("label", false)?))
        }
        _ => Err(file.bad(r.line, "'choices' should be a list or an object with a 'text' list")),
    }
}

fn gold_index(file: &DataFile, r: &Record, labels: &[String]) -> Result<usize> {
    let value = r.value(file, &["answer", "answerKey", "label"])?;
    let bad = || file.bad(r.line, format!("the answer {value} is neither a letter A-E nor an index"));
    match value {
        Value::Number(n) => n.as_u64().map(|n| n as usize).ok_or_else(bad),
        Value::String(s) => {
            let s = s.trim();
            if let Some(i) = labels.iter().position(|l| l == s) {
                Ok(i)
            } else if let Some(i) = LETTERS.iter().position(|l| *l == s) {
                Ok(i)
            } else {
                s.parse::<usize>().ok().and_then(|n| n.checked_sub(1)).ok_or_else(bad)
            }
        }
        _ => Err(bad()),
    }
}

/// Translated ARC in the family registry.
pub(super) struct MArc;

impl Family for MArc {
    fn task(&self) -> TaskName {
        TaskName::MArc
    }

    fn output(&self) -> OutputType {
        OutputType::MultipleChoice
    }

    fn items(&self, ctx: &Ctx) -> Result<TaskItems> {
        Ok(TaskItems::Choice(examples(ctx, &ctx.catalog.file.m_arc.extra)?))
    }
}

/// Translated MMLU in the family registry.
pub(super) struct MMmlu;

impl Family for MMmlu {
    fn task(&self) -> TaskName {
        TaskName::MMmlu
    }

    fn output(&self) -> OutputType {
        OutputType::MultipleChoice
    }

    fn items(&self, ctx: &Ctx) -> Result<TaskItems> {
        Ok(TaskItems::Choice(examples(ctx, &ctx.catalog.file.m_mmlu.extra)?))
    }
}
