//! Translation choice: show a sentence in language A and score K candidate sentences in
//! language B, one of them its true translation, the others drawn from the rest of B's
//! file. It measures cross-lingual alignment without generation, in the spirit of the
//! Tatoeba bitext-retrieval test (Artetxe & Schwenk, 2019), as likelihood ranking.
//!
//! Sources: Tatoeba's line-aligned `tatoeba.xxx-eng.{xxx,eng}` (pairs with English), or
//! FLORES-200 sentences as SIB-200 ships them, paired across languages by `index_id`
//! (any two languages). Distractors and the gold position come from a ChaCha8 generator
//! seeded with the load seed, one stream per example, so each example is reproducible on
//! its own and does not shift when other examples change.

use std::collections::{HashMap, HashSet};

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::context::{Ctx, ResolvedLanguage};
use super::error::Result;
use super::example::{Choice, Example, TaskItems};
use super::family::Family;
use super::kinds::{OutputType, TaskName};
use super::language::TaskLanguage;
use super::records::DataFile;
use super::schema::TranslationExtra;
use super::sib200::read_rows;

/// One aligned sentence pair, in the direction of the task (source shown, target scored).
struct Aligned {
    key: String,
    source: String,
    target: String,
}

fn pair<'a>(ctx: &'a Ctx) -> (&'a TaskLanguage, &'a TaskLanguage) {
    match ctx.language {
        ResolvedLanguage::Pair { source, target } => (source, target),
        ResolvedLanguage::Single { .. } => panic!("translation task {} resolved to one language", ctx.spec.name),
    }
}

/// Examples from Tatoeba's line-aligned files.
pub(super) fn tatoeba_examples(ctx: &Ctx, extra: &TranslationExtra) -> Result<Vec<Example>> {
    let (source, target) = pair(ctx);
    let from_english = source.code == "eng";
    let other = if from_english { target } else { source };
    let other_file = ctx.layout_file(ctx.spec.file_for(ctx.split, &other.code)?);
    let english_template = extra.english_file.as_deref().unwrap_or("tatoeba/tatoeba.{lang}-eng.eng");
    let english_file = ctx.layout_file(english_template.replace("{lang}", &other.code));
    let other_lines = other_file.read_aligned_lines()?;
    let english_lines = english_file.read_aligned_lines()?;
    if other_lines.len() != english_lines.len() {
        return Err(english_file.too_few(format!(
            "{} lines, but {} has {}; the two files must be line-aligned",
            english_lines.len(),
            other_file.path.display(),
            other_lines.len()
        )));
    }
    let aligned = other_lines
        .into_iter()
        .zip(english_lines)
        .filter(|((_, a), (_, b))| !a.trim().is_empty() && !b.trim().is_empty())
        .map(|((line, xxx), (_, eng))| {
            let (source, target) = if from_english { (eng, xxx) } else { (xxx, eng) };
            Aligned { key: format!("line{line}"), source, target }
        })
        .collect();
    build(ctx, extra, aligned, &other_file)
}

/// Examples from SIB-200's FLORES sentences of two languages, joined on `index_id`.
pub(super) fn flores_examples(ctx: &Ctx, extra: &TranslationExtra) -> Result<Vec<Example>> {
    let (source, target) = pair(ctx);
    let source_file = ctx.layout_file(ctx.spec.file_for(ctx.split, &source.code)?);
    let target_file = ctx.layout_file(ctx.spec.file_for(ctx.split, &target.code)?);
    let target_rows: HashMap<String, String> = read_rows(&target_file)?.into_iter().map(|r| (r.index_id, r.text)).collect();
    let aligned = read_rows(&source_file)?
        .into_iter()
        .map(|row| match target_rows.get(&row.index_id) {
            Some(text) => Ok(Aligned { key: row.index_id, source: row.text, target: text.clone() }),
            None => Err(source_file.bad(row.line, format!("index_id {} has no row in {}", row.index_id, target_file.path.display()))),
        })
        .collect::<Result<Vec<_>>>()?;
    build(ctx, extra, aligned, &target_file)
}

fn build(ctx: &Ctx, extra: &TranslationExtra, aligned: Vec<Aligned>, file: &DataFile) -> Result<Vec<Example>> {
    let k = extra.choices;
    let distinct: HashSet<&str> = aligned.iter().map(|a| a.target.trim()).collect();
    if distinct.len() < k {
        return Err(file.too_few(format!("{} distinct sentences, but {k} choices need at least {k}", distinct.len())));
    }
    let (source, target) = pair(ctx);
    let table = ctx.catalog.languages();
    let (source_name, target_name) = (table.name(&source.flores), table.name(&target.flores));
    aligned
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let context =
                extra.template.render(&[("source_language", &source_name), ("source", a.source.trim()), ("target_language", &target_name)]);
            let (order, gold) = candidate_order(&aligned, i, k, ctx.seed);
            let choices =
                order.iter().map(|&j| Choice::new(context.clone(), &ctx.spec.target_delimiter, aligned[j].target.trim())).collect();
            Example::new(ctx.id(&a.key), gold, choices).map_err(|why| file.too_few(format!("sentence {}: {why}", a.key)))
        })
        .collect()
}

/// Indices of the K candidates for example `i` (the true one and K-1 others whose text
/// differs from it and from each other), and the position of the true one.
fn candidate_order(aligned: &[Aligned], i: usize, k: usize, seed: u64) -> (Vec<usize>, usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(i as u64);
    let mut chosen = vec![i];
    let mut texts: HashSet<&str> = HashSet::from([aligned[i].target.trim()]);
    // Rejection sampling terminates: build() checked there are >= k distinct texts.
    while chosen.len() < k {
        let j = rng.gen_range(0..aligned.len());
        if texts.insert(aligned[j].target.trim()) {
            chosen.push(j);
        }
    }
    let gold = rng.gen_range(0..k);
    chosen.swap(0, gold);
    (chosen, gold)
}

/// Tatoeba translation choice in the family registry.
pub(super) struct Tatoeba;

impl Family for Tatoeba {
    fn task(&self) -> TaskName {
        TaskName::Tatoeba
    }

    fn output(&self) -> OutputType {
        OutputType::MultipleChoice
    }

    fn items(&self, ctx: &Ctx) -> Result<TaskItems> {
        Ok(TaskItems::Choice(tatoeba_examples(ctx, &ctx.catalog.file.tatoeba.extra)?))
    }
}

/// FLORES translation choice in the family registry.
pub(super) struct Flores;

impl Family for Flores {
    fn task(&self) -> TaskName {
        TaskName::Flores
    }

    fn output(&self) -> OutputType {
        OutputType::MultipleChoice
    }

    fn items(&self, ctx: &Ctx) -> Result<TaskItems> {
        Ok(TaskItems::Choice(flores_examples(ctx, &ctx.catalog.file.flores.extra)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aligned(targets: &[&str]) -> Vec<Aligned> {
        targets.iter().enumerate().map(|(i, t)| Aligned { key: i.to_string(), source: format!("s{i}"), target: t.to_string() }).collect()
    }

    #[test]
    fn candidates_are_distinct_hold_the_truth_and_repeat_with_the_seed() {
        let data = aligned(&["a", "b", "c", "a", "d", "e", "f"]);
        for i in 0..data.len() {
            let (order, gold) = candidate_order(&data, i, 4, 7);
            assert_eq!(order[gold], i);
            let texts: HashSet<&str> = order.iter().map(|&j| data[j].target.as_str()).collect();
            assert_eq!(texts.len(), 4, "duplicate text among {order:?}");
            assert_eq!(candidate_order(&data, i, 4, 7), (order, gold));
        }
    }

    #[test]
    fn gold_position_is_spread_over_all_slots() {
        // 400 examples, 4 slots: each slot expects 100; a fixed slot would give 400/0/0/0.
        let data = aligned(&(0..400).map(|i| format!("t{i}")).collect::<Vec<_>>().iter().map(String::as_str).collect::<Vec<_>>());
        let mut counts = [0usize; 4];
        for i in 0..data.len() {
            counts[candidate_order(&data, i, 4, 1).1] += 1;
        }
        // Binomial(400, 1/4) has sd ~8.7; 60..140 is beyond 4.5 sd on each side.
        assert!(counts.iter().all(|&c| (60..140).contains(&c)), "{counts:?}");
    }
}
