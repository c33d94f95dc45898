"""AdamW that follows the network through evolution (SPEC §2: optimizer state carries over).

After an event the model holds a new set of Parameters. `carry_over` builds a fresh AdamW over them and
moves state across:
  - a Parameter that survived the event unchanged is the same object: its state dict is reused as is
    (moments bit-identical);
  - a tensor an op derived from an old one (`Change.lineage`) gets the old moments of the rows it copied,
    zeros for fresh rows, and the old step count;
  - a fresh tensor starts with no state.
"""
from __future__ import annotations

import torch
from torch import nn


def param_groups(named: dict[str, nn.Parameter], weight_decay: float) -> list[dict]:
    """Decay matrices (incl. every W_C, which pushes unused edges towards zero and lets `prune` find
    them); no decay on biases and norms."""
    decay = [p for n, p in named.items() if p.ndim >= 2]
    no_decay = [p for n, p in named.items() if p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, lr: float, weight_decay: float, betas=(0.9, 0.999)) -> torch.optim.AdamW:
    named = dict(model.named_parameters())
    # fused AdamW runs on the CPU in torch >= 2.4 and does all tensors in one kernel call
    return torch.optim.AdamW(param_groups(named, weight_decay), lr=lr, betas=betas, fused=True)


def _remap(t: torch.Tensor, like: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    if rows is None:
        return t.clone()
    out = torch.zeros_like(like)
    keep = rows >= 0
    out[keep] = t[rows[keep]]
    return out


def carry_over(old_opt: torch.optim.Optimizer, old_named: dict[str, nn.Parameter], model: nn.Module,
               lineage: dict) -> torch.optim.AdamW:
    g0 = old_opt.param_groups[0]
    new_opt = torch.optim.AdamW(param_groups(dict(model.named_parameters()), g0["weight_decay"]), lr=g0["lr"],
                                betas=g0["betas"], fused=True)
    old_ids = {id(p) for p in old_opt.state}
    for name, p in model.named_parameters():
        if id(p) in old_ids:  # survived unchanged: same object, same state
            new_opt.state[p] = old_opt.state[p]
            continue
        short = name.split(".", 1)[1] if name.startswith("p.") else name
        if short in lineage:
            src, rows = lineage[short]
            old_p = old_named.get(src)
            st = old_opt.state.get(old_p) if old_p is not None else None
            if st:
                new_opt.state[p] = {
                    "step": st["step"].clone(),
                    "exp_avg": _remap(st["exp_avg"], p, rows),
                    "exp_avg_sq": _remap(st["exp_avg_sq"], p, rows),
                }
    return new_opt
