"""The evolution mechanisms [paper]: splitting, growth (expansion and reduction), connection (and pruning).

Each op is a pure function `(graph, params, ...) -> Change(graph, params, lineage)`: it never mutates its
inputs. `params` maps names (`lumina.model.ckey/ekey`) to tensors; untouched tensors are passed through as
the same objects, so their optimizer state survives unchanged. `lineage[name] = (old_name, rows)` says where
a changed tensor came from: `rows[k]` is the old row that new row k copies (-1 = fresh), or `rows=None` for a
whole-tensor copy; names missing from `lineage` and not passed through are fresh.

Which ops preserve the network's function exactly (tested in tests/test_evolution.py):
  - `grow` (expansion): always. New neurons get zero output weights (v rows), so f_i is unchanged.
  - `reduce`: exactly when the removed neurons have zero output weights; otherwise it is a small change.
  - `connect`: with `aggregate="sum"`; the new edge's gate (or per-edge W_C) is zero. With the paper's mean
    it also dilutes the other messages into the target by n/(n+1).
  - `prune`: with `aggregate="sum"` when the removed edge's gate (or W_C) is zero.
  - `swap` (prune + connect into the same target, whose in-degree is unchanged): when the removed edge's
    gate (or W_C) is zero and the new one's too (the mean's 1/n does not change).
  - `split`: see below; exact for the pass-2 outputs whenever `split_inexact_reason` returns None.

Split, in detail. The parent's neurons are divided between parent (id p) and child (id c, the next free id,
so c is higher than every cluster), and the child keeps the parent's slot, a copy of its W_C (cl="source")
and a zero output bias, so f_p' + f_c = f_p and W_C f_p' + W_C f_c = W_C f_p whenever both halves receive
the parent's CL input s_p. Wiring: every in-edge j->p gives j->c, every out-edge p->j gives c->j, a self-loop
gives p->c, c->p and c->c (`inherited_edges`). Every inherited edge is kept, whatever the in-degree cap: the
cap limits new connections, never inherited ones, so a target at the cap goes one above it. Each copy takes
the (compensated) gate or per-edge W_C of the edge it copies, and every cluster that gains an in-edge (n -> n+1)
has all its in-edge gates (per-edge W_C) scaled by coef(n)/coef(n+1), (n+1)/n under the mean and 1 under the
sum, so its pass-2 message sum is unchanged: the term g·W_C f_p becomes g·W_C f_p' + g·W_C f_c.
Kinds follow from the ids, and c is the highest id, so:
  - in-edges j->p with j < p (feedforward) stay feedforward (j->c); a feedback in-edge j->p (p < j) becomes
    the feedforward j->c: the child reads j's pass-1 and pass-2 outputs where the parent read j's pass-1
    output in pass 2 only;
  - out-edges p->j with j < p (feedback) stay feedback (c->j); a feedforward out-edge p->j (p < j) becomes the
    feedback c->j: j reads the child's pass-1 output in pass 2, and nothing of the child in pass 1;
  - a self-loop (recurrent) gives p->p, the feedforward p->c, the feedback c->p and the recurrent c->c.
So the split is exact (every pass-2 output of the other clusters unchanged, f2_p' + f2_c = f2_p, hence the
OL's input sum unchanged) when the parent sends no edge and its feedback sources' pass-1 and pass-2 outputs
agree, or else when (`split_inexact_reason` checks these):
  1. the parent's in-edges are all feedforward (then the child, reading the same sources, gets s_p in both
     passes);
  2. if the parent has a feedforward out-edge, its pass-1 and pass-2 outputs agree (no feedback or recurrent
     edge anywhere in its feedforward ancestry), since its feedforward targets now read the child's pass-1
     output where they read the parent's pass-2 output;
  3. no pass-1 output that the split changes is read in pass 2: the feedforward targets (they miss the child
     in pass 1) and, under the mean, feedback targets with feedforward in-edges (their rescaled gates change
     pass 1, whose 1/n_ff did not change), and everything these feed in pass 1, send no feedback or
     recurrent edge.
A graph with only feedforward edges (e.g. `Graph.initial(..., connect="dense")`, image or causal text)
satisfies all three for every cluster. Where they fail the split still keeps every connection and the direct
readers' message sum in pass 2 (exactly so when the child's pass-1 and pass-2 outputs agree), but it is not
function-preserving: no choice of gates corrects both passes, which divide by different in-degrees.
The OL reads the channel through LayerNorm(mean): images and the text readouts "context" and "slot" are
unchanged up to LayerNorm's eps; "slot+context" adds two means whose cluster counts a split changes
differently (slot t's and slots <= t's), so its logits move although every cluster output is preserved.
(This analysis is for the two-pass network: images and the slot text network.)
`split(..., max_in_degree=k)` with k > 0 is the v2 split, kept to reproduce stored runs and as an ablation:
inherited edges into a cluster already at in-degree k are dropped and no gate is compensated.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..model import init_cluster_params
from ..naming import NEURON_KEYS, ckey, ekey, is_edge_key
from ..topology import Graph, TopologyError

Params = dict[str, torch.Tensor]


@dataclass
class Change:
    graph: Graph
    params: Params
    lineage: dict[str, tuple[str, torch.Tensor | None]] = field(default_factory=dict)
    origin: Params | None = None  # the parameters the event started from (survivors are these objects)
    edges: list[tuple[int, int]] = field(default_factory=list)  # split: the edges the child inherited
    inexact: str | None = None  # split: why it changes some pass-2 output (`split_inexact_reason`); None: exact


def _check_cluster(graph: Graph, cid: int) -> None:
    if cid not in graph.clusters:
        raise TopologyError(f"cluster {cid} does not exist; clusters: {graph.ids}")


def grow(graph: Graph, params: Params, cid: int, n: int, d_in: int, d_hidden: int,
         gen: torch.Generator | None = None) -> Change:
    """Expand cluster `cid` by `n` neurons (horizontal growth). Function-preserving: new v rows are zero."""
    _check_cluster(graph, cid)
    if n < 1:
        raise ValueError(f"grow needs n >= 1, got {n}")
    g, P, lin = graph.copy(), dict(params), {}
    m = g.clusters[cid].size
    fresh = init_cluster_params(n, d_in, d_hidden, gen, cl="edge")
    fresh["v"].zero_()
    rows = torch.cat([torch.arange(m), torch.full((n,), -1)])
    for k in NEURON_KEYS:
        name = ckey(cid, k)
        P[name] = torch.cat([params[name].detach(), fresh[k].to(params[name].device)])
        lin[name] = (name, rows)
    g.clusters[cid].size = m + n
    return Change(g, P, lin, origin=params)


def reduce(graph: Graph, params: Params, cid: int, keep: list[int]) -> Change:
    """Shrink cluster `cid` to the neurons `keep` (horizontal reduction)."""
    _check_cluster(graph, cid)
    m = graph.clusters[cid].size
    keep = sorted(set(int(k) for k in keep))
    if not keep or keep[0] < 0 or keep[-1] >= m:
        raise ValueError(f"reduce needs a non-empty subset of neurons in [0, {m}), got {keep[:5]}...")
    g, P, lin = graph.copy(), dict(params), {}
    rows = torch.tensor(keep)
    for k in NEURON_KEYS:
        name = ckey(cid, k)
        P[name] = params[name].detach()[rows].clone()
        lin[name] = (name, rows)
    g.clusters[cid].size = len(keep)
    return Change(g, P, lin, origin=params)


def split(graph: Graph, params: Params, cid: int, child_neurons: list[int], step: int = 0, *,
          aggregate: str = "mean", max_in_degree: int = 0) -> Change:
    """Divide cluster `cid`: the neurons `child_neurons` move to a new cluster with the next free id, the
    same input slot, a copy of the parent's W_C (cl="source") and a zero output bias (the parent keeps its
    own). The child inherits every in- and out-edge of the parent (self-loops become parent<->child edges plus
    a self-loop on each), over the in-degree cap if need be, and each cluster that gains an in-edge has its
    in-edge gates rescaled for `aggregate` (module docstring), so the split is exact where
    `split_inexact_reason` says it is (`Change.inexact` holds its answer). `Change.edges` lists the inherited edges.
    `max_in_degree` > 0: the v2 split (edges into a cluster at that in-degree not copied, no rescaling)."""
    _check_cluster(graph, cid)
    m = graph.clusters[cid].size
    moved = sorted(set(int(k) for k in child_neurons))
    if not moved or len(moved) >= m or moved[0] < 0 or moved[-1] >= m:
        raise ValueError(f"split needs a proper non-empty subset of the {m} neurons of cluster {cid}")
    if aggregate not in ("mean", "sum"):
        raise ValueError(f"aggregate={aggregate!r}; valid: 'mean', 'sum'")
    stay = [k for k in range(m) if k not in set(moved)]
    g, P, lin = graph.copy(), dict(params), {}
    parent = g.clusters[cid]
    child = g.add_cluster(slot=parent.slot, size=len(moved), born=step, parent=cid)
    parent.size = len(stay)
    for rows, owner in ((torch.tensor(stay), cid), (torch.tensor(moved), child.id)):
        for k in NEURON_KEYS:
            P[ckey(owner, k)] = params[ckey(cid, k)].detach()[rows].clone()
            lin[ckey(owner, k)] = (ckey(cid, k), rows)
    P[ckey(child.id, "b_out")] = torch.zeros_like(params[ckey(cid, "b_out")])
    if ckey(cid, "w_c") in params:  # per-source CL: the child sends through the parent's synapse
        P[ckey(child.id, "w_c")] = params[ckey(cid, "w_c")].detach().clone()
        lin[ckey(child.id, "w_c")] = (ckey(cid, "w_c"), None)
    inherited = inherited_edges(graph, cid, child.id)
    if max_in_degree:  # v2: an inherited edge into a cluster already at the cap is dropped
        kept = []
        for (a, b), sd in inherited:
            if g.in_degree(b) < max_in_degree:
                g.add_edge(a, b, born=step)
                kept.append(((a, b), sd))
        inherited = kept
    else:
        if aggregate == "mean":  # (n+1)/n on every in-edge of a cluster that gains one: its message sum stays
            for t in sorted({b for (a, b), _ in inherited if b != child.id}):
                n = graph.in_degree(t)
                for e in graph.in_edges(t):
                    P[ekey(e.src, t)] = params[ekey(e.src, t)].detach() * ((n + 1) / n)
                    lin[ekey(e.src, t)] = (ekey(e.src, t), None)
        for (a, b), _ in inherited:
            g.add_edge(a, b, born=step)
    for (a, b), (s, d) in inherited:
        P[ekey(a, b)] = P[ekey(s, d)].detach().clone()  # the copy of the (rescaled) edge
        lin[ekey(a, b)] = (ekey(s, d), None)
    why = "v2 split" if max_in_degree else split_inexact_reason(graph, cid, aggregate)
    return Change(g, P, lin, origin=params, edges=[ab for ab, _ in inherited], inexact=why)


def inherited_edges(graph: Graph, parent: int, child: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The child's copies of the parent's edges, as (new edge, the edge whose W_C it copies): every in-edge
    j->parent gives j->child, every out-edge parent->j gives child->j, a self-loop gives parent->child,
    child->parent and child->child. The child has the highest id, so all its in-edges but its self-loop are
    feedforward and all its out-edges feedback (the module docstring: which kinds change)."""
    out = []
    for (s, d) in sorted(graph.edges):
        if s == parent and d == parent:
            out += [((parent, child), (s, d)), ((child, parent), (s, d)), ((child, child), (s, d))]
        elif d == parent:
            out.append(((s, child), (s, d)))
        elif s == parent:
            out.append(((child, d), (s, d)))
    return out


def split_inexact_reason(graph: Graph, cid: int, aggregate: str = "mean") -> str | None:
    """Why `split` of cluster `cid` changes some pass-2 output (the module docstring's conditions 1-3), or
    None when it preserves every one (f2_p' + f2_c = f2_p, every other f2 unchanged) up to float rounding."""
    _check_cluster(graph, cid)
    same = {}  # clusters whose pass-1 and pass-2 outputs agree: only feedforward edges in their ancestry
    for i in graph.ids:
        same[i] = all(e.kind == "feedforward" and same[e.src] for e in graph.in_edges(i))
    outs = sorted(d for (s, d) in graph.edges if s == cid)
    if not outs:  # only the OL reads the halves: the child's pass 2 must see what the parent's saw
        bad = [e.src for e in graph.in_edges(cid) if e.kind != "feedforward" and not same[e.src]]
        return (None if not bad else f"the parent reads cluster {bad[0]}'s pass-1 output (a feedback edge), "
                "the child its pass-2 output (a feedforward edge), and they differ")
    if any(e.kind != "feedforward" for e in graph.in_edges(cid)):
        return "the parent reads a feedback or recurrent edge, which the child (the highest id) reads as feedforward"
    if any(d > cid for d in outs) and not same[cid]:
        return ("its feedforward targets read the child's pass-1 output (a feedback edge), which differs from "
                "its pass-2 output")
    g = graph.copy()
    child = g.add_cluster(slot=graph.clusters[cid].slot, size=1, parent=cid).id
    for (a, b), _ in inherited_edges(graph, cid, child):
        g.add_edge(a, b)
    changed = {d for d in outs if d > cid}  # they miss the child in pass 1
    if aggregate == "mean":  # rescaled gates change pass 1 where feedforward in-edges exist
        changed |= {d for d in outs if d < cid and any(e.kind == "feedforward" for e in graph.in_edges(d))}
    todo = sorted(changed)
    while todo:  # and everything they feed in pass 1
        y = todo.pop()
        for (a, b), e in g.edges.items():
            if a == y and e.kind == "feedforward" and b not in changed:
                changed.add(b)
                todo.append(b)
    read = sorted(a for (a, b) in g.edges if a in changed and b <= a)
    if read:
        return f"the split changes the pass-1 output of cluster {read[0]}, which a feedback or recurrent edge reads in pass 2"
    return None


def swap(graph: Graph, params: Params, dst: int, old_src: int, new_src: int, shape: tuple[int, ...] = (),
         step: int = 0, gate: float = 0.0) -> Change:
    """Replace the in-edge old_src -> dst by new_src -> dst (`prune` then `connect`, one event): connections
    keep being revised at the in-degree cap, which a swap never raises."""
    a = prune(graph, params, old_src, dst)
    return compose(a, connect(a.graph, a.params, new_src, dst, shape, step, gate))


def connect(graph: Graph, params: Params, src: int, dst: int, shape: tuple[int, ...] = (), step: int = 0,
            gate: float = 0.0) -> Change:
    """Add the edge src -> dst; its kind follows from the ids. Its parameter has `shape` (`model.edge_shape`):
    a gate () starting at `gate` (0: function-preserving under `aggregate="sum"`; 1: the paper's formula, the
    source's message at full strength), or a per-edge W_C (d, d) starting at zero."""
    _check_cluster(graph, src)
    _check_cluster(graph, dst)
    if (src, dst) in graph.edges:
        raise TopologyError(f"edge {src}->{dst} already exists")
    if not graph.allows(src, dst):
        raise TopologyError(f"edge {src}->{dst} would carry a later position into an earlier one in a causal graph")
    g, P = graph.copy(), dict(params)
    g.add_edge(src, dst, born=step)
    like = next(iter(params.values()), torch.zeros(()))
    P[ekey(src, dst)] = torch.full(shape, gate if shape == () else 0.0, dtype=like.dtype, device=like.device)
    return Change(g, P, origin=params)


def prune(graph: Graph, params: Params, src: int, dst: int) -> Change:
    """Remove the edge src -> dst and its W_C."""
    if (src, dst) not in graph.edges:
        raise TopologyError(f"edge {src}->{dst} does not exist")
    g, P = graph.copy(), dict(params)
    del g.edges[(src, dst)]
    del P[ekey(src, dst)]
    return Change(g, P, origin=params)


def prune_all(graph: Graph, params: Params) -> Change:
    """Remove every connection (the paper's Table 5 ablation)."""
    g, P = graph.copy(), {k: v for k, v in params.items() if not is_edge_key(k)}
    g.edges.clear()
    return Change(g, P, origin=params)


def compose(a: Change, b: Change) -> Change:
    """Lineage of b applied after a, expressed against a's inputs."""
    lin = {}
    for name, t in b.params.items():
        if name in b.lineage:
            src, rows = b.lineage[name]
            if src in a.lineage:
                src0, rows0 = a.lineage[src]
                if rows0 is not None and rows is not None:
                    rows = torch.where(rows >= 0, rows0[rows.clamp(min=0)], rows)
                elif rows0 is not None:
                    rows = rows0
                src = src0
            lin[name] = (src, rows)
        elif name in a.lineage and t is a.params.get(name):
            lin[name] = a.lineage[name]
    return Change(b.graph, b.params, lin, a.origin if a.origin is not None else a.params, b.edges)
