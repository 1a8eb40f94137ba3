//! XWinograd (Tikhonov & Ryabinin, 2021, "It's All in the Heads"), scored by partial
//! evaluation (Trinh & Le, 2018): the pronoun is replaced by each candidate, and the model
//! scores the *same* rest of the sentence after each substituted beginning.
//!
//! The published `dataset.tsv` has seven tab-separated columns: language, source, English
//! original, sentence, tokens (JSON list), pronoun `[text, [start, end], tokens]`, and
//! candidates `[[text, [start, end], tokens, is_answer], ...]`, spans counted in tokens.
//! Token spans are turned into character offsets by finding each token in the sentence
//! in order; the English tokens use Penn Treebank quotes (`` and ''), which stand for '"'.
//!
//! For the first English row this gives
//! context `"The city councilmen refused the demonstrators a permit because The city councilmen"`
//! and continuation `" feared violence."` (harness convention: rest trimmed, delimiter " ").

use serde_json::Value;

use super::context::Ctx;
use super::error::Result;
use super::example::{Choice, Example, TaskItems};
use super::family::Family;
use super::kinds::{OutputType, TaskName};
use super::records::DataFile;

const COLUMNS: usize = 7;

/// The examples of one language in `dataset.tsv`.
pub(super) fn examples(ctx: &Ctx) -> Result<Vec<Example>> {
    let code = &ctx.single().code;
    let file = ctx.data_file()?;
    let rows = file.read_plain_tsv(COLUMNS)?;
    rows.iter().filter(|(_, cells)| cells[0] == *code).map(|(line, cells)| example(ctx, &file, *line, cells)).collect()
}

fn example(ctx: &Ctx, file: &DataFile, line: usize, cells: &[String]) -> Result<Example> {
    let sentence = &cells[3];
    let json = |i: usize, what: &str| -> Result<Value> {
        serde_json::from_str(&cells[i]).map_err(|e| file.bad(line, format!("the {what} column is not JSON ({e})")))
    };
    let tokens: Vec<String> =
        serde_json::from_value(json(4, "tokens")?).map_err(|_| file.bad(line, "the tokens column should be a list of strings"))?;
    let spans = token_offsets(sentence, &tokens).ok_or_else(|| file.bad(line, "the tokens do not match the sentence text in order"))?;
    let pronoun = span_of(&json(5, "pronoun")?).ok_or_else(|| file.bad(line, "the pronoun column has no [start, end] span"))?;
    let pronoun = without_trailing_punctuation(&tokens, pronoun);
    let (start, end) = char_range(&spans, pronoun).ok_or_else(|| file.bad(line, "the pronoun span is outside the tokens"))?;
    let rest = sentence[end..].trim();
    if rest.is_empty() {
        return Err(file.bad(line, "nothing follows the pronoun, so there is no shared continuation to score"));
    }
    let (candidates, gold) = candidates(&json(6, "candidates")?)
        .ok_or_else(|| file.bad(line, "candidates should be [text, span, tokens, true/false] items with exactly one true"))?;
    let choices =
        candidates.iter().map(|text| Choice::new(format!("{}{text}", &sentence[..start]), &ctx.spec.target_delimiter, rest)).collect();
    Example::new(ctx.id(format!("line{line}")), gold, choices).map_err(|why| file.bad(line, why))
}

/// Byte ranges of each token in `sentence`, found left to right with only whitespace
/// between them; `None` when the tokens do not spell out the sentence.
pub(super) fn token_offsets(sentence: &str, tokens: &[String]) -> Option<Vec<(usize, usize)>> {
    let mut cursor = 0;
    let mut spans = Vec::with_capacity(tokens.len());
    for token in tokens {
        let (at, len) = spellings(token).into_iter().find_map(|spelling| {
            let at = cursor + sentence[cursor..].find(spelling)?;
            sentence[cursor..at].trim().is_empty().then_some((at, spelling.len()))
        })?;
        spans.push((at, at + len));
        cursor = at + len;
    }
    Some(spans)
}

/// How a token may be written in the sentence: itself, or for Penn Treebank quote and
/// bracket tokens the characters they stand for.
fn spellings(token: &str) -> Vec<&str> {
    let alternatives: &[&str] = match token {
        "``" => &["\"", "“", "«"],
        "''" => &["\"", "”", "»"],
        "-LRB-" => &["("],
        "-RRB-" => &[")"],
        _ => &[],
    };
    std::iter::once(token).chain(alternatives.iter().copied()).collect()
}

/// The span without punctuation tokens at its end. Ten Russian rows mark "его." (pronoun
/// and full stop) as the pronoun; the stop belongs to the shared continuation, which
/// would otherwise be empty.
fn without_trailing_punctuation(tokens: &[String], (start, mut end): (usize, usize)) -> (usize, usize) {
    let is_punctuation = |t: &String| t.chars().all(|c| c.is_ascii_punctuation() || "。．、！？".contains(c));
    while end > start + 1 && tokens.get(end - 1).is_some_and(is_punctuation) {
        end -= 1;
    }
    (start, end)
}

fn span_of(pronoun: &Value) -> Option<(usize, usize)> {
    let span = pronoun.get(1)?;
    Some((span.get(0)?.as_u64()? as usize, span.get(1)?.as_u64()? as usize))
}

/// Byte range in the sentence covered by tokens `[start, end)`.
fn char_range(spans: &[(usize, usize)], (start, end): (usize, usize)) -> Option<(usize, usize)> {
    (start < end && end <= spans.len()).then(|| (spans[start].0, spans[end - 1].1))
}

/// Candidate texts and the index of the one marked true.
fn candidates(value: &Value) -> Option<(Vec<String>, usize)> {
    let items = value.as_array()?;
    let mut texts = Vec::with_capacity(items.len());
    let mut gold = Vec::new();
    for (i, item) in items.iter().enumerate() {
        texts.push(item.get(0)?.as_str()?.to_string());
        if item.get(3)?.as_bool()? {
            gold.push(i);
        }
    }
    match gold.as_slice() {
        [one] => Some((texts, *one)),
        _ => None,
    }
}

/// XWinograd in the family registry.
pub(super) struct Xwinograd;

impl Family for Xwinograd {
    fn task(&self) -> TaskName {
        TaskName::Xwinograd
    }

    fn output(&self) -> OutputType {
        OutputType::PartialChoice
    }

    fn items(&self, ctx: &Ctx) -> Result<TaskItems> {
        Ok(TaskItems::Choice(examples(ctx)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn offsets_follow_split_contractions_and_treebank_quotes() {
        let s = "Tom said \"Check\" to Ralph, doesn't he?";
        let t = toks(&["Tom", "said", "``", "Check", "''", "to", "Ralph", ",", "does", "n't", "he", "?"]);
        let spans = token_offsets(s, &t).unwrap();
        let words: Vec<&str> = spans.iter().map(|&(a, b)| &s[a..b]).collect();
        assert_eq!(words, vec!["Tom", "said", "\"", "Check", "\"", "to", "Ralph", ",", "does", "n't", "he", "?"]);
    }

    #[test]
    fn offsets_refuse_tokens_that_skip_text() {
        // "big" is absent, and "dog" exists only after skipping "red", which is not allowed.
        assert!(token_offsets("a red dog", &toks(&["a", "dog"])).is_none());
        assert!(token_offsets("a red dog", &toks(&["a", "big"])).is_none());
    }

    #[test]
    fn a_full_stop_inside_the_pronoun_span_moves_to_the_continuation() {
        let t = toks(&["и", "включил", "его", "."]);
        assert_eq!(without_trailing_punctuation(&t, (2, 4)), (2, 3));
        // A span of one token is never emptied, and inner punctuation stays.
        assert_eq!(without_trailing_punctuation(&t, (3, 4)), (3, 4));
        assert_eq!(without_trailing_punctuation(&t, (1, 3)), (1, 3));
    }

    #[test]
    fn offsets_work_on_multibyte_text_without_spaces() {
        let s = "狙撃兵はテロリストを撃った。彼は悪漢だったからだ。";
        let t = toks(&["狙撃兵", "は", "テロリスト", "を撃った。", "彼", "は悪漢だったからだ。"]);
        let spans = token_offsets(s, &t).unwrap();
        let (start, end) = char_range(&spans, (4, 5)).unwrap();
        assert_eq!(&s[start..end], "彼");
        assert_eq!(&s[..start], "狙撃兵はテロリストを撃った。");
    }
}
