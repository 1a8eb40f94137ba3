//! BLOOM's fused query/key/value layer is held as [Q; K; V] blocks while Hugging Face
//! checkpoints interleave it per head: no pruning method may depend on that row order.

use crate::model::hf::names::qkv_heads_to_blocks;

#[test]
fn pruning_the_fused_layer_commutes_with_its_row_order() {
    use crate::prune::{InputStatistics, LinearWeight, Method, Sparsity, SparsityTarget};
    let (heads, hd, cols, tokens) = (3, 4, 16, 64);
    let rows = 3 * heads * hd;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    // The checkpoint's interleaved rows, and uneven input channels so Wanda and SparseGPT
    // differ from magnitude.
    let interleaved: Vec<f32> = (0..rows * cols).map(|_| next() as f32).collect();
    let x: Vec<f32> = (0..tokens * cols).map(|i| (next() * (1.0 + (i % cols) as f64)) as f32).collect();
    let mut stats = InputStatistics::new("qkv", cols, true);
    stats.accumulate(&x, tokens).unwrap();
    let blocks = qkv_heads_to_blocks(&interleaved, heads, hd, cols);
    let target = SparsityTarget::Unstructured(Sparsity::new(0.5).unwrap());
    for method in ["magnitude", "magnitude-row", "wanda", "sparsegpt"] {
        let m: Method = method.parse().unwrap();
        let prune =
            |data: &[f32]| m.prune("qkv", &LinearWeight::new("qkv", rows, cols, data.to_vec()).unwrap(), Some(&stats), target).unwrap();
        let (a, b) = (prune(&interleaved), prune(&blocks));
        let kept = |mask: &crate::prune::Mask| -> Vec<f32> {
            (0..rows * cols).map(|i| if mask.get(i / cols, i % cols) { 1.0 } else { 0.0 }).collect()
        };
        assert_eq!(qkv_heads_to_blocks(&kept(&a.mask), heads, hd, cols), kept(&b.mask), "{method}: masks");
        if let (Some(wa), Some(wb)) = (&a.new_weights, &b.new_weights) {
            let moved = qkv_heads_to_blocks(wa, heads, hd, cols);
            let worst = moved.iter().zip(wb).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
            // The same f64 arithmetic per row; only the order rows are handed out differs.
            assert!(worst < 1e-6, "{method}: updated weights differ by {worst}");
        }
    }
}
