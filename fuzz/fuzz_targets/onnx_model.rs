//! The ONNX model reader on arbitrary bytes: decode, `model inspect`'s card, the scoring heads
//! added to an exported graph, and the re-encoding `prune --save` writes, which must decode to
//! the same bytes again (nothing lost or invented by a round trip).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use polyprune::model::graph::{card_of_model, with_heads_and_outputs};
use polyprune::model::onnx::ModelProto;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(model) = ModelProto::decode(data) else { return };
    let encoded = model.encode_to_vec();
    let again = ModelProto::decode(encoded.as_slice()).expect("a re-encoded model decodes");
    assert_eq!(again.encode_to_vec(), encoded, "a second round trip changed the bytes");
    if let Ok(card) = card_of_model(&model, Path::new("fuzz/model.onnx"), "fuzz".into()) {
        let taps: Vec<String> = card.layers.iter().map(|l| l.input.clone()).collect();
        let wrapped = with_heads_and_outputs(&model, !card.has_scoring_heads, &taps);
        let _ = wrapped.encode_to_vec();
    }
});
