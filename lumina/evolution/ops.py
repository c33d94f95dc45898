"""The evolution mechanisms [paper]: splitting, growth (expansion and reduction), connection (and pruning).

Each op is a pure function `(graph, params, ...) -> Change(graph, params, lineage)`: it never mutates its
inputs. `params` maps names (`lumina.model.ckey/ekey`) to tensors; untouched tensors are passed through as
the same objects, so their optimizer state survives unchanged. `lineage[name] = (old_name, rows)` says where
a changed tensor came from: `rows[k]` is the old row that new row k copies (-1 = fresh), or `rows=None` for a
whole-tensor copy; names missing from `lineage` and not passed through are fresh.

Which ops preserve the network's function exactly (tested in tests/test_evolution_ops.py):
  - `grow` (expansion): always. New neurons get zero output weights (v rows), so f_i is unchanged.
  - `reduce`: exactly when the removed neurons have zero output weights; otherwise it is a small change.
  - `connect`: with `aggregate="sum"`; the new edge's gate (or per-edge W_C) is zero. With the paper's mean
    it also dilutes the other messages into the target by n/(n+1).
  - `prune`: with `aggregate="sum"` when the removed edge's gate (or W_C) is zero.
  - `split`: the parent's neurons are divided between parent and child; the child copies the parent's W_C
    and inherits its in- and out-edges (those the in-degree cap admits), so f_parent' + f_child = f_parent
    and W_C f_parent' + W_C f_child = W_C f_parent. Σ_i f_i is then unchanged (the OL reads it through
    LayerNorm(mean), so the logits agree up to LayerNorm's eps) for a cluster whose edges keep their kind
    (e.g. an isolated cluster). In general the child's higher index turns some inherited edges into another
    kind, the cap drops some, and the mean's 1/n changes, so it is not function-preserving.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..model import NEURON_KEYS, ckey, ekey, init_cluster_params
from ..topology import Graph, TopologyError

Params = dict[str, torch.Tensor]


@dataclass
class Change:
    graph: Graph
    params: Params
    lineage: dict[str, tuple[str, torch.Tensor | None]] = field(default_factory=dict)
    origin: Params | None = None  # the parameters the event started from (survivors are these objects)
    edges: list[tuple[int, int]] = field(default_factory=list)  # split: the edges the child inherited


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


def split(graph: Graph, params: Params, cid: int, child_neurons: list[int], step: int = 0,
          max_in_degree: int = 0) -> Change:
    """Divide cluster `cid`: the neurons `child_neurons` move to a new cluster with the next free id, the
    same input slot, a copy of the parent's W_C (cl="source") and of its in- and out-edges (self-loops become
    parent<->child edges plus a self-loop on each), and a zero output bias (the parent keeps its own).
    With `max_in_degree` > 0 an inherited edge into a cluster already at that in-degree is not copied:
    inherited edges count against the cap like any other (`Change.edges` lists those that were)."""
    _check_cluster(graph, cid)
    m = graph.clusters[cid].size
    moved = sorted(set(int(k) for k in child_neurons))
    if not moved or len(moved) >= m or moved[0] < 0 or moved[-1] >= m:
        raise ValueError(f"split needs a proper non-empty subset of the {m} neurons of cluster {cid}")
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
    copied = []
    for (a, b), (s, d) in inherited_edges(graph, cid, child.id):
        if max_in_degree and g.in_degree(b) >= max_in_degree:
            continue
        g.add_edge(a, b, born=step)
        P[ekey(a, b)] = params[ekey(s, d)].detach().clone()
        lin[ekey(a, b)] = (ekey(s, d), None)
        copied.append((a, b))
    return Change(g, P, lin, origin=params, edges=copied)


def inherited_edges(graph: Graph, parent: int, child: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The child's copies of the parent's edges, as (new edge, the edge whose W_C it copies): every in-edge
    j->parent gives j->child, every out-edge parent->j gives child->j, a self-loop gives parent->child,
    child->parent and child->child."""
    out = []
    for (s, d) in sorted(graph.edges):
        if s == parent and d == parent:
            out += [((parent, child), (s, d)), ((child, parent), (s, d)), ((child, child), (s, d))]
        elif d == parent:
            out.append(((s, child), (s, d)))
        elif s == parent:
            out.append(((child, d), (s, d)))
    return out


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
    g, P = graph.copy(), {k: v for k, v in params.items() if not k.startswith("e")}
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
