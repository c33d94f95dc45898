"""Topology of a LuminaNet: which Neuron Clusters exist, their sizes, and the typed edges between them.

Plain, serialisable data with no tensors (STYLE.md). Parameters live in `lumina.model.LuminaNet`.

Ordering (paper, "Two-Pass Forward"): clusters are ordered by id, and ids are never reused, so a cluster
created by `split` takes the next free index. An edge `j -> i` is
  - `feedforward` when j < i   (used in both passes),
  - `feedback`    when j > i   (pass 2 only, carries j's pass-1 output),
  - `recurrent`   when j == i  (a self-loop; pass 2 only, carries i's own pass-1 output).
The kind is therefore a function of the ids; it is stored for readability and checked by `validate`.
"""
from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field

EDGE_KINDS = ("feedforward", "feedback", "recurrent")


def is_feedforward(src, dst):
    """Whether an edge src -> dst is feedforward (read in pass 1; in pass 2 it carries the source's pass-2
    output, any other edge its pass-1 output). Ids or, elementwise, broadcastable arrays of ids."""
    return src < dst


def edge_kind(src: int, dst: int) -> str:
    return "feedforward" if is_feedforward(src, dst) else ("recurrent" if src == dst else "feedback")


@dataclass
class Cluster:
    id: int  # unique, never reused; also the cluster's position in the order
    slot: int  # which input the IL reads (an image patch or a token position)
    size: int  # m_i, number of neurons in the NL
    born: int = 0  # training step at which the cluster was created
    parent: int | None = None  # the cluster it was split from


@dataclass
class Edge:
    src: int
    dst: int
    kind: str
    born: int = 0


class TopologyError(ValueError):
    """An invalid topology (dangling edge, duplicate id, wrong edge kind, ...)."""


@dataclass
class Graph:
    n_slots: int  # number of distinct inputs (12 patches for CIFAR-10, L positions for text)
    causal: bool = False  # text: every edge goes from a slot to the same or a later slot (book chapter 4)
    clusters: dict[int, Cluster] = field(default_factory=dict)
    edges: dict[tuple[int, int], Edge] = field(default_factory=dict)
    next_id: int = 0

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def initial(cls, n_slots: int, size: int, connect: str = "none", causal: bool = False,
                per_slot: int = 1, seed: int = 0) -> "Graph":
        """`per_slot` clusters per slot (a recurrent text network: one slot, the current token, read by every
        cluster). `connect="none"` evolves connections from scratch (the paper's default); `"dense"` adds every
        feedforward edge (the densely connected start of Table 5); `"dense_fb"` adds every feedforward and
        every feedback edge (a fixed two-way wiring); `"recurrent"` a self-loop on every cluster. Causal text
        patterns [ours]: `"multiscale"`: slot t reads slots t-1, t-2, t-4, ... and itself (a self-loop);
        `"random"`: 3 random earlier slots (drawn from `seed`) and itself."""
        g = cls(n_slots=n_slots, causal=causal)
        for s in range(n_slots):
            for _ in range(per_slot):
                g.add_cluster(slot=s, size=size)
        ids = g.ids
        if connect in ("dense", "dense_fb"):
            for a, j in enumerate(ids):
                for i in ids[a + 1:]:
                    g.add_edge(j, i)
                    if connect == "dense_fb" and not causal:
                        g.add_edge(i, j)
        elif connect == "recurrent":
            for i in ids:
                g.add_edge(i, i)
        elif connect in ("multiscale", "random"):
            if per_slot != 1:
                raise ValueError(f"init_connect={connect!r} wires one cluster per slot, got per_slot={per_slot}")
            rng = random.Random(f"init-{seed}")
            for t in ids:
                if connect == "multiscale":
                    srcs = [t - 2 ** k for k in range(t.bit_length()) if t - 2 ** k >= 0]
                else:
                    srcs = rng.sample(range(t), min(3, t))
                for j in sorted(srcs) + [t]:
                    g.add_edge(j, t)
        elif connect != "none":
            raise ValueError(f"unknown initial connectivity {connect!r}; valid: 'none', 'dense', 'dense_fb', "
                             "'recurrent', 'multiscale', 'random'")
        return g

    def add_cluster(self, slot: int, size: int, born: int = 0, parent: int | None = None) -> Cluster:
        c = Cluster(id=self.next_id, slot=slot, size=size, born=born, parent=parent)
        self.clusters[c.id] = c
        self.next_id += 1
        return c

    def add_edge(self, src: int, dst: int, born: int = 0) -> Edge:
        if src not in self.clusters or dst not in self.clusters:
            raise TopologyError(f"edge {src}->{dst} refers to a cluster that does not exist")
        e = Edge(src, dst, edge_kind(src, dst), born)
        self.edges[(src, dst)] = e
        return e

    def remove_cluster(self, cid: int) -> None:
        del self.clusters[cid]
        for k in [k for k in self.edges if cid in k]:
            del self.edges[k]

    def copy(self) -> "Graph":
        return Graph(n_slots=self.n_slots, causal=self.causal, next_id=self.next_id,
                     clusters={i: Cluster(c.id, c.slot, c.size, c.born, c.parent) for i, c in self.clusters.items()},
                     edges={k: Edge(e.src, e.dst, e.kind, e.born) for k, e in self.edges.items()})

    # ---- queries ------------------------------------------------------------------------------
    @property
    def ids(self) -> list[int]:
        return sorted(self.clusters)

    def allows(self, src: int, dst: int) -> bool:
        """Whether an edge src -> dst may exist: in a causal graph only from a slot to the same or a later one."""
        return not self.causal or self.clusters[src].slot <= self.clusters[dst].slot

    def in_degree(self, i: int) -> int:
        return sum(1 for (_, d) in self.edges if d == i)

    def in_degrees(self) -> dict[int, int]:
        """{cluster: in-degree} of every cluster, in one pass over the edges (in_degree per cluster is one pass each)."""
        out = dict.fromkeys(self.clusters, 0)
        for (_, d) in self.edges:
            out[d] += 1
        return out

    def in_edges(self, i: int) -> list[Edge]:
        return sorted((e for e in self.edges.values() if e.dst == i), key=lambda e: e.src)

    def levels(self) -> list[list[int]]:
        """Clusters grouped by feedforward depth: a cluster's level is 1 + the max level of its
        feedforward sources. Every cluster of a level can run as one batched operation in both passes."""
        level: dict[int, int] = {}
        for i in self.ids:  # ids are a topological order of the feedforward edges
            srcs = [e.src for e in self.in_edges(i) if e.kind == "feedforward"]
            level[i] = 1 + max((level[j] for j in srcs), default=-1)
        out: list[list[int]] = [[] for _ in range(1 + max(level.values(), default=-1))]
        for i in self.ids:
            out[level[i]].append(i)
        return out

    def n_neurons(self) -> int:
        return sum(c.size for c in self.clusters.values())

    def edge_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(EDGE_KINDS, 0)
        for e in self.edges.values():
            counts[e.kind] += 1
        return counts

    # ---- checks and (de)serialisation ---------------------------------------------------------
    def validate(self) -> "Graph":
        if not self.clusters:
            raise TopologyError("a topology needs at least one cluster")
        for cid, c in self.clusters.items():
            if cid != c.id:
                raise TopologyError(f"cluster stored under id {cid} says its id is {c.id}")
            if c.size < 1:
                raise TopologyError(f"cluster {cid} has size {c.size}; sizes must be >= 1")
            if not 0 <= c.slot < self.n_slots:
                raise TopologyError(f"cluster {cid} reads slot {c.slot}, outside [0, {self.n_slots})")
            if cid >= self.next_id:
                raise TopologyError(f"cluster id {cid} >= next_id {self.next_id}: ids would be reused")
        for (s, d), e in self.edges.items():
            if (e.src, e.dst) != (s, d):
                raise TopologyError(f"edge stored as {s}->{d} says it is {e.src}->{e.dst}")
            if s not in self.clusters or d not in self.clusters:
                raise TopologyError(f"dangling edge {s}->{d}: cluster {s if s not in self.clusters else d} does not exist")
            if e.kind not in EDGE_KINDS:
                raise TopologyError(f"edge {s}->{d} has unknown kind {e.kind!r}; valid: {EDGE_KINDS}")
            if not self.allows(s, d):
                raise TopologyError(f"edge {s}->{d} goes from slot {self.clusters[s].slot} to the earlier slot "
                                    f"{self.clusters[d].slot}: a causal graph only wires forwards in position")
            if e.kind != edge_kind(s, d):
                raise TopologyError(
                    f"edge {s}->{d} is marked {e.kind!r} but must be {edge_kind(s, d)!r}: feedforward edges "
                    "go from a lower to a higher index, feedback edges backwards, recurrent ones are self-loops")
        return self

    def to_dict(self) -> dict:
        return {
            "n_slots": self.n_slots,
            "causal": self.causal,
            "next_id": self.next_id,
            "clusters": [asdict(self.clusters[i]) for i in self.ids],
            "edges": [asdict(e) for _, e in sorted(self.edges.items())],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Graph":
        try:
            g = cls(n_slots=int(d["n_slots"]), causal=bool(d.get("causal", False)), next_id=int(d["next_id"]))
            for c in d["clusters"]:
                if c["id"] in g.clusters:
                    raise TopologyError(f"duplicate cluster id {c['id']}")
                g.clusters[c["id"]] = Cluster(**c)
            for e in d["edges"]:
                if (e["src"], e["dst"]) in g.edges:
                    raise TopologyError(f"duplicate edge {e['src']}->{e['dst']}")
                g.edges[(e["src"], e["dst"])] = Edge(**e)
        except (KeyError, TypeError) as err:
            raise TopologyError(f"malformed topology: {err!r}; expected keys n_slots, next_id, clusters, edges") from err
        return g.validate()

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Graph":
        return cls.from_dict(json.loads(text))

    def to_networkx(self):
        import networkx as nx

        g = nx.DiGraph()
        for c in self.clusters.values():
            g.add_node(c.id, **asdict(c))
        for e in self.edges.values():
            g.add_edge(e.src, e.dst, kind=e.kind, born=e.born)
        return g


def random_graph(n_slots: int = 12, size: int = 6, n_splits: int = 6, n_edges: int = 30, seed: int = 0,
                 causal: bool = False) -> Graph:
    """An 'evolved-looking' topology for tests and benchmarks: the initial clusters, `n_splits` split children
    (same slot as their parent), random typed edges (only forwards in position when `causal`), random sizes."""
    rng = random.Random(seed)
    g = Graph.initial(n_slots, size, causal=causal)
    for _ in range(n_splits):
        parent = g.clusters[rng.choice(g.ids)]
        g.add_cluster(slot=parent.slot, size=size, parent=parent.id)
    for _ in range(n_edges):
        j, i = rng.choice(g.ids), rng.choice(g.ids)
        if g.allows(j, i):
            g.add_edge(j, i)
    for c in g.clusters.values():
        c.size = rng.randint(2, 2 * size)
    return g.validate()
