"""LuminaNet (Liu 2026, arXiv 2601.19508): Neuron Clusters talking over a Communication Layer.

Per Neuron Cluster i with m_i neurons (book chapter 1; [paper] marks the paper's equations, the rest is ours):
    IL  e_i = σ(W_in_i x_slot(i) + b_in_i)                    [paper] e_i = σ(Linear_i(Flatten(x_i)))
    CL  s_i = (1/n_i) Σ_{j ∈ N_i} g_ji W_Cj f_j                 [paper] with one W_Cj per *source* j;
                                                               g_ji: a learnable scalar gate per edge [ours]
    NL  h_i = σ(e_i + U_i s_i)                                 (m_i,)
        f_i = V_i^T h_i + b_out_i                              (d_hidden,) the cluster's signal on the channel
    OL  images: logits = Linear(LayerNorm(mean_i f_i^(2)))     survives splitting: LayerNorm is scale-free
        text:   logits_t = Linear(LayerNorm(mean_{i: slot(i) = t} f_i^(2) + mean_{i: slot(i) ≤ t} f_i^(2)))
                one prediction per position: the current slot's clusters plus the context so far
                (readout="context" keeps only the second mean)
σ = GELU. The message W_Cj f_j is computed once per source and pass and averaged by every receiver (the
paper's formula as printed). Gates of initial edges start at 1 (the formula exactly); an edge added by
`connect` starts at 0, so adding it only rescales the target's mean by n/(n+1) (exact with `aggregate="sum"`).
`cl="edge"` is the variant with one matrix per edge, s_i = (1/n_i) Σ_j W_C(j→i) f_j (no gates; a new edge's
W_C starts at 0): a d_hidden×d_hidden product per edge instead of per source.

Two-pass forward (book chapter 1): pass 1 visits clusters in id order and averages feedforward sources only;
pass 2 visits them again with every in-edge: sources with a lower id give their pass-2 output, sources with
an id >= i (feedback, recurrent) their pass-1 output. Nothing iterates to a fixed point.

Two executors compute exactly this:
  - `forward_reference`: a loop over clusters, the equations above line by line (for tests and reading);
  - `forward_fast`: every cluster of a feedforward level runs as one batched op (`bmm`), its messages as
    one more; the gather of a level's in-messages is one `bmm` with the gates.

Storage. Parameters are named per cluster and per edge (`params_dict()`): `c{id}_w_in` (m, d_in), `c{id}_b_in`
(m,), `c{id}_u` (m, d), `c{id}_v` (m, d), `c{id}_b_out` (d,), `c{id}_w_c` (d, d) (the source's W_C), and per
edge `e{src}_{dst}`: its gate () or, with `cl="edge"`, its W_C (d, d). These names are what is saved
(`named_tensors`), so a stored network never depends on how the fast executor packs it. Inside the module
they are packed per feedforward level (`Plan`), zero-padded; padding stays exactly zero (its gradients
are zero by construction). Packing is redone only when the topology changes (`set_topology`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .topology import Graph

NEURON_KEYS = ("w_in", "b_in", "u", "v")  # tensors with one row per neuron
CL_FORMS = ("source", "edge")
EXECUTORS = ("fast", "reference")


def ckey(cid: int, name: str) -> str:
    return f"c{cid}_{name}"


def ekey(src: int, dst: int) -> str:
    return f"e{src}_{dst}"


def cluster_keys(cl: str) -> tuple[str, ...]:
    return (*NEURON_KEYS, "b_out", "w_c") if cl == "source" else (*NEURON_KEYS, "b_out")


def _uniform(shape, fan_in: int, gen, device=None) -> torch.Tensor:
    b = 1.0 / math.sqrt(fan_in)
    return (torch.rand(shape, generator=gen) * 2 - 1).mul_(b).to(device)


def init_cluster_params(size: int, d_in: int, d_hidden: int, gen: torch.Generator | None = None,
                        cl: str = "source") -> dict[str, torch.Tensor]:
    """nn.Linear's default init (uniform ±1/sqrt(fan_in)) for each layer of a fresh cluster."""
    p = {"w_in": _uniform((size, d_in), d_in, gen), "b_in": _uniform((size,), d_in, gen),
         "u": _uniform((size, d_hidden), d_hidden, gen),
         "v": _uniform((size, d_hidden), size, gen), "b_out": _uniform((d_hidden,), size, gen)}
    if cl == "source":
        p["w_c"] = _uniform((d_hidden, d_hidden), d_hidden, gen)
    return p


def init_edge(cl: str, d_hidden: int, gen: torch.Generator | None = None, silent: bool = False) -> torch.Tensor:
    """An edge's own parameter: a gate (1 at init, 0 when `connect` adds it) or a per-edge W_C."""
    if cl == "source":
        return torch.tensor(0.0 if silent else 1.0)
    return torch.zeros(d_hidden, d_hidden) if silent else _uniform((d_hidden, d_hidden), d_hidden, gen)


def init_params(graph: Graph, d_in: int, d_hidden: int, cl: str, gen: torch.Generator) -> dict[str, torch.Tensor]:
    params = {}
    for c in graph.clusters.values():
        for k, t in init_cluster_params(c.size, d_in, d_hidden, gen, cl).items():
            params[ckey(c.id, k)] = t
    for e in graph.edges.values():
        params[ekey(e.src, e.dst)] = init_edge(cl, d_hidden, gen)
    return params


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
    """`params` (per-cluster names, see the module docstring) installs given weights without initialising
    any; `extra` does the same for the OL (`norm.*`, `head.*`) and the token table (`embed.weight`)."""

    def __init__(self, graph: Graph, *, d_in: int, d_hidden: int, n_out: int, input_kind: str = "patches",
                 patch: int = 16, image_shape: tuple[int, int, int] = (3, 32, 32), vocab_size: int = 0,
                 aggregate: str = "mean", cl: str = "source", readout: str = "slot+context", seed: int = 0,
                 params: dict[str, torch.Tensor] | None = None, extra: dict[str, torch.Tensor] | None = None):
        super().__init__()
        if input_kind not in ("patches", "tokens"):
            raise ValueError(f"unknown input_kind {input_kind!r}; valid: 'patches', 'tokens'")
        if aggregate not in ("mean", "sum"):
            raise ValueError(f"unknown aggregate {aggregate!r}; valid: 'mean' (the paper's 1/n), 'sum'")
        if cl not in CL_FORMS:
            raise ValueError(f"unknown communication layer {cl!r}; valid: {', '.join(map(repr, CL_FORMS))}")
        self.d_in, self.d_hidden, self.n_out = d_in, d_hidden, n_out
        self.input_kind, self.patch, self.image_shape = input_kind, patch, tuple(image_shape)
        if readout not in ("context", "slot+context"):
            raise ValueError(f"unknown readout {readout!r}; valid: 'context', 'slot+context'")
        self.aggregate, self.cl, self.readout_kind = aggregate, cl, readout
        gen = torch.Generator().manual_seed(seed)
        if input_kind == "tokens":  # one table shared by every position's IL (book chapter 4, ours)
            self.embed = nn.Embedding(vocab_size, d_in)
            # unit-variance embeddings, as nn.Embedding's default: the IL then sees inputs of the scale of
            # its bias, so the OL input depends on the tokens from the first step
            nn.init.normal_(self.embed.weight, std=1.0, generator=gen)
        self.norm = nn.LayerNorm(d_hidden)
        self.head = nn.Linear(d_hidden, n_out)
        if extra:
            self.load_state_dict(extra, strict=True)
        self.p = nn.ParameterDict()
        self.set_topology(graph, params if params is not None else init_params(graph, d_in, d_hidden, cl, gen))

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    @property
    def edge_shape(self) -> tuple[int, ...]:
        return () if self.cl == "source" else (self.d_hidden, self.d_hidden)

    # ---- topology ------------------------------------------------------------------------------
    def set_topology(self, graph: Graph, params: dict[str, torch.Tensor]) -> None:
        """Install a (graph, per-cluster parameters) pair: validate, plan, pack."""
        graph.validate()
        expected = {ckey(c, k) for c in graph.clusters for k in cluster_keys(self.cl)}
        expected |= {ekey(s, d) for (s, d) in graph.edges}
        if set(params) != expected:
            missing, extra = sorted(expected - set(params))[:5], sorted(set(params) - expected)[:5]
            raise ValueError(f"parameters do not match the topology: missing {missing}, unexpected {extra}")
        for c in graph.clusters.values():
            for k in NEURON_KEYS:
                if params[ckey(c.id, k)].shape[0] != c.size:
                    raise ValueError(f"{ckey(c.id, k)} has {params[ckey(c.id, k)].shape[0]} rows, cluster {c.id} has {c.size} neurons")
        for (s, d) in graph.edges:
            if tuple(params[ekey(s, d)].shape) != self.edge_shape:
                raise ValueError(f"{ekey(s, d)} has shape {tuple(params[ekey(s, d)].shape)}; the {self.cl!r} "
                                 f"communication layer expects {self.edge_shape}")
        self.graph = graph
        self._plan = Plan(graph, self)
        self.p = nn.ParameterDict({k: nn.Parameter(v) for k, v in self._plan.pack(params, self.device).items()})

    def params_dict(self) -> dict[str, torch.Tensor]:
        """Per-cluster and per-edge parameters as detached copies (what evolution ops work on)."""
        with torch.no_grad():
            return {k: v.clone() for k, v in self.unpack(dict(self.p.items())).items()}

    def unpack(self, packed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Packed tensors (parameters, their gradients or optimizer moments) -> per-cluster/edge views."""
        return self._plan.views(packed)

    def pack(self, named: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-cluster/edge tensors -> zero-padded packed tensors, keyed like `self.p`."""
        return self._plan.pack(named, self.device)

    def named_tensors(self) -> dict[str, torch.Tensor]:
        """Everything that defines the trained network, under names independent of the packing."""
        out = {k: v.detach() for k, v in self.unpack(dict(self.p.items())).items()}
        out.update({k: v.detach() for k, v in self.state_dict().items() if not k.startswith("p.")})
        return out

    def count_params(self) -> int:
        """The network's parameters, without the zero padding of the packed storage."""
        named = self.unpack(dict(self.p.items()))
        return sum(t.numel() for t in named.values()) + sum(
            p.numel() for n, p in self.named_parameters() if not n.startswith("p."))

    def cluster_grad_norms(self) -> dict[int, float]:
        """‖∂L/∂θ_i‖ per cluster over its IL, NL and output weights (after a backward); a tensor without a
        gradient (e.g. U of a level with no in-edges) counts as zero."""
        out = {}
        for L, lvl in enumerate(self._plan.levels):
            sq = None
            for k in ("w_in", "ut", "v"):
                g = self.p[f"L{L}_{k}"].grad
                if g is not None:
                    v = g.pow(2).flatten(1).sum(1)
                    sq = v if sq is None else sq + v
            for t, i in enumerate(lvl):
                out[i] = float(sq[t]) ** 0.5 if sq is not None else 0.0
        return out

    def coef(self, n: int) -> float:
        """The CL's aggregation coefficient for n in-edges: 1/n (mean, the paper's) or 1 (sum)."""
        return (1.0 / n if self.aggregate == "mean" else 1.0) if n else 0.0

    # ---- inputs and outputs --------------------------------------------------------------------
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
        """OL: f2 (n_clusters, B, d_hidden) in id order -> logits (B, n_out), or (B, L, n_out) for text,
        where position t reads only the clusters of slots ≤ t (causal by wiring: book chapter 4)."""
        if self.input_kind == "patches":
            return self.head(self.norm(f2.mean(0)))
        slot, counts = self._plan.slot_index, self._plan.slot_counts.view(-1, 1, 1)
        sums = f2.new_zeros(self.graph.n_slots, *f2.shape[1:]).index_add_(0, slot, f2)  # (L, B, d)
        pooled = sums.cumsum(0) / counts.cumsum(0)  # the context: mean over the clusters of slots ≤ t
        if self.readout_kind == "slot+context":
            pooled = pooled + sums / counts  # plus the mean of slot t's own clusters
        return self.head(self.norm(pooled.transpose(0, 1)))  # (B, L, n_out)

    def forward(self, x: torch.Tensor, executor: str = "fast") -> torch.Tensor:
        if executor not in EXECUTORS:
            raise ValueError(f"unknown executor {executor!r}; valid: {', '.join(map(repr, EXECUTORS))}")
        X = self.encode_inputs(x)
        return self.readout(forward_fast(self, X) if executor == "fast" else forward_reference(self, X))

    # ---- text generation with a slot cache ---------------------------------------------------------
    @torch.no_grad()
    def step_slot(self, token: torch.Tensor, t: int, cache: dict) -> torch.Tensor:
        """Run only the clusters of slot t for `token` (B,), reusing `cache` (the pass-1/pass-2 outputs of
        the clusters of slots < t, updated in place; start with {}). Returns the logits at position t (B, V).
        Valid because every edge goes from a slot to the same or a later slot (`Graph.causal`)."""
        g, p = self.graph, self.unpack(dict(self.p.items()))
        mine = [i for i in g.ids if g.clusters[i].slot == t]
        e = {i: F.gelu(F.linear(self.embed(token), p[ckey(i, "w_in")], p[ckey(i, "b_in")])) for i in mine}
        f1, f2 = cache.setdefault("f1", {}), cache.setdefault("f2", {})
        for i in mine:
            f1[i] = _cluster(self, p, i, e[i], [(ed.src, f1[ed.src]) for ed in g.in_edges(i) if ed.kind == "feedforward"])[2]
        for i in mine:
            f2[i] = _cluster(self, p, i, e[i], [(ed.src, f2[ed.src] if ed.src < i else f1[ed.src]) for ed in g.in_edges(i)])[2]
        own = sum(f2[i] for i in mine)
        cache["sum"] = cache.get("sum", 0) + own
        cache["n"] = cache.get("n", 0) + len(mine)
        pooled = cache["sum"] / cache["n"]
        if self.readout_kind == "slot+context":
            pooled = pooled + own / len(mine)
        return self.head(self.norm(pooled))


# ---- reference executor: the equations, one cluster at a time ----------------------------------
def _cluster(model: LuminaNet, p: dict, i: int, e_i: torch.Tensor, sources: list, trace: bool = False):
    """One cluster's CL, NL and output: sources = [(j, f_j)] -> (s_i, h_i, f_i)."""
    B, d = e_i.shape[0], model.d_hidden
    if sources:
        if model.cl == "source":
            s = sum(p[ekey(j, i)] * F.linear(f, p[ckey(j, "w_c")]) for j, f in sources)
        else:
            s = sum(F.linear(f, p[ekey(j, i)]) for j, f in sources)
        s = s * model.coef(len(sources))
    else:  # in a traced probe s must still receive a gradient: it scores candidate edges into i
        s = e_i.new_zeros(B, d).requires_grad_(trace)
    h = F.gelu(e_i + F.linear(s, p[ckey(i, "u")]))  # (B, m_i)
    return s, h, h @ p[ckey(i, "v")] + p[ckey(i, "b_out")]  # f: (B, d_hidden)


def forward_reference(model: LuminaNet, X: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
    """X (B, n_slots, d_in) -> pass-2 outputs (n_clusters, B, d_hidden) in id order.
    `trace`, when given, receives per cluster s2 (with retain_grad), h2, f1, f2 for the evolution probe."""
    g, p = model.graph, model.unpack(dict(model.p.items()))
    e = {i: F.gelu(F.linear(X[:, c.slot], p[ckey(i, "w_in")], p[ckey(i, "b_in")])) for i, c in g.clusters.items()}
    f1, f2 = {}, {}
    for i in g.ids:  # pass 1: feedforward sources only, all already computed
        f1[i] = _cluster(model, p, i, e[i], [(ed.src, f1[ed.src]) for ed in g.in_edges(i) if ed.kind == "feedforward"])[2]
    for i in g.ids:  # pass 2: lower ids give pass-2 outputs, ids >= i their pass-1 outputs
        s, h, f2[i] = _cluster(model, p, i, e[i], [(ed.src, f2[ed.src] if ed.src < i else f1[ed.src])
                                                    for ed in g.in_edges(i)], trace is not None)
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
    largest in-degree D. Packed tensors of level L:
        L{L}_w_in (k, m, d_in)   L{L}_b_in (k, 1, m)   L{L}_ut (k, d, m) = U^T   L{L}_v (k, m, d)
        L{L}_b_out (k, 1, d)
        cl="source": L{L}_wc (k, d, d) = W_C^T of each cluster (its message is f @ wc);
                     L{L}_g (k, 1, D): the gate of each target's s-th in-edge
        cl="edge":   L{L}_wt (k, D*d, d): block s of target t = W_C^T of its s-th in-edge
    """

    def __init__(self, graph: Graph, model: LuminaNet):
        self.d_in, self.d, self.cl = model.d_in, model.d_hidden, model.cl
        self.levels = graph.levels()
        self.order = [i for lvl in self.levels for i in lvl]
        self.pos = {i: k for k, i in enumerate(self.order)}
        self.where = {i: (L, t) for L, lvl in enumerate(self.levels) for t, i in enumerate(lvl)}
        self.sizes = [max(graph.clusters[i].size for i in lvl) for lvl in self.levels]
        dev = model.device
        self.slots = [torch.tensor([graph.clusters[i].slot for i in lvl], device=dev) for lvl in self.levels]
        self.edge_at: dict[tuple[int, int], tuple[int, int, int]] = {}  # edge -> (level, target, slot)
        self.inputs = []  # per level: per target, [(src position, src < dst, feedforward)]
        self.D1, self.D2, self.coef1, self.coef2 = [], [], [], []
        out_ff = {j for (j, i), e in graph.edges.items() if e.kind == "feedforward"}
        out_any = {j for (j, i) in graph.edges}
        self.msg1 = [any(i in out_any for i in lvl) for lvl in self.levels]  # pass-1 messages are read
        self.msg2 = [any(i in out_ff for i in lvl) for lvl in self.levels]  # pass-2 messages are read
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
            self.coef1.append(torch.tensor([model.coef(n) for n in n1], device=dev).view(-1, 1, 1))
            self.coef2.append(torch.tensor([model.coef(len(r)) for r in rows], device=dev).view(-1, 1, 1))
        self.order_index = [self.pos[i] for i in graph.ids]
        ids = graph.ids
        self.slot_index = torch.tensor([graph.clusters[i].slot for i in ids], device=dev)
        self.slot_counts = torch.bincount(self.slot_index, minlength=graph.n_slots).to(torch.get_default_dtype())
        self.graph = graph

    def shapes(self) -> dict[str, tuple[int, ...]]:
        d, out = self.d, {}
        for L, lvl in enumerate(self.levels):
            k, m, D = len(lvl), self.sizes[L], self.D2[L]
            out.update({f"L{L}_w_in": (k, m, self.d_in), f"L{L}_b_in": (k, 1, m), f"L{L}_ut": (k, d, m),
                        f"L{L}_v": (k, m, d), f"L{L}_b_out": (k, 1, d)})
            if self.cl == "source":
                out[f"L{L}_wc"] = (k, d, d)
                if D:
                    out[f"L{L}_g"] = (k, 1, D)
            elif D:
                out[f"L{L}_wt"] = (k, D * d, d)
        return out

    def views(self, packed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        d, out = self.d, {}
        for i, (L, t) in self.where.items():
            m = self.graph.clusters[i].size
            out[ckey(i, "w_in")] = packed[f"L{L}_w_in"][t, :m]
            out[ckey(i, "b_in")] = packed[f"L{L}_b_in"][t, 0, :m]
            out[ckey(i, "u")] = packed[f"L{L}_ut"][t, :, :m].T
            out[ckey(i, "v")] = packed[f"L{L}_v"][t, :m]
            out[ckey(i, "b_out")] = packed[f"L{L}_b_out"][t, 0]
            if self.cl == "source":
                out[ckey(i, "w_c")] = packed[f"L{L}_wc"][t].T
        for (j, i), (L, t, s) in self.edge_at.items():
            out[ekey(j, i)] = packed[f"L{L}_g"][t, 0, s] if self.cl == "source" else packed[f"L{L}_wt"][t, s * d:(s + 1) * d].T
        return out

    def pack(self, named: dict[str, torch.Tensor], device=None) -> dict[str, torch.Tensor]:
        """Per-cluster/edge tensors -> freshly allocated, zero-padded packed tensors."""
        dtype = next(iter(named.values())).dtype if named else torch.get_default_dtype()
        packed = {k: torch.zeros(s, device=device, dtype=dtype) for k, s in self.shapes().items()}
        with torch.no_grad():
            for name, view in self.views(packed).items():
                view.copy_(named[name])
        return packed


def forward_fast(model: LuminaNet, X: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
    """X (B, n_slots, d_in) -> pass-2 outputs (n_clusters, B, d_hidden) in id order, one level at a time.
    `trace`, when given, receives per cluster h2, f1, f2 and its pass-2 CL input as ("S", "t"): row t of its
    level's tensor S, which retains its gradient."""
    plan, p, src_form = model._plan, model.p, model.cl == "source"
    B, d = X.shape[0], model.d_hidden
    Xs = X.transpose(0, 1)  # (n_slots, B, d_in)
    zeros = X.new_zeros(B, d)  # the signal of a padded edge slot

    def cl(L: int, srcs: list, D: int, coef: torch.Tensor, read) -> torch.Tensor | None:
        """s of level L (k, B, d) from per target its first D in-edges' signals (messages or outputs)."""
        if D == 0:
            return None
        k = len(srcs)
        pieces = [read(r) if r is not None else zeros for row in srcs for r in (row + [None] * D)[:D]]
        if src_form:  # Σ_s g_s m_s: the messages (k, D, B*d) weighted by the gates (k, 1, D)
            M = torch.stack(pieces).view(k, D, B * d)
            return torch.bmm(p[f"L{L}_g"][:, :, :D] * coef.view(k, 1, 1), M).view(k, B, d)
        F_src = torch.stack(pieces, 1).view(B, k, D * d).transpose(0, 1)  # (k, B, D*d)
        return torch.bmm(F_src, p[f"L{L}_wt"][:, : D * d]) * coef

    def level(L: int, E: torch.Tensor, S: torch.Tensor | None, keep: list | None = None) -> torch.Tensor:
        pre = E if S is None else E + torch.bmm(S, p[f"L{L}_ut"])  # padded neurons stay exactly 0
        H = F.gelu(pre)
        if keep is not None:
            keep.append(H)
        return torch.baddbmm(p[f"L{L}_b_out"], H, p[f"L{L}_v"])  # (k, B, d)

    def messages(L: int, f: torch.Tensor, needed: bool, out: list) -> None:
        if src_form:
            out.extend(torch.bmm(f, p[f"L{L}_wc"]).unbind(0) if needed else [None] * f.shape[0])

    # IL once per forward, reused by both passes: (k, B, m)
    E = [F.gelu(torch.baddbmm(p[f"L{L}_b_in"], Xs.index_select(0, plan.slots[L]), p[f"L{L}_w_in"].transpose(1, 2)))
         for L in range(len(plan.levels))]
    f1: list[torch.Tensor] = []  # per-cluster outputs (views), by level-major position
    m1: list = []  # per-cluster messages W_Cj f_j (cl="source"), None where no edge reads them
    sig1 = m1 if src_form else f1  # what a source sends: its message, or (cl="edge") its output
    for L, rows in enumerate(plan.inputs):  # pass 1: feedforward sources only (all in earlier levels)
        srcs = [[(pos, low) if ff else None for pos, low, ff in r] for r in rows]
        S = cl(L, srcs, plan.D1[L], plan.coef1[L], lambda r: sig1[r[0]])
        out = level(L, E[L], S)
        f1.extend(out.unbind(0))
        messages(L, out, plan.msg1[L], m1)
    f2: list[torch.Tensor] = []
    m2: list = []
    sig2 = m2 if src_form else f2
    for L, rows in enumerate(plan.inputs):  # pass 2: lower ids' pass-2 output, ids >= i their pass-1 output
        srcs = [[(pos, low) for pos, low, _ in r] for r in rows]
        S = cl(L, srcs, plan.D2[L], plan.coef2[L], lambda r: sig2[r[0]] if r[1] else sig1[r[0]])
        H = [] if trace is not None else None
        if trace is not None:  # the probe needs dL/ds for every cluster, edges or not
            S = S if S is not None else X.new_zeros(len(rows), B, d).requires_grad_()
            S.retain_grad()
        out = level(L, E[L], S, H)
        f2.extend(out.unbind(0))
        messages(L, out, plan.msg2[L], m2)
        if trace is not None:
            for t, i in enumerate(plan.levels[L]):
                k = plan.pos[i]
                trace[i] = {"S": S, "t": t, "h2": H[0][t, :, :model.graph.clusters[i].size], "f1": f1[k], "f2": f2[k]}
    return torch.stack([f2[k] for k in plan.order_index])  # back to id order
