"""Seconds per CIFAR-10 epoch of every model of the `gpu` run set on one CUDA device, and the set's total.

    python -m benchmarks gpu_epochs [--steps 20]      # a GPU machine only; about 2 minutes on one H200
    python -m benchmarks.gpu_epochs --device cpu --steps 1 --models lenet5    # the same steps on the CPU (a check)

Each model of `lumina.published.gpu_runs` (the seven baselines and LuminaNet at the width and rate its `full`
choice grid picked) trains `--steps` timed steps as `lumina.loop` runs them in that set: batch 128 resident on
the device, bf16 autocast, label-smoothed loss, grad clipping, the run's AdamW; an epoch is the median step ×
390 steps (a fixed random batch: step times do not depend on the values). LuminaNet is timed twice: its initial
network and the final topology of the stored CPU headline run (`cifar10_runs("full")`), a grown network of the
size the `full` profile allows (the `paper` profile sets no bound, so its networks may grow further). Not
counted: evaluation after each epoch and evolution events (the CPU runs put evolution at about 2% of training).
The set's minutes are Σ epoch × its epochs, LuminaNet at the grown network's rate: a measured estimate of the
set's time, stated as such until the set itself has run.
"""
from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from lumina.build import build_model
from lumina.published import cifar10_runs, gpu_runs
from lumina.optim import make_optimizer
from lumina.results import artifacts

from .common import write_json

STEPS_PER_EPOCH = 50_000 // 128


def training_step(model, cfg, device: torch.device):
    """One step of `model` as the loop runs it under `cfg` (autocast, loss, clipping, optimizer): a closure."""
    t = cfg.train
    opt = make_optimizer(model, t.lr, t.weight_decay)
    x = torch.randn(t.batch_size, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (t.batch_size,), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if t.amp else nullcontext()

    def step():
        with autocast:
            loss = F.cross_entropy(model(x), y, label_smoothing=t.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip, foreach=True)
        opt.step()

    return step


def time_step(step, steps: int, device: torch.device, warmup: int = 3) -> tuple[float, float]:
    """(median seconds of `steps` steps, seconds of the first step: compilation included), each timed to the
    end of its device work (kernels run asynchronously on a GPU)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    step()
    sync()
    first = time.perf_counter() - t0
    for _ in range(warmup - 1):
        step()
    times = []
    for _ in range(steps):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), first


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--models", default="", help="comma-separated archs (luminanet, lenet5, ...); default: all")
    a = ap.parse_args(argv)
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("no CUDA device: gpu_epochs times the `gpu` run set on a GPU machine")
    device = torch.device(a.device)
    wanted = set(filter(None, a.models.split(",")))
    cfgs = gpu_runs()
    grown_cfg = next(iter(cifar10_runs("full")["luminanet"]), None)
    grown = artifacts(grown_cfg)["topology"] if grown_cfg is not None else None
    models = []
    for cfg in cfgs:
        if wanted and cfg.model.arch not in wanted:
            continue
        if cfg.model.arch == "luminanet":
            models.append((f"LuminaNet-{cfg.model.d_hidden} v3, initial", cfg, None))
            if grown is not None:
                models.append((f"LuminaNet-{cfg.model.d_hidden} v3, grown ({len(grown.clusters)} NCs, "
                               f"{grown.n_neurons()} neurons)", cfg, grown))
        else:
            models.append((cfg.model.arch, cfg, None))
    rows = []
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{where}, torch {torch.__version__}")
    for name, cfg, graph in models:
        model = build_model(cfg, graph=graph, device=device).train()
        t, first = time_step(training_step(model, cfg, device), a.steps, device)
        rows.append({"model": name, "arch": cfg.model.arch, "grown": graph is not None, "epochs": cfg.train.epochs,
                     "step_ms": 1e3 * t, "first_step_s": first, "epoch_s": t * STEPS_PER_EPOCH})
        print(f"{name:<48} {1e3 * t:8.2f} ms/step {t * STEPS_PER_EPOCH:7.1f} s/epoch (first step {first:.1f} s)", flush=True)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    counted = [r for r in rows if r["arch"] != "luminanet" or r["grown"] or grown is None]
    total_min = sum(r["epoch_s"] * r["epochs"] for r in counted) / 60
    print(f"the gpu run set ({counted[0]['epochs']:g} epochs each): about {total_min:.1f} minutes of training "
          f"(evaluation and evolution events not counted)")
    write_json("gpu_epochs.json", device=where, steps_timed=a.steps, rows=rows,
               set_minutes=total_min)


if __name__ == "__main__":
    main()
