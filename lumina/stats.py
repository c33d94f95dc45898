"""Topology statistics of an evolved LuminaNet (the paper's structure claims: depth and recurrence by width,
convergence across seeds; their values are in `lumina.paper`).

Definitions (used the same way in the book):
  - **topological depth**: the number of Neuron Clusters on the longest feedforward path (a network
    without edges has depth 1). This is the number of sequential steps of one pass.
  - **recurrent structure**: a feedback or recurrent edge j→i (j >= i) that closes a directed cycle,
    i.e. a self-loop, or a feedback edge for which a feedforward path i → ... → j exists. Each such edge
    is counted once; a feedback edge that closes no cycle is only a skip backwards and is not counted.
  - **readout-only neurons**: the neurons of clusters that send to no other cluster (no out-edge, or only a
    self-loop): their output reaches the readout and nothing else.
  - **similarity** of two architectures: the cosine similarity of their wiring histograms, which count the
    edges of each (source slot, target slot, kind): which inputs (patches, token positions) talk to which,
    and how. It is independent of cluster ids (a split child has its parent's slot), 1 = the same wiring
    counts, and ignores weights and cluster sizes. Exact subgraph matching (e.g. Weisfeiler-Lehman hashes)
    is too strict for graphs with dozens of edges per node: two runs then never share a hash.
"""
from __future__ import annotations

import math
from collections import Counter

import networkx as nx

from .topology import Graph


def depth(g: Graph) -> int:
    return len(g.levels())


def recurrent_structures(g: Graph) -> int:
    ff = nx.DiGraph()
    ff.add_nodes_from(g.ids)
    ff.add_edges_from(k for k, e in g.edges.items() if e.kind == "feedforward")
    n = 0
    for (j, i), e in g.edges.items():
        if e.kind == "recurrent" or (e.kind == "feedback" and nx.has_path(ff, i, j)):
            n += 1
    return n


def summary(g: Graph) -> dict:
    sizes = [g.clusters[i].size for i in g.ids]
    return {"n_clusters": len(sizes), "n_neurons": sum(sizes), "sizes": sizes, "depth": depth(g),
            "recurrent_structures": recurrent_structures(g), "edges": len(g.edges), **g.edge_counts()}


def readout_only(g: Graph) -> float:
    """Fraction of the neurons that sit in clusters whose output reaches no other cluster."""
    senders = {j for (j, i) in g.edges if j != i}
    total = sum(c.size for c in g.clusters.values())
    return sum(c.size for i, c in g.clusters.items() if i not in senders) / total if total else 0.0


def wiring(g: Graph) -> Counter:
    return Counter((g.clusters[j].slot, g.clusters[i].slot, e.kind) for (j, i), e in g.edges.items())


def similarity(a: Graph, b: Graph) -> float:
    ha, hb = wiring(a), wiring(b)
    dot = sum(ha[k] * hb[k] for k in ha)
    na, nb = math.sqrt(sum(v * v for v in ha.values())), math.sqrt(sum(v * v for v in hb.values()))
    return dot / (na * nb) if na and nb else 0.0
