"""The training loop shared by every experiment: LuminaNet (with evolution) and the baselines.

One recipe (AdamW, linear warm-up then cosine decay, label smoothing, batch augmentation, grad clipping) for
a budget of epochs, never seconds (the intro: how a comparison is run), so a seed gives the same run on any machine and a killed run
resumes to it. `train` returns a `Run` (the JSON result, the live model, the event log) and writes nothing
but its checkpoint: storing results is `lumina.results`' job.

A checkpoint (every `checkpoint_every` steps and at the end) holds the weights and optimizer state under
per-cluster names, every random-number-generator state, the position in the data order, the history and the
evolution policy's state: a resumed run ends bit-identical to an uninterrupted one (on the CPU).
"""
from __future__ import annotations

import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from . import metrics, stats
from .baselines.vision import channels_last
from .build import build_model, make_task, resolve_device
from .checkpoint import load_checkpoint, save_checkpoint
from .config import ExperimentConfig
from .evolution.policy import EVENT_OPS, EvolutionPolicy
from .model import LuminaNet
from .naming import is_module_key
from .optim import FUSED, carry_over, make_optimizer, named_state, restore_state, state_tensors
from .provenance import provenance


class NonFiniteLoss(FloatingPointError):
    """The loss became NaN or Inf; the message names the step and the last good checkpoint."""


@dataclass
class Run:
    result: dict  # JSON-able: metrics, history, config, provenance, ...
    model: nn.Module
    events: list[dict] = field(default_factory=list)  # LuminaNet's evolution log


def lr_at(progress: float, cfg: ExperimentConfig) -> float:
    t = cfg.train
    if progress < t.lr_warmup:
        return t.lr * (progress / t.lr_warmup)
    q = (progress - t.lr_warmup) / max(1e-9, 1 - t.lr_warmup)
    return t.lr * 0.5 * (1 + math.cos(math.pi * min(q, 1.0)))


def apply_change(model: LuminaNet, opt, change):
    """One evolution event: install the new (graph, params) and carry the optimizer state over (the state
    is read in the old packing first). Returns the new optimizer."""
    state = named_state(opt, model)
    model.set_topology(change.graph, change.params)
    return carry_over(opt, state, model, change)


def progress_bar(total: int, desc: str, initial: int = 0):
    from tqdm import tqdm  # plain bars: tqdm.auto warns in kernels without ipywidgets

    disable = os.environ.get("LUMINA_PROGRESS", "1") == "0" or os.environ.get("CI") == "true"
    return tqdm(total=total, initial=initial, desc=desc, disable=disable, mininterval=2.0, unit="step")


# ---- one run's live state ------------------------------------------------------------------------------
class _Training:
    """What a run holds between steps (model, optimizer, policy, random streams, counters `s`), built fresh
    or resumed from `ckpt`, and the jobs of the loop: one step, one evolution event, an evaluation, a
    checkpoint, the result. `s` is the JSON-able part a checkpoint stores."""

    def __init__(self, cfg: ExperimentConfig, task, device: torch.device, ckpt: Path | None, log):
        t = self.t = cfg.train
        self.cfg, self.task, self.device, self.ckpt = cfg, task, device, ckpt
        self.data_gen = torch.Generator().manual_seed(t.seed + 1)  # data order and augmentation
        self.probe_gen = torch.Generator().manual_seed(t.seed + 2)  # the evolution probe's batches
        self.steps_per_epoch = max(1, task.n_train // t.batch_size)
        self.total = max(1, int(round(t.epochs * self.steps_per_epoch)))
        self.eval_every = t.eval_every or self.steps_per_epoch
        self.s = {"step": 0, "train_s": 0.0, "history": [], "running": None, "evolve_s": 0.0, "flops": 0.0, "fpe": None}
        self.perm = None
        if ckpt is not None and ckpt.exists():
            self._resume(load_checkpoint(ckpt, cfg.key()))
            log(f"[lumina] resuming {cfg.experiment}/{cfg.profile}/{cfg.key()} at step {self.s['step']} of "
                f"{self.total} ({ckpt})")
        else:
            self.model = build_model(cfg, device=device)
            self.opt = make_optimizer(self.model, t.lr, t.weight_decay)
        self.is_lumina = isinstance(self.model, LuminaNet)
        self.policy = EvolutionPolicy(cfg.evolution, t.seed, self.s.get("policy")) if self.is_lumina else None
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16) if t.amp else nullcontext()
        if t.channels_last:  # the CPU fast path of the conv baselines; the optimizer state follows the layout
            channels_last(self.model, self.opt)
        if self.s["fpe"] is None:
            self.s["fpe"] = metrics.flops_per_example(self.model, task.example())

    def _resume(self, c: dict) -> None:
        weights = c["model"]
        if self.cfg.model.arch == "luminanet":
            extra = {k: v for k, v in weights.items() if is_module_key(k)}  # OL and token table
            params = {k: v for k, v in weights.items() if k not in extra}
            self.model = build_model(self.cfg, c["topology"], params, extra, self.device)
        else:
            self.model = build_model(self.cfg, device=self.device)
            self.model.load_state_dict(weights)
        self.opt = make_optimizer(self.model, self.t.lr, self.t.weight_decay)
        restore_state(self.opt, self.model, c["opt"])
        self.s.update(c["state"])
        self.perm = c["rng"]["perm"].long()
        self.data_gen.set_state(c["rng"]["data_gen"])
        self.probe_gen.set_state(c["rng"]["probe_gen"])
        torch.set_rng_state(c["rng"]["torch"])

    def checkpoint(self) -> None:
        if self.ckpt is None:
            return
        state = dict(self.s) | {"policy": self.policy.state_dict() if self.policy else None}
        rng = {"perm": self.perm if self.perm is not None else torch.zeros(0, dtype=torch.int64),
               "data_gen": self.data_gen.get_state(), "probe_gen": self.probe_gen.get_state(),
               "torch": torch.get_rng_state()}
        weights = self.model.named_tensors() if self.is_lumina else self.model.state_dict()
        save_checkpoint(self.ckpt, weights=weights, opt_state=state_tensors(self.opt, self.model), rng=rng,
                        state=state, config=self.cfg.to_dict(), config_key=self.cfg.key(),
                        topology_json=self.model.graph.to_json() if self.is_lumina else "")

    def step(self) -> None:
        """One optimizer step on the next batch of the epoch's order (a new order at each epoch's start)."""
        s, t, model, step = self.s, self.t, self.model, self.s["step"]
        pos = step % self.steps_per_epoch
        if pos == 0 or self.perm is None:
            self.perm = torch.randperm(self.task.n_train, generator=self.data_gen)
        for g in self.opt.param_groups:
            g["lr"] = lr_at(step / self.total, self.cfg)
        x, y = self.task.batch(self.perm[pos * t.batch_size:(pos + 1) * t.batch_size], self.data_gen)
        if t.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self.autocast:
            loss = self.task.loss(model(x), y)
        if not torch.isfinite(loss):
            last = self.ckpt if self.ckpt is not None and self.ckpt.exists() else "none"
            raise NonFiniteLoss(f"loss is {loss.item()} at step {step} of {self.cfg.experiment}/{self.cfg.profile}; "
                                f"last good checkpoint: {last} (kept). Lower lr or enable grad_clip.")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if t.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip, foreach=True)
        if self.policy is not None:
            tic = time.perf_counter()
            self.policy.observe(model, step)
            s["evolve_s"] += time.perf_counter() - tic
        self.opt.step()
        s["step"] = step + 1
        s["flops"] += 3.0 * s["fpe"] * len(y)  # forward + backward ≈ 3 forwards
        lv = loss.item()
        s["running"] = lv if s["running"] is None else 0.98 * s["running"] + 0.02 * lv

    def evolve(self) -> None:
        """One evolution event, if the policy has one due: on a probe batch of its own random stream."""
        step, ev = self.s["step"], self.cfg.evolution
        if self.policy is None or not self.policy.due(step, step / self.total):
            return
        tic = time.perf_counter()
        px, py = self.task.batch(torch.randint(0, self.task.n_train, (ev.probe_batch,), generator=self.probe_gen),
                                 self.probe_gen)
        change = self.policy.evolve(self.model, px, py, self.task.loss, step, step / self.total)
        if change is not None:
            self.opt = apply_change(self.model, self.opt, change)
            self.s["fpe"] = metrics.flops_per_example(self.model, self.task.example())
        self.s["evolve_s"] += time.perf_counter() - tic  # policy, ops, re-packing and optimizer carry-over

    def record(self) -> dict:
        """Evaluate and append a row to the history."""
        s, model = self.s, self.model
        s["fpe"] = metrics.flops_per_example(model, self.task.example())
        ev = self.task.evaluate(model)
        s["correct"] = ev.pop("correct", None)  # per-example correctness of the latest evaluation (bootstrap)
        s["correct5"] = ev.pop("correct5", None)  # ... and per-example top-5 hits
        s["by_pos"] = ev.pop("loss_by_pos", None)  # text: mean loss at each position of the window
        row = {"step": s["step"], "epoch": round(s["step"] / self.steps_per_epoch, 4), "train_s": round(s["train_s"], 2),
               "train_loss": s["running"], "train_flops": s["flops"], "flops_per_example": s["fpe"],
               **{f"test_{k}": v for k, v in ev.items()}, "n_params": metrics.count_params(model)}
        if self.is_lumina:
            row.update({k: v for k, v in stats.summary(model.graph).items() if k != "sizes"})
        s["history"].append(row)
        return row

    def result(self) -> Run:
        s, cfg, model, final = self.s, self.cfg, self.model, self.s["history"][-1]
        result = {
            "experiment": cfg.experiment, "profile": cfg.profile, "key": cfg.key(), "arch": cfg.model.arch,
            "config": cfg.to_dict(), "steps": s["step"], "epochs_done": s["step"] / self.steps_per_epoch,
            "train_s": s["train_s"], "train_flops": s["flops"],
            "metrics": {k: v for k, v in final.items() if k.startswith("test_")},
            "n_params": metrics.count_params(model), "flops_per_example": final["flops_per_example"],
            "test_correct": s.get("correct"),  # hex-packed per-example top-1 hits of the final evaluation
            "test_correct5": s.get("correct5"),  # ... and top-5 hits (image tasks; runs stored before lack it)
            "loss_by_position": s.get("by_pos"),  # text: the final evaluation's mean loss at each position
            "history": s["history"],
            "provenance": provenance(s["train_s"], self.device) | {
                "fast_path": {"amp": self.t.amp, "channels_last": self.t.channels_last}}
            | ({"optimizer_step": "compiled" if FUSED["on"] else "eager"} if self.is_lumina else {}),
        }
        events = [e.to_dict() for e in self.policy.events] if self.policy else []
        if self.is_lumina:
            result["topology_stats"] = stats.summary(model.graph)
            result["evolve_s"] = s["evolve_s"]  # policy, ops, re-packing and optimizer carry-over
            result["event_counts"] = {op: sum(e["op"] == op for e in events) for op in EVENT_OPS}
        return Run(result, model, events)


# ---- the loop ------------------------------------------------------------------------------------
def train(cfg: ExperimentConfig, *, ckpt: Path | None = None, checkpoint_every: int = 200, stop_after: int = 0,
          deadline: float | None = None, task=None, log=print) -> Run | None:
    """Train `cfg` (resuming from `ckpt` when it exists) and return its `Run`. `stop_after` > 0 stops after
    that many steps, and `deadline` (a `time.time()`) at the first step boundary past it, checkpointed, and
    return None (tests of resume; a run longer than the machine is lent for, continued elsewhere)."""
    device = resolve_device(cfg)
    if device.type == "cpu":
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)  # the initial weights
    task = (task or make_task(cfg)).to(device)
    r = _Training(cfg, task, device, Path(ckpt) if ckpt else None, log)
    s = r.s
    bar = progress_bar(r.total, f"{cfg.experiment}:{cfg.model.arch}", initial=s["step"])
    r.model.train()
    try:
        while s["step"] < r.total:
            if (stop_after and s["step"] >= stop_after) or (deadline is not None and time.time() >= deadline):
                r.checkpoint()
                return None
            tic = time.perf_counter()
            r.step()
            r.evolve()
            s["train_s"] += time.perf_counter() - tic
            bar.update(1)
            step = s["step"]
            if step % r.eval_every == 0 or step == r.total:
                h = r.record()
                bar.set_postfix(epoch=f"{h['epoch']:.1f}", loss=f"{s['running']:.3f}", top1=f"{h['test_top1']:.1f}")
            if checkpoint_every and step % checkpoint_every == 0 and step < r.total:
                r.checkpoint()
    finally:
        bar.close()
    if not s["history"] or s["history"][-1]["step"] != s["step"]:
        r.record()
    r.checkpoint()
    return r.result()
