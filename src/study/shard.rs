//! `--shard i/n`: a deterministic share of a study's units, for cluster job arrays.
//!
//! Pruned cells are sorted by id and shard `i` takes those at positions `k` with `k mod n == i`.
//! Ids derive from cell content, so every shard of the same study file agrees on the split
//! without talking to the others. Dense baselines all go to shard 0 (they are few, and no cell
//! needs them while it runs: only the report compares against them).

use std::fmt;
use std::str::FromStr;

use crate::store::Unit;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    index: usize,
    count: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("--shard {given}: {reason}; write it as i/n with 0 <= i < n, e.g. --shard 0/4")]
pub struct ShardError {
    given: String,
    reason: &'static str,
}

impl Shard {
    pub fn new(index: usize, count: usize) -> Result<Shard, ShardError> {
        let given = format!("{index}/{count}");
        if count == 0 {
            return Err(ShardError { given, reason: "n must be at least 1" });
        }
        if index >= count {
            return Err(ShardError { given, reason: "i must be smaller than n" });
        }
        Ok(Shard { index, count })
    }
    pub fn index(self) -> usize {
        self.index
    }
    pub fn count(self) -> usize {
        self.count
    }

    /// This shard's units, in the order given (which keeps cells of one calibration set together).
    pub fn select(self, units: Vec<Unit>) -> Vec<Unit> {
        let mut cell_ids: Vec<String> = units.iter().filter(|&u| matches!(u, Unit::Cell(_))).map(|u| u.id().to_string()).collect();
        cell_ids.sort();
        let mine: std::collections::HashSet<&str> =
            cell_ids.iter().enumerate().filter(|(k, _)| k % self.count == self.index).map(|(_, id)| id.as_str()).collect();
        units
            .into_iter()
            .filter(|u| match u {
                Unit::Dense(_) => self.index == 0,
                Unit::Cell(c) => mine.contains(c.id.as_str()),
            })
            .collect()
    }
}

impl FromStr for Shard {
    type Err = ShardError;
    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let bad = |reason| ShardError { given: s.to_string(), reason };
        let (i, n) = s.split_once('/').ok_or_else(|| bad("no '/'"))?;
        let i = i.trim().parse().map_err(|_| bad("i is not a number"))?;
        let n = n.trim().parse().map_err(|_| bad("n is not a number"))?;
        Shard::new(i, n).map_err(|e| ShardError { given: s.to_string(), reason: e.reason })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::config::tests::parse_ok;
    use crate::design::Grid;

    #[test]
    fn shards_partition_the_cells_and_shard_zero_takes_the_baselines() {
        let config = parse_ok(
            r#"[study]
name = "s"
seeds = [0, 1, 2]
[[models]]
name = "a"
path = "a"
[[models]]
name = "b"
path = "b"
[pruning]
methods = ["magnitude", "wanda"]
sparsities = [0.5, 0.6]
[calibration]
source = "udhr"
samples = 4
seqlen = 16
sets = [{ languages = ["eng_Latn"] }, { languages = ["deu_Latn"] }]
[perplexity]
languages = ["eng_Latn"]
source = "udhr"
"#,
        );
        let grid = Grid::expand(&config);
        let all = crate::study::runner::units(&grid, None);
        let mut seen: Vec<String> = Vec::new();
        for i in 0..3 {
            let part = crate::study::runner::units(&grid, Some(Shard::new(i, 3).unwrap()));
            assert_eq!(part.iter().any(|u| matches!(u, Unit::Dense(_))), i == 0);
            let cells = part.iter().filter(|u| matches!(u, Unit::Cell(_))).count();
            assert!((cells as i64 - grid.cells.len() as i64 / 3).abs() <= 1, "balanced: {cells}");
            seen.extend(part.iter().map(|u| u.id().to_string()));
        }
        let mut expected: Vec<String> = all.iter().map(|u| u.id().to_string()).collect();
        expected.sort();
        seen.sort();
        assert_eq!(seen, expected, "every unit in exactly one shard");
    }

    #[test]
    fn bad_shards_are_errors() {
        assert_eq!("1/4".parse::<Shard>().unwrap(), Shard::new(1, 4).unwrap());
        for bad in ["4/4", "1", "a/2", "0/0"] {
            let e = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(e.starts_with(&format!("--shard {bad}: ")), "{e}");
        }
    }
}
