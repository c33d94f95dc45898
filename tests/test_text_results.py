"""What the TinyStories chapter stores and decides: the unigram reference a collapsed run falls to, analyses
stored beside a run, fp16 networks for the book, and the verdict rules of `lumina.verdicts.tinystories`
(every seed within the rule: reproduced; none: not reproduced; some: inconclusive; collapse; depth by width)."""
import json
import math
from collections import Counter

import pytest
import torch

from lumina import verdicts
from lumina.checkpoint import atomic_write_text, read_network, shrink_network, write_network
from lumina.config import resolve
from lumina.results import load_measured, load_unigram, measured_or_load, result_dir, unigram_or_load
from lumina.text import TextTask, UnigramLM
from tests.helpers import random_graph, text_model
from tests.test_text import text_cfg, tiny_stories
from lumina.data.tokenizer import train_tokenizer


@pytest.fixture(scope="module")
def task():
    train, val = tiny_stories(60, seed=1), tiny_stories(12, seed=2)
    return TextTask(text_cfg(), stories=(train, val), tokenizer=train_tokenizer(train, 300))


def test_unigram_perplexity_is_the_cross_entropy_of_smoothed_train_frequencies(task):
    counts = Counter(task.train_windows[:, 1:].flatten().tolist())
    V = task.n_out
    total = sum(counts.values()) + V
    ys = task.val_windows[:, 1:].flatten().tolist()
    nll = -sum(math.log((counts.get(y, 0) + 1) / total) for y in ys) / len(ys)
    m = task.unigram_metrics()
    assert m["n_tokens"] == len(ys)
    assert m["ppl"] == pytest.approx(math.exp(nll), rel=1e-4)
    best = max(counts, key=counts.get)
    assert m["top1"] == pytest.approx(100 * sum(y == best for y in ys) / len(ys))
    out = UnigramLM(task.train_windows[:, 1:], V)(task.val_windows[:2, :-1])
    assert out.shape == (2, task.context, V) and torch.equal(out[0, 0], out[1, -1])  # one guess everywhere


def test_unigram_is_stored_once_and_refused_for_other_data(task, tmp_path, monkeypatch):
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path))
    cfg = text_cfg()
    assert load_unigram(cfg) is None
    m = unigram_or_load(cfg, task)
    assert load_unigram(cfg) == m
    assert (tmp_path / "tinystories" / "smoke" / "unigram.json").exists()
    assert unigram_or_load(cfg, task=None) == m  # loaded: no stories needed
    assert load_unigram(text_cfg(test_subset=16)) is None  # other validation data: not this reference


def test_measured_or_load_computes_once(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path))
    cfg, calls = text_cfg(), []
    compute = lambda: calls.append(1) or {"before": {"ppl": 2.0}}  # noqa: E731
    assert load_measured(cfg, "pruning_test") is None
    assert measured_or_load(cfg, "pruning_test", compute) == {"before": {"ppl": 2.0}}
    assert measured_or_load(cfg, "pruning_test", compute) == {"before": {"ppl": 2.0}} and len(calls) == 1
    assert load_measured(cfg, "pruning_test") == {"before": {"ppl": 2.0}}


def test_an_fp16_network_halves_its_file_and_loads_as_float32(tmp_path):
    g = random_graph(n_slots=6, causal=True, seed=3)
    model = text_model(g, d_hidden=64)
    write_network(tmp_path, model.named_tensors(), {"x": 1}, "key", g.to_json())
    before = (tmp_path / "weights.safetensors").stat().st_size
    after = shrink_network(tmp_path)
    assert after < 0.6 * before  # the header (tensor names) stays
    _, _, tensors, meta = read_network(tmp_path)
    assert meta["stored_dtype"] == "float16" and meta["config_key"] == "key"
    for k, v in model.named_tensors().items():
        assert tensors[k].dtype == torch.float32
        torch.testing.assert_close(tensors[k], v.detach().half().float())


# ---- the verdict rules on stored results ---------------------------------------------------------------
def _store(cfg, ppl, top1, depth=5, recurrent=0):
    r = {"config": cfg.to_dict(), "arch": cfg.model.arch, "epochs_done": 2.0, "n_params": 1,
         "metrics": {"test_ppl": ppl, "test_top1": top1, "test_bpb": 1.0},
         "provenance": {"hardware": {"cpu": "test CPU", "cores": 2, "threads": 1}},
         "topology_stats": {"depth": depth, "recurrent_structures": recurrent}}
    atomic_write_text(result_dir(cfg) / "result.json", json.dumps(r))


@pytest.fixture
def two_widths(tmp_path, monkeypatch):
    """Runs at d_hidden 128 (seed 0) and 384 (seeds 0, 1) in a fresh results store."""
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path))
    pairs = [(128, 0), (384, 0), (384, 1)]
    runs = {"luminanet": [resolve("tinystories", "smoke", d_hidden=w, seed=s) for w, s in pairs],
            "baselines": [resolve("tinystories_baseline", "smoke", d_hidden=w, seed=s) for w, s in pairs]}
    monkeypatch.setattr(verdicts, "tinystories_runs", lambda profile: runs)
    return runs


def _rows(claim_start):
    return [r for r in verdicts.tinystories("smoke") if str(getattr(r["claim"], "text", r["claim"])).startswith(claim_start)]


def test_perplexity_rule_needs_every_seed(two_widths):
    L, G = two_widths["luminanet"], two_widths["baselines"]
    _store(L[0], 30.0, 30.0), _store(G[0], 20.0, 40.0)        # d128: +50%: not reproduced
    _store(L[1], 21.0, 40.0), _store(G[1], 20.0, 40.0)        # d384 seed 0: +5%
    _store(L[2], 25.0, 40.0), _store(G[2], 20.0, 40.0)        # d384 seed 1: +25%
    rows = _rows("LuminaNet perplexity")
    assert [r["verdict"] for r in rows] == ["not reproduced", "inconclusive"]
    assert "2 seeds" in rows[1]["comparison"] and "seeds: 21.00 vs 20.00; 25.00 vs 20.00" in rows[1]["ours"]
    _store(L[2], 21.5, 40.0)
    assert [r["verdict"] for r in _rows("LuminaNet perplexity")] == ["not reproduced", "reproduced"]
    assert [r["verdict"] for r in _rows("LuminaNet top-1")] == ["not reproduced", "reproduced"]


def test_a_missing_width_is_not_tested_and_a_collapsed_seed_is_named(two_widths, task):
    L, G = two_widths["luminanet"], two_widths["baselines"]
    _store(L[0], 30.0, 30.0), _store(G[0], 20.0, 40.0)
    rows = verdicts.tinystories("smoke")
    assert [r["verdict"] for r in rows if r["verdict"] == "not tested here"] == ["not tested here"]
    assert not _rows("no LuminaNet run collapses")  # no unigram reference stored: no collapse row
    uni = unigram_or_load(L[0], task)
    _store(L[1], 0.95 * uni["ppl"], 5.0), _store(G[1], 20.0, 40.0)
    [row] = _rows("no LuminaNet run collapses")
    assert row["verdict"] == "collapsed: d384 seed 0"
    _store(L[1], 0.5 * uni["ppl"], 5.0)
    assert _rows("no LuminaNet run collapses")[0]["verdict"] == "none collapsed"


def test_depth_rule_and_the_trend_across_widths(two_widths):
    L, G = two_widths["luminanet"], two_widths["baselines"]
    _store(L[0], 30.0, 30.0, depth=20, recurrent=20), _store(G[0], 20.0, 40.0)   # paper d128: 21 / 24
    _store(L[1], 30.0, 30.0, depth=9, recurrent=0), _store(G[1], 20.0, 40.0)     # paper d384: 9 / 4
    rows = _rows("evolved depth")
    assert [r["verdict"] for r in rows] == ["reproduced", "inconclusive"]
    [trend] = _rows("wider clusters")
    assert trend["verdict"] == "reproduced" and trend["ours"] == "20 > 9"
    _store(L[1], 30.0, 30.0, depth=25, recurrent=0)
    assert _rows("wider clusters")[0]["verdict"] == "not reproduced"


def test_identical_seeds_converge_and_chance_level_wiring_does_not(two_widths):
    L, G = two_widths["luminanet"], two_widths["baselines"]
    for c in (*L, *G):
        _store(c, 30.0, 30.0)
    g = random_graph(n_slots=12, causal=True, seed=5)
    for c in L[1:]:
        atomic_write_text(result_dir(c) / "topology.json", g.to_json())
    [row] = _rows("two networks started")
    assert row["verdict"] == "reproduced" and row["ours"].startswith("similarity 1.000")
    atomic_write_text(result_dir(L[2]) / "topology.json", random_graph(n_slots=12, causal=True, seed=6).to_json())
    assert _rows("two networks started")[0]["verdict"] != "reproduced"
