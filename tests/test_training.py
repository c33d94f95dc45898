"""Config and profiles, build (model, task, initial graph, device), the training loop (determinism, evolution,
budgets in epochs, NaN), the results store (save and load under per-cluster names, independent of the
packing), checkpoints, and topology statistics. Synthetic images: no dataset needed."""
import builtins
import json
import re

import pytest
import torch

from lumina import loop, stats
from lumina import executor as executor_module  # the module that packs (Plan)
from lumina.build import build_model, initial_graph, make_task, resolve_device
from lumina.checkpoint import CheckpointError, load_checkpoint, load_tensors
from lumina.config import resolve
from lumina.loop import NonFiniteLoss, train
from lumina.model import LuminaNet
from lumina.results import (find_results, load_model, load_network, load_result, result_dir, run_dir, save_run,
                            train_or_load)
from lumina.topology import Edge, Graph
from tests.helpers import random_graph, random_params, untimed

QUIET = dict(log=lambda *a: None)


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("LUMINA_RUNS", str(tmp_path / "runs"))


@pytest.fixture(scope="module")
def short_run():
    """One short synthetic run (1 epoch), shared by the save/load tests."""
    cfg = resolve("synthetic", "smoke", epochs=1.0, threads=1)
    return cfg, train(cfg, **QUIET)


def images(n=3, seed=0):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


# ---- config ---------------------------------------------------------------------------------------
def test_resolve_profiles_and_overrides():
    cfg = resolve("cifar10", "full", d_hidden=32, connect_k=8)
    assert cfg.model.d_hidden == 32 and cfg.evolution.connect_k == 8 and cfg.profile == "full"
    assert resolve("cifar10", "full").key() != cfg.key()
    assert resolve("cifar10", "full", d_hidden=32, connect_k=8).key() == cfg.key()
    assert resolve("cifar10", "full", overrides='{"d_hidden": 32, "connect_k": 8}').key() == cfg.key()
    assert cfg.model.cl == "source"  # the paper's CL (one W_C per source) is the default


@pytest.mark.parametrize("args, kw, message", [
    (("cifar10", "huge"), {}, "unknown profile 'huge'; valid: smoke, full, paper"),
    (("imagenet", "smoke"), {}, "unknown experiment 'imagenet'; valid:"),
    (("cifar10", "smoke"), {"d_hiden": 3}, "unknown config field 'd_hiden'; valid fields:"),
    (("cifar10", "smoke"), {"budget_s": 40}, "unknown config field 'budget_s'"),  # budgets are epochs only
    (("cifar10", "smoke"), {"d_hidden": 0}, "d_hidden=0 must be > 0"),
    (("cifar10", "smoke"), {"batch_size": -4}, "batch_size=-4 must be > 0"),
    (("cifar10", "smoke"), {"freeze_frac": 1.5}, r"freeze_frac=1.5 must lie in \[0, 1\]"),
    (("cifar10", "smoke"), {"arch": "vgg"}, "arch='vgg'; valid: 'luminanet'"),
    (("cifar10", "smoke"), {"aggregate": "max"}, "aggregate='max'"),
    (("cifar10", "smoke"), {"cl": "pair"}, "cl='pair'; valid: 'source', 'edge'"),
    (("cifar10", "smoke"), {"device": "tpu"}, "device='tpu'"),
    (("cifar10", "smoke"), {"d_hidden": "wide"}, "d_hidden must be a int"),
])
def test_bad_config_values_name_what_is_valid(args, kw, message):
    with pytest.raises(ValueError, match=message):
        resolve(*args, **kw)


# ---- build -----------------------------------------------------------------------------------------
def test_build_gives_the_configured_network():
    cfg = resolve("synthetic", "smoke", cl="edge", aggregate="sum", init_connect="dense_fb")
    m = build_model(cfg)
    assert isinstance(m, LuminaNet) and (m.cl, m.aggregate, m.d_hidden) == ("edge", "sum", 8)
    assert m.graph.to_dict() == initial_graph(cfg).to_dict() == Graph.initial(12, 8, "dense_fb").to_dict()
    assert make_task(cfg).n_train == 512
    text = initial_graph(resolve("tinystories", "smoke"))
    assert text.causal and text.n_slots == 8 and not text.edges  # one slot per position, causal by wiring


def test_init_from_starts_from_a_stored_topology(tmp_path):
    g = random_graph(seed=3)
    path = tmp_path / "results" / "some" / "topology.json"
    path.parent.mkdir(parents=True)
    path.write_text(g.to_json())
    cfg = resolve("synthetic", "smoke", init_from="some/topology.json", evolve=False)
    assert build_model(cfg).graph.to_dict() == g.to_dict()
    with pytest.raises(ValueError, match="does not exist"):
        initial_graph(resolve("synthetic", "smoke", init_from="none/topology.json"))


# ---- training ---------------------------------------------------------------------------------------
def test_training_is_deterministic_and_evolves():
    cfg = resolve("synthetic", "smoke", epochs=3.0, threads=1)
    a, b = train(cfg, **QUIET), train(cfg, **QUIET)
    assert untimed(a.result["history"]) == untimed(b.result["history"]) and a.events == b.events
    assert a.model.graph.to_json() == b.model.graph.to_json()
    ta, tb = a.model.named_tensors(), b.model.named_tensors()
    assert set(ta) == set(tb) and all(torch.equal(ta[k], tb[k]) for k in ta)
    assert all(a.result["event_counts"][op] > 0 for op in ("split", "grow", "connect"))
    losses = [h["train_loss"] for h in a.result["history"]]
    assert losses[-1] < losses[0]
    assert a.result["metrics"]["test_top1"] > 30  # far above chance (10%) on the synthetic classes
    assert a.result["steps"] == 3 * (512 // 32) and a.result["epochs_done"] == 3.0  # a budget in epochs


def test_topology_is_frozen_at_the_end():
    cfg = resolve("synthetic", "smoke", epochs=3.0, threads=1, freeze_frac=0.5)
    r = train(cfg, **QUIET)
    assert r.events and max(e["step"] for e in r.events) <= 0.5 * r.result["steps"]
    assert r.result["history"][-1]["n_clusters"] == r.result["topology_stats"]["n_clusters"]


def test_evolution_off_keeps_the_initial_topology():
    cfg = resolve("synthetic", "smoke", threads=1, evolve=False, init_connect="dense")
    r = train(cfg, **QUIET)
    assert not r.events and r.model.graph.to_dict() == initial_graph(cfg).to_dict()


def test_train_or_load_stores_and_reuses_with_provenance():
    cfg = resolve("synthetic", "smoke", epochs=1.0, threads=1)
    lines = []
    r = train_or_load(cfg, log=lines.append)
    assert any("training" in line for line in lines)
    stored = load_result(cfg)
    for k in ("git_commit", "versions", "hardware", "wall_s", "date"):
        assert k in stored["provenance"]
    assert stored["provenance"]["optimizer_step"] == "compiled"  # EvolvingAdamW's update, one fused pass
    assert stored["config"] == cfg.to_dict() and stored["key"] == cfg.key() and stored == r
    lines.clear()
    assert train_or_load(cfg, log=lines.append)["history"] == r["history"]  # loaded, not retrained
    assert lines and "loaded" in lines[0]
    assert len(find_results("synthetic", "smoke")) == 1
    d = result_dir(cfg)
    assert {"result.json", "topology.json", "events.jsonl", "network"} <= {p.name for p in d.iterdir()}
    assert (run_dir(cfg) / "checkpoint.safetensors").exists()  # the final checkpoint of the run


def test_nan_loss_stops_with_step_and_keeps_the_last_good_checkpoint(tmp_path):
    cfg = resolve("synthetic", "smoke", epochs=1.0, threads=1, lr=1e30, grad_clip=0.0, lr_warmup=0.0)
    ckpt = tmp_path / "ckpt.safetensors"
    with pytest.raises(NonFiniteLoss, match=r"at step (\d+) .*last good checkpoint: .*ckpt\.safetensors \(kept\)") as err:
        train(cfg, ckpt=ckpt, checkpoint_every=1, **QUIET)
    failed_at = int(re.search(r"at step (\d+)", str(err.value)).group(1))
    c = load_checkpoint(ckpt, cfg.key())  # still readable, and it is the step before the failure
    assert c["state"]["step"] == failed_at and all(torch.isfinite(v).all() for v in c["model"].values())


# ---- save and load: per-cluster names, independent of the packing ------------------------------------
NAME = re.compile(r"^(c\d+_(w_in|b_in|u|v|b_out|w_c)|e\d+_\d+|norm\.(weight|bias)|head\.(weight|bias))$")


def test_a_stored_network_loads_exactly(short_run):
    cfg, run = short_run
    d = save_run(cfg, run, weights=True)
    tensors, meta = load_tensors(d / "network" / "weights.safetensors")
    assert meta["format"] == "named-v2" and meta["config_key"] == cfg.key()
    assert all(NAME.match(k) for k in tensors), sorted(k for k in tensors if not NAME.match(k))[:5]
    assert set(tensors) == set(run.model.named_tensors())
    model, saved = load_network(d / "network", cfg)
    x = images()
    with torch.no_grad():
        assert torch.equal(model(x), run.model(x)) and saved == cfg
    assert model.graph.to_dict() == run.model.graph.to_dict()
    assert torch.equal(load_model(cfg)(x), model(x))
    assert json.loads((d / "result.json").read_text())["metrics"] == run.result["metrics"]
    with pytest.raises(CheckpointError, match="another model config"):
        load_network(d / "network", resolve("synthetic", "smoke", d_hidden=16))


def _other_packing(monkeypatch):
    """Pack each target's in-edges in another order (feedforward first, then by descending source id)."""
    def packing_sorted(items, key=None, reverse=False):
        items = list(items)
        if items and isinstance(items[0], Edge):
            return builtins.sorted(items, key=lambda e: (e.kind != "feedforward", -e.src))
        return builtins.sorted(items, key=key, reverse=reverse)

    monkeypatch.setattr(executor_module, "sorted", packing_sorted, raising=False)


@pytest.mark.parametrize("cl", ["source", "edge"])
def test_reordering_in_edges_cannot_load_weights_into_the_wrong_edges(monkeypatch, cl):
    g = random_graph(seed=11, n_edges=40)
    params = random_params(g, 256, 8, seed=1, cl=cl)  # random gates: a gate on the wrong edge shows
    m = LuminaNet(g, d_in=256, d_hidden=8, n_out=10, cl=cl, params=params)
    x = images(4)
    with torch.no_grad():
        ref = m(x)
    # the same graph with its edges inserted in another order
    g2 = Graph(n_slots=g.n_slots, next_id=g.next_id, clusters=g.copy().clusters)
    for (s, d) in reversed(list(g.edges)):
        g2.add_edge(s, d)
    m2 = LuminaNet(g2, d_in=256, d_hidden=8, n_out=10, cl=cl, params=m.params_dict(),
                   extra={k: v for k, v in m.named_tensors().items() if "." in k})
    with torch.no_grad():
        assert torch.equal(m2(x), ref)
    # another packing of each level's in-edges
    _other_packing(monkeypatch)
    m3 = LuminaNet(g, d_in=256, d_hidden=8, n_out=10, cl=cl, params=m.params_dict(),
                   extra={k: v for k, v in m.named_tensors().items() if "." in k})
    assert m3._plan.edge_at != m._plan.edge_at  # the edges really sit elsewhere in the packed tensors
    got = m3.params_dict()
    assert all(torch.equal(got[k], params[k]) for k in params)  # every edge got its own weight
    with torch.no_grad():
        assert torch.allclose(m3(x), ref, atol=1e-6)  # equal up to the order of a sum
        for k, p in m3.p.items():  # what storing the packing would do: the same shapes, the wrong edges
            p.copy_(m.p[k])
        assert not torch.allclose(m3(x), ref, atol=1e-3)


def test_a_stored_network_survives_a_change_of_packing(short_run, monkeypatch):
    cfg, run = short_run
    d = save_run(cfg, run, weights=True)
    _other_packing(monkeypatch)
    model, _ = load_network(d / "network", cfg)
    got, want = model.named_tensors(), run.model.named_tensors()
    assert all(torch.equal(got[k], want[k]) for k in want)
    with torch.no_grad():
        assert torch.allclose(model(images()), run.model(images()), atol=1e-6)


def test_checkpoint_from_another_config_is_refused(tmp_path):
    cfg = resolve("synthetic", "smoke", epochs=1.0, threads=1)
    train(cfg, ckpt=tmp_path / "c.safetensors", stop_after=5, **QUIET)
    with pytest.raises(CheckpointError, match="another config"):
        load_checkpoint(tmp_path / "c.safetensors", resolve("synthetic", "smoke", epochs=2.0).key())
    with pytest.raises(CheckpointError, match="another config"):
        train(resolve("synthetic", "smoke", epochs=2.0), ckpt=tmp_path / "c.safetensors", **QUIET)


def test_a_pickle_is_never_loaded(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('code ran')",))

    bad = tmp_path / "checkpoint.safetensors"
    torch.save({"x": Boom()}, bad)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_checkpoint(bad, resolve("synthetic", "smoke").key())


# ---- devices ------------------------------------------------------------------------------------------
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_the_configured_device_reaches_every_tensor(device, tmp_path, monkeypatch):
    """cfg.train.device: every parameter and buffer of the built model, the optimizer state (also after
    evolution events) and the task's data; checkpoints hold CPU tensors that rebuild the network anywhere."""
    cfg = resolve("synthetic", "smoke", threads=1, device=device)
    want = torch.device(device)
    built = build_model(cfg, device=resolve_device(cfg))
    assert all(t.device.type == want.type for t in [*built.parameters(), *built.buffers()])
    optimizers = []
    real = loop.apply_change
    monkeypatch.setattr(loop, "apply_change", lambda *a: optimizers.append(real(*a)) or optimizers[-1])
    ckpt = tmp_path / "c.safetensors"
    run = train(cfg, ckpt=ckpt, **QUIET)
    assert optimizers, "no evolution event happened"
    m, opt = run.model, optimizers[-1]
    assert all(t.device.type == want.type for t in [*m.parameters(), *m.buffers()])
    assert all(p in opt.state for p in m.parameters())
    assert all(v.device.type == want.type for st in opt.state.values() for v in st.values() if torch.is_tensor(v))
    c = load_checkpoint(ckpt, cfg.key())
    assert all(t.device.type == "cpu" for part in ("model", "opt", "rng") for t in c[part].values())
    extra = {k: v for k, v in c["model"].items() if "." in k}
    params = {k: v for k, v in c["model"].items() if k not in extra}
    on_cpu = build_model(cfg, c["topology"], params, extra, device="cpu")
    assert all(t.device.type == "cpu" for t in [*on_cpu.parameters(), *on_cpu.buffers()])
    x = images()
    with torch.no_grad():
        assert torch.allclose(on_cpu(x), m.to("cpu")(x), atol=1e-5)


def test_the_packing_plan_follows_the_network_to_another_device():
    """`.to(device)` moves parameters and buffers; the plan's index and coefficient tensors (no parameters) must
    follow, else the fast executor's first index_select on a GPU fails (it did, on an H200). The meta device
    stands in for a GPU here: every plan tensor must end up where the parameters are."""
    m = build_model(resolve("synthetic", "smoke", threads=1))
    m.to("meta")
    plan = m._plan
    tensors = [*plan.slots, *plan.coef1, *plan.coef2, plan.slot_index, plan.slot_counts]
    assert tensors and all(t.device.type == "meta" for t in tensors)
    assert all(p.device.type == "meta" for p in m.parameters())


def test_device_names_are_checked():
    assert resolve_device(resolve("synthetic", "smoke", device="cpu")) == torch.device("cpu")
    assert resolve_device(resolve("synthetic", "smoke")).type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device(resolve("synthetic", "smoke", device="cuda"))


# ---- statistics -------------------------------------------------------------------------------------
def test_depth_and_recurrent_structures():
    g = Graph.initial(4, 2)
    assert stats.depth(g) == 1 and stats.recurrent_structures(g) == 0
    g.add_edge(0, 1)
    g.add_edge(1, 2)
    assert stats.depth(g) == 3
    g.add_edge(2, 0)  # closes the cycle 0 -> 1 -> 2 -> 0
    g.add_edge(3, 0)  # a feedback skip with no feedforward path 0 -> 3: not a cycle
    g.add_edge(3, 3)  # self-loop
    assert stats.recurrent_structures(g) == 2
    s = stats.summary(g)
    assert (s["n_clusters"], s["feedback"], s["recurrent"], s["feedforward"]) == (4, 2, 1, 2)


def test_similarity():
    a, b = random_graph(seed=1), random_graph(seed=2)
    assert stats.similarity(a, a) == pytest.approx(1.0)
    assert 0 <= stats.similarity(a, b) < 1
    assert stats.similarity(a, b) == pytest.approx(stats.similarity(b, a))


@pytest.mark.data
def test_cifar10_smoke_run_shows_every_event_and_learns():
    from lumina.paths import data_root

    if not (data_root() / "cifar10" / "cifar-10-batches-py" / "data_batch_1").exists():
        pytest.skip(f"CIFAR-10 is not under LUMINA_DATA={data_root()} (see README, Data)")
    r = train(resolve("cifar10", "smoke", threads=1), **QUIET)
    assert all(r.result["event_counts"][op] > 0 for op in ("split", "grow", "reduce", "connect", "prune")), \
        r.result["event_counts"]
    losses = [h["train_loss"] for h in r.result["history"]]
    assert losses[-1] < losses[0]


def test_load_only_loads_a_stored_result_and_refuses_to_train_a_missing_one(tmp_path, monkeypatch):
    """LUMINA_LOAD_ONLY=1 (nbval's run of the chapters): a stored result loads; a missing one is one error that
    names the run, and nothing trains."""
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("LUMINA_RUNS", str(tmp_path / "runs"))
    cfg = resolve("synthetic", "smoke")
    stored = train_or_load(cfg, log=lambda *_: None)
    monkeypatch.setenv("LUMINA_LOAD_ONLY", "1")
    assert train_or_load(cfg, log=lambda *_: None)["metrics"] == stored["metrics"]
    other = resolve("synthetic", "smoke", seed=1)
    with pytest.raises(ValueError, match=f"no stored result for synthetic/smoke/{other.key()} and LUMINA_LOAD_ONLY=1"):
        train_or_load(other, log=lambda *_: None)
    assert not run_dir(other).exists() and load_result(other) is None


def test_loaded_lines_stay_off_published_pages_but_not_off_a_readers_run(tmp_path, monkeypatch, capsys):
    """The default log prints "[lumina] loaded ..." unless progress output is off (LUMINA_PROGRESS=0: the book
    build, CI); a log function passed in gets every line either way."""
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("LUMINA_RUNS", str(tmp_path / "runs"))
    cfg = resolve("synthetic", "smoke")
    train_or_load(cfg, log=lambda *_: None)
    capsys.readouterr()
    monkeypatch.setenv("LUMINA_PROGRESS", "0")
    train_or_load(cfg)
    assert "[lumina] loaded" not in capsys.readouterr().out
    lines = []
    train_or_load(cfg, log=lines.append)
    assert lines == [f"[lumina] loaded synthetic/smoke/{cfg.key()} (stored result)"]
    monkeypatch.setenv("LUMINA_PROGRESS", "1")
    train_or_load(cfg)
    assert f"[lumina] loaded synthetic/smoke/{cfg.key()}" in capsys.readouterr().out
