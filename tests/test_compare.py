"""`lumina.compare` against computations done independently here: the t-interval by hand, a bootstrap that
must cover a known gap, and the verdict rule on each of its outcomes."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lumina.compare import gap, hits, paired_bootstrap, seed_interval, verdict
from lumina.metrics import pack_bits


def test_seed_interval_of_two_and_three_seeds_by_hand():
    # two seeds 1, 3: mean 2, sd sqrt(2), t(0.975, 1) = 12.706, half-width 12.706 * sqrt(2) / sqrt(2)
    assert seed_interval([1.0, 3.0]) == pytest.approx((2.0, 2.0 - 12.706, 2.0 + 12.706))
    # three seeds 1, 2, 4: mean 7/3, sd sqrt(((1-7/3)^2 + (2-7/3)^2 + (4-7/3)^2) / 2) = sqrt(7/3), t(0.975, 2) = 4.303
    h = 4.303 * math.sqrt(7 / 3) / math.sqrt(3)
    assert seed_interval([1.0, 2.0, 4.0]) == pytest.approx((7 / 3, 7 / 3 - h, 7 / 3 + h))
    m, lo, hi = seed_interval([5.0])
    assert m == 5.0 and math.isnan(lo) and math.isnan(hi)


def test_paired_bootstrap_covers_a_known_gap_and_narrows_with_more_images():
    rng = np.random.default_rng(1)
    widths = []
    for n in (2_000, 20_000):
        b = (rng.random(n) < 0.6).astype(float)
        a = b.copy()
        a[rng.choice(np.flatnonzero(b == 0), size=n // 20, replace=False)] = 1.0  # a gets 5% of the images more right
        lo, hi = paired_bootstrap(a, b, n_boot=1000, seed=0)
        assert lo < 5.0 < hi and lo > 0  # the true gap, 5 points, and a positive interval
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2  # ~1/sqrt(10) as wide with 10x the images
    lo, hi = paired_bootstrap(b, b, n_boot=200)
    assert lo == hi == 0.0  # the same hits: no gap under any resample


@pytest.mark.parametrize("intervals, want", [
    (((0.5, 2.0), (0.1, 1.0)), "reproduced"),
    (((-2.0, -0.5), (-1.0, -0.1)), "not reproduced"),
    (((-0.5, 2.0), (0.1, 1.0)), "inconclusive"),  # one interval straddles 0
    (((0.5, 2.0), (math.nan, math.nan)), "reproduced"),  # one seed: the bootstrap alone decides
    (((math.nan, math.nan), (math.nan, math.nan)), "inconclusive"),
])
def test_verdict_rule(intervals, want):
    assert verdict(*intervals) == want


def _result(top1: float, correct: list[int]) -> dict:
    return {"metrics": {"test_top1": top1}, "test_correct": pack_bits(torch.tensor(correct, dtype=torch.bool)),
            "config": {"data": {"test_subset": len(correct)}}}


def test_gap_pairs_seeds_by_position_and_bootstraps_the_averaged_hits():
    a = [_result(80.0, [1, 1, 1, 0] * 50), _result(76.0, [1, 1, 0, 1] * 50)]
    b = [_result(70.0, [1, 0, 0, 0] * 50), _result(72.0, [0, 1, 0, 0] * 50)]
    g = gap(a, b)
    assert g["gap"] == pytest.approx(7.0) and g["seeds"] == 2  # (80 - 70 + 76 - 72) / 2
    assert g["seed_ci"] == pytest.approx(seed_interval([10.0, 4.0])[1:])
    assert np.allclose(hits(a)[:4], [1, 1, 0.5, 0.5]) and np.allclose(hits(b)[:4], [0.5, 0.5, 0, 0])
    assert g["boot_ci"][0] > 0 and g["verdict"] == "inconclusive"  # two seeds: the t-interval straddles 0


def test_gap_with_unequal_seeds_is_the_difference_of_means_decided_by_the_images_and_reads_top5_hits():
    """Two LuminaNet seeds against one seed of a baseline that costs hours: the gap is mean(a) - b (it was a's
    first seed minus b, the zip of unequal lists), there is no seed interval, and the image bootstrap decides;
    a top-5 gap bootstraps the stored top-5 hits (`test_correct5`)."""
    a = [_result(80.0, [1, 1, 1, 0] * 50), _result(76.0, [1, 1, 0, 1] * 50)]
    b = [_result(70.0, [1, 0, 0, 0] * 50)]
    g = gap(a, b)
    assert g["gap"] == pytest.approx(8.0) and g["seeds"] == 1 and all(math.isnan(v) for v in g["seed_ci"])
    assert g["boot_ci"][0] > 0 and g["verdict"] == "reproduced"
    for r, five in zip(a + b, ([1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 1, 1])):
        r["metrics"]["test_top5"] = 100.0 * sum(five) / 4
        r["test_correct5"] = pack_bits(torch.tensor(five * 50, dtype=torch.bool))
    g5 = gap(b, a, "test_top5")  # the baseline above LuminaNet, in top-5
    assert g5["gap"] == pytest.approx(-50.0) and g5["boot_ci"][1] < 0 and g5["verdict"] == "not reproduced"
    del b[0]["test_correct5"]  # a run stored before top-5 hits were kept: no interval, never a verdict
    assert gap(b, a, "test_top5")["verdict"] == "inconclusive"


def test_evaluate_keeps_per_image_top1_and_top5_hits_that_match_its_accuracies():
    """`metrics.evaluate` stores which images each model got right, top-1 and top-5, for the paired bootstraps:
    the hits average to the accuracies it reports, across batch boundaries."""
    from lumina.metrics import evaluate, unpack_bits

    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(23, 12, generator=gen), torch.randint(0, 10, (23,), generator=gen)
    model = torch.nn.Linear(12, 10)
    ev = evaluate(model, x, y, prepare=lambda b: b, batch_size=5)
    h1, h5 = unpack_bits(ev["correct"], 23), unpack_bits(ev["correct5"], 23)
    assert 100 * h1.mean() == pytest.approx(ev["top1"]) and 100 * h5.mean() == pytest.approx(ev["top5"])
    assert (h5 >= h1).all() and h5.sum() > h1.sum()
