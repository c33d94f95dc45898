"""LuminaNet vs the 1-layer GPT-2 on TinyStories: FLOPs per predicted token, training peak memory, tokens/s.

    python -m benchmarks.lm_compare [--profile full] [--threads 1] [--steps 20]

Each model is measured in a **fresh subprocess** (so one model's allocations cannot hide another's), on the
stored trained networks of the TinyStories chapter (LuminaNet: its evolved topology) with the same tokenizer
size, context and batch as their training runs:
  - FLOPs per predicted token: FlopCounterMode on one forward, divided by the tokens that forward predicts
    (LuminaNet: 1 per window; GPT-2: L per window, as it is trained); with and without the output head;
  - training peak memory: the resident set size sampled every 0.5 ms during the training steps, as the
    process peak and as its rise over the process just before the first step (model, optimizer state not
    yet allocated, batch built): what training itself adds (activations, gradients, AdamW moments);
  - predicted tokens per second of training steps (forward, backward, AdamW).
Writes benchmarks/results/lm_compare.json and prints the LuminaNet/GPT-2 ratios.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

from .common import write_json

CHILD = r"""
import json, sys, time, torch
from lumina.config import ExperimentConfig
from lumina.checkpoint import load_network
from lumina.metrics import flops_per_example
from lumina.results import result_dir
from lumina.train import build_model
cfg = ExperimentConfig.from_dict(json.loads(sys.argv[1])); steps = int(sys.argv[2])
torch.set_num_threads(int(sys.argv[3])); torch.manual_seed(0)
m, V, L, B = cfg.model, cfg.data.vocab_size, cfg.model.context, cfg.train.batch_size
if m.arch == "luminanet":
    model, _ = load_network(result_dir(cfg) / "network", cfg)
    head = 2 * model.head.in_features * model.head.out_features
    per_window = 1
else:
    model = build_model(cfg)
    head = 2 * m.d_hidden * V * L  # the tied LM head at every position
    per_window = L
x = torch.randint(0, V, (B, L))
y = torch.randint(0, V, (B,) if per_window == 1 else (B, L))
flops = flops_per_example(model, x[:1])
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
lossf = lambda out: torch.nn.functional.cross_entropy(out.reshape(-1, V), y.reshape(-1))
import threading
def rss_kib():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
peak, done = [rss_kib()], threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss_kib()); time.sleep(0.0005)
rss0 = rss_kib()
th = threading.Thread(target=sample, daemon=True); th.start()
for k in range(steps + 2):
    if k == 2:
        t = time.perf_counter()
    loss = lossf(model(x)); opt.zero_grad(); loss.backward(); opt.step()
dt = (time.perf_counter() - t) / steps
done.set(); th.join()
rss = max(peak[0], rss_kib())
print(json.dumps({"arch": m.arch, "d_hidden": m.d_hidden, "seed": cfg.train.seed,
                  "flops_per_token": flops / per_window, "flops_per_token_no_head": (flops - head) / per_window,
                  "peak_rss_mb": rss / 1024, "train_rise_mb": (rss - rss0) / 1024,
                  "tokens_per_s": B * per_window / dt, "step_ms": 1e3 * dt,
                  "params": sum(p.numel() for p in model.parameters()) if m.arch != "luminanet" else model.count_params()}))
"""


def main(argv=None):
    from lumina.published import tinystories_runs
    from lumina.results import load_result, result_dir

    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="full")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--out", default="benchmarks/results/lm_compare.json")
    a = ap.parse_args(argv)
    runs = tinystories_runs(a.profile)
    rows = []
    for cfg in [c for g in runs.values() for c in g if c.train.seed == 0]:
        if load_result(cfg) is None:
            print(f"skip {cfg.model.arch} d_hidden={cfg.model.d_hidden}: no stored run (python -m lumina run-set tinystories)")
            continue
        if cfg.model.arch == "luminanet" and not (result_dir(cfg) / "network" / "weights.safetensors").exists():
            print(f"skip luminanet d_hidden={cfg.model.d_hidden}: its network weights are not stored here (networks over "
                  f"50 MB are not committed; retrain with python -m lumina train tinystories --profile {a.profile} "
                  f"--set d_hidden={cfg.model.d_hidden} --retrain)")
            continue
        out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg.to_dict()), str(a.steps), str(a.threads)],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"{r['arch']:>9} d={r['d_hidden']:<4} MFLOPs/token {r['flops_per_token'] / 1e6:8.2f} (no head {r['flops_per_token_no_head'] / 1e6:7.2f})"
              f"  peak RSS {r['peak_rss_mb']:7.0f} MiB (training adds {r['train_rise_mb']:6.0f})  {r['tokens_per_s']:9.0f} tokens/s")
    gpt = next((r for r in rows if r["arch"] == "gpt2"), None)
    if gpt:
        for r in rows:
            if r["arch"] == "luminanet":
                r["ratio_vs_gpt2"] = {k: (r[k] / gpt[k] if gpt[k] else float("nan")) for k in ("flops_per_token", "flops_per_token_no_head", "peak_rss_mb",
                                                                 "train_rise_mb", "tokens_per_s")}
                print(f"LuminaNet-{r['d_hidden']} / GPT-2: " + ", ".join(f"{k} {v:.2f}" for k, v in r["ratio_vs_gpt2"].items()))
    write_json(a.out, threads=a.threads, steps=a.steps, rows=rows)


if __name__ == "__main__":
    main()
