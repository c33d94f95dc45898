"""Topology as data, the four layers, and the two executors of the two-pass forward (both CL forms)."""
import json

import pytest
import torch
import torch.nn.functional as F

from lumina import executor, gather
from lumina.executor import size_groups
from lumina.model import LuminaNet, ckey, ekey, forward_reference, image_to_patches
from lumina.topology import Graph, TopologyError
from tests.helpers import image_model, random_graph, random_params, text_model


def test_initial_graph_one_cluster_per_patch():
    g = Graph.initial(12, 64)
    assert g.ids == list(range(12)) and not g.edges and g.next_id == 12 and not g.causal
    dense = Graph.initial(4, 8, connect="dense")
    assert set(dense.edges) == {(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)}
    assert all(e.kind == "feedforward" for e in dense.edges.values())
    both = Graph.initial(3, 8, connect="dense_fb")
    assert set(both.edges) == {(0, 1), (0, 2), (1, 2), (1, 0), (2, 0), (2, 1)}
    causal = Graph.initial(3, 8, connect="dense_fb", causal=True)  # no edge backwards in position
    assert causal.causal and set(causal.edges) == {(0, 1), (0, 2), (1, 2)}
    with pytest.raises(ValueError, match="unknown initial connectivity"):
        Graph.initial(3, 8, connect="full")


def test_edge_kinds_follow_ids_and_degrees():
    g = Graph.initial(3, 4)
    assert g.add_edge(0, 2).kind == "feedforward"
    assert g.add_edge(2, 0).kind == "feedback"
    assert g.add_edge(1, 1).kind == "recurrent"
    assert g.add_edge(1, 0).kind == "feedback"
    assert [g.in_degree(i) for i in g.ids] == [2, 1, 1]
    assert [e.src for e in g.in_edges(0)] == [1, 2]


def test_causal_graph_allows_only_forwards_in_position():
    g = Graph.initial(3, 4, causal=True)
    child = g.add_cluster(slot=0, size=4, parent=0)  # id 3, slot 0
    assert g.allows(0, 1) and g.allows(1, 1) and g.allows(child.id, 0) and g.allows(child.id, 2)
    assert not g.allows(2, 1) and not g.allows(1, child.id)
    g.add_edge(child.id, 0)  # feedback in id, forwards (same slot) in position: allowed
    g.validate()
    g.add_edge(2, 1)  # backwards in position
    with pytest.raises(TopologyError, match="causal graph only wires forwards"):
        g.validate()
    d = g.to_dict()
    with pytest.raises(TopologyError, match="causal"):
        Graph.from_dict(d)
    d["causal"] = False  # the same wiring is fine for images
    assert Graph.from_dict(d).edges[(2, 1)].kind == "feedback"


def test_json_and_networkx_round_trip():
    for g in (random_graph(seed=3), random_graph(seed=3, causal=True)):
        g2 = Graph.from_json(g.to_json())
        assert g2.to_dict() == g.to_dict() and g2.causal == g.causal
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
    (lambda d: d["edges"].append({"src": 2, "dst": 1, "kind": "sideways", "born": 0}), "unknown kind"),
    (lambda d: d["clusters"][0].update(size=0), "size"),
    (lambda d: d["clusters"][0].update(slot=7), "outside"),
    (lambda d: d.update(next_id=2), "reused"),
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


# ---- the two executors ------------------------------------------------------------------------------
def _model_and_input(kind, cl, aggregate, seed):
    if kind == "images":
        g = random_graph(seed=seed, n_edges=10 + 12 * seed)
        return image_model(g, aggregate=aggregate, seed=seed, cl=cl), torch.randn(5, 3, 32, 32)
    g = random_graph(n_slots=6, size=5, n_splits=5, n_edges=6 + 8 * seed, seed=seed, causal=True)
    return text_model(g, aggregate=aggregate, seed=seed, cl=cl), torch.randint(0, 40, (4, 6))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kind", ["images", "tokens"])
@pytest.mark.parametrize("aggregate", ["mean", "sum"])
@pytest.mark.parametrize("cl", ["source", "edge"])
def test_fast_executor_matches_reference(cl, aggregate, kind, seed):
    """Values and gradients (every parameter: packed clusters and edges, OL, token table) agree."""
    m, x = _model_and_input(kind, cl, aggregate, seed)
    assert m.graph.edge_counts()["feedback"] > 0 and len(m.graph.levels()) > 1  # a graph worth testing
    _assert_executors_agree(m, x, kind)


@pytest.mark.parametrize("kind", ["images", "tokens"])
@pytest.mark.parametrize("cl", ["source", "edge"])
def test_fast_executor_matches_reference_with_levels_split_into_groups(monkeypatch, cl, kind):
    """The small test graphs fit each level in one group; at cost 0 every padded size gets its own group, so
    sources and targets of one level sit in different groups, each with its own padding."""
    monkeypatch.setattr(executor, "GROUP_COST", 0)
    m, x = _model_and_input(kind, cl, "mean", 2)
    assert len(m._plan.groups) > len(m.graph.levels())
    _assert_executors_agree(m, x, kind)


@pytest.mark.parametrize("kind", ["images", "recurrent text"])
def test_the_fused_gather_runs_and_agrees_with_the_torch_ops_form(monkeypatch, kind):
    """The fast executor gathers in-messages with `lumina.gather`'s kernel where it builds (this machine and CI have
    a C++ compiler: if it stopped building, the speed-up would be lost without this failing), and its outputs and
    every gradient (gates included, zero on padded slots) agree with the stack + gate-product form, on a network
    whose levels are split into padded groups, and on a recurrent window whose first position reads nothing."""
    from contextlib import nullcontext

    from tests.test_text_v3 import recurrent_model

    monkeypatch.setattr(executor, "GROUP_COST", 0)
    if kind == "images":
        m, x = _model_and_input("images", "source", "mean", 2)
    else:
        m, x = recurrent_model(random_graph(1, 5, n_splits=6, n_edges=30, seed=3)), torch.randint(0, 40, (3, 5))
    assert gather.usable(torch.zeros(1)) and executor._Groups(m, len(x), torch.zeros(1)).fused
    got = {}
    for form in ("kernel", "torch ops"):
        with gather.torch_ops() if form == "torch ops" else nullcontext():
            m.zero_grad(set_to_none=True)
            y = m(x, "fast")
            (y.square().mean() + y.mean()).backward()
        got[form] = y.detach(), {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
    (y_k, g_k), (y_t, g_t) = got["kernel"], got["torch ops"]
    assert torch.allclose(y_k, y_t, atol=1e-6, rtol=1e-5)
    assert g_k.keys() == g_t.keys() and any("_g" in n for n in g_k)  # the same tensors step, the gates among them
    for n in g_k:
        assert torch.allclose(g_k[n], g_t[n], atol=1e-6, rtol=1e-4), n
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 messages: the torch-ops form (the kernel sums float32)
        assert not executor._Groups(m, len(x), torch.zeros(1)).fused
        m(x, "fast").float().sum().backward()


def test_flop_counts_keep_the_cl_products_the_kernel_hides_from_the_counter():
    """FlopCounterMode counts the kernel's multiply-adds as zero; the project's FLOP counts (`metrics.flops_per_example`,
    the text chapter's `benchmarks.lm_compare`) count the CL in torch ops, so a count does not depend on the kernel."""
    from torch.utils.flop_counter import FlopCounterMode

    from benchmarks.lm_compare import flops
    from lumina.metrics import flops_per_example
    from tests.test_text_v3 import recurrent_model

    m, x = recurrent_model(random_graph(1, 5, n_splits=6, n_edges=30, seed=3)), torch.randint(0, 40, (1, 5))
    assert gather.usable(torch.zeros(1))
    with torch.no_grad(), FlopCounterMode(display=False) as fc:  # the kernel gathers: its products go uncounted
        m(x, "fast")
    assert flops(lambda: m(x)) == flops_per_example(m, x) > fc.get_total_flops()


def test_a_kernel_that_does_not_build_leaves_the_torch_ops_form_after_one_warning(monkeypatch):
    """No compiler (or no ninja): one warning, then the fast executor gathers in torch ops and still agrees with
    the reference; the kernel is not tried again."""
    def no_compiler():
        raise RuntimeError("Ninja is required to load C++ extensions")

    monkeypatch.setattr(gather, "_module", no_compiler)
    monkeypatch.setitem(gather.KERNEL, "on", True)
    m, x = _model_and_input("images", "source", "mean", 1)
    with pytest.warns(UserWarning, match="torch ops .*Ninja is required"):
        assert not executor._Groups(m, len(x), x).fused
    assert gather.KERNEL["on"] is False  # off for the rest of the process: no second attempt, no second warning
    _assert_executors_agree(m, x, "images")


@pytest.mark.parametrize("group_cost", [executor.GROUP_COST, 0])
@pytest.mark.parametrize("variant", [dict(cl="source"), dict(cl="edge"), dict(cl="source", image_readout="slots"),
                                     dict(cl="source", aggregate="sum")])
def test_an_image_network_counts_its_flops_as_flop_counter_mode_does(monkeypatch, variant, group_cost):
    """`LuminaNet.flops_per_example` (from the plan, what an evolution event recounts) equals FlopCounterMode on
    a forward of one image, for both CL forms, both readouts, levels in one group or split by size, and a
    network with isolated clusters and messages nobody reads; a text network leaves the count to the run."""
    from torch.utils.flop_counter import FlopCounterMode

    from lumina.metrics import flops_per_example

    monkeypatch.setattr(executor, "GROUP_COST", group_cost)
    for seed in range(3):
        g = random_graph(seed=seed, n_edges=4 + 10 * seed)
        m = image_model(g, seed=seed, **variant)
        with torch.no_grad(), gather.torch_ops(), FlopCounterMode(display=False) as fc:  # the counter sees the CL's products
            m(torch.randn(1, 3, 32, 32))
        assert m.flops_per_example() == fc.get_total_flops() == flops_per_example(m, torch.randn(1, 3, 32, 32))
    t = text_model(random_graph(n_slots=6, size=5, n_splits=5, n_edges=6, seed=0, causal=True))
    assert t.flops_per_example() is None and flops_per_example(t, torch.randint(0, 40, (1, 6))) > 0


def test_size_groups_pack_each_level_into_runs_of_similar_size():
    size = {0: 3, 1: 90, 2: 5, 3: 88, 4: 4, 5: 7}  # padded to 8, 96, 8, 88, 8, 8 rows
    assert size_groups(list(size), size, cost=48) == [[0, 4, 2, 5], [3, 1]]  # 48 + 4*8 + 48 + 2*96 rows
    assert size_groups(list(size), size, cost=10 ** 6) == [[0, 4, 2, 5, 3, 1]]  # one group when a group costs most
    assert size_groups(list(size), size, cost=0) == [[0, 4, 2, 5], [3], [1]]  # no padding beyond the multiple of 8


def _assert_executors_agree(m, x, kind):
    fast, ref = m(x, "fast"), m(x, "reference")
    assert fast.shape == ref.shape == ((5, 10) if kind == "images" else (4, 6, 40))
    assert torch.allclose(fast, ref, atol=1e-5, rtol=1e-5)
    w = torch.randn_like(fast)  # a generic loss, so no gradient is accidentally symmetric
    params = list(m.parameters())
    ga = torch.autograd.grad((m(x, "fast") * w).sum(), params, allow_unused=True)
    gb = torch.autograd.grad((m(x, "reference") * w).sum(), params, allow_unused=True)
    for (name, p), a, b in zip(m.named_parameters(), ga, gb):
        # no gradient = a zero one: the fast executor skips U of a group without in-edges, the reference
        # multiplies it by s = 0
        a, b = (torch.zeros_like(p) if g is None else g for g in (a, b))
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4), (name, (a - b).abs().max())


def test_unknown_executor_is_an_error():
    with pytest.raises(ValueError, match="unknown executor 'fsat'"):
        image_model()(torch.randn(1, 3, 32, 32), "fsat")


@pytest.mark.parametrize("cl", ["source", "edge"])
def test_two_pass_semantics_by_hand(cl):
    """Pass 1 uses feedforward sources only; pass 2 reads lower ids' pass-2 output and higher ids' pass-1 output.
    cl="source": s_i = (1/n) Σ_j g_ji W_Cj f_j; cl="edge": s_i = (1/n) Σ_j W_C(j→i) f_j."""
    g = Graph.initial(12, 3)
    g.add_edge(0, 1)   # feedforward
    g.add_edge(1, 0)   # feedback: 0 reads 1's pass-1 output in pass 2
    g.add_edge(1, 1)   # recurrent
    m = image_model(g, d_hidden=4, cl=cl)
    x = torch.randn(2, 3, 32, 32)
    X = m.encode_inputs(x)
    p = m.params_dict()
    gelu = F.gelu
    e = {i: gelu(X[:, i] @ p[f"c{i}_w_in"].T + p[f"c{i}_b_in"]) for i in (0, 1)}
    out = lambda i, s: gelu(e[i] + s @ p[f"c{i}_u"].T) @ p[f"c{i}_v"] + p[f"c{i}_b_out"]
    if cl == "source":
        msg = lambda j, i, f: p[f"e{j}_{i}"] * (f @ p[f"c{j}_w_c"].T)
    else:
        msg = lambda j, i, f: f @ p[f"e{j}_{i}"].T
    f1_0 = out(0, torch.zeros(2, 4))
    f1_1 = out(1, msg(0, 1, f1_0))
    f2_0 = out(0, msg(1, 0, f1_1))  # mean over one in-edge
    f2_1 = out(1, (msg(0, 1, f2_0) + msg(1, 1, f1_1)) / 2)
    f2 = forward_reference(m, X)
    assert torch.allclose(f2[0], f2_0, atol=1e-6) and torch.allclose(f2[1], f2_1, atol=1e-6)
    for i in range(2, 12):  # isolated clusters: s = 0 in both passes
        assert torch.allclose(f2[i], gelu(gelu(X[:, i] @ p[f"c{i}_w_in"].T + p[f"c{i}_b_in"])) @ p[f"c{i}_v"]
                              + p[f"c{i}_b_out"], atol=1e-6)
    logits = m.head(m.norm(f2.mean(0)))  # OL: Linear(LayerNorm(mean_i f_i))
    assert torch.allclose(m(x), logits, atol=1e-6)


def test_every_parameter_gets_a_finite_gradient():
    for cl in ("source", "edge"):
        m = image_model(random_graph(seed=1), cl=cl)
        m(torch.randn(4, 3, 32, 32)).logsumexp(1).sum().backward()
        for name, p in m.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), (cl, name)


# ---- storage: per-cluster names, packing, padding -------------------------------------------------------
@pytest.mark.parametrize("cl", ["source", "edge"])
def test_given_parameters_are_installed_exactly(cl):
    g = random_graph(seed=2)
    params = random_params(g, 256, 8, seed=5, cl=cl)
    m = LuminaNet(g, d_in=256, d_hidden=8, n_out=10, cl=cl, params=params)
    got = m.params_dict()
    assert set(got) == set(params) and all(torch.equal(got[k], params[k]) for k in params)
    assert m.count_params() == sum(t.numel() for t in params.values()) + sum(
        p.numel() for n, p in m.named_parameters() if not n.startswith("p."))
    names = set(m.named_tensors())
    assert names == set(params) | {"norm.weight", "norm.bias", "head.weight", "head.bias"}
    assert not any(n.startswith(("L", "p.")) for n in names)  # nothing named after the packing
    shape = () if cl == "source" else (8, 8)
    assert all(tuple(params[ekey(s, d)].shape) == shape for (s, d) in g.edges)
    assert (ckey(0, "w_c") in params) == (cl == "source")


def test_parameters_that_do_not_match_the_topology_are_refused():
    g = random_graph(seed=2)
    params = random_params(g, 256, 8)
    some_edge = next(iter(g.edges))
    bad = dict(params)
    del bad[ekey(*some_edge)]
    with pytest.raises(ValueError, match="missing"):
        LuminaNet(g, d_in=256, d_hidden=8, n_out=10, params=bad)
    bad = dict(params, **{ckey(0, "u"): params[ckey(0, "u")][:-1]})
    with pytest.raises(ValueError, match="rows"):
        LuminaNet(g, d_in=256, d_hidden=8, n_out=10, params=bad)
    with pytest.raises(ValueError, match="expects"):  # a gate where a per-edge W_C belongs
        LuminaNet(g, d_in=256, d_hidden=8, n_out=10, cl="edge",
                  params={k: v for k, v in params.items() if not k.endswith("w_c")})


def test_cluster_grad_norms_cover_every_cluster_and_match_the_named_gradients():
    m = image_model(random_graph(seed=4))
    m(torch.randn(4, 3, 32, 32)).logsumexp(1).sum().backward()
    grads = m.unpack({k: p.grad for k, p in m.p.items()})
    norms = m.cluster_grad_norms()
    assert set(norms) == set(m.graph.ids)
    for i, n in norms.items():
        want = sum(grads[ckey(i, k)].square().sum() for k in ("w_in", "u", "v")) ** 0.5
        assert n == pytest.approx(float(want), rel=1e-5)
    bare = image_model(Graph.initial(12, 4))  # no edges: U gets no gradient, the load must not vanish
    bare(torch.randn(4, 3, 32, 32)).logsumexp(1).sum().backward()
    loads = bare.cluster_grad_norms()
    assert set(loads) == set(bare.graph.ids) and all(v > 0 for v in loads.values())


def test_token_input_one_slot_per_position():
    m = text_model(Graph.initial(8, 5, causal=True), vocab=50)
    out = m(torch.randint(0, 50, (3, 8)))
    assert out.shape == (3, 8, 50)  # a prediction at every position
    with pytest.raises(ValueError, match="token ids must lie in"):
        m(torch.full((1, 8), 50))
    with pytest.raises(ValueError, match=r"shape \(B, 8\)"):
        m(torch.zeros(1, 7, dtype=torch.long))
    with pytest.raises(ValueError, match="integer token ids"):
        m(torch.zeros(1, 8))


@pytest.mark.parametrize("bad, message", [
    (torch.randn(2, 1, 32, 32), "shape"),
    (torch.randn(2, 3, 28, 28), "shape"),
    (torch.zeros(2, 3, 32, 32, dtype=torch.uint8), "float"),
])
def test_bad_images_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        image_model()(bad)


@pytest.mark.parametrize("kw, message", [
    (dict(input_kind="audio"), "input_kind"), (dict(aggregate="max"), "aggregate"), (dict(cl="pair"), "communication"),
])
def test_bad_model_options_are_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        LuminaNet(Graph.initial(12, 4), d_in=256, d_hidden=8, n_out=10, **kw)


@pytest.mark.parametrize("executor_name", ["fast", "reference"])
def test_forward_with_a_trace_is_the_plain_forward_and_records_every_cluster(executor_name):
    """`model(x, trace=t)` (evolution's probe) gives the logits of `model(x)` and records each cluster's
    pass-2 output and hidden activity, as the executor called directly does."""
    m = image_model(random_graph(seed=3))
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    trace: dict = {}  # a trace keeps gradients (dL/ds): no torch.no_grad here
    plain, traced = m(x, executor=executor_name), m(x, executor=executor_name, trace=trace)
    run = executor.forward_fast if executor_name == "fast" else forward_reference
    direct: dict = {}
    run(m, m.encode_inputs(x), trace=direct)
    assert torch.equal(plain, traced)
    assert sorted(trace) == sorted(direct) == m.graph.ids
    for i in m.graph.ids:
        assert torch.equal(trace[i]["f2"], direct[i]["f2"]) and torch.equal(trace[i]["h2"], direct[i]["h2"])
