"""Replay, analyses, visualisation, the command line and the published run sets."""
import json
import random

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from lumina import stats, viz
from lumina.analysis import random_graph_like, remove_all_connections, seed_convergence
from lumina.cli import main as cli
from lumina.config import PROFILES, resolve
from lumina.evolution.replay import diff, frames, replay
from lumina.published import RUN_SETS
from lumina.topology import Graph
from lumina.train import train
from tests.helpers import random_graph


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("LUMINA_RUNS", str(tmp_path / "runs"))


@pytest.fixture(scope="module")
def trained():
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        os.environ["LUMINA_RESULTS"], os.environ["LUMINA_RUNS"] = f"{d}/r", f"{d}/k"
        cfg = resolve("synthetic", "smoke", epochs=3.0, threads=1)
        r = train(cfg, resume=False)
        events = [json.loads(line) for line in open(f"{r['dir']}/events.jsonl")]
        yield cfg, r, events


def test_replay_of_the_event_log_rebuilds_the_trained_topology(trained):
    cfg, r, events = trained
    initial = Graph.initial(12, cfg.model.init_size)
    assert replay(initial, events).to_dict() == r["model"].graph.to_dict()
    shots = frames(initial, events)
    assert shots[0][1].to_dict() == initial.to_dict() and shots[-1][1].to_dict() == r["model"].graph.to_dict()
    assert [s for s, _ in shots] == sorted(s for s, _ in shots)
    d = diff(initial, r["model"].graph)
    assert len(d["clusters_added"]) == r["event_counts"]["split"]


def test_removing_all_connections_keeps_a_working_classifier(trained):
    cfg, r, _ = trained
    m = r["model"]
    assert m.graph.edges
    remove_all_connections(m)
    assert not m.graph.edges and m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_random_graph_like_and_seed_convergence():
    g = random_graph(seed=3)
    r = random_graph_like(g, random.Random(0))
    assert len(r.edges) == len(g.edges) and [c.size for c in r.clusters.values()] == [c.size for c in g.clusters.values()]
    c = seed_convergence([g, g], n_random=5)
    assert c["evolved"] == pytest.approx(1.0) and c["random_mean"] < 1.0


def test_pyvis_page_is_offline_and_carries_the_history():
    g = random_graph(seed=1)
    page = viz.pyvis_html(g, [{"step": 5, "op": "grow", "clusters": [0], "before": [6], "after": [10]}])
    assert "vis-network" in page or "vis.Network" in page
    assert "cdn.jsdelivr" not in page and "https://" not in page.split("<body>")[0].split("<script")[0]
    assert "step 5: grow" in page
    html = viz.iframe(page).data
    assert html.startswith("<div><iframe srcdoc=")


def test_static_drawings_and_plots(trained):
    _, r, events = trained
    viz.draw_topology(r["model"].graph, highlight={"clusters": {0}, "edges": set()})
    viz.plot_history(r["history"])
    viz.plot_events(events)
    assert set(viz.layout(r["model"].graph)) == set(r["model"].graph.ids)


def test_cli_reports_bad_input_clearly(capsys):
    assert cli(["train", "cifar10", "--profile", "smoke", "--set", "d_hidden=0"]) == 2
    assert "d_hidden=0 must be > 0" in capsys.readouterr().err
    assert cli(["run-set", "mnist", "--profile", "full"]) == 2
    assert "unknown run set 'mnist'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["train", "cifar10", "--profile", "huge"])


def test_cli_trains_and_then_loads(capsys):
    assert cli(["train", "synthetic", "--profile", "smoke", "--set", "threads=1", "--set", "epochs=1.0"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert cli(["train", "synthetic", "--profile", "smoke", "--set", "threads=1", "--set", "epochs=1.0"]) == 0
    assert json.loads(capsys.readouterr().out) == first


@pytest.mark.parametrize("profile", PROFILES)
def test_every_published_run_resolves(profile):
    for name, runs in RUN_SETS.items():
        cfgs = runs(profile)
        assert cfgs and len({c.key() for c in cfgs}) == len(cfgs), name


def test_text_configs_are_consistent():
    a, b = resolve("tinystories", "full"), resolve("tinystories_baseline", "full")
    assert (a.model.context, a.data.vocab_size, a.train.batch_size, a.train.epochs) == \
           (b.model.context, b.data.vocab_size, b.train.batch_size, b.train.epochs)  # same windows and budget
    assert a.train.label_smoothing == b.train.label_smoothing == 0.0
    with pytest.raises(ValueError, match="needs dataset='tinystories'"):
        resolve("cifar10", "smoke", arch="gpt2")


def test_stats_summary_matches_graph():
    g = random_graph(seed=4)
    s = stats.summary(g)
    assert s["n_clusters"] == len(g.clusters) and s["edges"] == len(g.edges) and s["depth"] == len(g.levels())
