"""The fast executors of a LuminaNet's two-pass forward (the equations and the reference executor are in
`lumina.model`; both compute the same numbers, tested to float tolerance).

  - `Plan`: the packed layout of one topology: each feedforward level's clusters in groups of similar size,
    zero-padded to the group's largest;
  - `forward_fast`: every group runs as one batched op (`bmm`), its messages as one more, its CL input as one
    gather of in-messages (`lumina.gather`'s kernel on the CPU; a stack and a gate product elsewhere);
  - `forward_recurrent`: a recurrent text network, position by position, each position as `forward_fast`.
Neither ever changes the topology; the packing is redone by `LuminaNet.set_topology` when evolution does.

Not compiled: torch.compile of `forward_fast` for a frozen topology (the evolved-like 48-cluster benchmark network,
d_hidden 128, batch 64, one thread, a training step side by side with the eager one) took 116 s to compile and
made the step slower (71 ms against 57 ms), and every evolution event would recompile it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import gather
from .naming import ckey, ekey
from .topology import Graph

# What one more group costs, in padded neurons (`size_groups`): a group adds about 30 small kernels to a
# training step (its IL, two passes, their backward, 7 tensors in the optimizer). Padding a whole level to its
# largest cluster wasted ~20% of the products and of the optimizer's memory traffic on the evolved-like
# benchmark network (sizes 2-96); of the costs tried there (24-160), 64-128 were fastest, within the noise.
GROUP_COST = 128
PAD = 8  # a group's size rounds up to a multiple of 8 rows (the float32 GEMM kernels' vector width): a few % faster


def norm_message(model, s: torch.Tensor) -> torch.Tensor:
    """s_i, or LayerNorm(s_i) (no affine) with `msg_norm`: LN(0) = 0, so a cluster without in-edges stays without input."""
    return F.layer_norm(s, s.shape[-1:]) if model.msg_norm else s


def _padded(m: int) -> int:
    """The rows a group of largest cluster size m is padded to."""
    return -(-m // PAD) * PAD


def size_groups(ids: list[int], size: dict[int, int], cost: int) -> list[list[int]]:
    """One level's clusters -> groups, each a run of the clusters sorted by size, minimising the padded
    rows Σ k_g · (padded largest size of g) plus `cost` per group: an exact partition of the sorted run, cut
    only where the padded size changes (cutting between equal sizes saves no padding)."""
    ids = sorted(ids, key=lambda i: (size[i], i))
    rows = [_padded(size[i]) for i in ids]
    cuts = [0] + [b for b in range(1, len(ids)) if rows[b] != rows[b - 1]] + [len(ids)]
    best, back = [0] + [None] * (len(cuts) - 1), [0] * len(cuts)  # best[c]: the clusters before cuts[c]
    for c in range(1, len(cuts)):
        best[c], back[c] = min((best[a] + cost + (cuts[c] - cuts[a]) * rows[cuts[c] - 1], a) for a in range(c))
    groups, c = [], len(cuts) - 1
    while c:
        groups.append(ids[cuts[back[c]]:cuts[c]])
        c = back[c]
    return groups[::-1]


class Plan:
    """Packed layout and schedule for one topology.

    Clusters are grouped by feedforward level (`Graph.levels`), a level split by size (`size_groups`); no
    cluster of a group reads another of the same group in pass 1, so a group is one batched op. Group G holds
    k clusters padded to its largest size m; each target's in-edges are listed feedforward first and padded to
    the group's largest in-degree D. Packed tensors of group G:
        G{G}_w_in (k, m, d_in)   G{G}_b_in (k, 1, m)   G{G}_ut (k, d, m) = U^T   G{G}_v (k, m, d)
        G{G}_b_out (k, 1, d)
        cl="source": G{G}_wc (k, d, d) = W_C^T of each cluster (its message is f @ wc);
                     G{G}_g (k, 1, D): the gate of each target's s-th in-edge
        cl="edge":   G{G}_wt (k, D*d, d): block s of target t = W_C^T of its s-th in-edge
    """

    def __init__(self, graph: Graph, model):
        self.d_in, self.d, self.cl = model.d_in, model.d_hidden, model.cl
        size = {i: c.size for i, c in graph.clusters.items()}
        self.groups = [g for lvl in graph.levels() for g in size_groups(lvl, size, GROUP_COST)]
        self.order = [i for grp in self.groups for i in grp]
        self.where = {i: (G, t) for G, grp in enumerate(self.groups) for t, i in enumerate(grp)}
        self.sizes = [_padded(max(size[i] for i in grp)) for grp in self.groups]
        dev = model.device
        self.slots = [torch.tensor([graph.clusters[i].slot for i in grp], device=dev) for grp in self.groups]
        self.edge_at: dict[tuple[int, int], tuple[int, int, int]] = {}  # edge -> (group, target, slot)
        self.inputs = []  # per group: per target, [(src group, src row, feedforward)], feedforward first
        self.D1, self.D2, self.coef1, self.coef2 = [], [], [], []
        out_ff = {j for (j, i), e in graph.edges.items() if e.kind == "feedforward"}
        out_any = {j for (j, i) in graph.edges}
        self.msg1 = [any(i in out_any for i in grp) for grp in self.groups]  # pass-1 messages are read
        self.msg2 = [any(i in out_ff for i in grp) for grp in self.groups]  # pass-2 messages are read
        for G, grp in enumerate(self.groups):
            rows = []
            for t, i in enumerate(grp):
                ins = sorted(graph.in_edges(i), key=lambda e: (e.kind != "feedforward", e.src))
                for s, e in enumerate(ins):
                    self.edge_at[(e.src, e.dst)] = (G, t, s)
                rows.append([(*self.where[e.src], e.kind == "feedforward") for e in ins])
            n1 = [sum(ff for *_, ff in r) for r in rows]
            self.inputs.append(rows)
            self.D1.append(max(n1))
            self.D2.append(max(len(r) for r in rows))
            self.coef1.append(torch.tensor([model.coef(n) for n in n1], device=dev).view(-1, 1, 1))
            self.coef2.append(torch.tensor([model.coef(len(r)) for r in rows], device=dev).view(-1, 1, 1))
        self.gather_index = {(G, ff_only): self._gather_index(G, ff_only) for G in range(len(self.groups))
                             for ff_only in (True, False)} if self.cl == "source" else {}
        pos = {i: n for n, i in enumerate(self.order)}
        self.order_index = [pos[i] for i in graph.ids]
        ids = graph.ids
        self.slot_index = torch.tensor([graph.clusters[i].slot for i in ids], device=dev)
        per_slot = [0] * graph.n_slots
        for i in ids:
            per_slot[graph.clusters[i].slot] += 1
        self.slot_counts = torch.tensor(per_slot, dtype=torch.get_default_dtype(), device=dev)
        self.graph = graph

    def in_slots(self, G: int, ff_only: bool) -> list[list[tuple | None]]:
        """Per target of group G, its D in-edge slots: (src group, src row, feedforward) or None (padding);
        feedforward in-edges only in pass 1 (`ff_only`), every in-edge in pass 2."""
        D = self.D1[G] if ff_only else self.D2[G]
        return [([q for q in row if q[2] or not ff_only] + [None] * D)[:D] for row in self.inputs[G]]

    def _gather_index(self, G: int, ff_only: bool) -> tuple[list[tuple[int, int, bool]], torch.Tensor]:
        """`lumina.gather`'s index of group G's CL: the signal rows it reads, (src group, src row, feedforward),
        and each slot's position among them (`gather.index`)."""
        return gather.index([q for row in self.in_slots(G, ff_only) for q in row])

    def flops_per_example(self) -> int:
        """The matrix-product FLOPs (2 per multiply-add) of one example through `forward_fast`'s products, padding
        included, as FlopCounterMode counts them with the CL gathered in torch ops (`gather.torch_ops`): per group
        the IL, per pass the CL (if the group has in-edges), U (then), V, and W_C where its messages are read.
        Counted from the plan, without running the network: an evolution event recounts after every change
        (`lumina.metrics.flops_per_example`)."""
        d, total = self.d, 0
        for G, grp in enumerate(self.groups):
            k, m = len(grp), self.sizes[G]
            total += k * m * self.d_in  # IL
            for D, sends in ((self.D1[G], self.msg1[G]), (self.D2[G], self.msg2[G])):
                if D:
                    total += k * D * d * (1 if self.cl == "source" else d) + k * d * m  # CL, then U s
                total += k * m * d + (k * d * d if sends and self.cl == "source" else 0)  # V, the messages
        return 2 * total

    def shapes(self) -> dict[str, tuple[int, ...]]:
        d, out = self.d, {}
        for G, grp in enumerate(self.groups):
            k, m, D = len(grp), self.sizes[G], self.D2[G]
            out.update({f"G{G}_w_in": (k, m, self.d_in), f"G{G}_b_in": (k, 1, m), f"G{G}_ut": (k, d, m),
                        f"G{G}_v": (k, m, d), f"G{G}_b_out": (k, 1, d)})
            if self.cl == "source":
                out[f"G{G}_wc"] = (k, d, d)
                if D:
                    out[f"G{G}_g"] = (k, 1, D)
            elif D:
                out[f"G{G}_wt"] = (k, D * d, d)
        return out

    def views(self, packed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-cluster/edge views of packed tensors. Every packed tensor is unbound once (one call for its k rows),
        the gates flattened once: an evolution event takes this ten times (re-packing, the optimizer state's
        carry-over), and indexing each name from the packed tensor took three view ops per name."""
        d, out, src = self.d, {}, self.cl == "source"
        rows = {k: (v.view(-1) if k.endswith("_g") else v).unbind(0) for k, v in packed.items()}
        for i, (G, t) in self.where.items():
            m = self.graph.clusters[i].size
            out[ckey(i, "w_in")] = rows[f"G{G}_w_in"][t][:m]
            out[ckey(i, "b_in")] = rows[f"G{G}_b_in"][t][0, :m]
            out[ckey(i, "u")] = rows[f"G{G}_ut"][t][:, :m].T
            out[ckey(i, "v")] = rows[f"G{G}_v"][t][:m]
            out[ckey(i, "b_out")] = rows[f"G{G}_b_out"][t][0]
            if src:
                out[ckey(i, "w_c")] = rows[f"G{G}_wc"][t].T
        for (j, i), (G, t, s) in self.edge_at.items():  # gate s of target t: (k, 1, D2) flattened
            out[ekey(j, i)] = rows[f"G{G}_g"][t * self.D2[G] + s] if src else rows[f"G{G}_wt"][t][s * d:(s + 1) * d].T
        return out

    def pack(self, named: dict[str, torch.Tensor], device=None) -> dict[str, torch.Tensor]:
        """Per-cluster/edge tensors -> freshly allocated, zero-padded packed tensors."""
        dtype = next(iter(named.values())).dtype if named else torch.get_default_dtype()
        packed = {k: torch.zeros(s, device=device, dtype=dtype) for k, s in self.shapes().items()}
        with torch.no_grad():
            for name, view in self.views(packed).items():
                view.copy_(named[name])
        return packed


class _Groups:
    """The fast executor's per-group operations on a model's packed tensors (both forms share them). A signal
    list holds per group what each of its clusters sends, (B, d) messages (cl="source") or outputs (cl="edge"),
    or None where nothing is sent (a zero signal). Per-cluster views (`unbind`), not rows of the group's tensor:
    the backward of an unbind is one stack, that of a row a zero-filled copy of the whole group per read."""

    def __init__(self, model, B: int, like: torch.Tensor):
        self.model, self.plan, self.p, self.src = model, model._plan, model.p, model.cl == "source"
        self.B, self.d = B, model.d_hidden
        self.zeros = like.new_zeros(B, self.d)  # the signal of a padded edge slot (and of the state at t = 0)
        # the kernel sums float32; under autocast the messages are bf16
        self.fused = self.src and not torch.is_autocast_enabled(like.device.type) and gather.usable(like)

    def cl(self, G: int, ff_only: bool, sig_ff: list, sig_other: list) -> torch.Tensor | None:
        """s of group G (k, B, d), from its feedforward in-edges' signals in `sig_ff` and (unless `ff_only`)
        its other in-edges' in `sig_other`, weighted by 1/n_i over the edges counted. None: no input.
        cl="source" on the CPU: one fused gather (`lumina.gather`); otherwise the in-signals stacked, then one
        batched product with the gates (or the per-edge W_C, cl="edge")."""
        plan, B, d = self.plan, self.B, self.d
        D = plan.D1[G] if ff_only else plan.D2[G]
        if D == 0:
            return None
        k = len(plan.groups[G])

        def signal(r):  # the s-th in-edge's source signal, or zero (a padded slot, nothing sent yet)
            M = None if r is None else (sig_ff if r[2] else sig_other)[r[0]]
            return self.zeros if M is None else M[r[1]]

        coef = plan.coef1[G] if ff_only else plan.coef2[G]
        if self.fused:  # Σ_s g_s m_s read in place (`lumina.gather`)
            reads, g = plan.gather_index[(G, ff_only)]
            w = (self.p[f"G{G}_g"][:, :, :D] * coef).view(k, D)
            return gather.gather(w, g, [signal(r) for r in reads], B * d).view(k, B, d)
        pieces = [signal(r) for row in plan.in_slots(G, ff_only) for r in row]
        if self.src:  # Σ_s g_s m_s: the messages (k, D, B*d) weighted by the gates (k, 1, D)
            M = torch.stack(pieces).view(k, D, B * d)
            return torch.bmm(self.p[f"G{G}_g"][:, :, :D] * coef, M).view(k, B, d)
        F_src = torch.stack(pieces, 1).view(B, k, D * d).transpose(0, 1)  # (k, B, D*d)
        return torch.bmm(F_src, self.p[f"G{G}_wt"][:, : D * d]) * coef

    def group(self, G: int, E: torch.Tensor, S: torch.Tensor | None, keep: list | None = None) -> torch.Tensor:
        p = self.p
        pre = E if S is None else torch.baddbmm(E, norm_message(self.model, S), p[f"G{G}_ut"])  # E + s U^T; padding stays 0
        H = F.gelu(pre)
        if keep is not None:
            keep.append(H)
        return torch.baddbmm(p[f"G{G}_b_out"], H, p[f"G{G}_v"])  # (k, B, d)

    def sends(self, G: int, f: torch.Tensor, needed: bool) -> tuple | None:
        """What group G's clusters send on their out-edges: messages f @ W_C^T, or their outputs (cl="edge")."""
        if not needed:
            return None
        return (torch.bmm(f, self.p[f"G{G}_wc"]) if self.src else f).unbind(0)


def forward_fast(model, X: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
    """X (B, n_slots, d_in) -> pass-2 outputs (n_clusters, B, d_hidden) in id order, one group at a time.
    `trace`, when given, receives per cluster h2, f1, f2 and its pass-2 CL input as ("S", "t"): row t of its
    group's tensor S, which retains its gradient. A recurrent text network: `forward_recurrent`."""
    if model.recurrent:
        return forward_recurrent(model, X, trace)
    plan, p = model._plan, model.p
    B = X.shape[0]
    ops = _Groups(model, B, X)
    Xs = X.transpose(0, 1)  # (n_slots, B, d_in)
    # IL once per forward, reused by both passes: (k, B, m)
    E = [F.gelu(torch.baddbmm(p[f"G{G}_b_in"], Xs.index_select(0, plan.slots[G]), p[f"G{G}_w_in"].transpose(1, 2)))
         for G in range(len(plan.groups))]
    f1, f2 = [], []  # per group (k, B, d)
    sig1, sig2 = [], []  # per group what it sends (`_Groups.sends`)
    for G in range(len(plan.groups)):  # pass 1: feedforward sources only (all in earlier levels)
        f1.append(ops.group(G, E[G], ops.cl(G, True, sig1, None)))
        sig1.append(ops.sends(G, f1[G], plan.msg1[G]))
    for G, grp in enumerate(plan.groups):  # pass 2: feedforward sources (lower ids) their pass-2 signal, others pass 1
        S = ops.cl(G, False, sig2, sig1)
        H = [] if trace is not None else None
        if trace is not None:  # the probe needs dL/ds for every cluster, edges or not
            S = S if S is not None else X.new_zeros(len(grp), B, model.d_hidden).requires_grad_()
            S.retain_grad()
        f2.append(ops.group(G, E[G], S, H))
        sig2.append(ops.sends(G, f2[G], plan.msg2[G]))
        if trace is not None:
            for t, i in enumerate(grp):
                trace[i] = {"S": S, "t": t, "h2": H[0][t, :, :model.graph.clusters[i].size], "f1": f1[G][t], "f2": f2[G][t]}
    f2 = [f for out in f2 for f in out.unbind(0)]  # level-major
    return torch.stack([f2[n] for n in plan.order_index])  # back to id order


def forward_recurrent(model, X: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
    """A recurrent text network, X (B, T, d_in) -> pass-2 outputs (n_clusters, B, T, d_hidden): every
    position runs the batched groups of `forward_fast`; pass 1 reads feedback and recurrent sources from the
    previous position's pass-2 signals (zero at t = 0). The IL of every position is one product up front.
    `trace` folds positions into the batch (row t*B + b): per cluster h2, f1, f2 (T*B, ...) and ("S", "t")
    with S a zero leaf (k, T*B, d) added to each position's pass-2 CL input, so S.grad = dL/ds."""
    plan, p = model._plan, model.p
    B, T, _ = X.shape
    d = model.d_hidden
    ops = _Groups(model, B, X)
    Xt = X.transpose(0, 1).reshape(T * B, -1)  # position-major rows
    E = []
    for G, grp in enumerate(plan.groups):  # (k, T*B, m): one GEMM for the IL of every cluster and position
        k, m = len(grp), plan.sizes[G]
        w = p[f"G{G}_w_in"]
        Et = F.gelu((Xt @ w.reshape(k * m, -1).T).view(T, B, k, m) + p[f"G{G}_b_in"].view(1, 1, k, m))
        E.append(Et.permute(0, 2, 1, 3).unbind(0))  # per position (k, B, m); unbind's backward is one stack,
        #                                              where slicing would zero-fill a full-size gradient per slice
    Z = [X.new_zeros(len(grp), T * B, d, requires_grad=True) for grp in plan.groups] if trace is not None else None
    Zt = [z.view(z.shape[0], T, B, d).unbind(1) for z in Z] if Z is not None else None
    rec: dict[int, dict[str, list]] = {}
    prev = [None] * len(plan.groups)  # the previous position's pass-2 signals (none at t = 0)
    outs = []
    for t in range(T):
        f1, sig1 = [], []
        for G in range(len(plan.groups)):  # pass 1: feedforward at t, feedback and recurrent from t-1
            f1.append(ops.group(G, E[G][t], ops.cl(G, False, sig1, prev)))
            sig1.append(ops.sends(G, f1[G], plan.msg1[G]))
        f2, sig2 = [], []
        for G, grp in enumerate(plan.groups):  # pass 2: within position t
            S = ops.cl(G, False, sig2, sig1)
            H = [] if trace is not None else None
            if trace is not None:
                S = Zt[G][t] if S is None else S + Zt[G][t]
            f2.append(ops.group(G, E[G][t], S, H))
            sig2.append(ops.sends(G, f2[G], plan.msg1[G]))  # read by pass 2 at t and pass 1 at t+1: any out-edge
            if trace is not None:
                for j, i in enumerate(grp):
                    r = rec.setdefault(i, {"h2": [], "f1": [], "f2": []})
                    r["h2"].append(H[0][j, :, :model.graph.clusters[i].size])
                    r["f1"].append(f1[G][j])
                    r["f2"].append(f2[G][j])
        prev = sig2
        f2 = [f for out in f2 for f in out.unbind(0)]
        outs.append(torch.stack([f2[n] for n in plan.order_index]))
    if trace is not None:
        for G, grp in enumerate(plan.groups):
            for j, i in enumerate(grp):
                trace[i] = {"S": Z[G], "t": j, **{k: torch.cat(v) for k, v in rec[i].items()}}
    return torch.stack(outs, 2)
