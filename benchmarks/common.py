"""Shared by the benchmarks: the networks they time, median timing, and where their JSON goes.

A user's run writes to `benchmarks/out/` (untracked), so it never dirties the checkout; `--update` (on
`python -m benchmarks`) writes the published figures in `benchmarks/results/` that the efficiency chapter reads.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from lumina.model import LuminaNet
from lumina.optim import make_optimizer
from lumina.topology import random_graph

ROOT = Path(__file__).resolve().parent
OUT = {"dir": ROOT / "out"}  # set to benchmarks/results by --update


def evolved_like(n_clusters: int, d_hidden: int, cl: str = "source") -> LuminaNet:
    """An 'evolved-looking' image LuminaNet: n clusters over the 12 patch slots, ~4 in-edges each, sizes 2-96."""
    g = random_graph(n_slots=12, size=48, n_splits=n_clusters - 12, n_edges=4 * n_clusters, seed=n_clusters)
    return LuminaNet(g, d_in=256, d_hidden=d_hidden, n_out=10, cl=cl)


def step_args(argv=None) -> argparse.Namespace:
    """--threads, --batch and --reps of the benchmarks that time one training step; sets the thread count."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--reps", type=int, default=10)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    return a


def training_step(model, x, y, executor: str = "fast"):
    """A closure doing one training step (forward, backward, the run's optimizer) of `model` on (x, y)."""
    opt = make_optimizer(model, 1e-3, 0.05)
    call = (lambda: model(x, executor)) if isinstance(model, LuminaNet) else (lambda: model(x))

    def step():
        loss = torch.nn.functional.cross_entropy(call(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def median_time(fn, reps: int, warmup: int = 3) -> float:
    """Median wall time of `fn()` over `reps` calls, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def block_median_times(fns: dict, reps: int, blocks: int = 3) -> dict:
    """Median wall time of each of `fns` ({name: fn}), timed in alternating blocks (a: `reps` calls, b: `reps`
    calls, a, b, ...): each block warms its own caches, as training repeats one step, and a busy minute of the
    machine falls on both sides of a ratio instead of one. The median over blocks of each block's median."""
    times = {k: [] for k in fns}
    for _ in range(blocks):
        for k, fn in fns.items():
            times[k].append(median_time(fn, reps))
    return {k: statistics.median(v) for k, v in times.items()}


def write_json(name: str, **payload) -> Path:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    path = OUT["dir"] / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"torch": torch.__version__, "machine": cpu, **payload}, indent=1))
    print(f"wrote {path}")
    return path
