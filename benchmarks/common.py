"""Shared by the benchmarks: median timing and the JSON they write (with the machine it ran on)."""
from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path


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
