"""Does the CPU fast path of the CIFAR-10 baselines learn what float32 learns? 1 epoch each, from stored runs.

    python scripts/run_queue.py cifar10_parity:full          # trains the six runs (~1.5 CPU-hours, 1 thread)
    python -m benchmarks baseline_epochs_parity              # reads them (instant)

For AlexNet (convolutional) and MobileViT (convolutions and transformer blocks): float32 and the fast path
(`lumina.baselines.vision.FAST_PATH`) from seed 0, and the fast path from seed 1, each 1 epoch of the `full`
recipe (`lumina.published.cifar10_parity_runs`). The rule, fixed before the runs: the two paths agree when their
top-1 difference d (same seed) is within seed noise, |d| <= 2 |s|, where s is the seed-0 minus seed-1
difference of the fast path (the difference of two runs that differ only in the seed has sd sqrt(2) sigma, and
|s| estimates sqrt(2) sigma from one pair: a rough bound, stated as such), or when the paired bootstrap interval
of d over the test images contains 0. Training seconds per epoch are the stored runs' own (whole epochs).
"""
from __future__ import annotations

from lumina.compare import hits, paired_bootstrap
from lumina.published import cifar10_parity_runs
from lumina.results import load_result

from .common import write_json


def main(argv=None):
    rows = []
    for name, cfgs in cifar10_parity_runs("full").items():
        found = [load_result(c) for c in cfgs]
        if any(r is None for r in found):
            print(f"{name:>10}: {sum(r is None for r in found)} of 3 parity runs not stored (train them with "
                  "`python scripts/run_queue.py cifar10_parity:full`); skipped")
            continue
        f32, fast, fast1 = found
        top1 = [r["metrics"]["test_top1"] for r in found]
        d, s = top1[1] - top1[0], top1[1] - top1[2]
        lo, hi = paired_bootstrap(hits([fast]), hits([f32]))
        agree = abs(d) <= 2 * abs(s) or lo <= 0 <= hi
        rows.append({"model": name, "fast_path": {k: fast["config"]["train"][k] for k in ("amp", "channels_last")},
                     "top1_float32_seed0": top1[0], "top1_fast_seed0": top1[1], "top1_fast_seed1": top1[2],
                     "diff_fast_minus_float32": d, "seed_diff_fast": s, "diff_boot_ci95": [lo, hi],
                     "agree": agree, "train_s_float32": f32["train_s"], "train_s_fast": fast["train_s"],
                     "keys": [c.key() for c in cfgs]})
        print(f"{name:>10}: top-1 float32 {top1[0]:.2f}, fast {top1[1]:.2f} (seed 1: {top1[2]:.2f}); "
              f"fast - float32 = {d:+.2f} points (bootstrap 95% [{lo:+.2f}, {hi:+.2f}]), seed noise |s| = {abs(s):.2f}: "
              f"{'agree' if agree else 'DISAGREE'}; epoch {f32['train_s'] / 60:.1f} vs {fast['train_s'] / 60:.1f} min",
              flush=True)
    if rows:
        write_json("baseline_epochs_parity.json", epochs=1, rows=rows)


if __name__ == "__main__":
    main()
