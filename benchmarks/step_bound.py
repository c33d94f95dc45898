"""What bounds the fast executor's speed-up over the reference loop (target: ≥ 2.5× at d_hidden 32 and 128).

    python -m benchmarks step_bound [--threads 1]      # about 1 minute

On the `executor` benchmark's networks (evolved-like, 48 clusters, batch 64, one thread), and on the stored
CIFAR-10 headline network at its batch (no target: the network the book trains), in one process: the
reference and the fast training step (in alternating blocks, as `executor` times them), and the fast step's parts,
each timed on its own:
  - products: every matrix product of its forward + backward but the CL's gate products, as the step runs them
    (their self time under torch.profiler, which records operator, shapes and calls), and the same calls
    replayed alone on warm, contiguous random operands ("products alone": the step's arithmetic at the rate
    these shapes reach by themselves);
  - GELU: every GELU and GELU backward, as the step runs them (under the profiler);
  - CL gathers: both passes' gate-weighted sums of in-messages (`lumina.executor._Groups.cl`: `lumina.gather`'s
    kernel) with their backward, from leaf message tensors of the step's shapes;
  - optimizer: the update alone (compiled, as trained), which the reference step takes too.
The gathers and the whole fast step are timed a second time with the CL in torch ops (`gather.torch_ops`: the
stacks and gate products; the step in the same alternating blocks): what the kernel saves.
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

from lumina import gather
from lumina.executor import _Groups
from lumina.optim import make_optimizer

from .common import block_median_times, evolved_like, median_time, training_step, write_json

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


def measure(m, batch: int, reps: int) -> dict:
    """One network's row: the reference and fast steps, the fast step's parts, the bound (see the module docstring)."""
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    step = training_step(m, x, y, "fast")

    def step_torch_ops():  # the same step with the CL in torch ops
        with gather.torch_ops():
            step()

    t = block_median_times({"ref": training_step(m, x, y, "reference"), "fast": step, "torch_ops": step_torch_ops}, reps)
    recorded = recorded_calls(step, (*PRODUCTS, *GELUS))
    calls = [c for c in recorded if c[0] in PRODUCTS]
    products = [c for c in calls if not is_gate_product(*c[:2])]  # the gate products are the gathers'
    parts = {"products": sum(c[3] for c in products),  # as the step runs them (under the profiler)
             "gelu": sum(c[3] for c in recorded if c[0] in GELUS),
             "gathers": median_time(gathers(m, batch), reps),
             "optimizer": optimizer_alone(m, x, y, reps)}
    alone = median_time(replay(products), reps)
    with gather.torch_ops():
        gathers_torch_ops = median_time(gathers(m, batch), reps)
    ms = {f"{k}_ms": 1e3 * v for k, v in parts.items()}
    return dict(clusters=len(m.graph.clusters), edges=len(m.graph.edges), d_hidden=m.d_hidden, batch=batch,
                reference_ms=1e3 * t["ref"], fast_ms=1e3 * t["fast"], **ms, rest_ms=1e3 * t["fast"] - sum(ms.values()),
                products_alone_ms=1e3 * alone, speedup=t["ref"] / t["fast"], bound=t["ref"] / (alone + parts["optimizer"]),
                fast_torch_ops_ms=1e3 * t["torch_ops"], gathers_torch_ops_ms=1e3 * gathers_torch_ops,
                products_gflop=gflop(products), gate_gflop=gflop([c for c in calls if c not in products]))


def headline():
    """The stored CIFAR-10 headline network (its evolved topology and weights) and its batch, or None."""
    from lumina.published import cifar10_runs
    from lumina.results import load_model, result_dir

    cfg = cifar10_runs("full")["luminanet"][0]
    if not (result_dir(cfg) / "network").exists():
        return None
    return f"headline cifar10/full/{cfg.key()}", load_model(cfg), cfg.train.batch_size


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--d-hidden", type=int, nargs="+", default=[32, 128])
    ap.add_argument("--clusters", type=int, default=48)
    ap.add_argument("--no-headline", action="store_true", help="only the evolved-like networks")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    nets = [(f"evolved-like, d_hidden {d}", evolved_like(a.clusters, d), a.batch, TARGET) for d in a.d_hidden]
    if not a.no_headline and (h := headline()) is not None:
        nets.append((*h, None))  # no target: how far the kernel goes on the network the book trains
    rows = []
    print(f"{'network':>36} {'reference':>9} {'fast':>7} {'budget':>7} | {'products':>8} {'GELU':>6} {'gathers':>7} "
          f"{'optim.':>6} {'rest':>6} | {'alone':>6} | {'speed-up':>8} {'bound':>6} | {'torch ops: fast':>15} {'gathers':>7}")
    for name, m, batch, target in nets:
        row = {"network": name, **measure(m, batch, a.reps), "target": target}
        row["budget_ms"] = row["reference_ms"] / target if target else None
        rows.append(row)
        budget = f"{row['budget_ms']:>7.1f}" if target else f"{'':>7}"
        print(f"{name:>36} {row['reference_ms']:>9.1f} {row['fast_ms']:>7.1f} {budget} | {row['products_ms']:>8.1f} "
              f"{row['gelu_ms']:>6.1f} {row['gathers_ms']:>7.1f} {row['optimizer_ms']:>6.1f} {row['rest_ms']:>6.1f} | "
              f"{row['products_alone_ms']:>6.1f} | {row['speedup']:>7.2f}x {row['bound']:>5.2f}x | "
              f"{row['fast_torch_ops_ms']:>15.1f} {row['gathers_torch_ops_ms']:>7.1f}")
    print("(ms per training step; speed-up and bound in ×; alone: the products replayed alone)")
    write_json("step_bound.json", threads=a.threads, rows=rows)


if __name__ == "__main__":
    main()
