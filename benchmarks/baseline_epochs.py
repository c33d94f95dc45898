"""Minutes per CIFAR-10 epoch of every baseline on this CPU, float32 and the CPU fast path side by side.

    python -m benchmarks baseline_epochs                          # all seven, 3 timed steps per path
    python -m benchmarks.baseline_epochs --steps 5 --models alexnet,resnet18 [--table float32] [--try bf16+cl,compile]

One training step as `lumina.loop` runs it (forward, label-smoothed loss, backward, grad clipping, the run's
fused AdamW) at batch 128, one thread. The float32 and fast-path steps of a model alternate after one untimed
step each, so a busy machine slows both alike; a minute per epoch is the median step × 390 steps. The budget
uses CPU seconds (`time.process_time`: what the process computed, however many other processes share the
core); wall seconds are stored beside them. The fast path is `lumina.baselines.vision.fast_path`: the table for
this CPU ("bf16" where it has native bf16 kernels, else "float32"), or the one `--table` names; a model without
one (an empty entry) is timed once and its fast path equals float32. `--try` times other options too (bf16
autocast, channels_last, torch.compile, and their combinations) and prints their ratio to float32.
"""
from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from lumina.baselines import BASELINES, build_baseline
from lumina.baselines.vision import FAST_PATHS, channels_last, fast_path, native_bf16
from lumina.optim import make_optimizer

from .common import write_json

STEPS_PER_EPOCH = 50_000 // 128


def training_step(name: str, amp: bool = False, cl: bool = False, compile: bool = False):
    """One training step of baseline `name` as the loop runs it, on a fixed random batch (times do not depend
    on the values): returns a closure."""
    torch.manual_seed(0)
    model = build_baseline(name).train()
    opt = make_optimizer(model, 1e-3, 0.05)
    x, y = torch.randn(128, 3, 32, 32), torch.randint(0, 10, (128,))
    if cl:
        channels_last(model, opt)
        x = x.contiguous(memory_format=torch.channels_last)
    forward = torch.compile(model) if compile else model
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if amp else nullcontext()

    def step():
        with autocast:
            loss = F.cross_entropy(forward(x), y, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
        opt.step()

    return step


def time_side_by_side(steps: dict, reps: int) -> dict[str, dict]:
    """{path: {"cpu_s", "wall_s"}} medians of `reps` alternating calls of each step, after one untimed call."""
    first = {}
    for k, fn in steps.items():
        t = time.perf_counter()
        fn()
        first[k] = time.perf_counter() - t  # includes compilation for torch.compile
    cpu, wall = {k: [] for k in steps}, {k: [] for k in steps}
    for _ in range(reps):
        for k, fn in steps.items():
            c, w = time.process_time(), time.perf_counter()
            fn()
            cpu[k].append(time.process_time() - c)
            wall[k].append(time.perf_counter() - w)
    return {k: {"cpu_s": statistics.median(cpu[k]), "wall_s": statistics.median(wall[k]), "first_s": first[k]}
            for k in steps}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3, help="timed steps per path and model")
    ap.add_argument("--models", default=",".join(BASELINES))
    ap.add_argument("--try", dest="extra", default="", help="also time other options, comma-separated, each a +-joined set of bf16 (autocast), cl (channels_last), compile (torch.compile): e.g. bf16,bf16+cl,cl+compile")
    ap.add_argument("--table", choices=tuple(FAST_PATHS), default=None,
                    help="the fast-path table to time (default: this CPU's, bf16 where it has native bf16 kernels)")
    a = ap.parse_args(argv)
    table = a.table or ("bf16" if native_bf16() else "float32")
    torch.set_num_threads(1)
    print(f"fast-path table: {table!r} (this CPU has {'native' if native_bf16() else 'no native'} bf16 kernels)")
    rows = []
    print(f"{'model':>10}  {'float32':>9}  {'fast path':>9}  {'speed-up':>8}   (CPU minutes per epoch, 1 thread)")
    for name in a.models.split(","):
        fast = fast_path(name, table)
        steps = {"float32": training_step(name)}
        if fast:
            steps["fast"] = training_step(name, cl=fast.get("channels_last", False), amp=fast.get("amp", False))
        for opt in filter(None, a.extra.split(",")):
            parts = set(opt.split("+"))  # e.g. bf16+cl+compile
            steps[opt] = training_step(name, amp="bf16" in parts, cl="cl" in parts, compile="compile" in parts)
        t = time_side_by_side(steps, a.steps)
        t.setdefault("fast", t["float32"])
        row = {"model": name, "fast_path": fast, "steps_timed": a.steps,
               **{f"{k}_{m}": v[m] for k, v in t.items() for m in ("cpu_s", "wall_s", "first_s")},
               "float32_epoch_min": t["float32"]["cpu_s"] * STEPS_PER_EPOCH / 60,
               "fast_epoch_min": t["fast"]["cpu_s"] * STEPS_PER_EPOCH / 60}
        rows.append(row)
        extra = "  ".join(f"{k} x{t['float32']['cpu_s'] / v['cpu_s']:.2f}" for k, v in t.items() if k not in ("float32", "fast"))
        print(f"{name:>10}  {row['float32_epoch_min']:9.2f}  {row['fast_epoch_min']:9.2f}  "
              f"x{row['float32_epoch_min'] / row['fast_epoch_min']:7.2f}   "
              f"{'(no fast path: float32)' if not fast else str(fast)} {extra}", flush=True)
    total = {k: sum(r[f"{k}_epoch_min"] for r in rows) / 60 for k in ("float32", "fast")}
    print(f"one epoch of all timed models: {total['float32']:.2f} CPU-hours float32, {total['fast']:.2f} fast path")
    write_json("baseline_epochs.json", threads=1, clock="process_time (CPU seconds)", table=table,
               native_bf16=native_bf16(), rows=rows,  # the CPU: "machine" (write_json)
               epoch_h_float32=total["float32"], epoch_h_fast=total["fast"])


if __name__ == "__main__":
    main()
