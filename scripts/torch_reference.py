#!/usr/bin/env python3
"""The forward pass polyprune's evaluation times, in PyTorch + transformers, for a ratio in one run.

Builds a random-weight model from a configuration (no download) in the shape of
`polyprune model synth --like NAME [--blocks N]`, float32 like polyprune's graphs, and times
next-token log-probabilities of `samples` windows of `seqlen` random ids in batches of 4 (the
scorer's batching), best of two runs after a warm-up. Prints one JSON line.

usage: torch_reference.py --like llama-3-8b [--blocks 2] [--samples 16] [--seqlen 256] [--device cuda]
"""

import argparse
import json
import time

import torch
import transformers

# Published configurations (the same numbers as polyprune's synth table).
SHAPES = {
    "gemma-3-270m": ("Gemma3TextConfig", "Gemma3ForCausalLM", dict(
        vocab_size=262144, hidden_size=640, intermediate_size=2048, num_hidden_layers=18, num_attention_heads=4,
        num_key_value_heads=1, head_dim=256, sliding_window=512, rope_theta=1_000_000.0, rope_local_base_freq=10_000.0,
        query_pre_attn_scalar=256, max_position_embeddings=32768)),
    "gemma-3-1b": ("Gemma3TextConfig", "Gemma3ForCausalLM", dict(
        vocab_size=262144, hidden_size=1152, intermediate_size=6912, num_hidden_layers=26, num_attention_heads=4,
        num_key_value_heads=1, head_dim=256, sliding_window=512, rope_theta=1_000_000.0, rope_local_base_freq=10_000.0,
        query_pre_attn_scalar=256, max_position_embeddings=32768)),
    "llama-3-8b": ("LlamaConfig", "LlamaForCausalLM", dict(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, rope_theta=500_000.0, max_position_embeddings=8192, tie_word_embeddings=False)),
    "qwen2.5-0.5b": ("Qwen2Config", "Qwen2ForCausalLM", dict(
        vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
        num_key_value_heads=2, rope_theta=1_000_000.0, tie_word_embeddings=True)),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--like", required=True, choices=sorted(SHAPES))
    ap.add_argument("--blocks", type=int)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--seqlen", type=int, default=256)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    config_class, model_class, kwargs = SHAPES[args.like]
    if args.blocks:
        kwargs = dict(kwargs, num_hidden_layers=args.blocks)
    config = getattr(transformers, config_class)(**kwargs)
    config._attn_implementation = "sdpa"
    device = torch.device(args.device)
    torch.manual_seed(0)
    with device:
        model = getattr(transformers, model_class)(config).float().eval()
    ids = torch.randint(0, config.vocab_size, (args.samples, args.seqlen), device=device)

    def run() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.inference_mode():
            for batch in ids.split(4):
                logits = model(batch).logits[:, :-1]
                logprobs = torch.log_softmax(logits, dim=-1).gather(-1, batch[:, 1:, None])
                logprobs.sum().item()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    run()
    seconds = min(run(), run())
    tokens = args.samples * args.seqlen
    print(json.dumps({"like": args.like, "blocks": args.blocks, "tokens": tokens, "seconds": seconds,
                      "tokens_per_second": tokens / seconds, "device": str(device), "torch": torch.__version__,
                      "transformers": transformers.__version__}))


if __name__ == "__main__":
    main()
