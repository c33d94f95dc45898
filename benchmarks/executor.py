"""Fast executor vs the reference loop: training-step time side by side in one process.

    python -m benchmarks.executor [--threads 1] [--grid]      # about 1 minute (the grid: about 5)

Targets (issue "core v2"): at batch 64 with 48 clusters, fast ≥ 2.5× the reference at d_hidden 32 and 128.
Topologies are 'evolved-looking' (`benchmarks.common.evolved_like`). Each figure is the median of timed
steps (forward + backward + optimizer), the two executors timed in alternating blocks (`block_median_times`).
"""
from __future__ import annotations

import argparse

import torch

from .common import block_median_times, evolved_like, training_step, write_json


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--grid", action="store_true", help="also 12 and 96 clusters, batch 256")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows = []
    print(f"{'clusters':>8} {'d_hidden':>8} {'batch':>6} {'edges':>6} {'reference ms':>13} {'fast ms':>9} {'speed-up':>9}")
    for n_clusters in (12, 48, 96) if a.grid else (48,):
        for d in (32, 128):
            m = evolved_like(n_clusters, d)
            for batch in (64, 256) if a.grid else (64,):
                x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
                t = block_median_times({"ref": training_step(m, x, y, "reference"), "fast": training_step(m, x, y, "fast")},
                                       a.reps)
                ref, fast = t["ref"], t["fast"]
                row = dict(clusters=n_clusters, d_hidden=d, batch=batch, edges=len(m.graph.edges),
                           reference_ms=1e3 * ref, fast_ms=1e3 * fast, speedup=ref / fast,
                           target=2.5 if (n_clusters, batch) == (48, 64) else None)
                rows.append(row)
                print(f"{n_clusters:>8} {d:>8} {batch:>6} {row['edges']:>6} {row['reference_ms']:>13.1f} "
                      f"{row['fast_ms']:>9.1f} {row['speedup']:>8.2f}x" + ("  (target ≥ 2.5x)" if row["target"] else ""))
    write_json("executor.json", threads=a.threads, rows=rows)


if __name__ == "__main__":
    main()
