"""Evolution ops (invariants, parameter counts, exact preservation where the design promises it),
the policy (determinism, event log) and the optimizer's carry-over."""
import pytest
import torch

from lumina.config import resolve
from lumina.evolution import ops
from lumina.evolution.policy import EvolutionPolicy
from lumina.model import ckey, ekey, forward_reference
from lumina.optim import carry_over, make_optimizer, named_moments
from lumina.topology import Graph, TopologyError
from tests.helpers import image_model, random_graph

D_IN, D = 256, 8


def install(m, change):
    m.set_topology(change.graph, change.params)
    return m


def n_params(m):
    n = m.count_params()
    assert n == sum(t.numel() for t in m.params_dict().values()) + sum(p.numel() for k, p in m.named_parameters() if not k.startswith("p."))
    return n


def outputs(m, x):
    with torch.no_grad():
        return m(x, "reference")


@pytest.fixture
def x():
    return torch.randn(6, 3, 32, 32)


def test_grow_adds_neurons_and_preserves_the_function(x):
    m = image_model(random_graph(seed=2))
    before, p0 = outputs(m, x), n_params(m)
    ch = ops.grow(m.graph, m.params_dict(), 3, 5, D_IN, D)
    assert ch.graph.clusters[3].size == m.graph.clusters[3].size + 5
    install(m, ch)
    assert n_params(m) == p0 + 5 * (D_IN + 1 + 2 * D)
    assert torch.allclose(outputs(m, x), before, atol=1e-6)


def test_reduce_of_silent_neurons_is_exact(x):
    m = image_model(random_graph(seed=2))
    with torch.no_grad():
        m.cluster_views()[ckey(4, "v")][:2] = 0  # neurons 0, 1 have no output
    before, m4 = outputs(m, x), m.graph.clusters[4].size
    install(m, ops.reduce(m.graph, m.params_dict(), 4, list(range(2, m4))))
    assert m.graph.clusters[4].size == m4 - 2
    assert torch.allclose(outputs(m, x), before, atol=1e-6)


def test_connect_is_exact_with_sum_aggregation_and_prune_of_zero_edge_too(x):
    m = image_model(random_graph(seed=4), aggregate="sum")
    before = outputs(m, x)
    ch = ops.connect(m.graph, m.params_dict(), 7, 2, D)
    assert ch.graph.edges[(7, 2)].kind == "feedback"
    install(m, ch)
    assert torch.allclose(outputs(m, x), before, atol=1e-6)
    install(m, ops.prune(m.graph, m.params_dict(), 7, 2))
    assert torch.allclose(outputs(m, x), before, atol=1e-6)


def test_connect_with_mean_changes_the_function(x):
    """Documented: the paper's 1/n dilutes existing messages when an edge is added."""
    g = Graph.initial(12, 4)
    g.add_edge(0, 5)
    m = image_model(g)
    before = outputs(m, x)
    install(m, ops.connect(m.graph, m.params_dict(), 1, 5, D))
    assert not torch.allclose(outputs(m, x), before, atol=1e-4)


def channel_sum(m, x):
    """Σ_i f_i^(2): what a split preserves exactly; the OL sees it through LayerNorm(mean), equal up to eps."""
    with torch.no_grad():
        return forward_reference(m, m.encode_inputs(x)).sum(0)


def test_split_of_an_isolated_cluster_is_exact(x):
    m = image_model(Graph.initial(12, 6))
    before, p0, s0 = outputs(m, x), n_params(m), channel_sum(m, x)
    ch = ops.split(m.graph, m.params_dict(), 5, [0, 2, 4], step=7)
    child = ch.graph.clusters[12]
    assert (child.slot, child.size, child.parent, child.born) == (5, 3, 5, 7)
    assert ch.graph.clusters[5].size == 3
    install(m, ch)
    assert n_params(m) == p0 + D  # only the child's output bias is new
    assert torch.allclose(channel_sum(m, x), s0, atol=1e-6)
    assert torch.allclose(outputs(m, x), before, atol=1e-3)  # LayerNorm absorbs the 12 -> 13 mean, up to eps


def test_split_inherits_edges_and_is_exact_for_the_last_cluster_under_sum(x):
    g = Graph.initial(12, 6)
    g.add_edge(2, 11)
    g.add_edge(4, 11)
    m = image_model(g, aggregate="sum")
    before = channel_sum(m, x)
    ch = ops.split(m.graph, m.params_dict(), 11, [1, 3])
    assert {(2, 12), (4, 12)} <= set(ch.graph.edges)
    assert torch.equal(ch.params[ekey(2, 12)], ch.params[ekey(2, 11)])
    install(m, ch)
    assert torch.allclose(channel_sum(m, x), before, atol=1e-5)


def test_split_of_self_loop_gives_parent_child_pair():
    g = Graph.initial(3, 4)
    g.add_edge(1, 1)
    ch = ops.split(g, image_model(Graph.initial(3, 4)).params_dict() | {ekey(1, 1): torch.zeros(D, D)}, 1, [0])
    assert {(1, 1), (1, 3), (3, 1), (3, 3)} <= set(ch.graph.edges)


@pytest.mark.parametrize("op", ["grow", "reduce", "split", "connect", "prune"])
def test_ops_keep_invariants_and_do_not_mutate_inputs(op):
    g = random_graph(seed=5)
    m = image_model(g)
    snapshot, params = g.to_json(), m.params_dict()
    copies = {k: v.clone() for k, v in params.items()}
    src, dst = next(iter(g.edges))
    free = next((j, i) for j in g.ids for i in g.ids if (j, i) not in g.edges)
    ch = {"grow": lambda: ops.grow(g, params, 0, 3, D_IN, D),
          "reduce": lambda: ops.reduce(g, params, 0, [0]),
          "split": lambda: ops.split(g, params, 0, [0]),
          "connect": lambda: ops.connect(g, params, *free, D),
          "prune": lambda: ops.prune(g, params, src, dst)}[op]()
    assert g.to_json() == snapshot  # pure: neither the graph nor any input tensor changed
    assert set(params) == set(copies) and all(torch.equal(params[k], copies[k]) for k in params)
    ch.graph.validate()  # no dangling edges, feedforward edges go up
    assert all((e.src < e.dst) == (e.kind == "feedforward") for e in ch.graph.edges.values())
    image_model(ch.graph).set_topology(ch.graph, ch.params)  # parameters match the topology


def test_op_errors():
    g = Graph.initial(3, 4)
    p = image_model(Graph.initial(3, 4)).params_dict()
    with pytest.raises(TopologyError, match="does not exist"):
        ops.grow(g, p, 9, 1, D_IN, D)
    with pytest.raises(ValueError, match="proper non-empty subset"):
        ops.split(g, p, 0, [0, 1, 2, 3])
    with pytest.raises(TopologyError, match="does not exist"):
        ops.prune(g, p, 0, 1)


def trained_briefly(m, lr, weight_decay, steps=3):
    opt = make_optimizer(m, lr, weight_decay)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
    return opt, x, y


def test_optimizer_state_carries_over_bit_identically():
    torch.manual_seed(0)
    m = image_model(random_graph(seed=6))
    opt, x, y = trained_briefly(m, lr=1e-3, weight_decay=0.01)
    before = named_moments(opt, m)
    saved = {k: {n: t.clone() for n, t in v.items()} for k, v in before.items()}
    base = m.params_dict()
    ch = ops.Change(m.graph, base, origin=base)
    ch = ops.compose(ch, ops.grow(ch.graph, ch.params, 2, 4, D_IN, D))  # rows: the old m, then 4 fresh
    ch = ops.compose(ch, ops.split(ch.graph, ch.params, 2, [0, 1]))  # old rows 0, 1 move to the child
    ch = ops.compose(ch, ops.connect(ch.graph, ch.params, 3, 1, D))
    m.set_topology(ch.graph, ch.params)  # a different packing: levels and paddings change
    new_opt = carry_over(opt, before, m, ch)
    after = named_moments(new_opt, m)
    survivors = [n for n, t in ch.params.items() if t is base.get(n)]
    assert len(survivors) > 10
    for k in ("exp_avg", "exp_avg_sq"):
        for n in survivors:  # untouched tensors: moments bit-identical
            assert torch.equal(after[k][n], saved[k][n]), n
        child = m.graph.next_id - 1
        old_u = saved[k][ckey(2, "u")]
        assert torch.equal(after[k][ckey(child, "u")], old_u[[0, 1]])  # the child's rows
        parent = after[k][ckey(2, "u")]
        assert torch.equal(parent[:-4], old_u[2:]) and torch.all(parent[-4:] == 0)  # kept rows, fresh rows
        assert torch.all(after[k][ekey(3, 1)] == 0) and torch.all(after[k][ckey(child, "b_out")] == 0)  # fresh
    for p in m.p.values():  # padding carries no moments
        assert p in new_opt.state
    # and training goes on
    new_opt.zero_grad()
    torch.nn.functional.cross_entropy(m(x), y).backward()
    new_opt.step()


def test_padding_stays_zero_during_training():
    m = image_model(random_graph(seed=7))
    trained_briefly(m, lr=1e-2, weight_decay=0.1)
    views = m.params_dict()
    repacked = m._plan.pack(views)
    for name, p in m.p.items():
        assert torch.equal(p.detach(), repacked[name]), name  # everything outside the views is still 0


def _run_policy(seed):
    cfg = resolve("synthetic", "smoke").evolution
    torch.manual_seed(0)
    m = image_model(Graph.initial(12, 8))
    pol = EvolutionPolicy(cfg, seed)
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    loss = torch.nn.functional.cross_entropy
    for step in range(1, 4):
        loss(m(x), y).backward()
        pol.observe(m, 0)
        m.zero_grad()
        ch = pol.evolve(m, x, y, loss, step * 10)
        if ch:
            install(m, ch)
    return m.graph.to_json(), [e.to_dict() for e in pol.events]


def test_policy_is_deterministic_and_logs_every_op():
    a, b = _run_policy(1), _run_policy(1)
    assert a == b
    ops_seen = {e["op"] for e in a[1]}
    assert {"connect", "grow", "split"} <= ops_seen
    for e in a[1]:
        assert {"step", "op", "clusters", "reason", "before", "after"} <= set(e)


def test_policy_switches_turn_mechanisms_off():
    cfg = resolve("synthetic", "smoke", split=False, connect=False).evolution
    m = image_model(Graph.initial(12, 8))
    pol = EvolutionPolicy(cfg, 0)
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    torch.nn.functional.cross_entropy(m(x), y).backward()
    pol.observe(m, 0)
    for step in (10, 20, 30):
        ch = pol.evolve(m, x, y, torch.nn.functional.cross_entropy, step)
        if ch:
            install(m, ch)
    assert not {"split", "connect"} & {e.op for e in pol.events}


def test_fast_probe_trace_matches_the_reference_trace():
    from lumina.evolution.policy import s2_grad
    from lumina.model import forward_fast

    m = image_model(random_graph(seed=8))
    x, y = torch.randn(6, 3, 32, 32), torch.randint(0, 10, (6,))
    traces = []
    for fwd in (forward_reference, forward_fast):
        trace = {}
        torch.nn.functional.cross_entropy(m.readout(fwd(m, m.encode_inputs(x), trace=trace)), y).backward()
        m.zero_grad()
        traces.append(trace)
    ref, fast = traces
    assert set(ref) == set(fast) == set(m.graph.ids)
    for i in m.graph.ids:
        assert torch.allclose(s2_grad(ref[i]), s2_grad(fast[i]), atol=1e-6)
        for k in ("h2", "f1", "f2"):
            assert torch.allclose(ref[i][k], fast[i][k], atol=1e-5), (i, k)
