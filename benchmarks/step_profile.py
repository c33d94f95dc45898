"""Where a training step of the evolved-like 48-cluster network spends its time (fast executor, one thread).

    python -m benchmarks.step_profile [--threads 1]      # about 20 seconds

Two measurements of the same step (the `flops_rate` network and batch):
  - phases, timed without the profiler: forward, backward and the optimizer update (median of `--reps`), the
    update also run eager on the same gradients, side by side (it trains compiled: `lumina.optim.FUSED`);
  - forward + backward under `torch.profiler`: every event's self CPU time summed by kind (KINDS, the other
    operators, the autograd engine's own events), and how many operators one step dispatches: what a step of
    many small batched products costs beyond its arithmetic.
"""
from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from lumina.optim import FUSED, make_optimizer

from .common import evolved_like, step_args, write_json

KINDS = {  # kind -> operators (self CPU time); anything else is "other (adds, sums, autograd bookkeeping)"
    "matrix products": ("aten::bmm", "aten::baddbmm", "aten::mm", "aten::addmm", "aten::matmul"),
    "GELU (forward and backward)": ("aten::gelu", "aten::gelu_backward"),
    "gathers, stacks and copies": ("aten::cat", "aten::stack", "aten::index_select", "aten::copy_", "aten::clone",
                                   "aten::index", "aten::embedding_dense_backward", "aten::index_add_",
                                   "_Gather", "_GatherBackward"),  # `lumina.gather`'s kernel: no aten operator
    "views (no arithmetic)": ("aten::view", "aten::select", "aten::as_strided", "aten::transpose", "aten::unbind",
                              "aten::reshape", "aten::slice", "aten::expand", "aten::permute", "aten::t",
                              "aten::_unsafe_view", "aten::split", "aten::squeeze", "aten::unsqueeze", "aten::detach"),
}
AUTOGRAD = "autograd engine (graph nodes, gradient accumulation)"
OTHER = "other operators (adds, sums, norms, ...)"


def kind(op: str) -> str:
    if (k := next((k for k, ops in KINDS.items() if op in ops), None)) is not None:
        return k
    if not op.startswith("aten::"):  # the engine's own events: evaluate_function, *Backward0, AccumulateGrad
        return AUTOGRAD
    return OTHER


def main(argv=None):
    a = step_args(argv)
    m = evolved_like(48, 64)
    x, y = torch.randn(a.batch, 3, 32, 32), torch.randint(0, 10, (a.batch,))
    opt = make_optimizer(m, 1e-3, 0.05)

    def fwd():
        return F.cross_entropy(m(x, "fast"), y)

    phases = {"forward": [], "backward": [], "optimizer": []}  # the optimizer's update compiled (as trained)
    eager = []  # ... and eager (`lumina.optim.FUSED`), for the ratio
    for rep in range(3 + a.reps):  # 3 untimed
        t0 = time.perf_counter()
        loss = fwd()
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        FUSED["on"] = False  # the same update again, eager, on the same gradients: side by side
        opt.step()
        FUSED["on"] = True
        t4 = time.perf_counter()
        if rep >= 3:
            for k, dt in zip(phases, (t1 - t0, t2 - t1, t3 - t2)):
                phases[k].append(dt)
            eager.append(t4 - t3)
    ms = {k: 1e3 * statistics.median(v) for k, v in phases.items()}
    eager_ms = 1e3 * statistics.median(eager)

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(a.reps):
            opt.zero_grad(set_to_none=True)
            fwd().backward()
    by_kind, n_ops = {}, 0
    for e in prof.key_averages():  # self times partition the profiled CPU time
        by_kind[kind(e.key)] = by_kind.get(kind(e.key), 0.0) + e.self_cpu_time_total
        n_ops += e.count if e.key.startswith("aten::") else 0
    total = sum(by_kind.values())
    kinds = [{"kind": k, "share": by_kind.get(k, 0.0) / total} for k in (*KINDS, OTHER, AUTOGRAD)]
    step = sum(ms.values())
    print(f"step {step:.1f} ms: " + ", ".join(f"{k} {v:.1f} ms ({100 * v / step:.0f}%)" for k, v in ms.items()))
    slower = (step - ms["optimizer"] + eager_ms) / step
    print(f"optimizer update compiled {ms['optimizer']:.1f} ms, eager {eager_ms:.1f} ms: "
          f"{eager_ms / ms['optimizer']:.1f}x; a step with the eager update takes {slower:.2f}x as long")
    print(f"{n_ops / a.reps:.0f} operators per forward + backward; their self CPU time by kind:")
    for r in kinds:
        print(f"  {r['kind']:<48} {100 * r['share']:5.1f}%")
    write_json("step_profile.json", threads=a.threads, batch=a.batch, network="evolved-like 48 NCs, d_hidden 64",
               phases_ms=ms, optimizer_eager_ms=eager_ms, ops_per_step=n_ops / a.reps, kinds=kinds)


if __name__ == "__main__":
    main()
