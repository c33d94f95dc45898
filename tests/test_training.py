"""Config/profiles, the training loop (determinism, evolution during training), save/load, results store,
and topology statistics. Uses synthetic images: no dataset needed."""
import json
import os
from pathlib import Path

import pytest
import torch

from lumina import stats
from lumina.checkpoint import CheckpointError, load_checkpoint, load_network, save_network
from lumina.config import resolve
from lumina.results import find_results, load_result, train_or_load
from lumina.topology import Graph
from lumina.train import NonFiniteLoss, train
from tests.helpers import image_model, random_graph


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("LUMINA_RUNS", str(tmp_path / "runs"))


# ---- config ---------------------------------------------------------------------------------------
def test_resolve_profiles_and_overrides():
    cfg = resolve("cifar10", "full", d_hidden=32, connect_k=8)
    assert cfg.model.d_hidden == 32 and cfg.evolution.connect_k == 8 and cfg.profile == "full"
    assert resolve("cifar10", "full").key() != cfg.key()
    assert resolve("cifar10", "full", d_hidden=32, connect_k=8).key() == cfg.key()


@pytest.mark.parametrize("args, kw, message", [
    (("cifar10", "huge"), {}, "unknown profile 'huge'; valid: smoke, full, paper"),
    (("imagenet", "smoke"), {}, "unknown experiment 'imagenet'; valid:"),
    (("cifar10", "smoke"), {"d_hiden": 3}, "unknown config field 'd_hiden'; valid fields:"),
    (("cifar10", "smoke"), {"d_hidden": 0}, "d_hidden=0 must be > 0"),
    (("cifar10", "smoke"), {"batch_size": -4}, "batch_size=-4 must be > 0"),
    (("cifar10", "smoke"), {"freeze_frac": 1.5}, r"freeze_frac=1.5 must lie in \[0, 1\]"),
    (("cifar10", "smoke"), {"arch": "vgg"}, "arch='vgg'; valid: 'luminanet'"),
    (("cifar10", "smoke"), {"aggregate": "max"}, "aggregate='max'"),
    (("cifar10", "smoke"), {"d_hidden": "wide"}, "d_hidden must be a int"),
])
def test_bad_config_values_name_what_is_valid(args, kw, message):
    with pytest.raises(ValueError, match=message):
        resolve(*args, **kw)


# ---- training ---------------------------------------------------------------------------------------
def test_training_is_deterministic_and_evolves():
    cfg = resolve("synthetic", "smoke", epochs=3.0, threads=1)
    a, b = train(cfg, save=False, resume=False), train(cfg, save=False, resume=False)
    untimed = lambda r: [{k: v for k, v in h.items() if k != "train_s"} for h in r["history"]]
    assert untimed(a) == untimed(b)
    assert a["model"].graph.to_json() == b["model"].graph.to_json()
    assert all(a["event_counts"][op] > 0 for op in ("split", "grow", "connect"))
    losses = [h["train_loss"] for h in a["history"]]
    assert losses[-1] < losses[0]
    assert a["metrics"]["test_top1"] > 30  # far above chance (10%) on the synthetic classes


def test_topology_is_frozen_at_the_end():
    cfg = resolve("synthetic", "smoke", epochs=3.0, threads=1, freeze_frac=0.5)
    r = train(cfg, resume=False)
    events = [json.loads(line) for line in open(f"{r['dir']}/events.jsonl")]
    assert events and max(e["step"] for e in events) <= 0.5 * r["steps"] + 1
    assert r["history"][-1]["n_clusters"] == r["topology_stats"]["n_clusters"]


def test_train_or_load_stores_and_reuses_with_provenance():
    cfg = resolve("synthetic", "smoke", epochs=1.0, threads=1)
    r = train_or_load(cfg)
    stored = load_result(cfg)
    for k in ("git_commit", "versions", "hardware", "wall_s", "date"):
        assert k in stored["provenance"]
    assert stored["config"] == cfg.to_dict() and stored["key"] == cfg.key()
    assert train_or_load(cfg)["history"] == r["history"]  # loaded, not retrained
    assert len(find_results("synthetic", "smoke")) == 1


def test_nan_loss_stops_with_step_and_checkpoint(monkeypatch):
    cfg = resolve("synthetic", "smoke", epochs=1.0, threads=1, lr=1e30, grad_clip=0.0)
    with pytest.raises(NonFiniteLoss, match=r"at step \d+ .*last good checkpoint"):
        train(cfg, checkpoint_every=1, resume=False)


# ---- save and load ----------------------------------------------------------------------------------
def test_network_round_trip_gives_identical_outputs(tmp_path):
    cfg = resolve("synthetic", "smoke", d_hidden=8, init_size=8)
    m = image_model(random_graph(seed=9), d_hidden=8)
    save_network(m, cfg, tmp_path / "net")
    m2, saved = load_network(tmp_path / "net", cfg)
    x = torch.randn(3, 3, 32, 32)
    assert torch.equal(m(x), m2(x)) and saved == cfg
    with pytest.raises(CheckpointError, match="another model config"):
        load_network(tmp_path / "net", resolve("synthetic", "smoke", d_hidden=16))


def test_checkpoint_from_another_config_is_refused():
    cfg = resolve("synthetic", "smoke", epochs=1.0, threads=1)
    train(cfg, save=False, resume=False)
    ckpt = next(Path(os.environ["LUMINA_RUNS"]).rglob("checkpoint.safetensors"))
    with pytest.raises(CheckpointError, match="another config"):
        load_checkpoint(ckpt, resolve("synthetic", "smoke", epochs=2.0))


def test_a_pickle_is_never_loaded(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('code ran')",))

    bad = tmp_path / "checkpoint.safetensors"
    torch.save({"x": Boom()}, bad)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(bad, resolve("synthetic", "smoke"))


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
    from lumina.data.common import data_root

    if not (data_root() / "cifar10" / "cifar-10-batches-py" / "data_batch_1").exists():
        pytest.skip(f"CIFAR-10 is not under LUMINA_DATA={data_root()} (see README, Data)")
    r = train(resolve("cifar10", "smoke"), save=False, resume=False)
    assert all(r["event_counts"][op] > 0 for op in ("split", "grow", "reduce", "connect", "prune")), r["event_counts"]
    losses = [h["train_loss"] for h in r["history"]]
    assert losses[-1] < losses[0]
