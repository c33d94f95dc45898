"""LuminaNet (Liu 2026, arXiv 2601.19508): Neuron Clusters talking over a Communication Layer.

Per Neuron Cluster i with m_i neurons (SPEC.md §1; [paper] marks the paper's equations, the rest is ours):
    IL  e_i = σ(W_in_i x_slot(i) + b_in_i)                    [paper] e_i = σ(Linear_i(Flatten(x_i)))
    CL  s_i = (1/n_i) Σ_{j ∈ N_i} W_C(j→i) f_j                 [paper], n_i = |N_i| in this pass
    NL  h_i = σ(e_i + U_i s_i)                                 (m_i,)
        f_i = V_i^T h_i + b_out_i                              (d_hidden,) the cluster's signal on the channel
    OL  logits = Linear(LayerNorm(mean_i f_i^(2)))             survives splitting: LayerNorm is scale-free
σ = GELU.

Two-pass forward (SPEC §1): pass 1 visits clusters in id order and averages feedforward sources only;
pass 2 visits them again with every in-edge: sources with a lower id give their pass-2 output, sources with
an id >= i (feedback, recurrent) their pass-1 output. Nothing iterates to a fixed point.

Two executors compute exactly this:
  - `forward_reference`: a loop over clusters, the equations above line by line (for tests and reading);
  - `forward_fast`: every cluster of a feedforward level runs as one batched op (padded `bmm`), the
    per-cluster parameters are packed once per forward and reused by both passes, and all edges into a
    level are one `bmm` plus one `index_add`.

Parameters are stored per cluster and per edge (keys `c{id}_w_in`, ..., `e{src}_{dst}`), so evolution ops
can add and remove them one by one and Adam state can follow every surviving tensor (`lumina.optim`).
Neuron-indexed tensors all have the neuron on dim 0: w_in (m, d_in), b_in (m,), u (m, d_hidden),
v (m, d_hidden); b_out (d_hidden,); edge weight (d_hidden, d_hidden).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from .topology import Graph

NEURON_KEYS = ("w_in", "b_in", "u", "v")  # tensors with one row per neuron


def ckey(cid: int, name: str) -> str:
    return f"c{cid}_{name}"


def ekey(src: int, dst: int) -> str:
    return f"e{src}_{dst}"


def init_cluster_params(size: int, d_in: int, d_hidden: int, gen: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """nn.Linear's default init (uniform ±1/sqrt(fan_in)) for each layer of a fresh cluster."""

    def u(shape, fan_in):
        b = 1.0 / math.sqrt(fan_in)
        return (torch.rand(shape, generator=gen) * 2 - 1) * b

    return {
        "w_in": u((size, d_in), d_in), "b_in": u((size,), d_in),
        "u": u((size, d_hidden), d_hidden),
        "v": u((size, d_hidden), size), "b_out": u((d_hidden,), size),
    }


def init_edge_weight(d_hidden: int, gen: torch.Generator | None = None, zero: bool = False) -> torch.Tensor:
    if zero:  # a connection added during evolution starts silent (RigL-style)
        return torch.zeros(d_hidden, d_hidden)
    return (torch.rand((d_hidden, d_hidden), generator=gen) * 2 - 1) / math.sqrt(d_hidden)


def image_to_patches(x: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C*(H/p)*(W/p), p*p): the image split channel-wise into p×p patches [paper]."""
    if x.ndim != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"expected float images (normalised), got dtype {x.dtype}; convert with x.float() / 255")
    B, C, H, W = x.shape
    if H % patch or W % patch:
        raise ValueError(f"image size {H}x{W} is not divisible by the patch size {patch}")
    x = x.reshape(B, C, H // patch, patch, W // patch, patch).permute(0, 1, 2, 4, 3, 5)
    return x.reshape(B, C * (H // patch) * (W // patch), patch * patch)


class LuminaNet(nn.Module):
    def __init__(self, graph: Graph, *, d_in: int, d_hidden: int, n_out: int, input_kind: str = "patches",
                 patch: int = 16, image_shape: tuple[int, int, int] = (3, 32, 32), vocab_size: int = 0,
                 aggregate: str = "mean", seed: int = 0):
        super().__init__()
        if input_kind not in ("patches", "tokens"):
            raise ValueError(f"unknown input_kind {input_kind!r}; valid: 'patches', 'tokens'")
        if aggregate not in ("mean", "sum"):
            raise ValueError(f"unknown aggregate {aggregate!r}; valid: 'mean' (the paper's 1/n), 'sum'")
        self.d_in, self.d_hidden, self.n_out = d_in, d_hidden, n_out
        self.input_kind, self.patch, self.image_shape = input_kind, patch, tuple(image_shape)
        self.aggregate = aggregate
        gen = torch.Generator().manual_seed(seed)
        if input_kind == "tokens":  # one table shared by every position's IL (SPEC §3, ours)
            self.embed = nn.Embedding(vocab_size, d_in)
            nn.init.normal_(self.embed.weight, std=0.02, generator=gen)
        self.norm = nn.LayerNorm(d_hidden)
        self.head = nn.Linear(d_hidden, n_out)
        self.p = nn.ParameterDict()
        params = {}
        for c in graph.clusters.values():
            for k, t in init_cluster_params(c.size, d_in, d_hidden, gen).items():
                params[ckey(c.id, k)] = t
        for e in graph.edges.values():
            params[ekey(e.src, e.dst)] = init_edge_weight(d_hidden, gen)
        self.set_topology(graph, params)

    # ---- topology ------------------------------------------------------------------------------
    def set_topology(self, graph: Graph, params: dict[str, torch.Tensor]) -> None:
        """Install a (graph, parameters) pair. Tensors that already are Parameters are kept as the same
        objects, so their optimizer state survives (see lumina.optim.carry_over)."""
        graph.validate()
        expected = {ckey(c, k) for c in graph.clusters for k in (*NEURON_KEYS, "b_out")}
        expected |= {ekey(s, d) for (s, d) in graph.edges}
        if set(params) != expected:
            missing, extra = sorted(expected - set(params))[:5], sorted(set(params) - expected)[:5]
            raise ValueError(f"parameters do not match the topology: missing {missing}, unexpected {extra}")
        for c in graph.clusters.values():
            for k in NEURON_KEYS:
                if params[ckey(c.id, k)].shape[0] != c.size:
                    raise ValueError(f"{ckey(c.id, k)} has {params[ckey(c.id, k)].shape[0]} rows, cluster {c.id} has {c.size} neurons")
        self.graph = graph
        self.p = nn.ParameterDict({k: v if isinstance(v, nn.Parameter) else nn.Parameter(v.detach().clone())
                                   for k, v in params.items()})
        self._plan = None  # the fast executor's schedule, rebuilt lazily

    def params_dict(self) -> dict[str, nn.Parameter]:
        return dict(self.p.items())

    # ---- inputs --------------------------------------------------------------------------------
    def encode_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Raw input -> slot inputs (B, n_slots, d_in)."""
        n_slots = self.graph.n_slots
        if self.input_kind == "patches":
            if x.ndim != 4 or tuple(x.shape[1:]) != self.image_shape:
                raise ValueError(f"expected images of shape (B, {', '.join(map(str, self.image_shape))}), got {tuple(x.shape)}")
            X = image_to_patches(x, self.patch)
        else:
            if x.ndim != 2 or x.shape[1] != n_slots:
                raise ValueError(f"expected token ids of shape (B, {n_slots}), got {tuple(x.shape)}")
            if x.dtype not in (torch.int64, torch.int32):
                raise ValueError(f"expected integer token ids, got dtype {x.dtype}")
            if x.numel() and (x.min() < 0 or x.max() >= self.embed.num_embeddings):
                raise ValueError(f"token ids must lie in [0, {self.embed.num_embeddings}); got range [{int(x.min())}, {int(x.max())}]")
            X = self.embed(x)
        if X.shape[1:] != (n_slots, self.d_in):
            raise ValueError(f"input gives {X.shape[1]} slots of {X.shape[2]} values; the model expects {n_slots} of {self.d_in}")
        return X

    def readout(self, f2: torch.Tensor) -> torch.Tensor:
        """OL: f2 (n_clusters, B, d_hidden) -> logits (B, n_out)."""
        return self.head(self.norm(f2.mean(0)))

    def forward(self, x: torch.Tensor, executor: str = "fast") -> torch.Tensor:
        X = self.encode_inputs(x)
        f2 = forward_fast(self, X) if executor == "fast" else forward_reference(self, X)
        return self.readout(f2)

    def _coef(self, n: int) -> float:
        return 1.0 / n if self.aggregate == "mean" else 1.0


# ---- reference executor: the equations, one cluster at a time ----------------------------------
def forward_reference(model: LuminaNet, X: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
    """X (B, n_slots, d_in) -> pass-2 outputs (n_clusters, B, d_hidden) in id order.
    `trace`, when given, receives per-cluster s2, h2, f1, f2 (s2 with retain_grad) for the evolution probe."""
    g, p = model.graph, model.p
    e = {i: F.gelu(F.linear(X[:, c.slot], p[ckey(i, "w_in")], p[ckey(i, "b_in")])) for i, c in g.clusters.items()}

    def cluster(i: int, sources: list[tuple[int, torch.Tensor]]):
        if sources:
            s = sum(F.linear(f, p[ekey(j, i)]) for j, f in sources) * model._coef(len(sources))
        else:  # in a traced probe s must still receive a gradient: it scores candidate edges into i
            s = torch.zeros(X.shape[0], model.d_hidden, dtype=X.dtype, requires_grad=trace is not None)
        h = F.gelu(e[i] + F.linear(s, p[ckey(i, "u")]))  # (B, m_i)
        return s, h, h @ p[ckey(i, "v")] + p[ckey(i, "b_out")]  # f: (B, d_hidden)

    f1, f2 = {}, {}
    for i in g.ids:  # pass 1: feedforward sources only, all already computed
        f1[i] = cluster(i, [(ed.src, f1[ed.src]) for ed in g.in_edges(i) if ed.kind == "feedforward"])[2]
    for i in g.ids:  # pass 2: lower ids give pass-2 outputs, ids >= i their pass-1 outputs
        s, h, f2[i] = cluster(i, [(ed.src, f2[ed.src] if ed.src < i else f1[ed.src]) for ed in g.in_edges(i)])
        if trace is not None:
            if s.requires_grad:
                s.retain_grad()
            trace[i] = {"s2": s, "h2": h, "f1": f1[i], "f2": f2[i]}
    return torch.stack([f2[i] for i in g.ids])


# ---- fast executor: one batched op per feedforward level ---------------------------------------
class _Plan:
    """The fast executor's schedule, derived from the topology once per topology change.

    For each level and pass, every target's in-edges are padded to the level's largest in-degree D, so the
    CL of the whole level is one bmm: (k, B, D*d) @ (k, D*d, d), the sum over edges happening inside the
    matmul (no scatter/index_add, whose CPU backward is slow). Padding slots read a zero signal through a
    zero matrix."""

    def __init__(self, model: LuminaNet):
        g = model.graph
        self.levels = g.levels()
        self.order = [i for lvl in self.levels for i in lvl]  # level-major position of every cluster
        self.pos = {i: k for k, i in enumerate(self.order)}
        self.slots = [torch.tensor([g.clusters[i].slot for i in lvl]) for lvl in self.levels]
        self.pass1 = [self._edges(model, lvl, lambda e: e.kind == "feedforward") for lvl in self.levels]
        self.pass2 = [self._edges(model, lvl, lambda e: True) for lvl in self.levels]
        self.order_index = torch.tensor([self.pos[i] for i in g.ids])  # level-major -> id order

    def _edges(self, model, lvl, keep):
        ins = [[e for e in model.graph.in_edges(i) if keep(e)] for i in lvl]
        D = max(len(x) for x in ins)
        if D == 0:
            return None
        # per target, D (source, key, from_pass2) triples; None = padding
        slots = [[(self.pos[e.src], ekey(e.src, e.dst), e.src < e.dst) for e in x] + [None] * (D - len(x)) for x in ins]
        coef = torch.tensor([model._coef(len(x)) if x else 0.0 for x in ins]).view(-1, 1, 1)
        return {"slots": slots, "D": D, "coef": coef}


def _messages(p, pe, read, B: int, d: int, zeros_f: torch.Tensor, zeros_w: torch.Tensor) -> torch.Tensor:
    """s for one level (k, B, d): Σ_edges coef · W_C f_src as one bmm over padded in-edge lists."""
    k, D = len(pe["slots"]), pe["D"]
    F_src = torch.stack([zeros_f if t is None else read(t[0], t[2]) for row in pe["slots"] for t in row])  # (k*D, B, d)
    W = torch.stack([zeros_w if t is None else p[t[1]] for row in pe["slots"] for t in row])  # (k*D, d_out, d_in)
    F_src = F_src.view(k, D, B, d).transpose(1, 2).reshape(k, B, D * d)
    W = W.view(k, D, d, d).transpose(2, 3).reshape(k, D * d, d)  # rows: (edge, d_in), cols: d_out
    return torch.bmm(F_src, W) * pe["coef"]


def forward_fast(model: LuminaNet, X: torch.Tensor) -> torch.Tensor:
    if model._plan is None:
        model._plan = _Plan(model)
    plan, p = model._plan, model.p
    B, d = X.shape[0], model.d_hidden
    Xs = X.transpose(0, 1)  # (n_slots, B, d_in)
    zeros_f, zeros_w = X.new_zeros(B, d), X.new_zeros(d, d)
    packed = []
    for lvl, slots in zip(plan.levels, plan.slots):  # pack once per forward, reused by both passes
        W_in = pad_sequence([p[ckey(i, "w_in")] for i in lvl], batch_first=True)  # (k, m_max, d_in)
        b_in = pad_sequence([p[ckey(i, "b_in")] for i in lvl], batch_first=True)  # (k, m_max)
        U = pad_sequence([p[ckey(i, "u")] for i in lvl], batch_first=True)  # (k, m_max, d)
        V = pad_sequence([p[ckey(i, "v")] for i in lvl], batch_first=True)  # (k, m_max, d)
        b_out = torch.stack([p[ckey(i, "b_out")] for i in lvl]).unsqueeze(1)  # (k, 1, d)
        E = F.gelu(torch.baddbmm(b_in.unsqueeze(1), Xs.index_select(0, slots), W_in.transpose(1, 2)))  # (k, B, m_max)
        packed.append((E, U.transpose(1, 2), V, b_out))

    def run_level(E, Ut, V, b_out, S):
        pre = E if S is None else E + torch.bmm(S, Ut)  # padded neurons stay exactly 0: gelu(0) = 0
        return torch.baddbmm(b_out, F.gelu(pre), V)  # (k, B, d)

    # per-cluster outputs as views of their level's output, indexed by level-major position
    f1: list[torch.Tensor] = []
    for L, (E, Ut, V, b_out) in enumerate(packed):  # pass 1: feedforward sources, all in earlier levels
        pe = plan.pass1[L]
        S = None if pe is None else _messages(p, pe, lambda pos, _: f1[pos], B, d, zeros_f, zeros_w)
        f1.extend(run_level(E, Ut, V, b_out, S).unbind(0))
    f2: list[torch.Tensor] = []
    for L, (E, Ut, V, b_out) in enumerate(packed):  # pass 2: lower ids' pass-2 output, the rest pass 1
        pe = plan.pass2[L]
        S = None if pe is None else _messages(p, pe, lambda pos, low: f2[pos] if low else f1[pos], B, d, zeros_f, zeros_w)
        f2.extend(run_level(E, Ut, V, b_out, S).unbind(0))
    return torch.stack([f2[k] for k in plan.order_index.tolist()])  # back to id order
