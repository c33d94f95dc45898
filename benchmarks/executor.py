"""Fast executor vs the reference loop: training-step time side by side in one process.

    python -m benchmarks.executor [--threads 2] [--out benchmarks/results/executor.json]

Topologies are 'evolved-looking': C clusters over 12 patch slots (splits), ~3 in-edges per cluster of all
three kinds, sizes 32-96. Each figure is the median of repeated timed steps (forward + backward + AdamW).
"""
from __future__ import annotations

import argparse

import torch

from tests.helpers import image_model, random_graph

from .common import median_time, training_step, write_json


def step_time(model, x, y, executor, reps):
    return median_time(training_step(model, x, y, executor), reps)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--out", default="benchmarks/results/executor.json")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows = []
    print(f"{'clusters':>8} {'d_hidden':>8} {'batch':>6} {'edges':>6} {'levels':>6} {'reference ms':>13} {'fast ms':>9} {'speed-up':>9}")
    for n_clusters in (12, 48, 96):
        for d in (32, 128):
            g = random_graph(n_slots=12, size=48, n_splits=n_clusters - 12, n_edges=3 * n_clusters, seed=n_clusters)
            m = image_model(g, d_hidden=d)
            for batch in (64, 256):
                x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
                ref = step_time(m, x, y, "reference", a.reps)
                fast = step_time(m, x, y, "fast", a.reps)
                row = dict(clusters=n_clusters, d_hidden=d, batch=batch, edges=len(g.edges), levels=len(g.levels()),
                           reference_ms=1e3 * ref, fast_ms=1e3 * fast, speedup=ref / fast)
                rows.append(row)
                print(f"{n_clusters:>8} {d:>8} {batch:>6} {row['edges']:>6} {row['levels']:>6} {row['reference_ms']:>13.1f} "
                      f"{row['fast_ms']:>9.1f} {row['speedup']:>8.2f}x")
    write_json(a.out, threads=a.threads, rows=rows)


if __name__ == "__main__":
    main()
