//! Rotary scaling read from GGUF metadata (and `rope_freqs.weight`), or refused by key.

use super::super::gguf::test_builder::{EncodedValue as V, GgufBuilder};
use super::super::rope::RopeScaling;
use super::*;

/// Metadata of a `arch` (llama or qwen2) decoder with 2 heads of `head_dim`, and no tensors.
fn decoder(arch: &str, head_dim: u32, base: f32) -> GgufBuilder {
    rotating(arch, head_dim, base, head_dim)
}

/// The same, with the rotary embedding over `rotary_dims` of each head.
fn rotating(arch: &str, head_dim: u32, base: f32, rotary_dims: u32) -> GgufBuilder {
    let k = |s: &str| format!("{arch}.{s}");
    GgufBuilder::new()
        .kv("general.architecture", V::string(arch))
        .kv(&k("block_count"), V::u32(2))
        .kv(&k("embedding_length"), V::u32(2 * head_dim))
        .kv(&k("attention.head_count"), V::u32(2))
        .kv(&k("attention.head_count_kv"), V::u32(1))
        .kv(&k("feed_forward_length"), V::u32(16))
        .kv(&k("attention.layer_norm_rms_epsilon"), V::f32(1e-5))
        .kv(&k("rope.freq_base"), V::f32(base))
        .kv(&k("rope.dimension_count"), V::u32(rotary_dims))
        .kv(&k("context_length"), V::u32(131_072))
        .kv("tokenizer.ggml.tokens", V::string_array(&["a", "b", "c"]))
}

fn spec_of(builder: GgufBuilder) -> Result<DecoderSpec, ModelError> {
    decoder_spec(&GgufFile::from_bytes("rope-test.gguf", builder.build()).unwrap(), &ImportOptions::default())
}

/// transformers' inverse frequencies for a case of `tests/fixtures/rope_reference.json`.
fn reference_inv_freq(name: &str) -> Vec<f64> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rope_reference.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let case = json["cases"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap();
    case["layers"]["full_attention"]["inv_freq"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()
}

fn assert_close(got: &[f64], want: &[f64], label: &str) {
    assert_eq!(got.len(), want.len(), "{label}");
    // As in rope/tests.rs: transformers' float32 frequencies are within ~1e-7 relative, the
    // divisors stored as f32 add 6e-8; a wrong scaling is off by 1e-3 or more.
    for (j, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g / w - 1.0).abs() < 1e-6, "{label} pair {j}: {g} vs transformers {w}");
    }
}

#[test]
fn llama_3_1_divisors_in_rope_freqs_reproduce_transformers_llama3_scaling() {
    // The divisors as llama.cpp's converter writes them for Llama 3.1 (factor 8, low 1, high 4,
    // original 8192): written here from its formula, 1 / ((1 - smooth) / factor + smooth).
    let (head_dim, base) = (128usize, 500_000f64);
    let divisors: Vec<f32> = (0..head_dim / 2)
        .map(|j| {
            let wavelength = 2.0 * std::f64::consts::PI * base.powf(2.0 * j as f64 / head_dim as f64);
            let (factor, low, high, original) = (8.0, 1.0, 4.0, 8192.0);
            if wavelength < original / high {
                1.0
            } else if wavelength > original / low {
                factor as f32
            } else {
                let smooth = (original / wavelength - low) / (high - low);
                (1.0 / ((1.0 - smooth) / factor + smooth)) as f32
            }
        })
        .collect();
    let data: Vec<u8> = divisors.iter().flat_map(|d| d.to_le_bytes()).collect();
    let spec = spec_of(decoder("llama", 128, 500_000.0).tensor("rope_freqs.weight", &[64], 0, data)).unwrap();
    assert!(spec.rope_scaling.iter().all(|s| matches!(s, Some(RopeScaling::FrequencyDivisors { divisors }) if divisors.len() == 64)));
    assert_close(&spec.rotary(1).inverse_frequencies(head_dim), &reference_inv_freq("llama3-llama-3.1-8b"), "rope_freqs");
    // The card records it, so the folder's tables are built from it again.
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["rope_scaling"][0]["type"], "frequency_divisors");
}

#[test]
fn yarn_keys_reproduce_transformers_yarn() {
    let spec = spec_of(
        decoder("qwen2", 64, 1_000_000.0)
            .kv("qwen2.rope.scaling.type", V::string("yarn"))
            .kv("qwen2.rope.scaling.factor", V::f32(4.0))
            .kv("qwen2.rope.scaling.original_context_length", V::u32(32_768)),
    )
    .unwrap();
    let rotary = spec.rotary(0);
    assert_eq!(rotary.scaling, Some(RopeScaling::yarn(4.0, 32_768, None, None, None)));
    assert_close(&rotary.inverse_frequencies(64), &reference_inv_freq("yarn-qwen2.5"), "yarn");
    // 0.1 ln 4 + 1, transformers' default attention factor.
    assert!((rotary.attention_factor() - 1.138_629_436_111_989).abs() < 1e-12);
}

#[test]
fn linear_scaling_and_the_older_scale_linear_key_are_read() {
    let spec = spec_of(
        decoder("llama", 64, 10_000.0).kv("llama.rope.scaling.type", V::string("linear")).kv("llama.rope.scaling.factor", V::f32(4.0)),
    )
    .unwrap();
    assert_eq!(spec.rotary(0).scaling, Some(RopeScaling::Linear { factor: 4.0 }));
    assert_close(&spec.rotary(0).inverse_frequencies(64), &reference_inv_freq("linear"), "linear");
    // llama.cpp reads a factor without a type as linear; 1 means none.
    let spec = spec_of(decoder("llama", 64, 10_000.0).kv("llama.rope.scale_linear", V::f32(2.0))).unwrap();
    assert_eq!(spec.rotary(1).scaling, Some(RopeScaling::Linear { factor: 2.0 }));
    let spec = spec_of(decoder("llama", 64, 10_000.0).kv("llama.rope.scaling.factor", V::f32(1.0))).unwrap();
    assert!(spec.rope_scaling.iter().all(Option::is_none));
    // An unscaled spec writes no scaling into its card: older cards and identities are unchanged.
    assert!(serde_json::to_value(&spec).unwrap().get("rope_scaling").is_none());
}

#[test]
fn unimplemented_rotary_settings_are_refused_naming_the_key_and_the_file() {
    let cases = [
        (decoder("llama", 64, 10_000.0).kv("llama.rope.scaling.type", V::string("longrope")), "llama.rope.scaling.type", "'longrope'"),
        (
            decoder("qwen2", 64, 10_000.0)
                .kv("qwen2.rope.scaling.type", V::string("yarn"))
                .kv("qwen2.rope.scaling.factor", V::f32(4.0))
                .kv("qwen2.rope.scaling.yarn_attn_factor", V::f32(1.5)),
            "qwen2.rope.scaling.yarn_attn_factor",
            "1.5",
        ),
        (rotating("llama", 64, 10_000.0, 32), "llama.rope.dimension_count", "32"),
        (
            decoder("llama", 64, 10_000.0)
                .kv("llama.rope.scaling.type", V::string("linear"))
                .kv("llama.rope.scaling.factor", V::f32(2.0))
                .tensor("rope_freqs.weight", &[32], 0, vec![0; 128]),
            "rope_freqs.weight",
            "linear",
        ),
        (
            decoder("llama", 64, 10_000.0).tensor("rope_freqs.weight", &[16], 0, [1f32; 16].iter().flat_map(|v| v.to_le_bytes()).collect()),
            "rope_freqs.weight",
            "16 values",
        ),
    ];
    for (builder, key, value) in cases {
        let err = spec_of(builder).unwrap_err().to_string();
        assert!(err.contains(key) && err.contains(value) && err.contains("rope-test.gguf"), "{key}: {err}");
    }
}

#[test]
fn gemma3_scales_only_its_global_layers_and_reads_the_27b_attention_scale() {
    let k = |s: &str| format!("gemma3.{s}");
    let gemma = GgufBuilder::new()
        .kv("general.architecture", V::string("gemma3"))
        .kv(&k("block_count"), V::u32(7))
        .kv(&k("embedding_length"), V::u32(64))
        .kv(&k("attention.head_count"), V::u32(2))
        .kv(&k("attention.head_count_kv"), V::u32(1))
        .kv(&k("attention.key_length"), V::u32(32))
        .kv(&k("attention.sliding_window"), V::u32(16))
        .kv(&k("feed_forward_length"), V::u32(16))
        .kv(&k("attention.layer_norm_rms_epsilon"), V::f32(1e-6))
        .kv(&k("rope.freq_base"), V::f32(1_000_000.0))
        .kv(&k("rope.scaling.type"), V::string("linear"))
        .kv(&k("rope.scaling.factor"), V::f32(8.0))
        .kv("tokenizer.ggml.tokens", V::string_array(&["a", "b"]));
    let spec = spec_of(gemma).unwrap();
    for i in 0..7 {
        let want = if i == 5 { Some(RopeScaling::Linear { factor: 8.0 }) } else { None };
        assert_eq!(spec.rotary(i).scaling, want, "block {i}");
    }
    assert_eq!(spec.attn_scale, 1.0 / 32f32.sqrt());
    // transformers: query_pre_attn_scalar^-0.5, 168 for the 27B (62 blocks of 32 heads x 128,
    // width 5376), the head size (256) for the 4B.
    assert_eq!(gemma3_attn_scale(62, 5376, 32, 128), 1.0 / 168f32.sqrt());
    assert_eq!(gemma3_attn_scale(34, 2560, 8, 256), 1.0 / 256f32.sqrt());
}
