"""Shared by the benchmarks: median timing and the JSON they write (with the machine it ran on)."""
from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path


def evolved_like(n_clusters: int, d_hidden: int):
    """An 'evolved-looking' image LuminaNet: n clusters over the 12 patch slots, ~3 in-edges each, sizes 2-96."""
    from tests.helpers import image_model, random_graph

    g = random_graph(n_slots=12, size=48, n_splits=n_clusters - 12, n_edges=3 * n_clusters, seed=n_clusters)
    return image_model(g, d_hidden=d_hidden)


def training_step(model, x, y, executor: str = "fast"):
    """A closure doing one training step (forward, backward, fused AdamW) of `model` on (x, y)."""
    import torch

    opt = torch.optim.AdamW(model.parameters(), fused=True)

    def step():
        loss = torch.nn.functional.cross_entropy(model(x, executor), y)
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


def write_json(path: str, **payload) -> None:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"torch": torch.__version__, "machine": cpu, **payload}, indent=1))
    print(f"wrote {path}")
