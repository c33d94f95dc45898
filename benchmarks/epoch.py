"""One CIFAR-10 epoch of an evolved LuminaNet against one of LeNet-5: same data path, same thread count.

    python -m benchmarks.epoch [--threads 1] [--steps 40]      # about 1 minute

Target (issue 22): the headline LuminaNet's epoch ≤ 2.5× LeNet-5's: the final topology of the CIFAR-10 headline
run (`lumina.published.cifar10_runs`, seed 0), else of the evolved v3 run at the chosen setting on the validation
split (`lumina.published.cifar10_v3_controls`), else an evolved-like network. Both train `--steps` steps on real
batches (`ImageTask.batch`: slicing, augmentation, normalisation) with their optimizers; the epoch time is the median step time × steps per epoch.
"""
from __future__ import annotations

import argparse

import torch

from lumina.build import build_model, make_task
from lumina.config import resolve
from lumina.published import cifar10_runs, cifar10_v3_controls
from lumina.results import artifacts

from .common import evolved_like, median_time, write_json


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=40)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    lenet_cfg = resolve("cifar10_baseline", "full", arch="lenet5")
    lum_cfg = next((c for c in (*cifar10_runs("full")["luminanet"][:1], *cifar10_v3_controls("full").get("evolved v3", [])[:1])
                    if artifacts(c)["topology"] is not None), None)
    lum = build_model(lum_cfg, graph=artifacts(lum_cfg)["topology"]) if lum_cfg is not None else evolved_like(32, 64)
    source = f"stored run {lum_cfg.experiment}/{lum_cfg.key()}" if lum_cfg is not None else "evolved-like (no stored run)"
    name = f"LuminaNet-{lum_cfg.model.d_hidden} v3" if lum_cfg is not None else "LuminaNet-64 (evolved-like)"
    models = [(f"{name} ({len(lum.graph.clusters)} NCs, {lum.graph.n_neurons()} neurons)", lum)]
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
    print(f"LuminaNet / LeNet-5 epoch time: {ratio:.2f}x (target ≤ 2.5x); network: {source}")
    out = dict(threads=a.threads, network=source, rows=rows, ratio=ratio, target=2.5)
    write_json("epoch.json", **out)


if __name__ == "__main__":
    main()
