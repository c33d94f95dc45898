"""LuminaNet vs the 1-layer GPT-2 on TinyStories at matched width: compute and memory, measured.

    python -m benchmarks.lm_compare [--profile full] [--threads 1]      # about 1 minute per width

For each width of the TinyStories chapter (`lumina.published.tinystories_runs`, seed 0), on the evolved topology
of the stored LuminaNet run (the initial one when none is stored; weights do not change FLOPs or memory) and a
GPT-2 of d_model = d_hidden:
  - FLOPs per predicted training token: FlopCounterMode on one forward of a window, divided by the L tokens
    it predicts, with and without the output head (2·d·V per token) and the token embedding;
  - FLOPs and wall time per *generated* token over one window: LuminaNet with its slot cache
    (`LuminaNet.step_slot`), GPT-2 with its KV cache and without it (the whole prefix per token);
  - tensor memory: of a training step (parameters + gradients + optimizer state + the activations autograd
    saves for backward, counted by `saved_tensors_hooks`) and of generation (parameters + cache).
Targets (issue "TinyStories chapter v2"): LuminaNet body FLOPs per predicted token ≤ 0.75× GPT-2's.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from lumina.build import build_model
from lumina.published import tinystories_runs
from lumina.results import artifacts

from .common import write_json


def flops(fn) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        fn()
    return int(fc.get_total_flops())


def train_tensor_bytes(model, x, y) -> int:
    """Parameters + gradients + AdamW's two moments + saved activations of one training step."""
    saved = [0]

    def pack(t):
        saved[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
        loss = F.cross_entropy(out.flatten(0, 1), y.flatten())
    loss.backward()
    model.zero_grad(set_to_none=True)
    p = sum(q.numel() * q.element_size() for q in model.parameters())
    return 4 * p + saved[0]


def generate_window(model, tokens, mode: str) -> dict:
    """Per generated token over one window of L tokens: (FLOPs, seconds, cache bytes)."""
    L = tokens.shape[1]
    if mode == "slot cache":
        def run():
            cache = {}
            for t in range(L):
                model.step_slot(tokens[:, t], t, cache)
            run.cache = sum(v.numel() * 4 for d in (cache["f1"], cache["f2"]) for v in d.values())
    elif mode == "KV cache":
        def run():
            past = None
            for t in range(L):
                out = model.lm(input_ids=tokens[:, t:t + 1], past_key_values=past, use_cache=True)
                past = out.past_key_values
            run.cache = 2 * L * model.lm.config.n_embd * 4 * model.lm.config.n_layer
    else:  # no cache: the whole prefix per new token
        def run():
            for t in range(L):
                model.lm(input_ids=tokens[:, :t + 1], use_cache=False)
            run.cache = 0
    f = flops(run)
    with torch.no_grad():
        t0 = time.perf_counter()
        run()
        dt = time.perf_counter() - t0
    p = sum(q.numel() * q.element_size() for q in model.parameters())
    return {"flops_per_token": f / L, "ms_per_token": 1e3 * dt / L, "tensor_mb": (p + run.cache) / 2 ** 20}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="full")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    runs = tinystories_runs(a.profile)
    rows = []
    for lcfg, gcfg in zip(runs["luminanet"], runs["baselines"]):
        if lcfg.train.seed != 0:  # one row per width: FLOPs and memory depend on the topology, not the seed's weights
            continue
        V, L, B = lcfg.data.vocab_size, lcfg.model.context, lcfg.train.batch_size
        d = lcfg.model.d_hidden
        topology = artifacts(lcfg)["topology"]  # the evolved wiring; weights do not change FLOPs or memory
        network = "evolved" if topology is not None else "fresh"
        lum = build_model(lcfg, topology)
        gpt = build_model(gcfg)
        x = torch.randint(0, V, (B, L), generator=torch.Generator().manual_seed(0))
        y = torch.roll(x, -1, 1)
        for name, model, gen_modes in ((f"LuminaNet-{d}", lum, ("slot cache",)), (f"GPT-2 d{d}", gpt, ("KV cache", "no cache"))):
            model.eval()
            total = flops(lambda: model(x[:1]))
            head = 2 * d * V * L
            row = {"model": name, "d_hidden": d, "network": network if "Lumina" in name else "fresh",
                   "params": sum(p.numel() for p in model.parameters()) if "GPT" in name else model.count_params(),
                   "flops_per_token": total / L, "body_flops_per_token": (total - head) / L,
                   "train_tensor_mb": train_tensor_bytes(model.train(), x, y) / 2 ** 20}
            model.eval()
            for mode in gen_modes:
                row[f"generate ({mode})"] = generate_window(model, x[:1], mode)
            rows.append(row)
            gen = "; ".join(f"{m}: {v['flops_per_token'] / 1e6:.2f} MFLOP, {v['ms_per_token']:.2f} ms, {v['tensor_mb']:.1f} MiB per token"
                            for m, v in ((k[10:-1], v) for k, v in row.items() if k.startswith("generate")))
            print(f"{name:>14}: {row['flops_per_token'] / 1e6:7.2f} MFLOP/token (body {row['body_flops_per_token'] / 1e6:6.2f}), "
                  f"training tensors {row['train_tensor_mb']:7.1f} MiB; generation {gen}")
        lr, gr = rows[-2], rows[-1]
        ratio = {k: lr[k] / gr[k] for k in ("flops_per_token", "body_flops_per_token", "train_tensor_mb")}
        lr["ratio_vs_gpt2"] = ratio
        print(f"LuminaNet-{d} / GPT-2: body FLOPs per token {ratio['body_flops_per_token']:.2f}x (target ≤ 0.75x), "
              f"all FLOPs {ratio['flops_per_token']:.2f}x, training tensor memory {ratio['train_tensor_mb']:.2f}x")
    write_json("lm_compare.json", threads=a.threads, profile=a.profile, rows=rows)


if __name__ == "__main__":
    main()
