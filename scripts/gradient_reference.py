#!/usr/bin/env python3
"""Record PyTorch autograd gradients of the tiny llama, qwen2, cohere, bloom and mt5 fixtures for the Rust reverse pass.

For each fixture the transformers model is rebuilt exactly as ``make_fixtures.py`` builds it,
given the values a reader decodes from ``model.gguf`` (F16 matrices), and run in float64 on the
fixture's ``input_ids`` (2 x 12). The loss is the mean next-token cross-entropy over the 22
predicted positions, the quantity ``polyprune::model::gradient`` differentiates. Written to
``tests/fixtures/tiny-<arch>/gradients.json``:

* ``loss``;
* for every prunable matrix (``blk.N.attn_q.weight`` ... ``blk.N.ffn_down.weight``, GGUF names),
  the Frobenius norms of ``g = dL/dW`` and of ``H g`` (``H`` the Hessian of ``L`` over the
  prunable matrices only, by double backward: ``H g = d/dW (g.detach() . dL/dW)``), and both at
  16 fixed entries, in ``[out][in]`` layout with q/k rows in rotate-half order (HF's own for
  llama and qwen2; Cohere's adjacent-pair rows are reordered the way import reorders them);
* ``g_hg``: the scalar ``g^T H g``.

BLOOM (``--arch bloom``) is the Hugging Face fixture ``hf-bloom-f32`` (written by
``scripts/hf_fixtures.py write`` under ``--fixtures``, default ``.cache/fixtures``), run on the
token ids of its reference.json lines (four lines of different lengths, each its own batch; the
loss is the mean over all their predictions); its fused ``query_key_value`` rows are given in
the graph's [all Q; all K; all V] order, and the result goes to
``tests/fixtures/hf-bloom-f32/gradients.json``. Its GELU is transformers' own formula without
the hand-written backward (which double backward cannot differentiate).

mT5 (``--arch mt5``) is the Hugging Face fixture ``hf-mt5-f32`` (``scripts/hf_seq2seq_fixtures.py
write``, under ``--fixtures`` as BLOOM's), run on five (input, labels) pairs from its
reference.json: its three ``encoder`` texts, each both the encoder's input and the decoder's
labels (how pruning calibrates), and its two ``decoder`` (ids, labels) pairs. The loss is the
mean label cross-entropy over all of them (the decoder reads the labels shifted right behind the
start token, as transformers does when given ``labels``); the prunable matrices are both
stacks' self-attention q/k/v/o, the decoder's cross-attention q/k/v/o and the gated MLP's
wi_0/wi_1/wo (``enc.blk.N.attn_q.weight`` ... ``dec.blk.N.cross_attn_k.weight`` ...
``ffn_down.weight``); the result goes to ``tests/fixtures/hf-mt5-f32/gradients.json``.

transformers computes norms (RMS, or Cohere's LayerNorm), rotary tables (and Cohere's rotary
product) and the attention softmax in float32 even in a float64 model; this script patches them
to stay in float64, so the values are exact to about 1e-12.

Run with torch and transformers installed (see tests/fixtures/README.md):

    .cache/venv/bin/python scripts/gradient_reference.py --out tests/fixtures [--arch cohere]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import COHERE_TOKENIZER, LLAMA_TOKENIZER, QWEN2_TOKENIZER, build_decoder, build_tokenizer, load_stored_weights  # noqa: E402
from fixture_files import deinterleave_rope_rows, gguf_tensors, gguf_variants, model_weights  # noqa: E402

ARCHITECTURES = ("llama", "qwen2", "cohere", "bloom", "mt5")

ROLES = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
HF_ROLES = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
SAMPLES = 16


def float64_rms_norm(self, x):
    import torch

    return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon))


def float64_rotary(self, x, position_ids):
    import torch

    dim = self.inv_freq.shape[0] * 2
    base = self.config.rope_parameters["rope_theta"]
    inv = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    angles = position_ids[:, :, None].to(torch.float64) * inv[None, None, :]
    emb = torch.cat((angles, angles), dim=-1)
    return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


def float64_layer_norm(self, x):
    """Cohere's LayerNorm (no bias) without its float32 round trip."""
    import torch

    centred = x - x.mean(-1, keepdim=True)
    return self.weight * (centred * torch.rsqrt(centred.pow(2).mean(-1, keepdim=True) + self.variance_epsilon))


def float64_interleaved_rotary(self, x, position_ids):
    """Cohere's tables: each angle repeated in place (pairs 2j, 2j+1), in float64."""
    import torch

    dim = self.inv_freq.shape[0] * 2
    base = self.config.rope_parameters["rope_theta"]
    inv = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    angles = position_ids[:, :, None].to(torch.float64) * inv[None, None, :]
    emb = torch.repeat_interleave(angles, 2, dim=-1)
    return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


def keep_float64_cohere_rotary() -> None:
    """Cohere's apply_rotary_pos_emb casts q and k to float32; rotate in their own precision."""
    from transformers.models.cohere import modeling_cohere

    def apply(q, k, cos, sin, unsqueeze_dim=1):
        cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)
        rot = modeling_cohere.rotate_half
        return q * cos + rot(q) * sin, k * cos + rot(k) * sin

    modeling_cohere.apply_rotary_pos_emb = apply


def keep_float64_softmax() -> None:
    """Eager attention asks softmax for float32; a float64 input stays float64 here."""
    import torch.nn.functional as F

    original = F.softmax

    def softmax(x, dim=None, _stacklevel=3, dtype=None):
        import torch

        if dtype == torch.float32 and x.dtype == torch.float64:
            dtype = None
        return original(x, dim=dim, dtype=dtype)

    F.softmax = softmax


def sample_entries(rows: int, cols: int) -> list[tuple[int, int]]:
    """16 fixed entries spread over the matrix (corners, centre, a diagonal sweep)."""
    picks = [(0, 0), (rows - 1, cols - 1), (0, cols - 1), (rows - 1, 0), (rows // 2, cols // 2)]
    i = 0
    while len(picks) < SAMPLES:
        picks.append(((7 * i + 3) % rows, (13 * i + 5) % cols))
        i += 1
    return picks


def record(arch: str, fixture_dir: Path) -> dict:
    import torch
    import torch.nn.functional as F

    spec = {"llama": LLAMA_TOKENIZER, "qwen2": QWEN2_TOKENIZER, "cohere": COHERE_TOKENIZER}[arch]
    tok = build_tokenizer(spec)
    model = build_decoder(arch, tok, spec)
    tensors = gguf_tensors(model_weights(arch, model.config), arch, model.config)
    variant = next(v for v in gguf_variants(arch) if v.file_name == "model.gguf")
    load_stored_weights(model, arch, tensors, variant)
    model = model.double()
    for module in model.modules():
        name = type(module).__name__
        if name.endswith("RMSNorm"):
            module.forward = float64_rms_norm.__get__(module)
        if name == "CohereLayerNorm":
            module.forward = float64_layer_norm.__get__(module)
        if name.endswith("RotaryEmbedding"):
            rotary = float64_interleaved_rotary if arch == "cohere" else float64_rotary
            module.forward = rotary.__get__(module)

    reference = json.loads((fixture_dir / "reference.json").read_text())
    ids = torch.tensor(reference["input_ids"], dtype=torch.long)
    blocks = model.config.num_hidden_layers
    names, params = [], []
    for b in range(blocks):
        layer = model.model.layers[b]
        for role, hf in zip(ROLES, HF_ROLES):
            names.append(f"blk.{b}.{role}.weight")
            params.append(layer.get_submodule(hf).weight)
    logits = model(ids).logits
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
    grads = torch.autograd.grad(loss, params, create_graph=True)
    z = sum((g.detach() * g).sum() for g in grads)
    hg = torch.autograd.grad(z, params)
    layers = {}
    cfg = model.config
    for name, g, h in zip(names, grads, hg):
        g, h = g.detach().numpy(), h.detach().numpy()
        heads = {"attn_q": cfg.num_attention_heads, "attn_k": cfg.num_key_value_heads}.get(name.split(".")[2])
        if arch == "cohere" and heads is not None:
            # Cohere's rows pair (2j, 2j+1); the graph's pair (j, j + hd/2), as after import.
            g, h = deinterleave_rope_rows(g, heads), deinterleave_rope_rows(h, heads)
        picks = sample_entries(*g.shape)
        layers[name] = {
            "shape_out_in": list(g.shape),
            "grad_norm": float(np.linalg.norm(g)),
            "hg_norm": float(np.linalg.norm(h)),
            "entries": [[r, c, float(g[r, c]), float(h[r, c])] for r, c in picks],
        }
    return {
        "format": "polyprune-gradient-reference/1",
        "description": (
            f"tiny {arch}: dL/dW and H g (float64 autograd, double backward) for L = mean next-token "
            "cross-entropy over input_ids of reference.json; weights decoded from model.gguf; "
            "entries are [row_out, col_in, g, Hg]"
        ),
        "torch": torch.__version__,
        "loss": loss.item(),
        "g_hg": float(sum((g.detach() * h).sum() for g, h in zip(grads, hg))),
        "layers": layers,
    }


def layer_entry(g, h) -> dict:
    picks = sample_entries(*g.shape)
    return {
        "shape_out_in": list(g.shape),
        "grad_norm": float(np.linalg.norm(g)),
        "hg_norm": float(np.linalg.norm(h)),
        "entries": [[r, c, float(g[r, c]), float(h[r, c])] for r, c in picks],
    }


def record_bloom(folder: Path, fixture_dir: Path) -> dict:
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM
    from transformers.models.bloom import modeling_bloom

    from hf_fixtures import qkv_heads_to_blocks

    # The formula of BloomGelu's forward, left to autograd (its custom backward has no backward).
    modeling_bloom.BloomGelu.forward = lambda self, x: modeling_bloom.bloom_gelu_forward(x)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float64, attn_implementation="eager").eval()
    reference = json.loads((fixture_dir / "reference.json").read_text())
    rows = [line["ids"] for line in reference["lines"]]
    roles = [
        ("attn_qkv", "self_attention.query_key_value"),
        ("attn_output", "self_attention.dense"),
        ("ffn_up", "mlp.dense_h_to_4h"),
        ("ffn_down", "mlp.dense_4h_to_h"),
    ]
    names, params = [], []
    for b, block in enumerate(model.transformer.h):
        for role, hf in roles:
            names.append(f"blk.{b}.{role}.weight")
            params.append(block.get_submodule(hf).weight)
    predictions = sum(len(r) - 1 for r in rows)
    loss = 0
    for ids in rows:
        t = torch.tensor([ids], dtype=torch.long)
        logits = model(t).logits[0]
        loss = loss + F.cross_entropy(logits[:-1], t[0, 1:], reduction="sum")
    loss = loss / predictions
    grads = torch.autograd.grad(loss, params, create_graph=True)
    z = sum((g.detach() * g).sum() for g in grads)
    hg = torch.autograd.grad(z, params)
    heads = model.config.n_head
    layers = {}
    for name, g, h in zip(names, grads, hg):
        g, h = g.detach().numpy(), h.detach().numpy()
        if ".attn_qkv." in name:
            g, h = qkv_heads_to_blocks(g, heads), qkv_heads_to_blocks(h, heads)
        layers[name] = layer_entry(g, h)
    return {
        "format": "polyprune-gradient-reference/1",
        "description": (
            "tiny bloom (hf-bloom-f32): dL/dW and H g (float64 autograd, double backward) for L = mean "
            "next-token cross-entropy over the ids of reference.json's lines; entries are [row_out, col_in, g, Hg], "
            "query_key_value rows as [all Q; all K; all V]"
        ),
        "torch": torch.__version__,
        "loss": loss.item(),
        "g_hg": float(sum((g.detach() * h).sum() for g, h in zip(grads, hg))),
        "layers": layers,
    }


MT5_ROLES = [
    ("attn_q", "layer.0.SelfAttention.q"),
    ("attn_k", "layer.0.SelfAttention.k"),
    ("attn_v", "layer.0.SelfAttention.v"),
    ("attn_o", "layer.0.SelfAttention.o"),
]
MT5_CROSS_ROLES = [
    ("cross_attn_q", "layer.1.EncDecAttention.q"),
    ("cross_attn_k", "layer.1.EncDecAttention.k"),
    ("cross_attn_v", "layer.1.EncDecAttention.v"),
    ("cross_attn_o", "layer.1.EncDecAttention.o"),
]


def record_mt5(folder: Path, fixture_dir: Path) -> dict:
    import torch
    import torch.nn.functional as F
    from transformers import MT5ForConditionalGeneration

    # Loaded in float32 and converted whole: asked for float64 directly, transformers keeps
    # the MLP's `wo` in float32 (_keep_in_fp32_modules) and rounds its input to float32.
    model = MT5ForConditionalGeneration.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval().double()
    for module in model.modules():
        if type(module).__name__ == "MT5LayerNorm":
            # Its variance is taken in float32 even in a float64 model.
            module.forward = float64_rms_norm.__get__(module)
    reference = json.loads((fixture_dir / "reference.json").read_text())
    pairs = [(e["ids"], e["ids"]) for e in reference["encoder"]] + [(d["ids"], d["labels"]) for d in reference["decoder"]]
    names, params = [], []
    for stack, blocks in (("enc", model.encoder.block), ("dec", model.decoder.block)):
        for b, block in enumerate(blocks):
            mlp = "layer.2" if stack == "dec" else "layer.1"
            roles = MT5_ROLES + (MT5_CROSS_ROLES if stack == "dec" else [])
            roles = roles + [("ffn_gate", f"{mlp}.DenseReluDense.wi_0"), ("ffn_up", f"{mlp}.DenseReluDense.wi_1"), ("ffn_down", f"{mlp}.DenseReluDense.wo")]
            for role, hf in roles:
                names.append(f"{stack}.blk.{b}.{role}.weight")
                params.append(block.get_submodule(hf).weight)
    predictions = sum(len(labels) for _, labels in pairs)
    loss = 0
    for ids, labels in pairs:
        logits = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).logits[0]
        loss = loss + F.cross_entropy(logits, torch.tensor(labels), reduction="sum")
    loss = loss / predictions
    grads = torch.autograd.grad(loss, params, create_graph=True)
    z = sum((g.detach() * g).sum() for g in grads)
    hg = torch.autograd.grad(z, params)
    layers = {name: layer_entry(g.detach().numpy(), h.detach().numpy()) for name, g, h in zip(names, grads, hg)}
    return {
        "format": "polyprune-gradient-reference/1",
        "description": (
            "tiny mt5 (hf-mt5-f32): dL/dW and H g (float64 autograd, double backward) for L = mean label "
            "cross-entropy over the (input, labels) pairs: reference.json's encoder ids as both, then its decoder "
            "(ids, labels); entries are [row_out, col_in, g, Hg]"
        ),
        "torch": torch.__version__,
        "pairs": [[ids, labels] for ids, labels in pairs],
        "loss": loss.item(),
        "g_hg": float(sum((g.detach() * h).sum() for g, h in zip(grads, hg))),
        "layers": layers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures"), help="fixture root directory")
    parser.add_argument("--arch", nargs="+", choices=ARCHITECTURES, default=list(ARCHITECTURES), help="fixtures to record")
    parser.add_argument("--fixtures", type=Path, default=Path(".cache/fixtures"), help="written fixtures (for bloom and mt5)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    keep_float64_softmax()
    keep_float64_cohere_rotary()
    for arch in args.arch:
        if arch == "bloom":
            directory = args.out / "hf-bloom-f32"
            payload = record_bloom(args.fixtures / "hf-bloom-f32", directory)
        elif arch == "mt5":
            directory = args.out / "hf-mt5-f32"
            payload = record_mt5(args.fixtures / "hf-mt5-f32", directory)
        else:
            directory = args.out / f"tiny-{arch}"
            payload = record(arch, directory)
        (directory / "gradients.json").write_text(json.dumps(payload, indent=1) + "\n")
        print(f"{directory / 'gradients.json'}: loss {payload['loss']:.6f}, g.Hg {payload['g_hg']:.6f}")


if __name__ == "__main__":
    main()
