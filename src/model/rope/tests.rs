//! The rotary frequencies and tables against transformers' own (`tests/fixtures/rope_reference.json`,
//! written by `scripts/rope_reference.py` with the pinned transformers and torch).

use serde_json::{json, Value};

use super::*;

fn reference() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rope_reference.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("committed fixture")).expect("valid JSON")
}

fn case(name: &str) -> Value {
    reference()["cases"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no case {name}")).clone()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// The rotary of `layer_type`, read from the case's config.json as published (`rope_scaling`),
/// after checking that transformers' standardised `rope_parameters` (what `save_pretrained`
/// writes) reads the same.
fn rotary_of(case: &Value, layer_type: &str) -> Rotary {
    let config = &case["config"];
    let scaling = RopeScaling::from_hf_config_for_layer_type(config, layer_type).unwrap();
    let base = hf_rope_theta(config, Some(layer_type)).unwrap();
    let saved = json!({
        "rope_parameters": case["rope_parameters"],
        "max_position_embeddings": config["max_position_embeddings"],
    });
    assert_eq!(RopeScaling::from_hf_config_for_layer_type(&saved, layer_type).unwrap(), scaling, "{}: saved form", case["name"]);
    assert_eq!(hf_rope_theta(&saved, Some(layer_type)), Some(base), "{}: saved form's base", case["name"]);
    Rotary { base, scaling }
}

#[test]
fn inverse_frequencies_cos_and_sin_match_transformers() {
    let reference = reference();
    let cases = reference["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let head_dim = case["head_dim"].as_u64().unwrap() as usize;
        let positions: Vec<usize> = case["positions"].as_array().unwrap().iter().map(|p| p.as_u64().unwrap() as usize).collect();
        for (layer_type, expected) in case["layers"].as_object().unwrap() {
            let label = format!("{} {layer_type}", case["name"]);
            let rotary = rotary_of(case, layer_type);
            if let Some(s) = &rotary.scaling {
                s.validate(head_dim, "rope_scaling").unwrap();
            }
            // transformers computes the frequencies in float32: base^(2j/d) and its reciprocal
            // are each within an ulp or two (~1.2e-7 relative), the llama3 blend and YaRN ramp
            // add a few more roundings; 1e-6 bounds all of it, while any formula error (a wrong
            // band edge, ramp end, factor or base) moves some frequency by 1e-3 or more.
            let want = floats(&expected["inv_freq"]);
            let got = rotary.inverse_frequencies(head_dim);
            assert_eq!(got.len(), want.len(), "{label}");
            for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g / w - 1.0).abs() < 1e-6, "{label} pair {j}: {g} vs transformers {w}");
            }
            let factor = expected["attention_factor"].as_f64().unwrap();
            assert!((rotary.attention_factor() - factor).abs() < 1e-12, "{label}: attention factor");
            // cos/sin from transformers' rotary module, in float32: the angle p * inv_freq is
            // rounded to float32 (half an ulp of 64 is 3.8e-6 rad) after inv_freq's own rounding
            // (64 x 1.2e-7 = 7.6e-6 rad), then scaled by the attention factor (<= 1.25): at most
            // ~1.5e-5 apart from our f64 tables rounded once; 2e-5 allows that. A wrong attention
            // factor or frequency is off by 1e-2 or more at these positions.
            let max_p = positions.iter().max().unwrap() + 1;
            let (cos, sin) = rotary.tables(head_dim, max_p, |v| v as f32);
            let half = head_dim / 2;
            for (row, &p) in positions.iter().enumerate() {
                for j in 0..half {
                    let (wc, ws) = (expected["cos"][row][j].as_f64().unwrap(), expected["sin"][row][j].as_f64().unwrap());
                    for k in [j, j + half] {
                        let (gc, gs) = (f64::from(cos[p * head_dim + k]), f64::from(sin[p * head_dim + k]));
                        assert!(
                            (gc - wc).abs() < 2e-5 && (gs - ws).abs() < 2e-5,
                            "{label} position {p} pair {j}: ({gc}, {gs}) vs ({wc}, {ws})"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn published_configs_read_as_the_scalings_they_name() {
    assert_eq!(rotary_of(&case("llama3-llama-3.1-8b"), "full_attention").scaling, Some(RopeScaling::llama_3_1()));
    let gemma = case("gemma3-4b");
    let global = rotary_of(&gemma, "full_attention");
    let local = rotary_of(&gemma, "sliding_attention");
    assert_eq!((global.base, global.scaling.clone()), (1_000_000.0, Some(RopeScaling::Linear { factor: 8.0 })));
    assert_eq!((local.base, local.scaling), (10_000.0, None));
    let qwen = rotary_of(&case("yarn-qwen2.5"), "full_attention");
    assert_eq!(qwen.scaling, Some(RopeScaling::yarn(4.0, 32768, Some(32.0), Some(1.0), None)));
    // The unscaled table keeps the name folders had before scaling existed; scaled ones differ.
    assert_eq!(Rotary::plain(10_000.0).table_names().0, "rope.10000.cos");
    assert_ne!(global.table_names(), Rotary::plain(1_000_000.0).table_names());
}

#[test]
fn unknown_kinds_and_keys_are_refused_by_name() {
    let err = RopeScaling::from_hf_config(&json!({"rope_scaling": {"rope_type": "longrope", "factor": 4.0}})).unwrap_err();
    assert_eq!(err.key, "rope_scaling.rope_type");
    assert!(err.to_string().contains("longrope") && err.to_string().contains("implements"), "{err}");
    let err = RopeScaling::from_hf_config(&json!({"rope_scaling": {"type": "dynamic", "factor": 2.0}})).unwrap_err();
    assert_eq!((err.key.as_str(), err.value.as_str()), ("rope_scaling.type", "dynamic"));
    let err =
        RopeScaling::from_hf_config(&json!({"rope_scaling": {"rope_type": "linear", "factor": 2.0, "short_factor": [1.0]}})).unwrap_err();
    assert_eq!(err.key, "rope_scaling.short_factor");
    let err = RopeScaling::from_hf_config(&json!({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}})).unwrap_err();
    assert_eq!(err.key, "rope_scaling.low_freq_factor", "{err}");
    let err = RopeScaling::from_hf_config(&json!({"rope_scaling": {"rope_type": "yarn", "factor": 40.0, "mscale": 1.0, "mscale_all_dim": 1.0}, "max_position_embeddings": 163840}))
        .unwrap_err();
    assert_eq!(err.key, "rope_scaling.mscale_all_dim");
    // No scaling, or the default kind: none.
    assert_eq!(RopeScaling::from_hf_config(&json!({"rope_theta": 10000.0})).unwrap(), None);
    assert_eq!(RopeScaling::from_hf_config(&json!({"rope_scaling": null})).unwrap(), None);
    assert_eq!(RopeScaling::from_hf_config(&json!({"rope_parameters": {"rope_type": "default", "rope_theta": 1e4}})).unwrap(), None);
    // Divisors that do not fit the head are refused when validated.
    let bad = RopeScaling::FrequencyDivisors { divisors: vec![1.0; 3] };
    assert!(bad.validate(8, "rope_freqs.weight").unwrap_err().to_string().contains("head size 8 has 4"));
}
