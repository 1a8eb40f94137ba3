//! How much two pruning masks agree: Jaccard overlap (intersection over union) per layer.
//!
//! We report the overlap of the KEPT sets, `|A ∩ B| / |A ∪ B|` over kept weights, because the
//! question is which weights a calibration language lets survive; the overlap of the pruned
//! sets is exported beside it (at 50 % sparsity the two differ only through the union sizes).
//! Two masks drawn independently at random, each keeping a fraction `k`, overlap by
//! `k / (2 - k)` in expectation (1/3 at 50 % sparsity): the chance level printed with every row.
//!
//! Counting is exact: AND/OR of the packed `u64` words and `popcount`, in parallel (rayon).
//! Masks are compared only when they have the same shape, word for word; their unused tail bits
//! are zero by construction (`prune::Mask`), so they never count.

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use super::AnalysisError;
use crate::prune::Mask;
use crate::pruned::{read_masks, MaskEntry};

/// Where a layer sits: its block (depth) and its projection type (e.g. `attn_q`, `ffn_down`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct LayerPlace {
    pub block: Option<usize>,
    pub projection: String,
}

impl LayerPlace {
    /// Reads GGUF-style names `blk.<i>.<projection>.weight`; other names keep the whole name
    /// as their projection and no block.
    pub fn of(layer: &str) -> LayerPlace {
        let parts: Vec<&str> = layer.split('.').collect();
        if parts.len() >= 3 && parts[0] == "blk" {
            if let Ok(block) = parts[1].parse() {
                let end = if parts.last() == Some(&"weight") { parts.len() - 1 } else { parts.len() };
                return LayerPlace { block: Some(block), projection: parts[2..end].join(".") };
            }
        }
        LayerPlace { block: None, projection: layer.to_string() }
    }

    /// As [`Self::of`], also reading an encoder-decoder's names (`enc.blk.<i>.attn_q.weight`,
    /// `dec.blk.<i>.cross_attn_k.weight`) when its encoder's block count is known: blocks are
    /// numbered as `sparsity.csv` numbers them, the decoder's after the encoder's, and the
    /// projection keeps its stack (`enc.attn_q`, `dec.cross_attn_k`).
    pub fn in_model(layer: &str, encoder_blocks: Option<usize>) -> LayerPlace {
        if let (Some(e), Some((stack, rest))) = (encoder_blocks, layer.split_once('.')) {
            let inner = LayerPlace::of(rest);
            if let (Some(b), "enc" | "dec") = (inner.block, stack) {
                let block = if stack == "enc" { b } else { e + b };
                return LayerPlace { block: Some(block), projection: format!("{stack}.{}", inner.projection) };
            }
        }
        LayerPlace::of(layer)
    }
}

/// The block of an encoder-decoder's layer name within its stack, and the stack's prefix.
fn stack_block(layer: &str) -> Option<(&str, usize)> {
    let (stack, rest) = layer.split_once('.')?;
    let block = LayerPlace::of(rest).block?;
    matches!(stack, "enc" | "dec").then_some((stack, block))
}

/// The encoder's block count of the encoder-decoder whose masks these are (`None` for a
/// decoder-only model's): from the model card beside or above the masks (a saved folder), else
/// one more than the highest encoder block the masks name.
fn encoder_blocks_of<'a>(dir: &Path, names: impl Iterator<Item = &'a String>) -> Option<usize> {
    let places: Vec<(&str, usize)> = names.filter_map(|n| stack_block(n)).collect();
    if places.is_empty() {
        return None;
    }
    for d in [Some(dir), dir.parent()].into_iter().flatten() {
        if let Ok(folder) = crate::model::seq2seq::Seq2SeqFolder::open(d) {
            return Some(folder.card.spec.encoder_blocks);
        }
    }
    Some(places.iter().filter(|(s, _)| *s == "enc").map(|(_, b)| b + 1).max().unwrap_or(0))
}

/// The masks of one pruned model (one calibration language, or magnitude), by layer name.
#[derive(Clone, Debug)]
pub struct MaskSet {
    pub label: String,
    pub masks: BTreeMap<String, Mask>,
    /// An encoder-decoder's encoder block count (for [`LayerPlace::in_model`]); `None` for a
    /// decoder-only model.
    pub encoder_blocks: Option<usize>,
}

impl MaskSet {
    /// Reads `dir/masks/index.json` (or `dir/index.json`) and its masks.
    pub fn read(label: &str, dir: &Path) -> Result<MaskSet, AnalysisError> {
        let masks: Vec<(MaskEntry, Mask)> = read_masks(dir)?;
        let masks: BTreeMap<String, Mask> = masks.into_iter().map(|(e, m)| (e.layer, m)).collect();
        let encoder_blocks = encoder_blocks_of(dir, masks.keys());
        Ok(MaskSet { label: label.to_string(), masks, encoder_blocks })
    }
}

/// Exact counts for two masks of one layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OverlapCounts {
    pub total: u64,
    pub kept_first: u64,
    pub kept_second: u64,
    pub kept_both: u64,
    pub kept_either: u64,
}

impl OverlapCounts {
    /// Jaccard overlap of the kept sets (1 when both keep nothing: identical masks).
    pub fn kept_iou(&self) -> f64 {
        ratio_or_one(self.kept_both, self.kept_either)
    }
    /// Jaccard overlap of the pruned sets.
    pub fn pruned_iou(&self) -> f64 {
        let pruned_both = self.total - self.kept_either;
        let pruned_either = self.total - self.kept_both;
        ratio_or_one(pruned_both, pruned_either)
    }
    /// Kept by the first mask only.
    pub fn kept_only_first(&self) -> u64 {
        self.kept_first - self.kept_both
    }
    pub fn kept_only_second(&self) -> u64 {
        self.kept_second - self.kept_both
    }
    /// Expected kept-set IoU of two independent random masks with these kept fractions:
    /// `E|A∩B| / E|A∪B| = ab / (a + b - ab)` (a ratio of expectations; exact in the limit of
    /// large layers, which these are).
    pub fn chance_kept_iou(&self) -> f64 {
        let a = self.kept_first as f64 / self.total.max(1) as f64;
        let b = self.kept_second as f64 / self.total.max(1) as f64;
        let union = a + b - a * b;
        if union == 0.0 {
            1.0
        } else {
            a * b / union
        }
    }
    fn add(self, o: OverlapCounts) -> OverlapCounts {
        OverlapCounts {
            total: self.total + o.total,
            kept_first: self.kept_first + o.kept_first,
            kept_second: self.kept_second + o.kept_second,
            kept_both: self.kept_both + o.kept_both,
            kept_either: self.kept_either + o.kept_either,
        }
    }
}

fn ratio_or_one(num: u64, den: u64) -> f64 {
    if den == 0 {
        1.0
    } else {
        num as f64 / den as f64
    }
}

/// Counts the overlap of two masks of the same shape, exactly, from their packed words.
pub fn overlap(layer: &str, first: (&str, &Mask), second: (&str, &Mask)) -> Result<OverlapCounts, AnalysisError> {
    let (a, b) = (first.1, second.1);
    if a.rows() != b.rows() || a.cols() != b.cols() {
        return Err(AnalysisError::MaskShapes {
            layer: layer.to_string(),
            first: first.0.to_string(),
            second: second.0.to_string(),
            a_rows: a.rows(),
            a_cols: a.cols(),
            b_rows: b.rows(),
            b_cols: b.cols(),
        });
    }
    let counts = a
        .words()
        .par_iter()
        .zip(b.words().par_iter())
        .fold(OverlapCounts::default, |c, (&x, &y)| {
            c.add(OverlapCounts {
                total: 0,
                kept_first: x.count_ones() as u64,
                kept_second: y.count_ones() as u64,
                kept_both: (x & y).count_ones() as u64,
                kept_either: (x | y).count_ones() as u64,
            })
        })
        .reduce(OverlapCounts::default, OverlapCounts::add);
    Ok(OverlapCounts { total: a.len() as u64, ..counts })
}

/// One layer of one pair of mask sets.
#[derive(Clone, Debug, Serialize)]
pub struct LayerOverlap {
    pub first: String,
    pub second: String,
    pub layer: String,
    pub block: Option<usize>,
    pub projection: String,
    pub kept_iou: f64,
    pub pruned_iou: f64,
    pub chance_kept_iou: f64,
    pub kept_only_first: u64,
    pub kept_only_second: u64,
    pub kept_both: u64,
    pub kept_either: u64,
    pub total: u64,
}

/// Overlap of every layer the two sets share (layers in only one set are skipped: a partial
/// pruning with `--include` compares on what both pruned).
pub fn compare_sets(first: &MaskSet, second: &MaskSet) -> Result<Vec<LayerOverlap>, AnalysisError> {
    let mut rows = Vec::new();
    for (layer, a) in &first.masks {
        let Some(b) = second.masks.get(layer) else { continue };
        let c = overlap(layer, (&first.label, a), (&second.label, b))?;
        let place = LayerPlace::in_model(layer, first.encoder_blocks);
        rows.push(LayerOverlap {
            first: first.label.clone(),
            second: second.label.clone(),
            layer: layer.clone(),
            block: place.block,
            projection: place.projection,
            kept_iou: c.kept_iou(),
            pruned_iou: c.pruned_iou(),
            chance_kept_iou: c.chance_kept_iou(),
            kept_only_first: c.kept_only_first(),
            kept_only_second: c.kept_only_second(),
            kept_both: c.kept_both,
            kept_either: c.kept_either,
            total: c.total,
        });
    }
    // Layer names sort as text (blk.12 before blk.2); readers follow depth.
    rows.sort_by(|a, b| (a.block.is_none(), a.block, &a.projection, &a.layer).cmp(&(b.block.is_none(), b.block, &b.projection, &b.layer)));
    if rows.is_empty() {
        return Err(AnalysisError::invalid(
            format!("masks of {} and {}", first.label, second.label),
            "no layer in common; compare masks of the same model",
        ));
    }
    Ok(rows)
}

/// Every unordered pair of sets, in the order given.
pub fn compare_all_pairs(sets: &[MaskSet]) -> Result<Vec<LayerOverlap>, AnalysisError> {
    let mut rows = Vec::new();
    for i in 0..sets.len() {
        for j in i + 1..sets.len() {
            rows.extend(compare_sets(&sets[i], &sets[j])?);
        }
    }
    Ok(rows)
}

/// Kept-set IoU of one pair pooled over one block's layers (a weight-count-weighted mean).
#[derive(Clone, Debug, Serialize)]
pub struct DepthOverlap {
    pub first: String,
    pub second: String,
    pub block: usize,
    pub kept_iou: f64,
    pub chance_kept_iou: f64,
}

/// The summary by depth: for each pair and block, intersections and unions summed over the
/// block's projections, so a big matrix weighs more than a small one.
pub fn by_depth(rows: &[LayerOverlap]) -> Vec<DepthOverlap> {
    // (first, second, block) -> (kept both, kept either, chance weighted by size, size)
    // (first, second, block) -> (kept in both, kept in either, chance numerator, layers)
    type Pooled = BTreeMap<(String, String, usize), (u64, u64, f64, u64)>;
    let mut pooled: Pooled = BTreeMap::new();
    for r in rows {
        let Some(block) = r.block else { continue };
        let e = pooled.entry((r.first.clone(), r.second.clone(), block)).or_default();
        e.0 += r.kept_both;
        e.1 += r.kept_either;
        e.2 += r.chance_kept_iou * r.total as f64;
        e.3 += r.total;
    }
    pooled
        .into_iter()
        .map(|((first, second, block), (both, either, chance, total))| DepthOverlap {
            first,
            second,
            block,
            kept_iou: ratio_or_one(both, either),
            chance_kept_iou: chance / total.max(1) as f64,
        })
        .collect()
}

/// Weights kept by one set and by none of the others, per layer.
#[derive(Clone, Debug, Serialize)]
pub struct UniqueKept {
    pub label: String,
    pub layer: String,
    pub block: Option<usize>,
    pub projection: String,
    pub kept: u64,
    pub kept_only_here: u64,
    pub total: u64,
}

/// For each set and layer: kept here, pruned by every other set (exact, on words).
pub fn unique_kept(sets: &[MaskSet]) -> Result<Vec<UniqueKept>, AnalysisError> {
    let mut rows = Vec::new();
    if sets.len() < 2 {
        return Ok(rows);
    }
    for layer in sets[0].masks.keys() {
        let masks: Vec<(&str, &Mask)> = sets.iter().filter_map(|s| s.masks.get(layer).map(|m| (s.label.as_str(), m))).collect();
        if masks.len() != sets.len() {
            continue;
        }
        for &(label, m) in &masks[1..] {
            overlap(layer, masks[0], (label, m))?; // shape check only
        }
        let place = LayerPlace::in_model(layer, sets[0].encoder_blocks);
        for (i, (label, mask)) in masks.iter().enumerate() {
            let only: u64 = (0..mask.words().len())
                .into_par_iter()
                .map(|w| {
                    let others = masks.iter().enumerate().filter(|(j, _)| *j != i).fold(0u64, |acc, (_, (_, o))| acc | o.words()[w]);
                    (mask.words()[w] & !others).count_ones() as u64
                })
                .sum();
            rows.push(UniqueKept {
                label: label.to_string(),
                layer: layer.clone(),
                block: place.block,
                projection: place.projection.clone(),
                kept: mask.count_kept() as u64,
                kept_only_here: only,
                total: mask.len() as u64,
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random_mask(rows: usize, cols: usize, keep: f64, seed: u64) -> Mask {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut m = Mask::all_pruned(rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                if rng.gen_bool(keep) {
                    m.set(r, c, true);
                }
            }
        }
        m
    }

    fn complement(m: &Mask) -> Mask {
        let mut c = Mask::all_pruned(m.rows(), m.cols());
        for r in 0..m.rows() {
            for col in 0..m.cols() {
                c.set(r, col, !m.get(r, col));
            }
        }
        c
    }

    /// Brute force over (row, col), element by element.
    fn brute(a: &Mask, b: &Mask) -> (f64, f64, u64) {
        let (mut both, mut either, mut p_both, mut p_either, mut only_a) = (0u64, 0u64, 0u64, 0u64, 0u64);
        for r in 0..a.rows() {
            for c in 0..a.cols() {
                let (x, y) = (a.get(r, c), b.get(r, c));
                both += (x && y) as u64;
                either += (x || y) as u64;
                p_both += (!x && !y) as u64;
                p_either += (!x || !y) as u64;
                only_a += (x && !y) as u64;
            }
        }
        (both as f64 / either as f64, p_both as f64 / p_either as f64, only_a)
    }

    #[test]
    fn a_mask_overlaps_itself_fully_and_its_complement_not_at_all() {
        // 7 x 37 = 259 bits: the last word is partly used, so tail bits must not count.
        let m = random_mask(7, 37, 0.5, 1);
        let same = overlap("l", ("a", &m), ("a", &m)).unwrap();
        assert_eq!(same.kept_iou(), 1.0);
        assert_eq!(same.pruned_iou(), 1.0);
        let c = complement(&m);
        let opposite = overlap("l", ("a", &m), ("not a", &c)).unwrap();
        assert_eq!(opposite.kept_iou(), 0.0);
        assert_eq!(opposite.pruned_iou(), 0.0);
        assert_eq!(opposite.kept_either, 7 * 37);
    }

    #[test]
    fn overlap_equals_brute_force_on_random_masks() {
        for (seed, (rows, cols, keep)) in [(3, 5, 0.5), (64, 64, 0.3), (17, 129, 0.7), (100, 33, 0.5)].into_iter().enumerate() {
            let a = random_mask(rows, cols, keep, seed as u64);
            let b = random_mask(rows, cols, keep, 100 + seed as u64);
            let c = overlap("l", ("a", &a), ("b", &b)).unwrap();
            let (kept, pruned, only_a) = brute(&a, &b);
            assert_eq!(c.kept_iou(), kept);
            assert_eq!(c.pruned_iou(), pruned);
            assert_eq!(c.kept_only_first(), only_a);
        }
    }

    #[test]
    fn independent_random_masks_overlap_at_chance() {
        // 200 x 500 independent Bernoulli(1/2) masks: IoU = 1/3 with sd ~ 0.002.
        let a = random_mask(200, 500, 0.5, 7);
        let b = random_mask(200, 500, 0.5, 8);
        let c = overlap("l", ("a", &a), ("b", &b)).unwrap();
        assert!((c.kept_iou() - 1.0 / 3.0).abs() < 0.01, "{}", c.kept_iou());
        assert!((c.chance_kept_iou() - 1.0 / 3.0).abs() < 0.01);
    }

    #[test]
    fn shapes_must_match() {
        let e = overlap("blk.0.attn_q.weight", ("eng", &Mask::all_kept(2, 3)), ("deu", &Mask::all_kept(3, 2))).unwrap_err();
        assert!(e.to_string().contains("blk.0.attn_q.weight"), "{e}");
    }

    fn set(label: &str, masks: Vec<(&str, Mask)>) -> MaskSet {
        MaskSet { label: label.into(), masks: masks.into_iter().map(|(n, m)| (n.to_string(), m)).collect(), encoder_blocks: None }
    }

    #[test]
    fn layers_are_ordered_by_depth_not_as_text() {
        let names = ["blk.12.attn_q.weight", "blk.2.attn_q.weight", "blk.2.attn_k.weight", "output.weight"];
        let masks = || names.iter().map(|n| (*n, Mask::all_kept(2, 2))).collect::<Vec<_>>();
        let rows = compare_sets(&set("eng", masks()), &set("deu", masks())).unwrap();
        let order: Vec<&str> = rows.iter().map(|r| r.layer.as_str()).collect();
        assert_eq!(order, ["blk.2.attn_k.weight", "blk.2.attn_q.weight", "blk.12.attn_q.weight", "output.weight"]);
    }

    #[test]
    fn depth_summary_pools_counts_and_unique_kept_is_exact() {
        let a0 = random_mask(8, 16, 0.5, 1);
        let a1 = random_mask(8, 40, 0.5, 2);
        let b0 = random_mask(8, 16, 0.5, 3);
        let b1 = random_mask(8, 40, 0.5, 4);
        let a = set("eng", vec![("blk.0.attn_q.weight", a0.clone()), ("blk.0.ffn_up.weight", a1.clone())]);
        let b = set("deu", vec![("blk.0.attn_q.weight", b0.clone()), ("blk.0.ffn_up.weight", b1.clone())]);
        let rows = compare_all_pairs(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].projection, "attn_q");
        let depth = by_depth(&rows);
        let c0 = overlap("", ("", &a0), ("", &b0)).unwrap();
        let c1 = overlap("", ("", &a1), ("", &b1)).unwrap();
        let pooled = (c0.kept_both + c1.kept_both) as f64 / (c0.kept_either + c1.kept_either) as f64;
        assert_eq!(depth.len(), 1);
        assert!((depth[0].kept_iou - pooled).abs() < 1e-12);
        let unique = unique_kept(&[a, b]).unwrap();
        let eng_q = unique.iter().find(|u| u.label == "eng" && u.projection == "attn_q").unwrap();
        assert_eq!(eng_q.kept_only_here, c0.kept_only_first());
    }

    #[test]
    fn layer_place_reads_gguf_names() {
        assert_eq!(LayerPlace::of("blk.12.ffn_down.weight"), LayerPlace { block: Some(12), projection: "ffn_down".into() });
        assert_eq!(LayerPlace::of("lm_head").block, None);
    }
}
