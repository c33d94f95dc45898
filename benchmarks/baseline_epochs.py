"""Seconds per CIFAR-10 epoch of every baseline on this CPU: does a short equal-epoch comparison fit?

    python -m benchmarks.baseline_epochs [--threads 1] [--steps 3]      # about 3 minutes

Each model trains `--steps` steps (after one untimed) at batch 128 in float32 on real-sized inputs with its
optimizer; the epoch time is the median step time × 390 steps. The CIFAR-10 chapter's rule: the six expensive
baselines are compared on the CPU only if all of them fit about 4 CPU-hours at 10 equal epochs.
"""
from __future__ import annotations

import argparse

import torch

from lumina.baselines import BASELINES, build_baseline

from .common import median_time, training_step, write_json

STEPS_PER_EPOCH = 50_000 // 128
BUDGET_S = 4 * 3600


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    x, y = torch.randn(128, 3, 32, 32), torch.randint(0, 10, (128,))
    rows = []
    for name in BASELINES:
        torch.manual_seed(0)
        t = median_time(training_step(build_baseline(name), x, y), a.steps, warmup=1)
        rows.append({"model": name, "step_s": t, "epoch_s": t * STEPS_PER_EPOCH})
        print(f"{name:>10}: {t:6.2f} s/step, {t * STEPS_PER_EPOCH / 60:7.1f} min/epoch", flush=True)
    expensive = sum(r["epoch_s"] for r in rows if r["model"] != "lenet5")
    fits = 10 * expensive <= BUDGET_S
    print(f"10 epochs of the six expensive baselines: {10 * expensive / 3600:.1f} CPU-hours "
          f"({'fits' if fits else 'does not fit'} about 4)")
    write_json("baseline_epochs.json", threads=a.threads, rows=rows, ten_epochs_h=10 * expensive / 3600, fits=fits)


if __name__ == "__main__":
    main()
