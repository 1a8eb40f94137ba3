//! Saved pruning masks on arbitrary bytes: the bit-packed mask file and its JSON index.
//! Input layout: two bytes (little-endian) giving the index's length, the index text, then the
//! mask file's bytes. A decoded mask is applied to a weight matrix as evaluation does.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use polyprune::prune::{decode_mask, encode_mask};
use polyprune::pruned::parse_mask_index;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let index_len = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
    let (index, mask_bytes) = data[2..].split_at(index_len);
    let entries = std::str::from_utf8(index).ok().and_then(|t| parse_mask_index(t, Path::new("fuzz/index.json")).ok());
    let Ok(mask) = decode_mask(mask_bytes, Path::new("fuzz/layer.mask")) else { return };
    assert_eq!(encode_mask(&mask), mask_bytes, "a decoded mask re-encodes to other bytes");
    let n = mask.rows() * mask.cols();
    if n <= 1 << 20 {
        let mut weights = vec![1.0f32; n];
        mask.apply(&mut weights).expect("a mask applies to a matrix of its own shape");
        let mut wrong = vec![1.0f32; n + 1];
        assert!(mask.apply(&mut wrong).is_err(), "a mask applied to a matrix of another shape");
    }
    for entry in entries.iter().flatten() {
        let _ = (entry.out_features == mask.rows(), entry.in_features == mask.cols());
    }
});
