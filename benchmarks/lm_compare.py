"""LuminaNet vs the 1-layer GPT-2 on TinyStories at matched width: compute and memory, measured.

    python -m benchmarks.lm_compare [--profile full] [--threads 1]      # about 1 minute per pair

For each width of the TinyStories v2 networks (`lumina.published.tinystories_runs`, seed 0) and for the v3 pair
(`lumina.published.text_v3_runs`: the recurrent network and GPT-2 at d128), on the evolved topology
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

from lumina import gather
from lumina.build import build_model
from lumina.published import text_v3_runs, tinystories_runs
from lumina.results import artifacts
from lumina.tables import display_name

from .common import write_json


def flops(fn) -> int:
    with torch.no_grad(), gather.torch_ops(), FlopCounterMode(display=False) as fc:  # the CL's products counted
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


def _tensor_bytes(obj) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    return 0


def generate_window(model, tokens, mode: str) -> dict:
    """Per generated token over one window of L tokens: (FLOPs, seconds, cache bytes)."""
    L = tokens.shape[1]
    if mode == "slot cache":
        def run():
            cache = {}
            for t in range(L):
                model.step_slot(tokens[:, t], t, cache)
            run.cache = _tensor_bytes(cache)  # slot outputs, or a recurrent network's previous position
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


def measure_pair(lcfg, gcfg, lum_name: str, group: str = "v2") -> list[dict]:
    """One LuminaNet (its stored evolved topology, else the initial one) and the GPT-2 of the same width."""
    V, L, B = lcfg.data.vocab_size, lcfg.model.context, lcfg.train.batch_size
    d = lcfg.model.d_hidden
    topology = artifacts(lcfg)["topology"]  # the evolved wiring; weights do not change FLOPs or memory
    network = "evolved" if topology is not None else "fresh"
    lum, gpt = build_model(lcfg, topology), build_model(gcfg)
    x = torch.randint(0, V, (B, L), generator=torch.Generator().manual_seed(0))
    y = torch.roll(x, -1, 1)
    rows = []
    for name, model, gen_modes in ((lum_name, lum, ("slot cache",)), (display_name("gpt2", d) + (f" ({group})" if group != "v2" else ""), gpt, ("KV cache", "no cache"))):
        model.eval()
        total = flops(lambda: model(x[:1]))
        head = 2 * d * V * L
        row = {"model": name, "group": group, "d_hidden": d, "network": network if "Lumina" in name else "fresh",
               "params": sum(p.numel() for p in model.parameters()) if "GPT" in name else model.count_params(),
               "flops_per_token": total / L, "body_flops_per_token": (total - head) / L,
               "train_tensor_mb": train_tensor_bytes(model.train(), x, y) / 2 ** 20}
        model.eval()
        for mode in gen_modes:
            row[f"generate ({mode})"] = generate_window(model, x[:1], mode)
        rows.append(row)
        gen = "; ".join(f"{m}: {v['flops_per_token'] / 1e6:.2f} MFLOP, {v['ms_per_token']:.2f} ms, {v['tensor_mb']:.1f} MiB per token"
                        for m, v in ((k[10:-1], v) for k, v in row.items() if k.startswith("generate")))
        print(f"{name:>24}: {row['flops_per_token'] / 1e6:7.2f} MFLOP/token (body {row['body_flops_per_token'] / 1e6:6.2f}), "
              f"training tensors {row['train_tensor_mb']:7.1f} MiB; generation {gen}")
    lr, gr = rows
    ratio = {k: lr[k] / gr[k] for k in ("flops_per_token", "body_flops_per_token", "train_tensor_mb")}
    lr["ratio_vs_gpt2"] = ratio
    print(f"{lum_name} / {display_name('gpt2', d)}: body FLOPs per token {ratio['body_flops_per_token']:.2f}x (target ≤ 0.75x), "
          f"all FLOPs {ratio['flops_per_token']:.2f}x, training tensor memory {ratio['train_tensor_mb']:.2f}x")
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="full")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    runs, rows = tinystories_runs(a.profile), []
    for lcfg, gcfg in zip(runs["luminanet"], runs["baselines"]):
        if lcfg.train.seed == 0:  # one row per width: FLOPs and memory depend on the topology, not the seed's weights
            rows += measure_pair(lcfg, gcfg, display_name("luminanet", lcfg.model.d_hidden))
    v3 = text_v3_runs(a.profile)  # the v3 pair (chapter 4's headline), each model at its chosen rate
    if len(v3) == 2:
        rows += measure_pair(next(c for v, c in v3.items() if v != "gpt2"), v3["gpt2"], "LuminaNet v3 recurrent", "v3")
    write_json("lm_compare.json", threads=a.threads, profile=a.profile, rows=rows)


if __name__ == "__main__":
    main()
