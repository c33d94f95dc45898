"""How two models' stored results are compared, and the rule that turns a comparison into a verdict.

Intervals (95%):
  - over seeds: mean ± t_{0.975, n-1} · sd / sqrt(n) of the per-seed values (wide with two seeds, as it should be);
  - paired bootstrap over test images: the per-image top-1 (or top-5) hits of both models (averaged over their
    seeds, stored as `test_correct` and `test_correct5` by the loop) are resampled together, image by image, `n_boot` times; the interval
    is the 2.5% and 97.5% quantiles of the resampled gap. It measures how much the gap depends on *which*
    10,000 images were drawn, not on the seed.
The verdict rule (stated in every chapter before its numbers): a claimed advantage of A over B is
  - **reproduced** when both intervals of our gap A − B lie above 0,
  - **not reproduced** when both lie below 0 (the opposite holds),
  - **inconclusive** otherwise;
  - **not tested here** when the comparison was not run at equal epochs (never decided by an unequal budget).
The size of the paper's gap is compared separately (our gap − the paper's), since recipes differ.
"""
from __future__ import annotations

import math
import statistics

import numpy as np

from .metrics import unpack_bits

T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def seed_interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high) over seeds; a single seed gives (v, nan, nan)."""
    m = statistics.fmean(values)
    if len(values) < 2:
        return m, math.nan, math.nan
    h = T975.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return m, m - h, m + h


HITS = {"test_top1": "test_correct", "test_top5": "test_correct5"}  # metric -> its stored per-image hits


def hits(results: list[dict], key: str = "test_correct") -> np.ndarray:
    """Per-image hit rate (top-1, or top-5 with key="test_correct5") averaged over the runs (seeds) of one
    model: (n_images,)."""
    def n_eval(d: dict) -> int:  # CIFAR-10: the validation split, or the test set (or its first test_subset)
        return d["test_subset"] or (5_000 if d.get("validation") else 10_000)

    return np.mean([unpack_bits(r[key], n_eval(r["config"]["data"])) for r in results], axis=0)


def paired_bootstrap(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% interval of mean(a) − mean(b) in points, resampling images (pairs) with replacement."""
    rng = np.random.default_rng(seed)
    d = (a - b) * 100.0
    idx = rng.integers(0, len(d), size=(n_boot, len(d)))
    boots = d[idx].mean(1)
    return float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))


def verdict(*intervals: tuple[float, float]) -> str:
    los = [lo for lo, hi in intervals if not math.isnan(lo)]
    his = [hi for lo, hi in intervals if not math.isnan(hi)]
    if not los:
        return "inconclusive"
    if min(los) > 0:
        return "reproduced"
    if max(his) < 0:
        return "not reproduced"
    return "inconclusive"


def gap(a: list[dict], b: list[dict], metric: str = "test_top1") -> dict:
    """A − B from stored results of two models (lists over seeds, paired by position). With as many seeds on
    each side the seed interval is over the per-seed differences; with unequal counts (a baseline that costs
    hours runs one seed) the gap is the difference of the means and only the image bootstrap gives an interval."""
    va, vb = [r["metrics"][metric] for r in a], [r["metrics"][metric] for r in b]
    if len(va) == len(vb):
        m, lo, hi = seed_interval([x - y for x, y in zip(va, vb)])
    else:
        m, lo, hi = statistics.fmean(va) - statistics.fmean(vb), math.nan, math.nan
    out = {"a": seed_interval(va), "b": seed_interval(vb), "gap": m, "seed_ci": (lo, hi), "seeds": min(len(va), len(vb)),
           "sd_a": statistics.stdev(va) if len(va) > 1 else math.nan,
           "sd_b": statistics.stdev(vb) if len(vb) > 1 else math.nan}
    key = HITS.get(metric)
    if key and all(r.get(key) for r in a + b):
        out["boot_ci"] = paired_bootstrap(hits(a, key), hits(b, key))
    else:
        out["boot_ci"] = (math.nan, math.nan)
    out["verdict"] = verdict(out["seed_ci"], out["boot_ci"])
    return out
