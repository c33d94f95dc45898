"""Analyses of evolved networks: the pruning test (paper, Table 5) and convergence across seeds."""
from __future__ import annotations

import itertools
import random
import statistics

from . import stats
from .build import make_task
from .config import ExperimentConfig
from .evolution import ops
from .results import load_network, result_dir
from .topology import Graph, edge_kind


def remove_all_connections(model):
    """The same network with every CL edge (and its W_C) removed, in place."""
    ch = ops.prune_all(model.graph, model.params_dict())
    model.set_topology(ch.graph, ch.params)
    return model


def pruning_test(cfg: ExperimentConfig, task=None) -> dict:
    """Test metrics of a stored evolved network with its connections, and after removing all of them."""
    task = task or make_task(cfg)
    model, _ = load_network(result_dir(cfg) / "network", cfg)
    before = task.evaluate(model)
    n_edges = len(model.graph.edges)
    after = task.evaluate(remove_all_connections(model))
    return {"edges": n_edges, "before": before, "after": after}


def random_graph_like(g: Graph, rng: random.Random) -> Graph:
    """Same clusters (ids, slots, sizes), the same number of edges placed uniformly at random (among the
    edges the graph allows: a causal graph gets only edges that go forwards in position)."""
    r = Graph(n_slots=g.n_slots, causal=g.causal, next_id=g.next_id)
    for c in g.clusters.values():
        r.clusters[c.id] = type(c)(**vars(c))
    pairs = [(j, i) for j in g.ids for i in g.ids if r.allows(j, i)]  # causal (text): only forwards in position
    for (j, i) in rng.sample(pairs, min(len(g.edges), len(pairs))):
        r.add_edge(j, i)
    assert all(e.kind == edge_kind(e.src, e.dst) for e in r.edges.values())
    return r


def seed_convergence(graphs: list[Graph], n_random: int = 20, seed: int = 0) -> dict:
    """Mean pairwise similarity of evolved graphs vs that of random graphs with the same clusters and edge counts."""
    rng = random.Random(seed)
    evolved = [stats.similarity(a, b) for a, b in itertools.combinations(graphs, 2)]
    rand = [stats.similarity(random_graph_like(graphs[0], rng), random_graph_like(graphs[1], rng)) for _ in range(n_random)]
    return {"evolved": statistics.mean(evolved) if evolved else float("nan"),
            "random_mean": statistics.mean(rand), "random_sd": statistics.pstdev(rand), "n_random": n_random}
