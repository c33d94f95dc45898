"""AdamW that follows the network through evolution (SPEC §2: optimizer state carries over).

The model stores its parameters packed per level (`lumina.model.Plan`), and an event re-packs them. The
moments are carried in the per-cluster name space the evolution ops speak:
  - a tensor that survived the event unchanged (the same object in `Change.params` as in `Change.origin`)
    keeps its moments exactly (bit-identical);
  - a tensor an op derived from an old one (`Change.lineage`) gets the old moments of the rows it copied and
    zeros for fresh rows;
  - a fresh tensor starts with zero moments.
The step count (AdamW's bias correction) is one per packed tensor: the run's step count.
Parameters outside the clusters (embedding, OL) are the same objects before and after and keep their state.
"""
from __future__ import annotations

import torch
from torch import nn

MOMENTS = ("exp_avg", "exp_avg_sq")


def param_groups(named: dict[str, nn.Parameter], weight_decay: float) -> list[dict]:
    """Decay matrices (incl. every W_C, which pushes unused edges towards zero and lets `prune` find
    them); no decay on biases and norms. Packed biases are 3-D, so they are recognised by name."""
    is_bias = lambda n, p: p.ndim < 2 or "b_in" in n or "b_out" in n
    decay = [p for n, p in named.items() if not is_bias(n, p)]
    no_decay = [p for n, p in named.items() if is_bias(n, p)]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, lr: float, weight_decay: float, betas=(0.9, 0.999)) -> torch.optim.AdamW:
    # fused AdamW runs on the CPU in torch >= 2.4 and updates all tensors in one kernel call
    return torch.optim.AdamW(param_groups(dict(model.named_parameters()), weight_decay), lr=lr, betas=betas, fused=True)


def named_moments(opt: torch.optim.Optimizer, model) -> dict[str, dict[str, torch.Tensor]]:
    """Per-cluster/edge views of the AdamW moments: {moment: {name: tensor}}."""
    packed = dict(model.p.items())
    out = {}
    for k in MOMENTS:
        out[k] = model._plan.unpack({pn: opt.state[p][k] if p in opt.state else torch.zeros_like(p)
                                     for pn, p in packed.items()})
    return out


def _remap(t: torch.Tensor, like: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    if rows is None:
        return t.clone()
    out = torch.zeros_like(like)
    keep = rows >= 0
    out[keep] = t[rows[keep]]
    return out


def carry_over(old_opt: torch.optim.Optimizer, old_moments: dict, model, change) -> torch.optim.AdamW:
    """A new AdamW for `model` (just re-packed by `change`) with the moments carried over.
    `old_moments` = `named_moments(old_opt, model)` taken before the model was re-packed."""
    g0 = old_opt.param_groups[0]
    new_opt = torch.optim.AdamW(param_groups(dict(model.named_parameters()), g0["weight_decay"]), lr=g0["lr"],
                                betas=g0["betas"], fused=True)
    steps = [float(st["step"]) for st in old_opt.state.values() if "step" in st]
    step = max(steps, default=0.0)
    origin = change.origin or {}
    new_named = {k: {} for k in MOMENTS}
    for name, t in change.params.items():
        if name in origin and t is origin[name]:
            src, rows = name, None  # survivor
        elif name in change.lineage:
            src, rows = change.lineage[name]
        else:
            src, rows = None, None  # fresh
        for k in MOMENTS:
            old = old_moments[k].get(src) if src is not None else None
            new_named[k][name] = _remap(old, t, rows) if old is not None else torch.zeros_like(t)
    packed = {k: model._plan.pack(new_named[k]) for k in MOMENTS}
    cluster_params = {id(p) for p in model.p.values()}
    for pn, p in model.p.items():
        new_opt.state[p] = {"step": torch.tensor(step), **{k: packed[k][pn] for k in MOMENTS}}
    alive = {id(q) for q in model.parameters()}
    for p, st in old_opt.state.items():  # embedding / OL: same objects, same state
        if id(p) not in cluster_params and id(p) in alive:
            new_opt.state[p] = st
    return new_opt
