"""Replay of event logs, the analyses (pruning test, random graphs, seed convergence), visualisation, the
published run sets and topology statistics. (The command line is tested in tests/test_cli.py.)"""
import random

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from lumina import stats, viz
from lumina.analysis import pruning_test, random_graph_like, remove_all_connections, seed_convergence
from lumina.build import initial_graph
from lumina.config import PROFILES, resolve
from lumina.evolution.replay import diff, frames, replay
from lumina.loop import train
from lumina.published import RUN_SETS
from lumina.results import artifacts, save_run
from lumina.topology import Graph
from tests.helpers import random_graph


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("LUMINA_RUNS", str(tmp_path / "runs"))


@pytest.fixture(scope="module")
def trained():
    cfg = resolve("synthetic", "smoke", epochs=3.0, threads=1)
    return cfg, train(cfg, log=lambda *a: None)


def test_replay_of_the_event_log_rebuilds_the_trained_topology(trained):
    cfg, run = trained
    initial, final = initial_graph(cfg), run.model.graph
    assert replay(initial, run.events).to_dict() == final.to_dict()
    shots = frames(initial, run.events)
    assert shots[0][1].to_dict() == initial.to_dict() and shots[-1][1].to_dict() == final.to_dict()
    assert [s for s, _ in shots] == sorted(s for s, _ in shots)
    d = diff(initial, final)
    assert len(d["clusters_added"]) == run.result["event_counts"]["split"]
    k = len(run.events) // 2  # any prefix replays to a valid graph
    assert replay(initial, run.events, upto=k).validate()


def test_stored_artifacts_replay_too(trained):
    cfg, run = trained
    save_run(cfg, run)
    art = artifacts(cfg)
    assert art["topology"].to_dict() == run.model.graph.to_dict() and art["events"] == run.events
    assert replay(initial_graph(cfg), art["events"]).to_dict() == art["topology"].to_dict()


def test_removing_all_connections_keeps_a_working_classifier(trained):
    cfg, run = trained
    save_run(cfg, run)
    out = pruning_test(cfg)  # the stored network with its connections, then without any
    assert out["edges"] == len(run.model.graph.edges) > 0
    assert out["before"]["top1"] == pytest.approx(run.result["metrics"]["test_top1"])
    assert 0 <= out["after"]["top1"] <= 100
    m = remove_all_connections(run.model)
    assert not m.graph.edges and m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_random_graph_like_and_seed_convergence():
    g = random_graph(seed=3)
    r = random_graph_like(g, random.Random(0))
    assert len(r.edges) == len(g.edges) and [c.size for c in r.clusters.values()] == [c.size for c in g.clusters.values()]
    c = seed_convergence([g, g], n_random=5)
    assert c["evolved"] == pytest.approx(1.0) and c["random_mean"] < 1.0
    causal = random_graph(n_slots=6, seed=3, causal=True)  # a text network's random twin is causal too
    twin = random_graph_like(causal, random.Random(1)).validate()
    assert twin.causal and len(twin.edges) == len(causal.edges)


def test_pyvis_page_is_offline_and_carries_the_history():
    g = random_graph(seed=1)
    page = viz.pyvis_html(g, [{"step": 5, "op": "grow", "clusters": [0], "before": [6], "after": [10]}])
    assert "vis-network" in page or "vis.Network" in page
    assert "cdn.jsdelivr" not in page and "https://" not in page.split("<body>")[0].split("<script")[0]
    assert "step 5: grow" in page
    html = viz.iframe(page).data
    assert html.startswith("<div><iframe srcdoc=")


def test_static_drawings_and_plots(trained):
    _, run = trained
    g = run.model.graph
    viz.draw_topology(g, highlight={"clusters": {0}, "edges": set()})
    viz.plot_history(run.result["history"])
    viz.plot_events(run.events)
    assert set(viz.layout(g)) == set(g.ids)


@pytest.mark.parametrize("profile", PROFILES)
def test_every_published_run_resolves(profile):
    for name, runs in RUN_SETS.items():
        cfgs = runs(profile)
        assert cfgs and len({c.key() for c in cfgs}) == len(cfgs), name


def test_text_configs_are_consistent():
    a, b = resolve("tinystories", "full"), resolve("tinystories_baseline", "full")
    assert (a.model.context, a.data.vocab_size, a.train.batch_size, a.train.epochs) == \
           (b.model.context, b.data.vocab_size, b.train.batch_size, b.train.epochs)  # same windows and budget
    assert a.model.d_hidden == b.model.d_hidden  # GPT-2's d_model = LuminaNet's d_hidden
    assert a.train.label_smoothing == b.train.label_smoothing == 0.0
    with pytest.raises(ValueError, match="needs dataset='tinystories'"):
        resolve("cifar10", "smoke", arch="gpt2")


@pytest.mark.parametrize("profile", ("full", "paper"))
def test_text_runs_pair_every_width_and_seed_with_gpt2(profile):
    from lumina.published import TEXT_WIDTHS, tinystories_controls, tinystories_runs
    runs = tinystories_runs(profile)
    pairs = [(c.model.d_hidden, c.train.seed) for c in runs["luminanet"]]
    assert pairs == [(c.model.d_hidden, c.train.seed) for c in runs["baselines"]]
    assert {w for w, _ in pairs} == set(TEXT_WIDTHS) and (TEXT_WIDTHS[-1], 1) in pairs  # two seeds at 384
    for a, b in zip(runs["luminanet"], runs["baselines"]):  # the same data, windows and budget per pair
        assert (a.data, a.model.context, a.train.batch_size, a.train.epochs) == (b.data, b.model.context, b.train.batch_size, b.train.epochs)
    base, *others = tinystories_controls(profile).values()
    assert base == runs["luminanet"][0]
    for c in others:  # each control differs from the published run in one field
        diff = [(sec, k) for sec in ("model", "evolution", "train", "data")
                for k in vars(getattr(base, sec)) if getattr(getattr(base, sec), k) != getattr(getattr(c, sec), k)]
        assert len(diff) == 1, diff


def test_stats_summary_matches_graph():
    g = random_graph(seed=4)
    s = stats.summary(g)
    assert s["n_clusters"] == len(g.clusters) and s["edges"] == len(g.edges) and s["depth"] == len(g.levels())
    assert s["feedforward"] + s["feedback"] + s["recurrent"] == s["edges"]
    assert Graph.from_dict(g.to_dict()).to_dict() == g.to_dict()
