"""AdamW whose state follows the network through evolution (book chapter 2: optimizer state carries over).

`EvolvingAdamW` is AdamW (decoupled weight decay, Loshchilov & Hutter 2019) with one change: the bias
correction 1 − β^t is kept *per element* (`bc1`, `bc2`, updated as bc ← β·bc + (1 − β), so 0 for an element
that has never stepped), not computed from one step count t per tensor. Evolution puts fresh rows (grown
neurons, new edges, a split child's bias) into tensors that have trained for thousands of steps; with a
per-tensor count their zero moments would skip the bias correction and the first update would be about
(1-β1)/sqrt(1-β2) ≈ 3.2× the learning rate. With per-element corrections a fresh element takes exactly the
steps a new AdamW would give it, and every other element exactly the steps it would have taken anyway.

Carry-over (`carry_over`): moments and ages live in the per-cluster name space of the evolution ops:
  - a tensor that survived the event unchanged (the same object in `Change.params` as in `Change.origin`)
    keeps its moments and bias corrections exactly (bit-identical);
  - a tensor an op derived from an old one (`Change.lineage`) gets the old state of the rows it copied,
    and zeros (never stepped) for fresh rows;
  - a fresh tensor starts with zero moments and zero bias corrections.
Parameters outside the clusters (token table, OL) are the same objects before and after and keep their state.
"""
from __future__ import annotations

import logging
import warnings

import torch
from torch import nn

STATE = ("exp_avg", "exp_avg_sq", "bc1", "bc2")


def is_no_decay(name: str, p: torch.Tensor) -> bool:
    """No weight decay on biases, norms and edge gates (packed biases are 3-D, so named)."""
    return p.ndim < 2 or "b_in" in name or "b_out" in name or name.endswith("_g")


def param_groups(named: dict[str, nn.Parameter], weight_decay: float) -> list[dict]:
    decay = [p for n, p in named.items() if not is_no_decay(n, p)]
    no_decay = [p for n, p in named.items() if is_no_decay(n, p)]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _adamw_(p, g, m, v, bc1, bc2, lr, b1, b2, eps, wd) -> None:
    """One AdamW step of flat tensors in place, with per-element bias corrections, written to be compiled: the
    hyperparameters are 0-d tensors, so that a new learning rate is not a new graph."""
    bc1.mul_(b1).add_(1 - b1)  # 1 - β^t, one step further, per element
    bc2.mul_(b2).add_(1 - b2)
    m.lerp_(g, 1 - b1)
    v.mul_(b2).addcmul_(g, g * (1 - b2))
    p.mul_(1 - lr * wd).sub_(lr * (m / bc1) / ((v / bc2).sqrt() + eps))  # p -= lr m̂ / (sqrt(v̂) + eps)


def _adamw_eager_(p, g, m, v, bc1, bc2, lr, b1, b2, eps, wd) -> None:
    """The same step in as few eager passes as it takes, with no temporaries (`g` is overwritten)."""
    bc1.mul_(b1).add_(1 - b1)
    bc2.mul_(b2).add_(1 - b2)
    m.lerp_(g, 1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    if wd:
        p.mul_(1 - lr * wd)
    torch.div(v, bc2, out=g).sqrt_().add_(eps).mul_(bc1)  # (sqrt(v̂) + eps) bc1: m / g = m̂ / (sqrt(v̂) + eps)
    p.addcdiv_(m, g, value=-lr)


# Eager, the update is 13 passes over every parameter; compiled (inductor; one size-generic graph, since evolution
# changes the sizes) it is one pass: a training step of an evolved-like 48-cluster network 8-14% faster on one
# CPU thread (`python -m benchmarks step_profile` times both). Where no compiler works the eager update runs,
# after one warning.
FUSED = {"on": True, "fn": None}


def adamw_update(p, g, m, v, bc1, bc2, lr: float, b1: float, b2: float, eps: float, wd: float) -> None:
    if FUSED["on"]:
        if FUSED["fn"] is None:
            # inductor's C++ build logs a warning on every CPU-only machine that has no CUDA toolkit
            logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
            FUSED["fn"] = torch.compile(_adamw_, dynamic=True)
        h = torch.tensor([lr, b1, b2, eps, wd], dtype=p.dtype, device=p.device).unbind()
        try:
            return FUSED["fn"](p, g, m, v, bc1, bc2, *h)
        except Exception as err:  # no C++ compiler, an unsupported device: the same step, eager
            FUSED["on"] = False
            warnings.warn(f"EvolvingAdamW takes eager steps (torch.compile failed: {type(err).__name__}: {err})")
    _adamw_eager_(p, g, m, v, bc1, bc2, lr, b1, b2, eps, wd)


class EvolvingAdamW(torch.optim.Optimizer):
    """AdamW with a per-element step count (see the module docstring). The update runs on flat tensors: each
    group's parameters and state are views of one tensor per kind (`_flat`), so every operation is one kernel
    over all of them; per tensor, a kernel costs a few µs, a quarter of a training step of an evolved
    network (~140 tensors) on one CPU thread."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self._flats: dict[int, tuple] = {}  # per group: its tensors, their data pointers and states, what `_flat` returns

    def __setstate__(self, state: dict) -> None:  # a copy (deepcopy, pickle) makes its flat tensors on its first step
        super().__setstate__(state)
        self._flats = {}

    def init_state(self, p: torch.Tensor) -> dict:
        return {k: torch.zeros_like(p, memory_format=torch.preserve_format) for k in STATE}

    @torch.no_grad()
    def step(self, closure=None):
        for n, group in enumerate(self.param_groups):
            ps = [p for p in group["params"] if p.grad is not None]  # a tensor without a gradient does not step
            if not ps:
                continue
            p, (m, v, bc1, bc2), g = self._flat(n, ps)
            torch.cat([q.grad.reshape(-1) for q in ps], out=g)
            (b1, b2), lr, eps, wd = group["betas"], group["lr"], group["eps"], group["weight_decay"]
            adamw_update(p, g, m, v, bc1, bc2, lr, b1, b2, eps, wd)
        return None

    def _flat(self, n: int, ps: list) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """(parameters, [state per STATE key], a gradient buffer) of group n's tensors `ps` as flat tensors, of
        which `ps` and their state are views. Made again when any of them was replaced since: other tensors
        have gradients, a parameter's data was swapped, or state was installed (`install_state`,
        `restore_state`)."""
        got = self._flats.get(n)
        if (got is not None and len(got[0]) == len(ps) and all(a is b for a, b in zip(got[0], ps))
                and all(q.data_ptr() == ptr and self.state[q] is st for q, ptr, st in zip(ps, got[1], got[2]))):
            return got[3]
        for q in ps:
            if not self.state.get(q):
                self.state[q] = self.init_state(q)
        sizes = [q.numel() for q in ps]
        flats = [torch.cat([t.reshape(-1) for t in ts]) for ts in
                 ([q.detach() for q in ps], *([self.state[q][k] for q in ps] for k in STATE))]
        views = [f.split(sizes) for f in flats]
        for j, q in enumerate(ps):
            q.data = views[0][j].view_as(q)
            self.state[q] = {k: views[1 + s][j].view_as(q) for s, k in enumerate(STATE)}
        work = torch.empty_like(flats[0])  # the gradients; kept: a fresh tensor this large is fresh pages from
        #                                    the OS, every step
        self._flats[n] = (list(ps), [q.data_ptr() for q in ps], [self.state[q] for q in ps], (flats[0], flats[1:], work))
        return self._flats[n][3]


def make_optimizer(model: nn.Module, lr: float, weight_decay: float, betas=(0.9, 0.999)) -> torch.optim.Optimizer:
    """LuminaNet: `EvolvingAdamW`; baselines (whose tensors never change) torch's AdamW (fused on CPU and GPU)."""
    groups = param_groups(dict(model.named_parameters()), weight_decay)
    if hasattr(model, "graph"):
        return EvolvingAdamW(groups, lr=lr, betas=betas)
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=True)


def named_state(opt: torch.optim.Optimizer, model) -> dict[str, dict[str, torch.Tensor]]:
    """A LuminaNet's optimizer state by cluster/edge name: {state key: {name: tensor}} (views of packed state)."""
    packed = dict(model.p.items())
    return {k: model.unpack({pn: opt.state[p][k] if opt.state.get(p) else torch.zeros_like(p) for pn, p in packed.items()})
            for k in STATE}


def _remap(t: torch.Tensor, like: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    """The old state `t` for a tensor like `like`: all of it (`rows` None), or the rows `rows` names (-1: a fresh
    row, zero). Not copied when whole: `install_state` packs it into new tensors, and a copy here was ~2,000
    clones per evolution event."""
    if rows is None:
        return t
    out = torch.zeros_like(like)
    keep = rows >= 0
    out[keep.to(out.device)] = t[rows[keep].to(t.device)]
    return out


def install_state(opt: EvolvingAdamW, model, named: dict[str, dict[str, torch.Tensor]], other: dict | None = None) -> None:
    """Pack per-name state into `opt` for `model`'s packed parameters; `other` = state of non-cluster params."""
    packed = {k: model.pack(named[k]) for k in STATE}
    for pn, p in model.p.items():
        opt.state[p] = {k: packed[k][pn] for k in STATE}
    for p, st in (other or {}).items():
        opt.state[p] = st


def carry_over(old_opt: torch.optim.Optimizer, old_state: dict, model, change) -> EvolvingAdamW:
    """A new optimizer for `model` (just re-packed by `change`) with the state carried over.
    `old_state` = `named_state(old_opt, model)` taken before the model was re-packed."""
    g0 = old_opt.param_groups[0]
    new_opt = EvolvingAdamW(param_groups(dict(model.named_parameters()), g0["weight_decay"]), lr=g0["lr"],
                            betas=g0["betas"], eps=g0["eps"])
    origin = change.origin or {}
    new_named = {k: {} for k in STATE}
    for name, t in change.params.items():
        if name in origin and t is origin[name]:
            src, rows = name, None  # survivor
        elif name in change.lineage:
            src, rows = change.lineage[name]
        else:
            src, rows = None, None  # fresh
        for k in STATE:
            old = old_state[k].get(src) if src is not None else None
            new_named[k][name] = _remap(old, t, rows) if old is not None else torch.zeros_like(t)
    cluster_params = {id(p) for p in model.p.values()}
    alive = {id(q) for q in model.parameters()}
    other = {p: st for p, st in old_opt.state.items() if id(p) not in cluster_params and id(p) in alive}
    install_state(new_opt, model, new_named, other)
    return new_opt


# ---- optimizer state as named tensors, for checkpoints (device- and packing-independent) ---------------
def state_tensors(opt: torch.optim.Optimizer, model: nn.Module) -> dict[str, torch.Tensor]:
    """{"<param name>.<state key>": tensor}: a LuminaNet's cluster and edge state under their per-cluster
    names (`named_state`), every other parameter's under its module name."""
    out, skip = {}, set()
    if hasattr(model, "graph"):
        for k, named in named_state(opt, model).items():
            out.update({f"{n}.{k}": v for n, v in named.items()})
        skip = {id(p) for p in model.p.values()}
    for n, p in model.named_parameters():
        if id(p) not in skip and opt.state.get(p):
            out.update({f"{n}.{k}": v for k, v in opt.state[p].items()})
    return out


def restore_state(opt: torch.optim.Optimizer, model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Install what `state_tensors` returned into `opt` for `model` (built from the same checkpoint)."""
    dev = next(model.parameters()).device
    get = lambda n, k: tensors[f"{n}.{k}"].to(dev)
    other = {}
    for n, p in model.named_parameters():
        if n.startswith("p."):  # packed cluster tensors: installed by name below
            continue
        keys = [k for k in ("step", *STATE) if f"{n}.{k}" in tensors]
        if keys:
            st = {k: get(n, k) for k in keys}
            if "step" in st:
                st["step"] = st["step"].reshape(()).cpu()
            other[p] = st
    if hasattr(model, "graph"):
        names = model.unpack(dict(model.p.items()))  # 0-d tensors (edge gates) were stored with shape (1,)
        install_state(opt, model, {k: {n: get(n, k).reshape(t.shape) for n, t in names.items()} for k in STATE}, other)
    else:
        for p, st in other.items():
            opt.state[p] = st
