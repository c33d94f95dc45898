"""LuminaNet (Liu 2026, arXiv 2601.19508): Neuron Clusters talking over a Communication Layer.

Per Neuron Cluster i with m_i neurons (book chapter 1; [paper] marks the paper's equations, the rest is ours):
    IL  e_i = σ(W_in_i x_slot(i) + b_in_i)                    [paper] e_i = σ(Linear_i(Flatten(x_i)))
    CL  s_i = (1/n_i) Σ_{j ∈ N_i} g_ji W_Cj f_j                 [paper] with one W_Cj per *source* j;
                                                               g_ji: a learnable scalar gate per edge [ours]
    NL  h_i = σ(e_i + U_i s_i)                                 (m_i,)
        f_i = V_i^T h_i + b_out_i                              (d_hidden,) the cluster's signal on the channel
    OL  images: logits = Linear(LayerNorm(mean_i f_i^(2)))     survives splitting: LayerNorm is scale-free
                (image_readout="slots": LayerNorm of the per-patch sums Σ_{i: slot(i) = p} f_i^(2),
                concatenated over the patches p: the OL sees which patch a signal comes from, and a split,
                whose children's outputs add up to the parent's, leaves it unchanged)
        text:   logits_t = Linear(LayerNorm(mean_{i: slot(i) = t} f_i^(2) + mean_{i: slot(i) ≤ t} f_i^(2)))
                one prediction per position: the current slot's clusters plus the context so far
                (readout="context" keeps only the second mean, readout="slot" only the first)
`msg_norm=True` [ours] replaces s_i by LayerNorm(s_i) (no affine) before U_i reads it.

Text enters in one of two ways [ours, book chapter 4]:
  - slot network (`text_net="slot"`): one slot per position; cluster i's IL reads the token at slot(i), edges
    only go from a slot to the same or a later one (causal by wiring);
  - recurrent network (`text_net="recurrent"`): one network of clusters, every IL reading the current token,
    applied at every position t with the same weights. Feedback and recurrent edges carry state across
    positions: in pass 1 at position t a feedforward source gives its pass-1 output at t, a feedback or
    recurrent source its pass-2 output at t-1 (zero at t = 0); pass 2 is the image network's pass 2 at t.
    OL: logits_t = Linear(LayerNorm(mean_i f_i^(2)(t))).
σ = GELU. The message W_Cj f_j is computed once per source and pass and averaged by every receiver (the
paper's formula as printed). Gates of initial edges start at 1 (the formula exactly); an edge added by
`connect` starts at `connect_gate` (default 1, the formula; 0 would only rescale the target's mean by n/(n+1),
exact with `aggregate="sum"`).
`cl="edge"` is the variant with one matrix per edge, s_i = (1/n_i) Σ_j W_C(j→i) f_j (no gates; a new edge's
W_C starts at 0): a d_hidden×d_hidden product per edge instead of per source.

Two-pass forward (book chapter 1): pass 1 visits clusters in id order and averages feedforward sources only;
pass 2 visits them again with every in-edge: sources with a lower id give their pass-2 output, sources with
an id >= i (feedback, recurrent) their pass-1 output. Nothing iterates to a fixed point.

Two executors compute exactly this:
  - `forward_reference`: a loop over clusters, the equations above line by line (for tests and reading);
  - `forward_fast` (`lumina.executor`): the clusters of a feedforward level, in groups of similar size, each
    group as one batched op (`bmm`), its messages as one more; the gather of a group's in-messages is one
    `bmm` with the gates.

Storage. Parameters are named per cluster and per edge (`params_dict()`): `c{id}_w_in` (m, d_in), `c{id}_b_in`
(m,), `c{id}_u` (m, d), `c{id}_v` (m, d), `c{id}_b_out` (d,), `c{id}_w_c` (d, d) (the source's W_C), and per
edge `e{src}_{dst}`: its gate () or, with `cl="edge"`, its W_C (d, d). These names are what is saved
(`named_tensors`), so a stored network never depends on how the fast executor packs it. Inside the module
they are packed per group of one feedforward level (`Plan`), zero-padded; padding stays exactly zero (its gradients
are zero by construction). Packing is redone only when the topology changes (`set_topology`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .executor import Plan, forward_fast, forward_recurrent, norm_message
from .naming import NEURON_KEYS, ckey, ekey, param_keys
from .topology import Graph

__all__ = ["LuminaNet", "forward_fast", "forward_recurrent", "forward_reference", "image_to_patches", "ckey", "ekey",
           "NEURON_KEYS", "init_cluster_params"]

CL_FORMS = ("source", "edge")
TEXT_NETS = ("slot", "recurrent")
READOUTS = ("slot", "context", "slot+context")
IMAGE_READOUTS = ("mean", "slots")
EXECUTORS = ("fast", "reference")


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
                 text_net: str = "slot", tie_head: bool = False, embed_std: float = 1.0, msg_norm: bool = False,
                 in_norm: bool = False, image_readout: str = "mean",
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
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}; valid: {', '.join(map(repr, READOUTS))}")
        if image_readout not in IMAGE_READOUTS:
            raise ValueError(f"unknown image_readout {image_readout!r}; valid: {', '.join(map(repr, IMAGE_READOUTS))}")
        if text_net not in TEXT_NETS:
            raise ValueError(f"unknown text_net {text_net!r}; valid: {', '.join(map(repr, TEXT_NETS))}")
        if tie_head and (input_kind != "tokens" or d_in != d_hidden):
            raise ValueError(f"tie_head needs token inputs with d_in == d_hidden (got {input_kind}, {d_in}, {d_hidden})")
        self.aggregate, self.cl, self.readout_kind = aggregate, cl, readout
        self.recurrent = input_kind == "tokens" and text_net == "recurrent"
        self.tie_head, self.msg_norm, self.in_norm = tie_head, msg_norm, in_norm
        self.slot_readout = input_kind == "patches" and image_readout == "slots"
        gen = torch.Generator().manual_seed(seed)
        if input_kind == "tokens":  # one table shared by every position's IL (book chapter 4, ours)
            self.embed = nn.Embedding(vocab_size, d_in)
            # std 1 (nn.Embedding's default) gives the IL inputs of the scale of its bias; a tied head wants
            # GPT-2's small std, since the same matrix then also scales the logits
            nn.init.normal_(self.embed.weight, std=embed_std, generator=gen)
        d_out = d_hidden * (graph.n_slots if self.slot_readout else 1)  # what the OL reads
        self.norm = nn.LayerNorm(d_out)
        self.head = nn.Linear(d_out, n_out)
        if tie_head:  # one tensor, two uses: stored once, as embed.weight (`named_tensors`)
            self.head.weight = self.embed.weight
            if extra and "head.weight" not in extra and "embed.weight" in extra:
                extra = {**extra, "head.weight": extra["embed.weight"]}
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
        expected = param_keys(graph, self.cl)
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

    def _apply(self, fn, recurse=True):
        """`.to(device)`, `.cuda()`, ...: the packing plan's index and coefficient tensors are no parameters or
        buffers, so the plan is rebuilt on the parameters' new device (else a GPU forward indexes with CPU tensors)."""
        out = super()._apply(fn, recurse)
        if hasattr(self, "_plan"):
            self._plan = Plan(self.graph, self)
        return out

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
        if self.tie_head:
            del out["head.weight"]  # the embedding itself
        return out

    def count_params(self) -> int:
        """The network's parameters, without the zero padding of the packed storage."""
        named = self.unpack(dict(self.p.items()))
        return sum(t.numel() for t in named.values()) + sum(  # named_parameters counts a tied matrix once
            p.numel() for n, p in self.named_parameters() if not n.startswith("p."))

    def cluster_grad_norms(self) -> dict[int, float]:
        """‖∂L/∂θ_i‖ per cluster over its IL, NL and output weights (after a backward); a tensor without a
        gradient (e.g. U of a level with no in-edges) counts as zero."""
        out = {}
        for G, grp in enumerate(self._plan.groups):
            sq = None
            for k in ("w_in", "ut", "v"):
                g = self.p[f"G{G}_{k}"].grad
                if g is not None:
                    v = g.pow(2).flatten(1).sum(1)
                    sq = v if sq is None else sq + v
            for t, i in enumerate(grp):
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
            if x.ndim != 2 or (x.shape[1] != n_slots and not self.recurrent) or not x.shape[1]:
                raise ValueError(f"expected token ids of shape (B, {'T' if self.recurrent else n_slots}), got {tuple(x.shape)}")
            if x.dtype not in (torch.int64, torch.int32):
                raise ValueError(f"expected integer token ids, got dtype {x.dtype}")
            if x.numel() and (x.min() < 0 or x.max() >= self.embed.num_embeddings):
                raise ValueError(f"token ids must lie in [0, {self.embed.num_embeddings}); got range [{int(x.min())}, {int(x.max())}]")
            X = self.token_inputs(x)
            if self.recurrent:  # (B, T, d_in): every position runs the same clusters
                return X
        if X.shape[1:] != (n_slots, self.d_in):
            raise ValueError(f"input gives {X.shape[1]} slots of {X.shape[2]} values; the model expects {n_slots} of {self.d_in}")
        return X

    def token_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """What the ILs read for token ids x: their embeddings, layer-normalised (no affine) with `in_norm`, so a
        small-std (tied) embedding still gives the IL inputs of unit scale, as GPT-2's ln_1 does."""
        X = self.embed(x)
        return F.layer_norm(X, X.shape[-1:]) if self.in_norm else X

    def readout(self, f2: torch.Tensor) -> torch.Tensor:
        """OL: f2 (n_clusters, B, d_hidden) in id order -> logits (B, n_out), or (B, L, n_out) for text,
        where position t reads only the clusters of slots ≤ t (causal by wiring: book chapter 4)."""
        if self.input_kind == "patches" and not self.slot_readout:
            return self.head(self.norm(f2.mean(0)))
        if self.recurrent:  # f2 (n_clusters, B, T, d)
            return self.head(self.norm(f2.mean(0)))  # (B, T, n_out)
        sums = f2.new_zeros(self.graph.n_slots, *f2.shape[1:]).index_add_(0, self._plan.slot_index, f2)  # (L, B, d)
        if self.slot_readout:  # per-patch sums, concatenated: (B, n_slots * d)
            return self.head(self.norm(sums.transpose(0, 1).flatten(1)))
        counts = self._plan.slot_counts.view(-1, 1, 1)
        if self.readout_kind == "slot":
            pooled = sums / counts  # slot t's own clusters, which read the earlier slots through their in-edges
        else:
            pooled = sums.cumsum(0) / counts.cumsum(0)  # the context: mean over the clusters of slots ≤ t
            if self.readout_kind == "slot+context":
                pooled = pooled + sums / counts  # plus the mean of slot t's own clusters
        return self.head(self.norm(pooled.transpose(0, 1)))  # (B, L, n_out)

    def flops_per_example(self) -> int | None:
        """Forward FLOPs of one image, counted from the packing plan and the OL (what FlopCounterMode counts when
        the network runs, tested equal); None for a text network, which `lumina.metrics` counts by running it."""
        if self.input_kind != "patches":
            return None
        return self._plan.flops_per_example() + 2 * self.head.in_features * self.head.out_features

    def forward(self, x: torch.Tensor, executor: str = "fast", trace: dict | None = None) -> torch.Tensor:
        """Logits for raw input x. `trace`, when given, is filled with each cluster's signals (what evolution's
        probe reads)."""
        if executor not in EXECUTORS:
            raise ValueError(f"unknown executor {executor!r}; valid: {', '.join(map(repr, EXECUTORS))}")
        X = self.encode_inputs(x)
        f2 = forward_fast(self, X, trace=trace) if executor == "fast" else forward_reference(self, X, trace=trace)
        return self.readout(f2)

    # ---- text generation with a slot cache ---------------------------------------------------------
    @torch.no_grad()
    def step_slot(self, token: torch.Tensor, t: int, cache: dict) -> torch.Tensor:
        """Run only the clusters of slot t for `token` (B,), reusing `cache` (the pass-1/pass-2 outputs of
        the clusters of slots < t, updated in place; start with {}). Returns the logits at position t (B, V).
        Valid because every edge goes from a slot to the same or a later slot (`Graph.causal`). A recurrent
        network ignores t: `cache` holds its state, the previous position's pass-2 outputs."""
        g, p = self.graph, self.unpack(dict(self.p.items()))
        if self.recurrent:
            f2 = _recurrent_position(self, p, self.token_inputs(token), cache.get("prev", {}))
            cache["prev"] = f2
            return self.head(self.norm(torch.stack([f2[i] for i in g.ids]).mean(0)))
        mine = [i for i in g.ids if g.clusters[i].slot == t]
        e = {i: F.gelu(F.linear(self.token_inputs(token), p[ckey(i, "w_in")], p[ckey(i, "b_in")])) for i in mine}
        f1, f2 = cache.setdefault("f1", {}), cache.setdefault("f2", {})
        for i in mine:
            f1[i] = _cluster(self, p, i, e[i], [(ed.src, f1[ed.src]) for ed in g.in_edges(i) if ed.kind == "feedforward"])[2]
        for i in mine:
            f2[i] = _cluster(self, p, i, e[i], [(ed.src, f2[ed.src] if ed.src < i else f1[ed.src]) for ed in g.in_edges(i)])[2]
        own = sum(f2[i] for i in mine)
        cache["sum"] = cache.get("sum", 0) + own
        cache["n"] = cache.get("n", 0) + len(mine)
        if self.readout_kind == "slot":
            pooled = own / len(mine)
        else:
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
    h = F.gelu(e_i + F.linear(norm_message(model, s), p[ckey(i, "u")]))  # (B, m_i)
    return s, h, h @ p[ckey(i, "v")] + p[ckey(i, "b_out")]  # f: (B, d_hidden)


def forward_reference(model: LuminaNet, X: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
    """X (B, n_slots, d_in) -> pass-2 outputs (n_clusters, B, d_hidden) in id order.
    `trace`, when given, receives per cluster s2 (with retain_grad), h2, f1, f2 for the evolution probe.
    A recurrent text network: X (B, T, d_in) -> (n_clusters, B, T, d_hidden), position by position."""
    if model.recurrent:
        if trace is not None:
            raise ValueError("the evolution probe of a recurrent network runs on forward_fast")
        p, prev, outs = model.unpack(dict(model.p.items())), {}, []
        for t in range(X.shape[1]):
            prev = _recurrent_position(model, p, X[:, t], prev)
            outs.append(torch.stack([prev[i] for i in model.graph.ids]))
        return torch.stack(outs, 2)
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


def _recurrent_position(model: LuminaNet, p: dict, x_t: torch.Tensor, prev: dict) -> dict:
    """One position of a recurrent text network, cluster by cluster: x_t (B, d_in) and the previous
    position's pass-2 outputs `prev` ({} at t = 0: zero state) -> this position's pass-2 outputs."""
    g = model.graph
    zero = x_t.new_zeros(x_t.shape[0], model.d_hidden)
    e = {i: F.gelu(F.linear(x_t, p[ckey(i, "w_in")], p[ckey(i, "b_in")])) for i in g.ids}
    f1, f2 = {}, {}
    for i in g.ids:  # pass 1: feedforward sources at t, feedback and recurrent sources from t-1
        f1[i] = _cluster(model, p, i, e[i], [(ed.src, f1[ed.src] if ed.kind == "feedforward" else prev.get(ed.src, zero))
                                              for ed in g.in_edges(i)])[2]
    for i in g.ids:  # pass 2: as in the image network, within position t
        f2[i] = _cluster(model, p, i, e[i], [(ed.src, f2[ed.src] if ed.src < i else f1[ed.src]) for ed in g.in_edges(i)])[2]
    return f2
