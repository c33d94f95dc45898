"""Small random LuminaNets for tests: evolved-looking topologies (splits, typed edges) with random weights."""
from __future__ import annotations

import random

import torch

from lumina.model import LuminaNet, ckey, ekey, init_cluster_params
from lumina.topology import Graph


def random_graph(n_slots: int = 12, size: int = 6, n_splits: int = 6, n_edges: int = 30, seed: int = 0,
                 causal: bool = False) -> Graph:
    """An 'evolved-looking' topology: initial clusters, some split children (same slot as their parent, a
    higher id), random typed edges (feedforward, feedback, recurrent) and random sizes. With `causal`, only
    edges the causal graph allows (slot(src) <= slot(dst)); feedback edges then come from split children."""
    rng = random.Random(seed)
    g = Graph.initial(n_slots, size, causal=causal)
    for _ in range(n_splits):
        parent = g.clusters[rng.choice(g.ids)]
        g.add_cluster(slot=parent.slot, size=rng.randint(2, 2 * size), parent=parent.id)
    pairs = [(j, i) for j in g.ids for i in g.ids if g.allows(j, i)]
    for j, i in rng.sample(pairs, min(n_edges, len(pairs))):
        g.add_edge(j, i)
    for c in g.clusters.values():
        c.size = rng.randint(2, 2 * size)
    return g.validate()


def random_params(g: Graph, d_in: int, d_hidden: int, seed: int = 0, cl: str = "source") -> dict[str, torch.Tensor]:
    """Per-cluster/edge parameters for `g`. Edge gates are random too (not the init's 1), so an edge whose
    weight landed on another edge changes the output."""
    gen = torch.Generator().manual_seed(seed)
    p = {}
    for c in g.clusters.values():
        for k, t in init_cluster_params(c.size, d_in, d_hidden, gen, cl).items():
            p[ckey(c.id, k)] = t
    for (s, d) in g.edges:
        p[ekey(s, d)] = (torch.rand((), generator=gen) + 0.5 if cl == "source"
                         else (torch.rand(d_hidden, d_hidden, generator=gen) * 2 - 1) / d_hidden ** 0.5)
    return p


def image_model(g: Graph | None = None, d_hidden: int = 8, aggregate: str = "mean", seed: int = 0,
                cl: str = "source", image_readout: str = "mean") -> LuminaNet:
    """A CIFAR-shaped LuminaNet (12 patches of 16x16): `g` with random weights, or 12 clusters of 4."""
    g = g if g is not None else Graph.initial(12, 4)
    return LuminaNet(g, d_in=256, d_hidden=d_hidden, n_out=10, aggregate=aggregate, cl=cl, seed=seed,
                     image_readout=image_readout, params=random_params(g, 256, d_hidden, seed, cl))


def text_model(g: Graph, vocab: int = 40, d_in: int = 6, d_hidden: int = 8, aggregate: str = "mean", seed: int = 0,
               cl: str = "source") -> LuminaNet:
    """A token LuminaNet over the slots (positions) of `g`, with random weights."""
    return LuminaNet(g, d_in=d_in, d_hidden=d_hidden, n_out=vocab, input_kind="tokens", vocab_size=vocab,
                     aggregate=aggregate, cl=cl, seed=seed, params=random_params(g, d_in, d_hidden, seed, cl))


def untimed(history: list[dict]) -> list[dict]:
    """A run's history without its wall-clock times (the only fields that differ between identical runs)."""
    return [{k: v for k, v in h.items() if k != "train_s"} for h in history]
