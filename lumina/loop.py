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
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import ExperimentConfig
from .evolution.policy import EVENT_OPS, EvolutionPolicy
from .model import LuminaNet
from .naming import is_module_key
from .optim import STATE, carry_over, install_state, make_optimizer, named_state
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


# ---- optimizer state by name (device- and packing-independent checkpoints) -----------------------
def _opt_tensors(opt, model) -> dict[str, torch.Tensor]:
    out = {}
    if isinstance(model, LuminaNet):
        for k, named in named_state(opt, model).items():
            out.update({f"{n}.{k}": v for n, v in named.items()})
        skip = {id(p) for p in model.p.values()}
    else:
        skip = set()
    for n, p in model.named_parameters():
        if id(p) not in skip and opt.state.get(p):
            out.update({f"{n}.{k}": v for k, v in opt.state[p].items()})
    return out


def _restore_opt(opt, model, tensors: dict[str, torch.Tensor]) -> None:
    dev = model.head.weight.device if isinstance(model, LuminaNet) else next(model.parameters()).device
    get = lambda n, k: tensors[f"{n}.{k}"].to(dev)
    other = {}
    for n, p in model.named_parameters():
        if n.startswith("p."):
            continue
        keys = [k for k in ("step", *STATE) if f"{n}.{k}" in tensors]
        if keys:
            st = {k: get(n, k) for k in keys}
            if "step" in st:
                st["step"] = st["step"].reshape(()).cpu()
            other[p] = st
    if isinstance(model, LuminaNet):
        names = model.unpack(dict(model.p.items()))  # 0-d tensors (edge gates) were stored with shape (1,)
        install_state(opt, model, {k: {n: get(n, k).reshape(t.shape) for n, t in names.items()} for k in STATE}, other)
    else:
        for p, st in other.items():
            opt.state[p] = st


# ---- the loop ------------------------------------------------------------------------------------
def train(cfg: ExperimentConfig, *, ckpt: Path | None = None, checkpoint_every: int = 200, stop_after: int = 0,
          task=None, log=print) -> Run | None:
    """Train `cfg` (resuming from `ckpt` when it exists) and return its `Run`. `stop_after` > 0 stops after
    that many steps, checkpointed, and returns None (for tests of resume)."""
    t = cfg.train
    device = resolve_device(cfg)
    if device.type == "cpu":
        torch.set_num_threads(t.threads)
    torch.manual_seed(t.seed)
    task = (task or make_task(cfg)).to(device)
    data_gen = torch.Generator().manual_seed(t.seed + 1)  # data order and augmentation
    probe_gen = torch.Generator().manual_seed(t.seed + 2)  # the evolution probe's batches
    steps_per_epoch = max(1, task.n_train // t.batch_size)
    total = max(1, int(round(t.epochs * steps_per_epoch)))
    eval_every = t.eval_every or steps_per_epoch
    s = {"step": 0, "train_s": 0.0, "history": [], "running": None, "evolve_s": 0.0, "flops": 0.0, "fpe": None}
    perm = None
    ckpt = Path(ckpt) if ckpt else None

    if ckpt is not None and ckpt.exists():
        c = load_checkpoint(ckpt, cfg.key())
        weights = c["model"]
        if cfg.model.arch == "luminanet":
            extra = {k: v for k, v in weights.items() if is_module_key(k)}  # OL and token table
            params = {k: v for k, v in weights.items() if k not in extra}
            model = build_model(cfg, c["topology"], params, extra, device)
        else:
            model = build_model(cfg, device=device)
            model.load_state_dict(weights)
        opt = make_optimizer(model, t.lr, t.weight_decay)
        _restore_opt(opt, model, c["opt"])
        s.update(c["state"])
        perm = c["rng"]["perm"].long()
        data_gen.set_state(c["rng"]["data_gen"])
        probe_gen.set_state(c["rng"]["probe_gen"])
        torch.set_rng_state(c["rng"]["torch"])
        log(f"[lumina] resuming {cfg.experiment}/{cfg.profile}/{cfg.key()} at step {s['step']} of {total} ({ckpt})")
    else:
        model = build_model(cfg, device=device)
        opt = make_optimizer(model, t.lr, t.weight_decay)
    is_lumina = isinstance(model, LuminaNet)
    policy = EvolutionPolicy(cfg.evolution, t.seed) if is_lumina else None
    if policy is not None and s.get("policy"):
        policy.load_state_dict(s["policy"])
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if t.amp else nullcontext()
    if t.channels_last:  # the CPU fast path of the conv baselines; the optimizer state follows the layout
        channels_last(model, opt)

    def checkpoint():
        if ckpt is None:
            return
        state = {k: v for k, v in s.items()} | {"policy": policy.state_dict() if policy else None}
        rng = {"perm": perm if perm is not None else torch.zeros(0, dtype=torch.int64),
               "data_gen": data_gen.get_state(), "probe_gen": probe_gen.get_state(), "torch": torch.get_rng_state()}
        weights = model.named_tensors() if is_lumina else model.state_dict()
        save_checkpoint(ckpt, weights=weights, opt_state=_opt_tensors(opt, model), rng=rng, state=state,
                        config=cfg.to_dict(), config_key=cfg.key(),
                        topology_json=model.graph.to_json() if is_lumina else "")

    def record():
        fpe = metrics.flops_per_example(model, task.example())
        s["fpe"] = fpe
        ev = task.evaluate(model)
        s["correct"] = ev.pop("correct", None)  # per-example correctness of the latest evaluation (bootstrap)
        s["by_pos"] = ev.pop("loss_by_pos", None)  # text: mean loss at each position of the window
        row = {"step": s["step"], "epoch": round(s["step"] / steps_per_epoch, 4), "train_s": round(s["train_s"], 2),
               "train_loss": s["running"], "train_flops": s["flops"], "flops_per_example": fpe,
               **{f"test_{k}": v for k, v in ev.items()}, "n_params": metrics.count_params(model)}
        if is_lumina:
            row.update({k: v for k, v in stats.summary(model.graph).items() if k != "sizes"})
        s["history"].append(row)

    if s["fpe"] is None:
        s["fpe"] = metrics.flops_per_example(model, task.example())
    bar = progress_bar(total, f"{cfg.experiment}:{cfg.model.arch}", initial=s["step"])
    model.train()
    try:
        while s["step"] < total:
            if stop_after and s["step"] >= stop_after:
                checkpoint()
                return None
            step = s["step"]
            pos = step % steps_per_epoch
            if pos == 0 or perm is None:
                perm = torch.randperm(task.n_train, generator=data_gen)
            tic = time.perf_counter()
            for g in opt.param_groups:
                g["lr"] = lr_at(step / total, cfg)
            x, y = task.batch(perm[pos * t.batch_size:(pos + 1) * t.batch_size], data_gen)
            if t.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast:
                loss = task.loss(model(x), y)
            if not torch.isfinite(loss):
                raise NonFiniteLoss(f"loss is {loss.item()} at step {step} of {cfg.experiment}/{cfg.profile}; "
                                    f"last good checkpoint: {ckpt if ckpt is not None and ckpt.exists() else 'none'} "
                                    "(kept). Lower lr or enable grad_clip.")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if t.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip, foreach=True)
            if policy is not None:
                t_ev = time.perf_counter()
                policy.observe(model, step)
                s["evolve_s"] += time.perf_counter() - t_ev
            opt.step()
            s["step"] = step = step + 1
            s["flops"] += 3.0 * s["fpe"] * len(y)  # forward + backward ≈ 3 forwards
            lv = loss.item()
            s["running"] = lv if s["running"] is None else 0.98 * s["running"] + 0.02 * lv
            if policy is not None and policy.due(step, step / total):
                t_ev = time.perf_counter()
                probe = torch.randint(0, task.n_train, (cfg.evolution.probe_batch,), generator=probe_gen)
                px, py = task.batch(probe, probe_gen)
                change = policy.evolve(model, px, py, task.loss, step, step / total)
                if change is not None:
                    opt = apply_change(model, opt, change)
                    s["fpe"] = metrics.flops_per_example(model, task.example())
                s["evolve_s"] += time.perf_counter() - t_ev  # policy, ops, re-packing and optimizer carry-over
            s["train_s"] += time.perf_counter() - tic
            bar.update(1)
            if step % eval_every == 0 or step == total:
                record()
                h = s["history"][-1]
                bar.set_postfix(epoch=f"{h['epoch']:.1f}", loss=f"{s['running']:.3f}", top1=f"{h['test_top1']:.1f}")
            if checkpoint_every and step % checkpoint_every == 0 and step < total:
                checkpoint()
    finally:
        bar.close()
    if not s["history"] or s["history"][-1]["step"] != s["step"]:
        record()
    checkpoint()
    final = s["history"][-1]
    result = {
        "experiment": cfg.experiment, "profile": cfg.profile, "key": cfg.key(), "arch": cfg.model.arch,
        "config": cfg.to_dict(), "steps": s["step"], "epochs_done": s["step"] / steps_per_epoch,
        "train_s": s["train_s"], "train_flops": s["flops"],
        "metrics": {k: v for k, v in final.items() if k.startswith("test_")},
        "n_params": metrics.count_params(model), "flops_per_example": final["flops_per_example"],
        "test_correct": s.get("correct"),  # hex-packed per-example top-1 hits of the final evaluation
        "loss_by_position": s.get("by_pos"),  # text: the final evaluation's mean loss at each position
        "history": s["history"],
        "provenance": provenance(s["train_s"], device) | {"fast_path": {"amp": t.amp, "channels_last": t.channels_last}},
    }
    events = [e.to_dict() for e in policy.events] if policy else []
    if is_lumina:
        result["topology_stats"] = stats.summary(model.graph)
        result["evolve_s"] = s["evolve_s"]  # policy, ops, re-packing and optimizer carry-over
        result["event_counts"] = {op: sum(e["op"] == op for e in events) for op in EVENT_OPS}
    return Run(result, model, events)
