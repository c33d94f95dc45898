"""Names of a LuminaNet's stored tensors: one home for the convention that ops, the optimizer, checkpoints and
the executors share (so no code tests a key's first letter).

    c{id}_{w_in|b_in|u|v|b_out|w_c}   a Neuron Cluster's tensors (`ckey`); w_in, b_in, u, v have one row per neuron
    e{src}_{dst}                      an edge's gate or per-edge W_C (`ekey`)
    embed.weight, norm.*, head.*      the token table and the OL: module names, with a dot
"""
from __future__ import annotations

NEURON_KEYS = ("w_in", "b_in", "u", "v")  # tensors with one row per neuron


def ckey(cid: int, name: str) -> str:
    return f"c{cid}_{name}"


def ekey(src: int, dst: int) -> str:
    return f"e{src}_{dst}"


def cluster_keys(cl: str) -> tuple[str, ...]:
    """The tensors of one cluster under CL form `cl` (a per-source CL adds the source's W_C)."""
    return (*NEURON_KEYS, "b_out", "w_c") if cl == "source" else (*NEURON_KEYS, "b_out")


def param_keys(graph, cl: str) -> set[str]:
    """The names of every tensor a topology's clusters and edges must have under CL form `cl`."""
    return {ckey(c, k) for c in graph.clusters for k in cluster_keys(cl)} | {ekey(s, d) for (s, d) in graph.edges}


def is_edge_key(name: str) -> bool:
    """Whether `name` is an edge's tensor (`ekey`)."""
    a, _, b = name[1:].partition("_")
    return name.startswith("e") and a.isdigit() and b.isdigit()


def is_module_key(name: str) -> bool:
    """Whether `name` belongs to the OL or the token table (a module's state-dict name), not to a cluster or edge."""
    return "." in name
