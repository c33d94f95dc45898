"""The training loop shared by every experiment: LuminaNet (with evolution) and the baselines.

One recipe (AdamW, linear warm-up then cosine decay, label smoothing, batch augmentation, grad clipping),
optionally bounded by a wall-clock budget: training stops at `epochs` or `budget_s`, whichever comes first,
and the schedule (LR, evolution's warm-up and freeze) follows progress = max(step share, time share).
Without a budget a run is deterministic under its seed on the CPU.
Checkpoints (every `checkpoint_every` steps and at the end) hold everything needed to resume exactly.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import metrics, stats
from .checkpoint import load_checkpoint, restore_optimizer, save_checkpoint, save_network, save_weights
from .config import ExperimentConfig
from .evolution.policy import EvolutionPolicy
from .model import LuminaNet
from .optim import carry_over, make_optimizer, named_moments
from .results import provenance, result_dir, runs_root, save_result
from .topology import Graph


SMALL_MODEL = 5_000_000  # baselines up to this many parameters store their trained weights with the result


class NonFiniteLoss(FloatingPointError):
    """The loss became NaN or Inf; the message names the step and the last good checkpoint."""


# ---- tasks: data + objective -------------------------------------------------------------------
class ImageTask:
    """CIFAR-10 (or synthetic images): classification with label smoothing."""

    n_out = 10

    def __init__(self, cfg: ExperimentConfig):
        from .data.cifar import load_cifar10, synthetic_images

        d = cfg.data
        if d.dataset == "cifar10":
            self.x_train, self.y_train = load_cifar10(True, d.train_subset)
            self.x_test, self.y_test = load_cifar10(False, d.test_subset)
        else:
            self.x_train, self.y_train = synthetic_images(d.train_subset or 2048, seed=1)
            self.x_test, self.y_test = synthetic_images(d.test_subset or 512, seed=2)
        self.augment, self.smoothing = cfg.train.augment, cfg.train.label_smoothing

    @property
    def n_train(self) -> int:
        return len(self.x_train)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        from .data.cifar import normalize

        return normalize(x)

    def batch(self, idx: torch.Tensor, gen: torch.Generator):
        from .data.cifar import augment_batch

        x = self.x_train[idx]
        if self.augment:
            x = augment_batch(x, gen)
        return self.prepare(x), self.y_train[idx]

    def loss(self, logits, y):
        return F.cross_entropy(logits, y, label_smoothing=self.smoothing)

    def evaluate(self, model) -> dict:
        return metrics.evaluate(model, self.x_test, self.y_test, self.prepare)

    def example(self) -> torch.Tensor:
        return self.prepare(self.x_test[:1])


def make_task(cfg: ExperimentConfig):
    if cfg.data.dataset in ("cifar10", "synthetic"):
        return ImageTask(cfg)
    from .text import TextTask  # TinyStories

    return TextTask(cfg)


def build_model(cfg: ExperimentConfig, graph: Graph | None = None, task=None) -> nn.Module:
    m = cfg.model
    if m.arch == "gpt2":  # the 1-layer GPT-2 baseline of the TinyStories chapter; width = d_hidden
        from .baselines.gpt2 import build_gpt2

        return build_gpt2(cfg.data.vocab_size, m.context, m.d_hidden, n_head=4, full_sequence=True, seed=cfg.train.seed)
    if m.arch != "luminanet":
        from .baselines import build_baseline

        return build_baseline(m.arch, num_classes=10)
    if cfg.data.dataset == "tinystories":
        graph = graph or Graph.initial(m.context, m.init_size, m.init_connect)
        return LuminaNet(graph, d_in=m.d_embed, d_hidden=m.d_hidden, n_out=cfg.data.vocab_size, input_kind="tokens",
                         vocab_size=cfg.data.vocab_size, aggregate=m.aggregate, seed=cfg.train.seed)
    n_slots = 3 * (32 // m.patch) ** 2
    graph = graph or Graph.initial(n_slots, m.init_size, m.init_connect)
    return LuminaNet(graph, d_in=m.patch * m.patch, d_hidden=m.d_hidden, n_out=10, patch=m.patch,
                     aggregate=m.aggregate, seed=cfg.train.seed)


def lr_at(progress: float, cfg) -> float:
    t = cfg.train
    if progress < t.lr_warmup:
        return t.lr * (progress / t.lr_warmup)
    q = (progress - t.lr_warmup) / max(1e-9, 1 - t.lr_warmup)
    return t.lr * 0.5 * (1 + math.cos(math.pi * min(q, 1.0)))


def _progress_bar(total: int, desc: str):
    from tqdm import tqdm  # plain bars: tqdm.auto warns in kernels without ipywidgets

    disable = os.environ.get("LUMINA_PROGRESS", "1") == "0" or os.environ.get("CI") == "true"
    return tqdm(total=total, desc=desc, disable=disable, mininterval=2.0)


# ---- the loop ------------------------------------------------------------------------------------
def train(cfg: ExperimentConfig, run_dir: Path | None = None, *, save: bool = True, checkpoint_every: int = 0,
          resume: bool = True, stop_after: int = 0, task=None) -> dict:
    """Train `cfg` and return its result dict (also stored by the results store when `save`).
    `stop_after` > 0 stops after that many steps without finishing (for tests of resume)."""
    t = cfg.train
    torch.set_num_threads(t.threads)
    torch.manual_seed(t.seed)
    task = task or make_task(cfg)
    model = build_model(cfg)
    is_lumina = isinstance(model, LuminaNet)
    policy = EvolutionPolicy(cfg.evolution, t.seed) if is_lumina else None
    opt = make_optimizer(model, t.lr, t.weight_decay)
    data_gen = torch.Generator().manual_seed(t.seed + 1)  # data order and augmentation
    probe_gen = torch.Generator().manual_seed(t.seed + 2)  # the evolution probe's batches
    steps_per_epoch = max(1, task.n_train // t.batch_size)
    total = max(1, int(round(t.epochs * steps_per_epoch)))
    run_dir = Path(run_dir) if run_dir else runs_root() / cfg.experiment / cfg.profile / cfg.key()
    ckpt = run_dir / "checkpoint.safetensors"
    step, train_s, perm, history, running, evolve_s = 0, 0.0, None, [], None, 0.0

    if resume and ckpt.exists():
        c = load_checkpoint(ckpt, cfg)
        if is_lumina:  # rebuild the evolved graph first, then fill in the weights
            model = build_model(cfg, graph=Graph.from_json(c["topology"]))
        model.load_state_dict(c["model"])
        opt = make_optimizer(model, t.lr, t.weight_decay)
        restore_optimizer(opt, model, c["opt"])
        st = c["state"]
        step, train_s, history, running = st["step"], st["train_s"], st["history"], st.get("running")
        evolve_s = st.get("evolve_s", 0.0)
        perm = c["rng"]["perm"].long()
        data_gen.set_state(c["rng"]["data_gen"])
        probe_gen.set_state(c["rng"]["probe_gen"])
        torch.set_rng_state(c["rng"]["torch"])
        if policy is not None:
            policy.load_state_dict(st["policy"])

    def checkpoint():
        state = {"step": step, "train_s": train_s, "history": history, "running": running, "evolve_s": evolve_s,
                 "policy": policy.state_dict() if policy else None}
        rng = {"perm": perm if perm is not None else torch.zeros(0, dtype=torch.int64), "data_gen": data_gen.get_state(),
               "probe_gen": probe_gen.get_state(), "torch": torch.get_rng_state()}
        save_checkpoint(ckpt, model=model, optimizer=opt, cfg=cfg, rng=rng, state=state)

    def record(extra: dict):
        row = {"step": step, "epoch": step / steps_per_epoch, "train_s": round(train_s, 2), **extra,
               "n_params": metrics.count_params(model)}
        if is_lumina:
            row.update({k: v for k, v in stats.summary(model.graph).items() if k != "sizes"})
        history.append(row)

    bar = _progress_bar(total, f"{cfg.experiment}:{cfg.model.arch}")
    bar.update(step)
    model.train()
    while step < total and not (t.budget_s and train_s >= t.budget_s):
        if stop_after and step >= stop_after:
            checkpoint()
            bar.close()
            return {"stopped_at": step}
        pos = step % steps_per_epoch
        if pos == 0 or perm is None:
            perm = torch.randperm(task.n_train, generator=data_gen)
        tic = time.perf_counter()
        progress = max(step / total, train_s / t.budget_s if t.budget_s else 0.0)
        for g in opt.param_groups:
            g["lr"] = lr_at(progress, cfg)
        x, y = task.batch(perm[pos * t.batch_size:(pos + 1) * t.batch_size], data_gen)
        loss = task.loss(model(x), y)
        if not torch.isfinite(loss):
            bar.close()
            raise NonFiniteLoss(f"loss is {loss.item()} at step {step} of {cfg.experiment}/{cfg.profile}; "
                                f"last good checkpoint: {ckpt if ckpt.exists() else 'none'} (kept). "
                                "Lower lr or enable grad_clip.")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if t.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip, foreach=True)
        if policy is not None:
            t_ev = time.perf_counter()
            policy.observe(model, step)
            evolve_s += time.perf_counter() - t_ev
        opt.step()
        step += 1
        lv = loss.item()
        running = lv if running is None else 0.98 * running + 0.02 * lv
        if policy is not None and policy.due(step, progress):
            t_ev = time.perf_counter()
            probe = torch.randint(0, task.n_train, (cfg.evolution.probe_batch,), generator=probe_gen)
            px, py = task.batch(probe, probe_gen)
            change = policy.evolve(model, px, py, task.loss, step)
            if change is not None:
                moments = named_moments(opt, model)  # taken in the old packing
                model.set_topology(change.graph, change.params)
                opt = carry_over(opt, moments, model, change)
            evolve_s += time.perf_counter() - t_ev  # policy, ops, re-packing and optimizer carry-over
        train_s += time.perf_counter() - tic
        bar.update(1)
        if step % t.eval_every == 0 or step == total:
            record({"train_loss": running, **{f"test_{k}": v for k, v in task.evaluate(model).items()}})
            bar.set_postfix(loss=f"{running:.3f}", top1=f"{history[-1]['test_top1']:.1f}")
        if checkpoint_every and step % checkpoint_every == 0:
            checkpoint()
    bar.close()
    if not history or history[-1]["step"] != step:
        record({"train_loss": running, **{f"test_{k}": v for k, v in task.evaluate(model).items()}})
    checkpoint()
    final = history[-1]
    result = {
        "experiment": cfg.experiment, "profile": cfg.profile, "key": cfg.key(), "arch": cfg.model.arch,
        "config": cfg.to_dict(), "steps": step, "epochs_done": step / steps_per_epoch, "train_s": train_s,
        "metrics": {k: v for k, v in final.items() if k.startswith("test_")},
        "n_params": metrics.count_params(model),
        "flops_per_example": metrics.flops_per_example(model, task.example()),
        "history": history,
        "provenance": provenance(train_s),
    }
    if is_lumina:
        result["topology_stats"] = stats.summary(model.graph)
        result["evolve_s"] = evolve_s  # share of train_s spent in evolution (policy, ops, carry-over)
        result["event_counts"] = {op: sum(e.op == op for e in policy.events)
                                  for op in ("split", "grow", "reduce", "connect", "prune")}
    if save:
        events = [e.to_dict() for e in policy.events] if policy else None
        if is_lumina:
            save_network(model, cfg, result_dir(cfg) / "network")
        elif metrics.count_params(model) <= SMALL_MODEL:  # small baselines keep their weights (samples, reuse)
            save_weights(model, cfg, result_dir(cfg) / "weights.safetensors")
        result["dir"] = str(save_result(cfg, result, model.graph.to_json() if is_lumina else None, events))
    result["model"] = model  # in-memory convenience for notebooks; not stored
    return result
