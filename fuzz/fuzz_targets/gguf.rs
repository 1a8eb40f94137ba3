//! The GGUF reader on arbitrary bytes: header, metadata, tensor table, then every tensor
//! dequantised whole and by rows (each tensor type has its own block decoder), and the decoder
//! spec that `model import` derives from the metadata. Errors are fine; panics, hangs and
//! unbounded allocations are bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polyprune::model::gguf::GgufFile;
use polyprune::model::import::{decoder_spec, ImportOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes("fuzz.gguf", data.to_vec()) else { return };
    for (key, value) in file.metadata().iter() {
        let _ = (key.len(), value.describe());
    }
    for tensor in file.tensors() {
        let whole = tensor.dequantize();
        let rows = tensor.shape().n_rows();
        let some_rows = tensor.dequantize_rows(rows / 2..rows);
        if let (Ok(whole), Ok(part)) = (&whole, &some_rows) {
            // The rows read alone are the tail of the whole tensor, bit for bit.
            let tail = &whole[whole.len() - part.len()..];
            assert!(tail.iter().zip(part).all(|(a, b)| a.to_bits() == b.to_bits()), "rows differ from the whole tensor");
        }
        let _ = tensor.dequantize_rows(rows..rows + 1);
    }
    let _ = decoder_spec(&file, &ImportOptions { max_positions: 64 });
});
