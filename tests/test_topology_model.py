"""Topology as data, the four layers, and the two executors of the two-pass forward."""
import json

import pytest
import torch

from lumina.model import LuminaNet, forward_reference, image_to_patches
from lumina.topology import Graph, TopologyError
from tests.helpers import image_model, random_graph


def test_initial_graph_one_cluster_per_patch():
    g = Graph.initial(12, 64)
    assert g.ids == list(range(12)) and not g.edges and g.next_id == 12
    dense = Graph.initial(4, 8, connect="dense")
    assert set(dense.edges) == {(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)}
    assert all(e.kind == "feedforward" for e in dense.edges.values())


def test_edge_kinds_follow_ids():
    g = Graph.initial(3, 4)
    assert g.add_edge(0, 2).kind == "feedforward"
    assert g.add_edge(2, 0).kind == "feedback"
    assert g.add_edge(1, 1).kind == "recurrent"


def test_json_and_networkx_round_trip():
    g = random_graph(seed=3)
    g2 = Graph.from_json(g.to_json())
    assert g2.to_dict() == g.to_dict()
    nxg = g.to_networkx()
    assert nxg.number_of_nodes() == len(g.clusters) and nxg.number_of_edges() == len(g.edges)
    assert {d["kind"] for *_, d in nxg.edges(data=True)} <= {"feedforward", "feedback", "recurrent"}


def test_ids_are_never_reused():
    g = Graph.initial(3, 4)
    g.remove_cluster(2)
    assert g.add_cluster(slot=0, size=4).id == 3


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["edges"].append({"src": 0, "dst": 99, "kind": "feedforward", "born": 0}), "dangling"),
    (lambda d: d["clusters"].append(dict(d["clusters"][0])), "duplicate cluster id"),
    (lambda d: d["edges"].append({"src": 2, "dst": 1, "kind": "feedforward", "born": 0}), "must be 'feedback'"),
    (lambda d: d["clusters"][0].update(size=0), "size"),
    (lambda d: d.pop("edges"), "malformed"),
])
def test_invalid_topology_json_is_refused(mutate, message):
    d = Graph.initial(3, 4).to_dict()
    mutate(d)
    with pytest.raises(TopologyError, match=message):
        Graph.from_json(json.dumps(d))


def test_patches_are_channelwise_16x16():
    x = torch.arange(3 * 32 * 32, dtype=torch.float32).view(1, 3, 32, 32)
    p = image_to_patches(x, 16)
    assert p.shape == (1, 12, 256)
    assert torch.equal(p[0, 0], x[0, 0, :16, :16].flatten())  # red, top-left
    assert torch.equal(p[0, 5], x[0, 1, :16, 16:].flatten())  # green, top-right
    assert torch.equal(p[0, 11], x[0, 2, 16:, 16:].flatten())  # blue, bottom-right


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("aggregate", ["mean", "sum"])
def test_fast_executor_matches_reference(seed, aggregate):
    g = random_graph(seed=seed, n_edges=10 + 8 * seed)
    m = image_model(g, aggregate=aggregate, seed=seed)
    x = torch.randn(5, 3, 32, 32)
    assert torch.allclose(m(x, "fast"), m(x, "reference"), atol=1e-5)
    # and the gradients agree too
    ga = torch.autograd.grad(m(x, "fast").square().sum(), list(m.parameters()))
    gb = torch.autograd.grad(m(x, "reference").square().sum(), list(m.parameters()))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(ga, gb))


def test_two_pass_semantics_by_hand():
    """Pass 1 uses feedforward sources only; pass 2 reads lower ids' pass-2 output and higher ids' pass-1 output."""
    g = Graph.initial(12, 3)
    g.add_edge(0, 1)   # feedforward
    g.add_edge(1, 0)   # feedback: 0 reads 1's pass-1 output in pass 2
    g.add_edge(1, 1)   # recurrent
    m = image_model(g, d_hidden=4)
    X = m.encode_inputs(torch.randn(2, 3, 32, 32))
    p = m.cluster_views()
    gelu = torch.nn.functional.gelu
    e = {i: gelu(X[:, i] @ p[f"c{i}_w_in"].T + p[f"c{i}_b_in"]) for i in (0, 1)}
    out = lambda i, s: gelu(e[i] + s @ p[f"c{i}_u"].T) @ p[f"c{i}_v"] + p[f"c{i}_b_out"]
    W = lambda j, i: p[f"e{j}_{i}"]
    f1_0 = out(0, torch.zeros(2, 4))
    f1_1 = out(1, f1_0 @ W(0, 1).T)
    f2_0 = out(0, (f1_1 @ W(1, 0).T))  # mean over one in-edge
    f2_1 = out(1, (f2_0 @ W(0, 1).T + f1_1 @ W(1, 1).T) / 2)
    f2 = forward_reference(m, X)
    assert torch.allclose(f2[0], f2_0, atol=1e-6) and torch.allclose(f2[1], f2_1, atol=1e-6)


def test_every_parameter_gets_a_finite_gradient():
    g = random_graph(seed=1)
    m = image_model(g)
    m(torch.randn(4, 3, 32, 32)).logsumexp(1).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_token_input_one_cluster_per_position():
    m = LuminaNet(Graph.initial(8, 5), d_in=6, d_hidden=4, n_out=50, input_kind="tokens", vocab_size=50)
    out = m(torch.randint(0, 50, (3, 8)))
    assert out.shape == (3, 50)
    with pytest.raises(ValueError, match="token ids must lie in"):
        m(torch.full((1, 8), 50))
    with pytest.raises(ValueError, match=r"shape \(B, 8\)"):
        m(torch.zeros(1, 7, dtype=torch.long))


@pytest.mark.parametrize("bad, message", [
    (torch.randn(2, 1, 32, 32), "shape"),
    (torch.randn(2, 3, 28, 28), "shape"),
    (torch.zeros(2, 3, 32, 32, dtype=torch.uint8), "float"),
])
def test_bad_images_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        image_model()(bad)
