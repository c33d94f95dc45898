"""One CIFAR-10 epoch of an evolved LuminaNet against one of LeNet-5: same data path, same thread count.

    python -m benchmarks.epoch [--threads 1] [--steps 40]      # about 1 minute

Targets: the evolved d_hidden=64 v2 network's epoch ≤ 2× LeNet-5's (issue "core v2"; the final topology of v2's
evolved run, `lumina.published.ablation_runs`, seed 0, else an evolved-like one), and the CIFAR-10 v3 network's
≤ 2.5× (issue 22; the final topology of the headline run, `lumina.published.cifar10_runs`, seed 0, else of the
evolved v3 run at the chosen setting on the validation split, `lumina.published.cifar10_v3_controls`; left out
until one is stored). Both train `--steps` steps on real batches (`ImageTask.batch`: slicing, augmentation,
normalisation) with their optimizers; the epoch time is the median step time × steps per epoch.
"""
from __future__ import annotations

import argparse

import torch

from lumina.build import build_model, make_task
from lumina.config import resolve
from lumina.published import ablation_runs, cifar10_runs, cifar10_v3_controls
from lumina.results import artifacts

from .common import evolved_like, median_time, write_json


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=40)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    lum_cfg, lenet_cfg = ablation_runs("full")["evolved from scratch"][0], resolve("cifar10_baseline", "full", arch="lenet5")
    g = artifacts(lum_cfg)["topology"]
    lum = build_model(lum_cfg, graph=g) if g is not None else evolved_like(32, 64)
    source = f"stored run {lum_cfg.experiment}/{lum_cfg.key()}" if g is not None else "evolved-like (no stored run)"
    models = [(f"LuminaNet-64 v2 ({len(lum.graph.clusters)} NCs, {lum.graph.n_neurons()} neurons)", lum)]
    v3_cfg = next((c for c in (*cifar10_runs("full")["luminanet"][:1], *cifar10_v3_controls("full").get("evolved v3", [])[:1])
                   if c is not None and artifacts(c)["topology"] is not None), None)
    if v3_cfg is not None:
        v3 = build_model(v3_cfg, graph=artifacts(v3_cfg)["topology"])
        models.append((f"LuminaNet-{v3_cfg.model.d_hidden} v3 ({len(v3.graph.clusters)} NCs, "
                       f"{v3.graph.n_neurons()} neurons)", v3))
    task = make_task(lenet_cfg)
    steps_per_epoch = task.n_train // lenet_cfg.train.batch_size
    gen = torch.Generator().manual_seed(0)
    rows = []
    for name, model in (*models, ("LeNet-5", build_model(lenet_cfg))):
        from lumina.optim import make_optimizer
        opt = make_optimizer(model, 1e-3, 0.05)

        def step():
            idx = torch.randint(0, task.n_train, (lenet_cfg.train.batch_size,), generator=gen)
            x, y = task.batch(idx, gen)
            loss = task.loss(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        t = median_time(step, a.steps)
        rows.append({"model": name, "step_ms": 1e3 * t, "epoch_s": t * steps_per_epoch})
        print(f"{name:<44} {1e3 * t:7.1f} ms/step  {t * steps_per_epoch:6.1f} s/epoch")
    ratio = rows[0]["epoch_s"] / rows[-1]["epoch_s"]
    print(f"LuminaNet / LeNet-5 epoch time: {ratio:.2f}x (target ≤ 2x); network: {source}")
    out = dict(threads=a.threads, network=source, rows=rows, ratio=ratio, target=2.0)
    if v3_cfg is not None:
        out.update(v3_network=f"stored run {v3_cfg.experiment}/{v3_cfg.key()}", v3_ratio=rows[1]["epoch_s"] / rows[-1]["epoch_s"],
                   v3_target=2.5)
        print(f"LuminaNet v3 / LeNet-5 epoch time: {out['v3_ratio']:.2f}x (target ≤ 2.5x); network: {out['v3_network']}")
    write_json("epoch.json", **out)


if __name__ == "__main__":
    main()
