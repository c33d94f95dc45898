"""Does the CPU fast path of the CIFAR-10 baselines learn what float32 learns? 1 epoch each, from stored runs.

    python scripts/run_queue.py cifar10_parity:full          # trains the 14 runs (2.6 CPU-hours, 1 thread)
    python -m benchmarks baseline_epochs_parity              # reads them (instant)

Per table of the fast path (`lumina.baselines.vision.FAST_PATHS`), one convolutional model and one with
transformer blocks: AlexNet and MobileViT for the "float32" table (channels_last), AlexNet and DeiT-Tiny for the
"bf16" table (bf16 autocast). Float32 and the fast path from seed 0, and the fast path from seed 1, each 1 epoch
of the `full` recipe (`lumina.published.cifar10_parity_runs`). The rule, fixed before the runs: the two paths agree when their
top-1 difference d (same seed) is within seed noise, |d| <= 2 |s|, where s is the seed-0 minus seed-1
difference of the fast path (the difference of two runs that differ only in the seed has sd sqrt(2) sigma, and
|s| estimates sqrt(2) sigma from one pair: a rough bound, stated as such), or when the paired bootstrap interval
of d over the test images contains 0 (`lumina.verdicts.fast_path_parity`, which chapter 3 shows). Training
seconds per epoch are the stored runs' own (whole epochs). Float32 from seed 1, where stored, is printed beside
them and plays no part in the rule.
"""
from __future__ import annotations

from lumina.published import cifar10_parity_runs
from lumina.verdicts import fast_path_parity

from .common import write_json


def main(argv=None):
    rows = fast_path_parity("full")
    for name, table in cifar10_parity_runs("full"):
        if not any((r["model"], r["table"]) == (name, table) for r in rows):
            print(f"{name:>10} ({table} table): parity runs not all stored (train them with "
                  "`python scripts/run_queue.py cifar10_parity:full`); skipped")
    for r in rows:
        lo, hi = r["diff_boot_ci95"]
        print(f"{r['model']:>10} ({r['table']} table): top-1 float32 {r['top1_float32_seed0']:.2f}, fast {r['top1_fast_seed0']:.2f} "
              f"(seed 1: {r['top1_fast_seed1']:.2f}"
              + ("" if r["top1_float32_seed1"] is None else f"; float32 seed 1: {r['top1_float32_seed1']:.2f}")
              + f"); fast - float32 = {r['diff_fast_minus_float32']:+.2f} points "
              f"(bootstrap 95% [{lo:+.2f}, {hi:+.2f}]), seed noise |s| = {abs(r['seed_diff_fast']):.2f}: "
              f"{'agree' if r['agree'] else 'DISAGREE'}; epoch {r['train_s_float32'] / 60:.1f} vs "
              f"{r['train_s_fast'] / 60:.1f} min", flush=True)
    if rows:
        write_json("baseline_epochs_parity.json", epochs=1, rows=rows)


if __name__ == "__main__":
    main()
