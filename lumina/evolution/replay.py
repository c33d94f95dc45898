"""Rebuild a run's structure at any moment from its event log, and compare two structures.

The event log holds every topological decision (connect/prune: the edge; swap: the edge removed and the
edge added; grow/reduce: the sizes; split: parent, child, their sizes and the edges the child inherited),
so replaying it on the initial graph reproduces the topology exactly, without weights.
"""
from __future__ import annotations

from ..topology import Graph
from .ops import inherited_edges


def apply_event(g: Graph, e: dict) -> None:
    op, cl = e["op"], e["clusters"]
    if op == "connect":
        g.add_edge(cl[0], cl[1], born=e["step"])
    elif op == "prune":
        del g.edges[(cl[0], cl[1])]
    elif op == "swap":  # old src, new src, dst
        del g.edges[(cl[0], cl[2])]
        g.add_edge(cl[1], cl[2], born=e["step"])
    elif op in ("grow", "reduce"):
        g.clusters[cl[0]].size = e["after"][0]
    elif op == "split":
        parent, child = cl
        g.clusters[parent].size = e["after"][0]
        new = g.add_cluster(slot=g.clusters[parent].slot, size=e["after"][1], born=e["step"], parent=parent)
        if new.id != child:
            raise ValueError(f"event log out of order: split of {parent} should create {child}, got {new.id}")
        # the edges the child inherited (logged: v2's split let the in-degree cap drop some), else the rule
        inherited = e.get("edges", [ab for ab, _ in inherited_edges(g, parent, child)])
        for a, b in inherited:
            g.add_edge(a, b, born=e["step"])
    else:
        raise ValueError(f"unknown event op {op!r}")


def replay(initial: Graph, events: list[dict], upto: int | None = None) -> Graph:
    """The topology after the first `upto` events (all when None)."""
    g = initial.copy()
    for e in events[: upto if upto is not None else len(events)]:
        apply_event(g, e)
    return g.validate()


def frames(initial: Graph, events: list[dict]) -> list[tuple[int, Graph]]:
    """(step, topology) after each evolution step that changed something."""
    out, g = [(0, initial.copy())], initial.copy()
    for k, e in enumerate(events):
        apply_event(g, e)
        if k + 1 == len(events) or events[k + 1]["step"] != e["step"]:
            out.append((e["step"], g.copy()))
    return out


def diff(a: Graph, b: Graph) -> dict:
    """Clusters and edges added and removed going from a to b, and clusters whose size changed."""
    return {
        "clusters_added": sorted(set(b.clusters) - set(a.clusters)),
        "clusters_removed": sorted(set(a.clusters) - set(b.clusters)),
        "edges_added": sorted(set(b.edges) - set(a.edges)),
        "edges_removed": sorted(set(a.edges) - set(b.edges)),
        "resized": {i: (a.clusters[i].size, b.clusters[i].size) for i in set(a.clusters) & set(b.clusters)
                    if a.clusters[i].size != b.clusters[i].size},
    }
