"""What bounds the fast executor's speed-up over the reference loop (target: ≥ 2.5× at d_hidden 32 and 128).

    python -m benchmarks step_bound [--threads 1]      # about 1 minute

On the `executor` benchmark's networks (evolved-like, 48 clusters, batch 64, one thread), in one process: the
reference and the fast training step, and the fast step's parts, each timed on its own:
  - products: every matrix product of its forward + backward but the CL's gate products, as the step runs them
    (their self time under torch.profiler, which records operator, shapes and calls), and the same calls
    replayed alone on warm, contiguous random operands ("products alone": the step's arithmetic at the rate
    these shapes reach by themselves);
  - GELU: every GELU and GELU backward, as the step runs them (under the profiler);
  - CL gathers: both passes' gate-weighted sums of in-messages (`lumina.executor._Groups.cl`: the stacks, the
    gate products and their backward) from leaf message tensors of the step's shapes;
  - optimizer: the update alone (compiled, as trained), which the reference step takes too.
`rest` is the step less these parts (products as the step runs them): the autograd engine, views, the adds that
accumulate gradients, the IL's input gather, Python. `budget` = reference / 2.5 is the whole fast step the target
allows. `bound` = reference / (products alone + optimizer) is the speed-up of a fast step that did nothing but its
products, at their rate alone, and its update.
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from lumina.executor import _Groups
from lumina.optim import make_optimizer

from .common import evolved_like, median_time, training_step, write_json

TARGET = 2.5
PRODUCTS = {  # operator -> (how to replay it from its operands, its FLOPs from the operands' shapes)
    "aten::bmm": (torch.bmm, lambda a, b: 2 * a[0] * a[1] * a[2] * b[2]),
    "aten::baddbmm": (torch.baddbmm, lambda c, a, b: 2 * a[0] * a[1] * a[2] * b[2]),
    "aten::mm": (torch.mm, lambda a, b: 2 * a[0] * a[1] * b[1]),
    "aten::addmm": (torch.addmm, lambda c, a, b: 2 * a[0] * a[1] * b[1]),
}
GELUS = ("aten::gelu", "aten::gelu_backward")


def recorded_calls(step, ops, steps: int = 3) -> list[tuple[str, list[list[int]], int, float]]:
    """(operator, tensor operands' shapes, calls, self CPU seconds under the profiler) of every call of `ops` in
    one `step()`, averaged over `steps` profiled steps."""
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(steps):
            step()
    return [(e.key, [s for s in e.input_shapes if s], e.count // steps, e.self_cpu_time_total / steps / 1e6)
            for e in prof.key_averages(group_by_input_shape=True) if e.key in ops]


def is_gate_product(op: str, shapes: list[list[int]]) -> bool:
    """A CL gate product or its backward: a batched product with a one-row or one-column operand, (k, 1, D) @
    (k, D, B*d) and its gradients (the IL's and the passes' products have batch-sized rows and no such operand;
    their biases, the only (k, 1, n) operands, are not multiplied)."""
    return op == "aten::bmm" and any(1 in s[1:] for s in shapes)


def replay(calls):
    """A closure making every recorded product again, as often as the step made it, on fresh contiguous operands."""
    work = [(PRODUCTS[op][0], [torch.randn(s) for s in shapes], n) for op, shapes, n, _ in calls]

    def run():
        for fn, args, n in work:
            for _ in range(n):
                fn(*args)

    return run


def gflop(calls) -> float:
    return sum(n * PRODUCTS[op][1](*shapes) for op, shapes, n, _ in calls) / 1e9


def gathers(model, B: int):
    """Forward + backward of both passes' CL gathers of `model`'s groups, from leaf (k, B, d) message tensors."""
    plan = model._plan
    ops = _Groups(model, B, torch.zeros(1))
    msgs = [torch.randn(len(g), B, model.d_hidden, requires_grad=True) for g in plan.groups]

    def run():
        sig = [M.unbind(0) for M in msgs]
        S = [S for G in range(len(plan.groups)) for ff in (True, False) if (S := ops.cl(G, ff, sig, sig)) is not None]
        torch.stack([s.sum() for s in S]).sum().backward()
        model.zero_grad(set_to_none=True)
        for M in msgs:
            M.grad = None

    return run


def optimizer_alone(model, x, y, reps: int) -> float:
    opt = make_optimizer(model, 1e-3, 0.05)
    F.cross_entropy(model(x, "fast"), y).backward()
    return median_time(opt.step, reps)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--d-hidden", type=int, nargs="+", default=[32, 128])
    ap.add_argument("--clusters", type=int, default=48)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows = []
    print(f"{'d_hidden':>8} {'reference':>9} {'fast':>7} {'budget':>7} | {'products':>8} {'GELU':>6} {'gathers':>7} "
          f"{'optim.':>6} {'rest':>6} | {'products alone':>14} | {'speed-up':>8} {'bound':>6}   (ms; speed-up and bound ×)")
    for d in a.d_hidden:
        m = evolved_like(a.clusters, d)
        x, y = torch.randn(a.batch, 3, 32, 32), torch.randint(0, 10, (a.batch,))
        ref = median_time(training_step(m, x, y, "reference"), a.reps)
        step = training_step(m, x, y, "fast")
        fast = median_time(step, a.reps)
        recorded = recorded_calls(step, (*PRODUCTS, *GELUS))
        calls = [c for c in recorded if c[0] in PRODUCTS]
        products = [c for c in calls if not is_gate_product(*c[:2])]  # the gate products are the gathers'
        parts = {"products": sum(c[3] for c in products),  # as the step runs them (under the profiler)
                 "gelu": sum(c[3] for c in recorded if c[0] in GELUS),
                 "gathers": median_time(gathers(m, a.batch), a.reps),
                 "optimizer": optimizer_alone(m, x, y, a.reps)}
        alone = median_time(replay(products), a.reps)
        ms = {k: 1e3 * v for k, v in parts.items()}
        row = dict(clusters=a.clusters, d_hidden=d, batch=a.batch, reference_ms=1e3 * ref, fast_ms=1e3 * fast,
                   budget_ms=1e3 * ref / TARGET, **{f"{k}_ms": v for k, v in ms.items()},
                   rest_ms=1e3 * fast - sum(ms.values()), speedup=ref / fast,
                   products_alone_ms=1e3 * alone, bound=ref / (alone + parts["optimizer"]),
                   products_gflop=gflop(products), gate_gflop=gflop([c for c in calls if c not in products]), target=TARGET)
        rows.append(row)
        print(f"{d:>8} {row['reference_ms']:>9.1f} {row['fast_ms']:>7.1f} {row['budget_ms']:>7.1f} | "
              f"{ms['products']:>8.1f} {ms['gelu']:>6.1f} {ms['gathers']:>7.1f} {ms['optimizer']:>6.1f} "
              f"{row['rest_ms']:>6.1f} | {row['products_alone_ms']:>14.1f} | {row['speedup']:>7.2f}x {row['bound']:>5.2f}x")
    write_json("step_bound.json", threads=a.threads, rows=rows)


if __name__ == "__main__":
    main()
