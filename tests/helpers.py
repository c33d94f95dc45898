"""Small random LuminaNets for tests."""
from __future__ import annotations

import random

import torch

from lumina.model import LuminaNet, ckey, ekey, init_cluster_params, init_edge_weight
from lumina.topology import Graph


def random_graph(n_slots: int = 12, size: int = 6, n_splits: int = 6, n_edges: int = 30, seed: int = 0) -> Graph:
    """An 'evolved-looking' topology: initial clusters, some splits (same slot), random typed edges."""
    rng = random.Random(seed)
    g = Graph.initial(n_slots, size)
    for _ in range(n_splits):
        parent = g.clusters[rng.choice(g.ids)]
        g.add_cluster(slot=parent.slot, size=rng.randint(2, 2 * size), parent=parent.id)
    for _ in range(n_edges):
        g.add_edge(rng.choice(g.ids), rng.choice(g.ids))
    for c in g.clusters.values():
        c.size = rng.randint(2, 2 * size)
    return g


def random_params(g: Graph, d_in: int, d_hidden: int, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    p = {}
    for c in g.clusters.values():
        for k, t in init_cluster_params(c.size, d_in, d_hidden, gen).items():
            p[ckey(c.id, k)] = t
    for (s, d) in g.edges:
        p[ekey(s, d)] = init_edge_weight(d_hidden, gen)
    return p


def image_model(g: Graph | None = None, d_hidden: int = 8, aggregate: str = "mean", seed: int = 0) -> LuminaNet:
    base = LuminaNet(Graph.initial(12, 4), d_in=256, d_hidden=d_hidden, n_out=10, aggregate=aggregate, seed=seed)
    if g is not None:
        base.set_topology(g, random_params(g, 256, d_hidden, seed))
    return base
