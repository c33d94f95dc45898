"""Achieved FLOP/s of a LuminaNet training step vs a dense matmul doing the same FLOPs (the machine's limit).

    python -m benchmarks.flops_rate [--threads 1]      # about 30 seconds

Target (issue "code v3"): an evolved-like 48-cluster network's step ≥ 50% of the dense-matmul FLOP/s on one
thread. The step's useful FLOPs are counted by FlopCounterMode (forward + backward) on the reference executor,
which does no padding, so packing the fast executor's batched products more tightly never lowers the share;
the step is timed on the fast executor; the reference is one square float32 matmul sized to the same FLOPs,
timed on the same thread count.
"""
from __future__ import annotations


import torch
from torch.utils.flop_counter import FlopCounterMode

from lumina.model import LuminaNet
from lumina.topology import Graph

from .common import evolved_like, median_time, step_args, training_step, write_json


def main(argv=None):
    a = step_args(argv)
    nets = {"initial 12 NCs, d_hidden 64": LuminaNet(Graph.initial(12, 64), d_in=256, d_hidden=64, n_out=10),
            "evolved-like 48 NCs, d_hidden 64": evolved_like(48, 64)}
    x, y = torch.randn(a.batch, 3, 32, 32), torch.randint(0, 10, (a.batch,))
    rows = []
    for name, m in nets.items():
        step = training_step(m, x, y)
        with FlopCounterMode(display=False) as fc:  # the work the step must do: the reference loop, unpadded
            training_step(m, x, y, executor="reference")()
        flops = fc.get_total_flops()
        t_step = median_time(step, a.reps)
        n = max(64, round((flops / 2) ** (1 / 3)))  # square matmul with the same FLOPs: 2 n^3
        A, B = torch.randn(n, n), torch.randn(n, n)
        t_mm = median_time(lambda: A @ B, a.reps) * flops / (2 * n ** 3)
        rows.append({"network": name, "gflop_per_step": flops / 1e9, "step_ms": 1e3 * t_step,
                     "achieved_gflops": flops / t_step / 1e9, "matmul_gflops": flops / t_mm / 1e9,
                     "share_of_matmul": t_mm / t_step, "target": 0.5 if "48" in name else None})
        r = rows[-1]
        print(f"{name:<34} {r['gflop_per_step']:6.2f} GFLOP/step {r['step_ms']:7.1f} ms {r['achieved_gflops']:6.1f} GFLOP/s "
              f"matmul {r['matmul_gflops']:6.1f} GFLOP/s -> {100 * r['share_of_matmul']:.0f}% of the matmul rate"
              + ("  (target ≥ 50%)" if r["target"] else ""))
    write_json("flops_rate.json", threads=a.threads, batch=a.batch, rows=rows)


if __name__ == "__main__":
    main()
