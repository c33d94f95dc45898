"""What one evolution event costs against the training it interrupts, on the stored CIFAR-10 headline network.

    python -m benchmarks.evolution_event [--threads 1] [--reps 10]      # about 30 seconds; needs CIFAR-10

Side by side in one process, on the committed seed-0 network of the v3 headline (its evolved topology and
weights) and its config: the policy's event at 90% of training, as the loop runs it (the probe's forward and backward with the trace,
the signals, every mechanism's decision, and where it changes the topology the re-packing, the optimizer's
carry-over and the FLOP recount), the per-step load measurement (`observe`), and one training step (forward, backward, optimizer).
The share of training time is event / (evolve_every x step) + observe / (load_every x step): the part of the
2% target (the `runs` part reads the same share from the stored runs' clocks) that a trained network's
events cost.
"""
from __future__ import annotations

import statistics
import time

import torch

from lumina import metrics
from lumina.build import make_task
from lumina.evolution.policy import EvolutionPolicy
from lumina.loop import apply_change
from lumina.optim import make_optimizer
from lumina.published import cifar10_runs
from lumina.results import load_model

from .common import step_args, write_json


def main(argv=None):
    a = step_args(argv)
    cfg = cifar10_runs("full")["luminanet"][0]
    model, task = load_model(cfg), make_task(cfg)
    opt = make_optimizer(model, cfg.train.lr, cfg.train.weight_decay)
    policy = EvolutionPolicy(cfg.evolution, cfg.train.seed)
    gen = torch.Generator().manual_seed(0)
    x, y = task.batch(torch.randint(0, task.n_train, (cfg.train.batch_size,), generator=gen), gen)
    ev = cfg.evolution
    t, changed = {"step": [], "observe": [], "event": []}, 0
    total = 390 * cfg.train.epochs  # an event at 90% of training: after growth, as most events are
    for rep in range(2 + a.reps):  # 2 untimed
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        task.loss(model(x), y).backward()
        t1 = time.perf_counter()
        policy.observe(model, 0)
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        px, py = task.batch(torch.randint(0, task.n_train, (ev.probe_batch,), generator=gen), gen)
        change = policy.evolve(model, px, py, task.loss, int(0.9 * total) + rep * ev.evolve_every, 0.9)
        if change is not None:  # as the loop does: install it, carry the optimizer over, recount the FLOPs
            opt = apply_change(model, opt, change)
            metrics.flops_per_example(model, task.example())
            changed += rep >= 2
        t4 = time.perf_counter()
        if rep >= 2:
            for k, dt in zip(t, ((t1 - t0) + (t3 - t2), t2 - t1, t4 - t3)):
                t[k].append(dt)
    ms = {k: 1e3 * statistics.median(v) for k, v in t.items()}
    share = ms["event"] / (ev.evolve_every * ms["step"]) + ms["observe"] / (ev.load_every * ms["step"])
    print(f"{cfg.key()} ({len(model.graph.clusters)} clusters, {len(model.graph.edges)} edges): step {ms['step']:.1f} ms, "
          f"event {ms['event']:.1f} ms every {ev.evolve_every} steps, observe {ms['observe']:.2f} ms every {ev.load_every} "
          f"-> evolution {100 * share:.2f}% of training time (target ≤ 2%); {changed} of {a.reps} events changed the topology")
    write_json("evolution_event.json", threads=a.threads, network=f"cifar10/full/{cfg.key()}", events_that_changed=changed,
               clusters=len(model.graph.clusters), edges=len(model.graph.edges), ms=ms,
               evolve_every=ev.evolve_every, load_every=ev.load_every, share=share, target=0.02)


if __name__ == "__main__":
    main()
