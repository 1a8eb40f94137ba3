#!/usr/bin/env python3
"""Record transformers' rotary frequencies for the scalings polyprune implements.

For each case a Hugging Face ``config.json`` (as published: ``rope_theta`` and ``rope_scaling``
at the top level) is loaded into its transformers config class, which standardises it into
``rope_parameters``; the inverse frequencies and attention factor then come from
``transformers.modeling_rope_utils.ROPE_INIT_FUNCTIONS`` (the code every model's rotary
embedding runs), and cos/sin at a few positions from the model's own rotary embedding module.
Written to ``tests/fixtures/rope_reference.json``:

* ``config``: the config dict as given, with its ``model_type`` (the Rust test parses it with
  ``RopeScaling::from_hf_config``), and ``rope_parameters``: transformers' standardised form of
  it, as ``save_pretrained`` writes it (parsed too);
* per layer type (``full_attention``, and Gemma 3's ``sliding_attention``): ``inv_freq`` (float32
  values, as transformers computes them), ``attention_factor``, and ``cos``/``sin`` of the first
  ``head_dim / 2`` pairs at ``positions`` (float32, from the module's forward).

Needs the pinned torch and transformers (``make gradient-reference`` installs them):

    .cache/venv/bin/python scripts/rope_reference.py --out tests/fixtures/rope_reference.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

POSITIONS = [0, 1, 2, 5, 17, 33, 64]

# Small shapes: only head_dim, the bases and the scaling matter to the rotary code.
BASE = {"hidden_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 64, "num_hidden_layers": 1, "vocab_size": 32}

CASES = [
    # Linear scaling at a plain base.
    ("linear", "llama", {**BASE, "head_dim": 64, "rope_theta": 10000.0, "max_position_embeddings": 4096, "rope_scaling": {"type": "linear", "factor": 4.0}}),
    # Llama 3.1 8B's published scaling.
    (
        "llama3-llama-3.1-8b",
        "llama",
        {
            **BASE,
            "head_dim": 128,
            "rope_theta": 500000.0,
            "max_position_embeddings": 131072,
            "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        },
    ),
    # Llama 3.2 1B/3B's (factor 32, head 64).
    (
        "llama3-llama-3.2",
        "llama",
        {
            **BASE,
            "head_dim": 64,
            "rope_theta": 500000.0,
            "max_position_embeddings": 131072,
            "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        },
    ),
    # Qwen2.5's long-context YaRN: attention factor from the factor.
    (
        "yarn-qwen2.5",
        "qwen2",
        {
            **BASE,
            "head_dim": 64,
            "rope_theta": 1000000.0,
            "max_position_embeddings": 131072,
            "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768},
        },
    ),
    # YaRN with every parameter given, and an untruncated ramp.
    (
        "yarn-explicit-untruncated",
        "llama",
        {
            **BASE,
            "head_dim": 64,
            "rope_theta": 150000.0,
            "max_position_embeddings": 5120,
            "rope_scaling": {
                "rope_type": "yarn",
                "factor": 2.5,
                "original_max_position_embeddings": 2048,
                "beta_fast": 16.0,
                "beta_slow": 2.0,
                "attention_factor": 1.25,
                "truncate": False,
            },
        },
    ),
    # Gemma 3 4B: linear factor 8 on the global layers, the local layers unscaled at 10,000.
    (
        "gemma3-4b",
        "gemma3_text",
        {
            **BASE,
            "head_dim": 256,
            "rope_theta": 1000000.0,
            "rope_local_base_freq": 10000.0,
            "max_position_embeddings": 131072,
            "query_pre_attn_scalar": 256,
            "sliding_window": 1024,
            "num_hidden_layers": 6,
            "rope_scaling": {"rope_type": "linear", "factor": 8.0},
        },
    ),
]


def jsonable(value):
    """The config's rope parameters as plain JSON (no tensors, no sets)."""
    return json.loads(json.dumps(value, default=str))


def main() -> None:
    import torch
    import transformers
    from transformers import AutoConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    cases = []
    for name, model_type, config_dict in CASES:
        config = AutoConfig.for_model(model_type, **json.loads(json.dumps(config_dict)))
        nested = "full_attention" in (config.rope_parameters or {})
        layer_types = ["full_attention", "sliding_attention"] if nested else [None]
        rotary = transformers.AutoModelForCausalLM.from_config(config).model.rotary_emb
        by_layer = {}
        for layer_type in layer_types:
            params = config.rope_parameters[layer_type] if layer_type else config.rope_parameters
            kind = params.get("rope_type", "default")
            if kind == "default":
                dim = config.head_dim
                inv = 1.0 / (params["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.int64).to(dtype=torch.float) / dim))
                attention_factor = 1.0
            else:
                inv, attention_factor = ROPE_INIT_FUNCTIONS[kind](config, "cpu", layer_type=layer_type) if layer_type else ROPE_INIT_FUNCTIONS[kind](config, "cpu")
            x = torch.zeros(1, len(POSITIONS), config.head_dim)
            position_ids = torch.tensor([POSITIONS])
            cos, sin = rotary(x, position_ids, layer_type=layer_type) if layer_type else rotary(x, position_ids)
            half = config.head_dim // 2
            by_layer[layer_type or "full_attention"] = {
                "inv_freq": [float(v) for v in inv.tolist()],
                "attention_factor": float(attention_factor),
                "cos": [[float(v) for v in row[:half]] for row in cos[0].tolist()],
                "sin": [[float(v) for v in row[:half]] for row in sin[0].tolist()],
            }
        cases.append(
            {
                "name": name,
                "config": {**config_dict, "model_type": model_type},
                "rope_parameters": jsonable(config.rope_parameters),
                "head_dim": config.head_dim,
                "positions": POSITIONS,
                "layers": by_layer,
            }
        )
    out = {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0], "cases": cases}
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}: {len(cases)} cases")


if __name__ == "__main__":
    main()
