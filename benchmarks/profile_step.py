"""Where a LuminaNet training step spends its time: torch.profiler's operator breakdown, one thread.

    python -m benchmarks.profile_step

Explains the gap between a step's FLOP/s and a dense matmul's (benchmarks.flops_rate): the share of time in
matrix products (bmm/baddbmm/mm) against element-wise work, copies (stacking sources, packing) and the optimizer.
"""
from __future__ import annotations

import argparse
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from .common import evolved_like, training_step, write_json

GROUPS = {"matrix products": ("aten::bmm", "aten::baddbmm", "aten::mm", "aten::addmm"),
          "element-wise (GELU, add, mul)": ("aten::gelu", "aten::gelu_backward", "aten::add", "aten::add_", "aten::mul",
                                            "aten::mul_", "aten::div", "aten::sum"),
          "copies (stack, cat, copy, clone)": ("aten::copy_", "aten::cat", "aten::stack", "aten::clone", "aten::fill_",
                                               "aten::zero_", "aten::index_select", "aten::zeros"),
          "optimizer (fused AdamW)": ("aten::_fused_adamw_",)}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clusters", type=int, default=48)
    ap.add_argument("--d-hidden", type=int, default=64)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--out", default="benchmarks/results/profile_step.json")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    x, y = torch.randn(a.batch, 3, 32, 32), torch.randint(0, 10, (a.batch,))
    step = training_step(evolved_like(a.clusters, a.d_hidden), x, y)

    for _ in range(3):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(5):
            step()
    ops = sorted(((e.key, e.self_cpu_time_total, e.count) for e in prof.key_averages()), key=lambda t: -t[1])
    total = sum(t for _, t, _ in ops)
    groups = defaultdict(float)
    for name, t, _ in ops:
        g = next((k for k, names in GROUPS.items() if name in names), "other (autograd, views, Python)")
        groups[g] += t / total
    top = [{"op": n, "share": t / total, "calls_per_step": c / 5} for n, t, c in ops[:12]]
    for g, share in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"{g:<36} {100 * share:5.1f}% of operator time")
    write_json(a.out, threads=a.threads, clusters=a.clusters, d_hidden=a.d_hidden, batch=a.batch,
               groups=dict(groups), top_ops=top)


if __name__ == "__main__":
    main()
