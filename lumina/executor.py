"""The fast executors of a LuminaNet's two-pass forward (the equations and the reference executor are in
`lumina.model`; both compute the same numbers, tested to float tolerance).

  - `Plan`: the packed layout of one topology, clusters grouped by feedforward level and zero-padded;
  - `forward_fast`: every cluster of a level runs as one batched op (`bmm`), its messages as one more;
  - `forward_recurrent`: a recurrent text network, position by position, each position as `forward_fast`.
Neither ever changes the topology; the packing is redone by `LuminaNet.set_topology` when evolution does.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .naming import ckey, ekey
from .topology import Graph


def norm_message(model, s: torch.Tensor) -> torch.Tensor:
    """s_i, or LayerNorm(s_i) (no affine) with `msg_norm`: LN(0) = 0, so a cluster without in-edges stays without input."""
    return F.layer_norm(s, s.shape[-1:]) if model.msg_norm else s


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

    def __init__(self, graph: Graph, model):
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


class _Levels:
    """The fast executor's per-level operations on a model's packed tensors (both text forms share them)."""

    def __init__(self, model, B: int, like: torch.Tensor):
        self.model, self.plan, self.p, self.src = model, model._plan, model.p, model.cl == "source"
        self.B, self.d = B, model.d_hidden
        self.zeros = like.new_zeros(B, self.d)  # the signal of a padded edge slot (and of the state at t = 0)

    def cl(self, L: int, srcs: list, D: int, coef: torch.Tensor, read) -> torch.Tensor | None:
        """s of level L (k, B, d) from per target its first D in-edges' signals (messages or outputs)."""
        if D == 0:
            return None
        B, d, p, k = self.B, self.d, self.p, len(srcs)
        pieces = [read(r) if r is not None else self.zeros for row in srcs for r in (row + [None] * D)[:D]]
        pieces = [self.zeros if q is None else q for q in pieces]
        if self.src:  # Σ_s g_s m_s: the messages (k, D, B*d) weighted by the gates (k, 1, D)
            M = torch.stack(pieces).view(k, D, B * d)
            return torch.bmm(p[f"L{L}_g"][:, :, :D] * coef.view(k, 1, 1), M).view(k, B, d)
        F_src = torch.stack(pieces, 1).view(B, k, D * d).transpose(0, 1)  # (k, B, D*d)
        return torch.bmm(F_src, p[f"L{L}_wt"][:, : D * d]) * coef

    def level(self, L: int, E: torch.Tensor, S: torch.Tensor | None, keep: list | None = None) -> torch.Tensor:
        p = self.p
        pre = E if S is None else E + torch.bmm(norm_message(self.model, S), p[f"L{L}_ut"])  # padding stays 0
        H = F.gelu(pre)
        if keep is not None:
            keep.append(H)
        return torch.baddbmm(p[f"L{L}_b_out"], H, p[f"L{L}_v"])  # (k, B, d)

    def messages(self, L: int, f: torch.Tensor, needed: bool, out: list) -> None:
        if self.src:
            out.extend(torch.bmm(f, self.p[f"L{L}_wc"]).unbind(0) if needed else [None] * f.shape[0])


def forward_fast(model, X: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
    """X (B, n_slots, d_in) -> pass-2 outputs (n_clusters, B, d_hidden) in id order, one level at a time.
    `trace`, when given, receives per cluster h2, f1, f2 and its pass-2 CL input as ("S", "t"): row t of its
    level's tensor S, which retains its gradient. A recurrent text network: `forward_recurrent`."""
    if model.recurrent:
        return forward_recurrent(model, X, trace)
    plan, p, src_form = model._plan, model.p, model.cl == "source"
    B = X.shape[0]
    ops = _Levels(model, B, X)
    Xs = X.transpose(0, 1)  # (n_slots, B, d_in)
    # IL once per forward, reused by both passes: (k, B, m)
    E = [F.gelu(torch.baddbmm(p[f"L{L}_b_in"], Xs.index_select(0, plan.slots[L]), p[f"L{L}_w_in"].transpose(1, 2)))
         for L in range(len(plan.levels))]
    f1: list[torch.Tensor] = []  # per-cluster outputs (views), by level-major position
    m1: list = []  # per-cluster messages W_Cj f_j (cl="source"), None where no edge reads them
    sig1 = m1 if src_form else f1  # what a source sends: its message, or (cl="edge") its output
    for L, rows in enumerate(plan.inputs):  # pass 1: feedforward sources only (all in earlier levels)
        srcs = [[(pos, low) if ff else None for pos, low, ff in r] for r in rows]
        S = ops.cl(L, srcs, plan.D1[L], plan.coef1[L], lambda r: sig1[r[0]])
        out = ops.level(L, E[L], S)
        f1.extend(out.unbind(0))
        ops.messages(L, out, plan.msg1[L], m1)
    f2: list[torch.Tensor] = []
    m2: list = []
    sig2 = m2 if src_form else f2
    for L, rows in enumerate(plan.inputs):  # pass 2: lower ids' pass-2 output, ids >= i their pass-1 output
        srcs = [[(pos, low) for pos, low, _ in r] for r in rows]
        S = ops.cl(L, srcs, plan.D2[L], plan.coef2[L], lambda r: sig2[r[0]] if r[1] else sig1[r[0]])
        H = [] if trace is not None else None
        if trace is not None:  # the probe needs dL/ds for every cluster, edges or not
            S = S if S is not None else X.new_zeros(len(rows), B, model.d_hidden).requires_grad_()
            S.retain_grad()
        out = ops.level(L, E[L], S, H)
        f2.extend(out.unbind(0))
        ops.messages(L, out, plan.msg2[L], m2)
        if trace is not None:
            for t, i in enumerate(plan.levels[L]):
                k = plan.pos[i]
                trace[i] = {"S": S, "t": t, "h2": H[0][t, :, :model.graph.clusters[i].size], "f1": f1[k], "f2": f2[k]}
    return torch.stack([f2[k] for k in plan.order_index])  # back to id order


def forward_recurrent(model, X: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
    """A recurrent text network, X (B, T, d_in) -> pass-2 outputs (n_clusters, B, T, d_hidden): every
    position runs the batched levels of `forward_fast`; pass 1 reads feedback and recurrent sources from the
    previous position's pass-2 signals (zero at t = 0). The IL of every position is one product up front.
    `trace` folds positions into the batch (row t*B + b): per cluster h2, f1, f2 (T*B, ...) and ("S", "t")
    with S a zero leaf (k, T*B, d) added to each position's pass-2 CL input, so S.grad = dL/ds."""
    plan, p, src_form = model._plan, model.p, model.cl == "source"
    B, T, _ = X.shape
    d = model.d_hidden
    ops = _Levels(model, B, X)
    Xt = X.transpose(0, 1).reshape(T * B, -1)  # position-major rows
    E = []
    for L, lvl in enumerate(plan.levels):  # (k, T*B, m): one GEMM for the IL of every cluster and position
        k, m = len(lvl), plan.sizes[L]
        w = p[f"L{L}_w_in"]
        Et = F.gelu((Xt @ w.reshape(k * m, -1).T).view(T, B, k, m) + p[f"L{L}_b_in"].view(1, 1, k, m))
        E.append(Et.permute(0, 2, 1, 3).unbind(0))  # per position (k, B, m); unbind's backward is one stack,
        #                                              where slicing would zero-fill a full-size gradient per slice
    Z = [X.new_zeros(len(lvl), T * B, d, requires_grad=True) for lvl in plan.levels] if trace is not None else None
    Zt = [z.view(z.shape[0], T, B, d).unbind(1) for z in Z] if Z is not None else None
    rec: dict[int, dict[str, list]] = {}
    prev: list | None = None  # the previous position's pass-2 signals, level-major
    outs = []
    for t in range(T):
        f1: list = []
        m1: list = []
        sig1 = m1 if src_form else f1
        for L, rows in enumerate(plan.inputs):  # pass 1: feedforward at t, feedback and recurrent from t-1
            read = lambda r: sig1[r[0]] if r[2] else (prev[r[0]] if prev is not None else None)
            S = ops.cl(L, rows, plan.D2[L], plan.coef2[L], read)
            out = ops.level(L, E[L][t], S)
            f1.extend(out.unbind(0))
            ops.messages(L, out, plan.msg1[L], m1)
        f2: list = []
        m2: list = []
        sig2 = m2 if src_form else f2
        for L, rows in enumerate(plan.inputs):  # pass 2: within position t
            S = ops.cl(L, rows, plan.D2[L], plan.coef2[L], lambda r: sig2[r[0]] if r[1] else sig1[r[0]])
            H = [] if trace is not None else None
            if trace is not None:
                S = Zt[L][t] if S is None else S + Zt[L][t]
            out = ops.level(L, E[L][t], S, H)
            f2.extend(out.unbind(0))
            ops.messages(L, out, plan.msg1[L], m2)  # read by pass 2 at t and pass 1 at t+1: any out-edge
            if trace is not None:
                for j, i in enumerate(plan.levels[L]):
                    r = rec.setdefault(i, {"h2": [], "f1": [], "f2": []})
                    r["h2"].append(H[0][j, :, :model.graph.clusters[i].size])
                    r["f1"].append(f1[plan.pos[i]])
                    r["f2"].append(f2[plan.pos[i]])
        prev = sig2
        outs.append(torch.stack([f2[k] for k in plan.order_index]))
    if trace is not None:
        for L, lvl in enumerate(plan.levels):
            for j, i in enumerate(lvl):
                trace[i] = {"S": Z[L], "t": j, **{k: torch.cat(v) for k, v in rec[i].items()}}
    return torch.stack(outs, 2)
