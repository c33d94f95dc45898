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

Storage. Evolution speaks of parameters per cluster and per edge (`params_dict()`: keys `c{id}_w_in`, ...,
`e{src}_{dst}`; neuron-indexed tensors have the neuron on dim 0: w_in (m, d_in), b_in (m,), u (m, d_hidden),
v (m, d_hidden); b_out (d_hidden,); an edge's W_C (d_hidden, d_hidden)). The module itself stores them packed
per feedforward level (`L{n}_w_in` (k, m_max, d_in), ...; see `Plan`), zero-padded, so the fast executor
reads each level's parameters as one tensor and backward accumulates one gradient per level, not per
cluster. Padding stays exactly zero: its gradients are zero by construction (a padded neuron has zero
input and output weights; a padded edge slot reads a zero signal). Packing is redone only when the
topology changes (`set_topology`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

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
        """Install a (graph, per-cluster parameters) pair: validate, plan, pack."""
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
        self._plan = Plan(graph, self)
        self.p = nn.ParameterDict({k: nn.Parameter(v) for k, v in self._plan.pack(params).items()})

    def params_dict(self) -> dict[str, torch.Tensor]:
        """Per-cluster and per-edge parameters as detached copies (what evolution ops work on)."""
        with torch.no_grad():
            return {k: v.clone() for k, v in self._plan.unpack(dict(self.p.items())).items()}

    def count_params(self) -> int:
        """The network's parameters, without the zero padding of the packed storage."""
        g, d = self.graph, self.d_hidden
        per_neuron = self.d_in + 1 + 2 * d
        cl = sum(c.size * per_neuron + d for c in g.clusters.values()) + len(g.edges) * d * d
        return cl + sum(p.numel() for n, p in self.named_parameters() if not n.startswith("p."))

    def cluster_views(self) -> dict[str, torch.Tensor]:
        """Per-cluster and per-edge parameters as differentiable views of the packed storage."""
        return self._plan.unpack(dict(self.p.items()))

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
    g, p = model.graph, model.cluster_views()
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
class Plan:
    """Packed layout and schedule for one topology.

    Clusters are grouped by feedforward level (`Graph.levels`); level L holds k clusters padded to the
    level's largest size m. Each target's in-edges are listed feedforward first and padded to the level's
    largest in-degree D, so the CL of a whole level is one bmm: (k, B, D*d) @ (k, D*d, d), the sum over
    edges happening inside the matmul. Packed tensors of level L:
        L{L}_w_in (k, m, d_in)   L{L}_b_in (k, 1, m)   L{L}_ut (k, d, m) = U^T   L{L}_v (k, m, d)
        L{L}_b_out (k, 1, d)     L{L}_wt (k, D*d, d): block s of target t = W_C^T of its s-th in-edge
    """

    def __init__(self, graph: Graph, model: "LuminaNet"):
        self.d_in, self.d = model.d_in, model.d_hidden
        self.levels = graph.levels()
        self.order = [i for lvl in self.levels for i in lvl]
        self.pos = {i: k for k, i in enumerate(self.order)}
        self.where = {i: (L, t) for L, lvl in enumerate(self.levels) for t, i in enumerate(lvl)}
        self.sizes = [max(graph.clusters[i].size for i in lvl) for lvl in self.levels]
        self.slots = [torch.tensor([graph.clusters[i].slot for i in lvl]) for lvl in self.levels]
        self.edge_at: dict[tuple[int, int], tuple[int, int, int]] = {}  # edge -> (level, target, slot)
        self.inputs = []  # per level: per target, [(src position, src < dst, feedforward)]
        self.D1, self.D2, self.coef1, self.coef2 = [], [], [], []
        for L, lvl in enumerate(self.levels):
            rows = []
            for t, i in enumerate(lvl):
                ins = sorted(graph.in_edges(i), key=lambda e: (e.kind != "feedforward", e.src))
                for s, e in enumerate(ins):
                    self.edge_at[(e.src, e.dst)] = (L, t, s)
                rows.append([(self.pos[e.src], e.src < e.dst, e.kind == "feedforward") for e in ins])
            n1 = [sum(ff for *_, ff in r) for r in rows]
            self.inputs.append(rows)
            self.D1.append(max(n1))
            self.D2.append(max(len(r) for r in rows))
            self.coef1.append(torch.tensor([model._coef(n) if n else 0.0 for n in n1]).view(-1, 1, 1))
            self.coef2.append(torch.tensor([model._coef(len(r)) if r else 0.0 for r in rows]).view(-1, 1, 1))
        self.order_index = [self.pos[i] for i in graph.ids]
        self.graph = graph

    def _views(self, packed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        d, out = self.d, {}
        for i, (L, t) in self.where.items():
            m = self.graph.clusters[i].size
            out[ckey(i, "w_in")] = packed[f"L{L}_w_in"][t, :m]
            out[ckey(i, "b_in")] = packed[f"L{L}_b_in"][t, 0, :m]
            out[ckey(i, "u")] = packed[f"L{L}_ut"][t, :, :m].T
            out[ckey(i, "v")] = packed[f"L{L}_v"][t, :m]
            out[ckey(i, "b_out")] = packed[f"L{L}_b_out"][t, 0]
        for (j, i), (L, t, s) in self.edge_at.items():
            out[ekey(j, i)] = packed[f"L{L}_wt"][t, s * d:(s + 1) * d].T
        return out

    def unpack(self, packed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Packed tensors (parameters, or optimizer moments of the same shapes) -> per-cluster/edge views."""
        return self._views(packed)

    def pack(self, per_name: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-cluster/edge tensors -> freshly allocated, zero-padded packed tensors."""
        d, packed = self.d, {}
        for L, lvl in enumerate(self.levels):
            k, m, D = len(lvl), self.sizes[L], self.D2[L]
            packed.update({f"L{L}_w_in": torch.zeros(k, m, self.d_in), f"L{L}_b_in": torch.zeros(k, 1, m),
                           f"L{L}_ut": torch.zeros(k, d, m), f"L{L}_v": torch.zeros(k, m, d),
                           f"L{L}_b_out": torch.zeros(k, 1, d)})
            if D:
                packed[f"L{L}_wt"] = torch.zeros(k, D * d, d)
        with torch.no_grad():
            for name, view in self._views(packed).items():
                view.copy_(per_name[name])
        return packed


def forward_fast(model: LuminaNet, X: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
    """X (B, n_slots, d_in) -> pass-2 outputs (n_clusters, B, d_hidden) in id order, one level at a time.
    `trace`, when given, receives what `forward_reference` records (for the evolution probe), with each
    cluster's pass-2 CL input as ("S", "t"): row t of its level's tensor S, which retains its gradient."""
    plan, p = model._plan, model.p
    B, d = X.shape[0], model.d_hidden
    Xs = X.transpose(0, 1)  # (n_slots, B, d_in)
    zeros = X.new_zeros(B, d)  # the signal of a padded edge slot

    def cl(L: int, srcs: list, D: int, coef: torch.Tensor, read) -> torch.Tensor | None:
        """s of level L (k, B, d): per target, its first D in-edges' signals side by side, times W_C^T blocks."""
        if D == 0:
            return None
        pieces = [read(r) if r is not None else zeros for row in srcs for r in (row + [None] * D)[:D]]
        F_src = torch.stack(pieces, 1).view(B, len(srcs), D * d).transpose(0, 1)  # (k, B, D*d)
        return torch.bmm(F_src, p[f"L{L}_wt"][:, : D * d]) * coef

    def level(L: int, E: torch.Tensor, S: torch.Tensor | None, keep: list | None = None) -> torch.Tensor:
        pre = E if S is None else E + torch.bmm(S, p[f"L{L}_ut"])  # padded neurons stay exactly 0
        H = F.gelu(pre)
        if keep is not None:
            keep.append(H)
        return torch.baddbmm(p[f"L{L}_b_out"], H, p[f"L{L}_v"])  # (k, B, d)

    # IL once per forward, reused by both passes: (k, B, m)
    E = [F.gelu(torch.baddbmm(p[f"L{L}_b_in"], Xs.index_select(0, plan.slots[L]), p[f"L{L}_w_in"].transpose(1, 2)))
         for L in range(len(plan.levels))]
    f1: list[torch.Tensor] = []  # per-cluster outputs (views), by level-major position
    for L, rows in enumerate(plan.inputs):  # pass 1: feedforward sources only (all in earlier levels)
        srcs = [[(pos, low) if ff else None for pos, low, ff in r] for r in rows]
        S = cl(L, srcs, plan.D1[L], plan.coef1[L], lambda r: f1[r[0]])
        f1.extend(level(L, E[L], S).unbind(0))
    f2: list[torch.Tensor] = []
    for L, rows in enumerate(plan.inputs):  # pass 2: lower ids' pass-2 output, ids >= i their pass-1 output
        srcs = [[(pos, low) for pos, low, _ in r] for r in rows]
        S = cl(L, srcs, plan.D2[L], plan.coef2[L], lambda r: f2[r[0]] if r[1] else f1[r[0]])
        H = [] if trace is not None else None
        if trace is not None:  # the probe needs dL/ds for every cluster, edges or not
            S = S if S is not None else X.new_zeros(len(rows), B, d).requires_grad_()
            S.retain_grad()
        f2.extend(level(L, E[L], S, H).unbind(0))
        if trace is not None:
            for t, i in enumerate(plan.levels[L]):
                k = plan.pos[i]
                trace[i] = {"S": S, "t": t, "h2": H[0][t, :, :model.graph.clusters[i].size], "f1": f1[k], "f2": f2[k]}
    return torch.stack([f2[k] for k in plan.order_index])  # back to id order
