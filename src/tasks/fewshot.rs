//! k-shot prompting: k solved examples written before each prompt.
//!
//! Demonstrations are drawn without replacement from the few-shot pool (the task's
//! `fewshot_split`, or the evaluated split itself) with the example itself always left
//! out, matched by id. Each example gets its own ChaCha8 stream (seeded by the load seed,
//! stream = example position), so the draw for one example is fixed by (seed, position)
//! and does not change when the examples before it change length or count. The
//! demonstrations, then the prompt, are joined by the task's few-shot separator, as in
//! Brown et al. (2020) and lm-evaluation-harness:
//! `demo_1 + sep + ... + demo_k + sep + context`.

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::error::{Result, TaskError};
use super::example::{Example, GenerationExample, TaskItems};
use super::spec::{TaskSpec, TaskSplit};

/// Keeps the draws for demonstrations apart from those for translation distractors,
/// which use the same user seed.
const FEWSHOT_STREAM_OFFSET: u64 = 1 << 62;

/// Prepends `shots` demonstrations from `pool` to every example of `items`.
pub(super) fn add_shots(
    spec: &TaskSpec,
    items: TaskItems,
    pool: &TaskItems,
    pool_split: TaskSplit,
    shots: usize,
    seed: u64,
) -> Result<TaskItems> {
    let separator = &spec.fewshot_separator;
    let not_enough =
        |available: usize| TaskError::NotEnoughShots { task: spec.name.to_string(), shots, available, split: pool_split.to_string() };
    match (items, pool) {
        (TaskItems::Choice(examples), TaskItems::Choice(pool)) => {
            let ids: Vec<&str> = pool.iter().map(|e| e.id.as_str()).collect();
            let demos: Vec<String> = pool.iter().map(Example::demonstration).collect();
            let shot = |i: usize, e: &Example| prefix(&ids, &demos, &e.id, i, shots, seed, separator).map_err(not_enough);
            let with = examples
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let p = shot(i, e)?;
                    Ok(Example { choices: e.choices.iter().map(|c| c.with_prefix(&p)).collect(), ..e.clone() })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(TaskItems::Choice(with))
        }
        (TaskItems::Generation(examples), TaskItems::Generation(pool)) => {
            let ids: Vec<&str> = pool.iter().map(|e| e.id.as_str()).collect();
            let demos: Vec<String> = pool.iter().map(GenerationExample::demonstration).collect();
            let with = examples
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let p = prefix(&ids, &demos, &e.id, i, shots, seed, separator).map_err(not_enough)?;
                    let mut e = e.clone();
                    e.request.context = format!("{p}{}", e.request.context);
                    Ok(e)
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(TaskItems::Generation(with))
        }
        // One task builds both with the same loader, so the kinds always agree.
        _ => panic!("few-shot pool of task {} has another kind than its examples", spec.name),
    }
}

/// The joined demonstrations for the example at `position` with id `own_id`; when the
/// pool, without that example, holds fewer than `k`, the number it does hold.
fn prefix(
    ids: &[&str],
    demos: &[String],
    own_id: &str,
    position: usize,
    k: usize,
    seed: u64,
    separator: &str,
) -> std::result::Result<String, usize> {
    let candidates: Vec<usize> = (0..ids.len()).filter(|&j| ids[j] != own_id).collect();
    if candidates.len() < k {
        return Err(candidates.len());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(FEWSHOT_STREAM_OFFSET + position as u64);
    let picked = sample(&mut rng, candidates.len(), k);
    let mut out = String::new();
    for index in picked.iter() {
        out.push_str(&demos[candidates[index]]);
        out.push_str(separator);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("t/x/dev/{i}")).collect()
    }

    #[test]
    fn the_example_itself_is_never_a_demonstration() {
        let ids = ids(5);
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let demos: Vec<String> = (0..5).map(|i| format!("D{i}")).collect();
        for (position, own_id) in ids.iter().enumerate() {
            for seed in 0..50 {
                // With 4 shots from 5, only the example itself may be missing.
                let p = prefix(&id_refs, &demos, own_id, position, 4, seed, "|").unwrap();
                assert!(!p.contains(&format!("D{position}")), "{p}");
                assert_eq!(p.matches('|').count(), 4);
            }
        }
        assert_eq!(prefix(&id_refs, &demos, &ids[0], 0, 5, 0, "|"), Err(4));
    }

    #[test]
    fn draws_repeat_for_a_seed_and_change_with_it() {
        let ids = ids(100);
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let demos: Vec<String> = (0..100).map(|i| format!("D{i};")).collect();
        let a = prefix(&id_refs, &demos, "none", 3, 5, 42, "\n\n").unwrap();
        assert_eq!(a, prefix(&id_refs, &demos, "none", 3, 5, 42, "\n\n").unwrap());
        // Different seeds or positions give other draws (5 of 100: a collision is ~1e-8).
        assert_ne!(a, prefix(&id_refs, &demos, "none", 3, 5, 43, "\n\n").unwrap());
        assert_ne!(a, prefix(&id_refs, &demos, "none", 4, 5, 42, "\n\n").unwrap());
    }
}
