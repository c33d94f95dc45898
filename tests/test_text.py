"""TinyStories: loading and its errors, the tokenizer, the text task and its metrics, the causal LuminaNet LM
(causality by wiring, cached generation, evolution that never wires backwards in position), the GPT-2 baseline.

Tiny and single-threaded. Tests marked `data` read the real slices under $LUMINA_DATA/tinystories and skip
when they are absent; every other test makes its own tiny corpus.
"""
import lzma
import math
import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one thread for the Rust tokenizer too

import pytest
import torch

from lumina.baselines.gpt2 import GPT2Baseline, build_gpt2
from lumina.build import build_model
from lumina.config import DataConfig, EvolutionConfig, ExperimentConfig, ModelConfig, TrainConfig, resolve
from lumina.data.common import DataError, data_root
from lumina.data.stories import EOT, TRAIN_FILES, VALIDATION_FILES, load_stories, loose_key, repair_mojibake
from lumina.data.tokenizer import encode_corpus, token_bytes, tokenizer_path, train_tokenizer
from lumina.evolution.policy import EvolutionPolicy
from lumina.evolution.replay import replay
from lumina.loop import train
from lumina.model import LuminaNet
from lumina.text import TextTask, windows
from lumina.topology import Graph, TopologyError
from tests.helpers import random_graph, text_model

HAVE_DATA = (data_root() / "tinystories").is_dir()
needs_data = pytest.mark.skipif(
    not HAVE_DATA, reason=f"TinyStories slices not found at {data_root() / 'tinystories'} (set LUMINA_DATA, "
                          "e.g. LUMINA_DATA=../shared/data)")

WORDS = ("the cat sat on a mat . a dog ran to the park and saw a big red ball . "
         "lily and ben played all day , then they went home happy .").split()


def tiny_stories(n: int, seed: int) -> list[str]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        k = int(torch.randint(8, 20, (1,), generator=g))
        idx = torch.randint(0, len(WORDS), (k,), generator=g).tolist()
        out.append(" ".join(WORDS[i] for i in idx).capitalize() + ".")
    return out


def text_cfg(context=8, vocab=300, **data) -> ExperimentConfig:
    return ExperimentConfig(
        experiment="tinystories", profile="smoke",
        model=ModelConfig(context=context, d_hidden=8, init_size=8, d_embed=8),
        evolution=EvolutionConfig(m_min=2), train=TrainConfig(threads=1, label_smoothing=0.0),
        data=DataConfig(dataset="tinystories", vocab_size=vocab, **data)).validate()


def text_luminanet(cfg: ExperimentConfig) -> LuminaNet:
    """What `lumina.build.build_model` builds for dataset='tinystories': one slot per position, causal."""
    m = build_model(cfg)
    assert m.graph.causal and m.graph.n_slots == cfg.model.context
    return m


@pytest.fixture(scope="module")
def corpus():
    train, val = tiny_stories(60, seed=1), tiny_stories(12, seed=2)
    return train, val, train_tokenizer(train, 300)


# ---- real data --------------------------------------------------------------------------------------
@pytest.mark.data
@needs_data
def test_load_real_splits():
    train, val = load_stories("train"), load_stories("validation")
    assert len(train) > 1000 and len(val) > 100
    assert all(s and EOT not in s for s in train[:200] + val[:200])
    assert not {loose_key(s) for s in train} & {loose_key(s) for s in val}
    assert load_stories("train", n_stories=5) == train[:5]
    assert train[0].startswith("One day, a little girl named Lily found a needle")  # V1 train story 1


@pytest.mark.data
@needs_data
def test_real_tokenizer_round_trip():
    train, val = load_stories("train", n_stories=40), load_stories("validation")[:20]
    tok = train_tokenizer(train, 400)
    nbytes = [len(b) for b in token_bytes(tok)]
    for s in val:
        ids = tok.encode(s).ids
        assert tok.decode(ids) == s
        assert sum(nbytes[i] for i in ids) == len(s.encode("utf-8"))


# ---- errors -----------------------------------------------------------------------------------------
def write_xz(path, data: bytes):
    with lzma.open(path, "wb") as f:
        f.write(data)


def make_folder(tmp_path, stories=("A story.", "Another one.")):
    folder = tmp_path / "tinystories"
    folder.mkdir()
    text = "".join(f"{s}\n{EOT}\n" for s in stories).encode()
    for name in TRAIN_FILES:
        write_xz(folder / name, text)
    write_xz(folder / VALIDATION_FILES[0], f"A validation story.\n{EOT}\n".encode())
    return folder


def test_missing_folder(tmp_path, monkeypatch):
    """Downloads are off unless the user sets LUMINA_DOWNLOAD=1: the hub is never asked."""
    import datasets

    monkeypatch.delenv("LUMINA_DOWNLOAD", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("the hub was asked"))
    with pytest.raises(DataError, match="nowhere") as err:
        load_stories("train", root=tmp_path / "nowhere")
    assert "LUMINA_DATA" in str(err.value) and "LUMINA_DOWNLOAD=1" in str(err.value)


def test_failed_download_is_a_data_error(tmp_path, monkeypatch):
    """An allowed download that fails (no network) names the folder looked in and the variable to set."""
    import datasets

    def offline(*a, **k):
        raise ConnectionError("Couldn't reach 'roneneldan/TinyStories' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setenv("LUMINA_DOWNLOAD", "1")
    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match=r"downloading roneneldan/TinyStories .*ConnectionError.*absent") as err:
        load_stories("train", root=tmp_path / "absent")
    assert "LUMINA_DATA" in str(err.value)


def test_failed_cifar_download_is_a_data_error(tmp_path, monkeypatch):
    import urllib.error

    from torchvision.datasets import CIFAR10

    from lumina.data import load_cifar10

    def offline(self, *a, **k):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(CIFAR10, "download", offline)
    monkeypatch.delenv("LUMINA_DOWNLOAD", raising=False)
    with pytest.raises(DataError, match=r"data_batch_1 is missing.*LUMINA_DATA.*LUMINA_DOWNLOAD=1"):
        load_cifar10(True, root=tmp_path)
    monkeypatch.setenv("LUMINA_DOWNLOAD", "1")
    with pytest.raises(DataError, match=r"downloading CIFAR-10 failed \(URLError.*cifar-10-batches-py.*LUMINA_DATA"):
        load_cifar10(True, root=tmp_path)


def test_tokenizer_cache_under_results_root(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path / "store"))
    path = tokenizer_path(text_cfg())
    assert path.parent == tmp_path / "store" / "tokenizers" and path.name.startswith("tinystories-bpe300-")


def test_missing_file(tmp_path):
    folder = make_folder(tmp_path)
    (folder / TRAIN_FILES[1]).unlink()
    with pytest.raises(DataError, match=TRAIN_FILES[1].replace(".", r"\.")):
        load_stories("train", root=folder)


def test_empty_file(tmp_path):
    folder = make_folder(tmp_path)
    write_xz(folder / VALIDATION_FILES[0], b"")
    with pytest.raises(DataError, match=r"validation_prefix\.eot\.txt\.xz.*no stories"):
        load_stories("validation", root=folder)


def test_non_utf8_file(tmp_path):
    folder = make_folder(tmp_path)
    write_xz(folder / TRAIN_FILES[2], b"Caf\xe9 au lait.\n<|endoftext|>\n")
    with pytest.raises(DataError, match=r"unknown_split\.txt\.xz.*UTF-8"):
        load_stories("train", root=folder)


def test_corrupt_xz(tmp_path):
    folder = make_folder(tmp_path)
    (folder / TRAIN_FILES[0]).write_bytes(b"not xz at all")
    with pytest.raises(DataError, match=r"train_prefix\.eot\.txt\.xz.*corrupt"):
        load_stories("train", root=folder)


def test_overlap_refused_and_bad_split(tmp_path):
    folder = make_folder(tmp_path, stories=("A story.", "A VALIDATION story!"))
    with pytest.raises(DataError, match="also appear in the validation"):
        load_stories("train", root=folder)
    with pytest.raises(ValueError, match="validation"):
        load_stories("test", root=folder)


def test_local_loading_order(tmp_path):
    folder = make_folder(tmp_path)
    assert load_stories("train", root=folder) == ["A story.", "Another one."] * 3
    assert load_stories("validation", root=folder) == ["A validation story."]


def test_hub_fallback_when_folder_missing(tmp_path, monkeypatch):
    """No local folder and LUMINA_DOWNLOAD=1: the stories come from datasets.load_dataset (faked here), repaired."""
    import datasets

    rows = [{"text": "  Tom said \u00e2\u20ac\u0153hi\u00e2\u20ac.  \n\nThe end.  "}, {"text": "Two."}, {"text": " "}]
    calls = []

    class Stream:
        def take(self, n):
            return rows[:n]

    def fake_load_dataset(name, split, streaming=False):
        calls.append((name, split, streaming))
        return Stream() if streaming else {"text": [r["text"] for r in rows]}

    monkeypatch.setenv("LUMINA_DOWNLOAD", "1")
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert load_stories("train", root=tmp_path / "absent") == ["Tom said \u201chi\u201d.\nThe end.", "Two."]
    assert load_stories("validation", n_stories=1, root=tmp_path / "absent") == ["Tom said \u201chi\u201d.\nThe end."]
    assert calls == [("roneneldan/TinyStories", "train", False), ("roneneldan/TinyStories", "validation", True)]


def test_mojibake_repair():
    assert repair_mojibake("He said, \u00e2\u20ac\u0153Hi!\u00e2\u20ac and left.") == "He said, \u201cHi!\u201d and left."
    assert repair_mojibake("It\u00e2\u20ac\u2122s caf\u00c3\u00a9") == "It\u2019s caf\u00e9"
    assert repair_mojibake("plain text, no change") == "plain text, no change"


# ---- tokenizer --------------------------------------------------------------------------------------
def test_tokenizer_round_trip_and_corpus(corpus):
    train, val, tok = corpus
    eot = tok.token_to_id(EOT)
    assert eot is not None and tok.get_vocab_size() <= 300
    for s in val + ["Unseen wörds, “quotes” and émoji 🙂 survive."]:
        assert tok.decode(tok.encode(s).ids) == s
    ids = encode_corpus(tok, val)
    assert ids.dtype == torch.int64 and ids.ndim == 1
    assert len(ids) == sum(len(tok.encode(s).ids) + 1 for s in val)
    assert int((ids == eot).sum()) == len(val) and int(ids[-1]) == eot
    nbytes = torch.tensor([len(b) for b in token_bytes(tok)])
    assert int(nbytes[ids].sum()) == sum(len(s.encode()) + 1 for s in val)  # EOT counts as one byte


def test_gpt2_tokenizer_cached_or_clear_error():
    """GPT-2's tokenizer when it is in the local cache, else a DataError that says what to do; never a download."""
    from lumina.data.tokenizer import gpt2_tokenizer

    try:
        tok = gpt2_tokenizer()
    except DataError as e:
        assert "GPT-2 tokenizer" in str(e) and "tokenizer='bpe'" in str(e)
        return
    assert tok.get_vocab_size() == 50257 and tok.token_to_id(EOT) == 50256
    s = "Once upon a time, Lily saw a \u201cbig\u201d dog."
    assert tok.decode(tok.encode(s, add_special_tokens=False).ids) == s
    nbytes = [len(b) for b in token_bytes(tok)]
    assert sum(nbytes[i] for i in tok.encode(s, add_special_tokens=False).ids) == len(s.encode())


# ---- the task ---------------------------------------------------------------------------------------
def test_batch_windows(corpus):
    """Non-overlapping windows of L+1 tokens: x = tokens t..t+L-1, y = the next token at every position."""
    train, val, tok = corpus
    cfg = text_cfg(context=8)
    task = TextTask(cfg, stories=(train, val), tokenizer=tok)
    assert task.n_out == 300 and task.n_train == (len(task.train_tokens) - 1) // 8
    idx = torch.tensor([0, 5, task.n_train - 1])
    x, y = task.batch(idx, torch.Generator())
    assert x.shape == y.shape == (3, 8) and x.dtype == y.dtype == torch.int64
    for r, k in enumerate(idx.tolist()):
        assert torch.equal(x[r], task.train_tokens[8 * k:8 * k + 8])
        assert torch.equal(y[r], task.train_tokens[8 * k + 1:8 * k + 9])
    assert task.example().shape == (1, 8)
    with pytest.raises(IndexError):
        task.batch(torch.tensor([task.n_train]))
    sub = TextTask(text_cfg(context=8, train_subset=10, test_subset=20), stories=(train, val), tokenizer=tok)
    assert sub.n_train == 10 and sub.val_windows.shape == (2, 9)  # 20 tokens -> two windows of 8 targets
    assert torch.equal(windows(torch.arange(10), 3), torch.tensor([[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]))


def test_evaluate_untrained_luminanet(corpus):
    train, val, tok = corpus
    cfg = text_cfg(context=8, vocab=300, test_subset=64)
    task = TextTask(cfg, stories=(train, val), tokenizer=tok, eval_batch=3)
    model = text_luminanet(cfg)
    x, y = task.batch(torch.arange(4))
    assert model(x).shape == (4, 8, 300)  # a prediction at every position
    assert torch.isfinite(task.loss(model(x), y))
    m = task.evaluate(model)
    assert m["n_tokens"] == 64 and model.training  # every position of 8 windows; train mode restored
    assert 0.5 * 300 < m["ppl"] < 2 * 300, m  # a near-uniform model: perplexity ~ the vocabulary size
    assert math.isclose(m["ppl"], math.exp(m["loss"]))
    assert 0 < m["bpb"] and 0 <= m["top1"] <= m["top5"] <= 100
    n_bytes = int(task.nbytes[task.val_windows[:, 1:].reshape(-1)].sum())
    assert math.isclose(m["bpb"], m["loss"] * 64 / math.log(2) / n_bytes, rel_tol=1e-9)


def test_evaluate_matches_a_per_position_loop(corpus):
    """Batching does not change the numbers, and position t is scored from tokens <= t only: recompute every
    target with the rest of its window replaced by other tokens."""
    train, val, tok = corpus
    cfg = text_cfg(context=4, test_subset=12)
    task = TextTask(cfg, stories=(train, val), tokenizer=tok, eval_batch=2)
    model = text_luminanet(cfg)
    nll, n = 0.0, 0
    with torch.no_grad():
        for w in task.val_windows:
            for t in range(4):
                x = w[:-1].clone()
                x[t + 1:] = (x[t + 1:] + 7) % 300  # the future is different
                nll += float(torch.nn.functional.cross_entropy(model(x.view(1, 4))[0, t:t + 1], w[t + 1:t + 2]))
                n += 1
    assert n == 12 and math.isclose(task.evaluate(model)["loss"], nll / n, rel_tol=1e-5)


def test_luminanet_refuses_out_of_vocab_ids():
    cfg = text_cfg(context=4, vocab=300)
    model = text_luminanet(cfg)
    with pytest.raises(ValueError, match="token ids must lie in"):
        model(torch.tensor([[1, 2, 3, 300]]))
    with pytest.raises(ValueError, match="token ids must lie in"):
        model(torch.tensor([[1, -1, 3, 4]]))


# ---- causal by wiring ---------------------------------------------------------------------------------
def causal_graph(L: int, seed: int) -> Graph:
    """An evolved-looking causal graph: split children (same slot, higher id), feedback edges (higher id to
    lower id) only where slot(src) <= slot(dst), same-slot edges and self-loops."""
    g = random_graph(n_slots=L, size=5, n_splits=L, n_edges=5 * L, seed=seed, causal=True)
    kinds = g.edge_counts()
    assert kinds["feedback"] and kinds["feedforward"] and len(g.levels()) > 2
    assert any(g.clusters[s].slot == g.clusters[d].slot and s != d for (s, d) in g.edges)
    assert all(g.clusters[s].slot <= g.clusters[d].slot for (s, d) in g.edges)
    return g


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("cl", ["source", "edge"])
def test_changing_a_later_token_leaves_earlier_outputs_bit_identical(cl, seed):
    L = 8
    m = text_model(causal_graph(L, seed), vocab=40, cl=cl, seed=seed)
    x = torch.randint(0, 40, (3, L), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        for executor in ("fast", "reference"):
            a = m(x, executor)
            for t in range(L - 1):
                x2 = x.clone()
                x2[:, t + 1] = (x2[:, t + 1] + 1 + t) % 40
                b = m(x2, executor)
                assert torch.equal(a[:, :t + 1], b[:, :t + 1]), (executor, t)  # bit-identical
                assert not torch.allclose(a[:, t + 1], b[:, t + 1]), (executor, t)  # and t+1 does see it


def test_a_backward_edge_would_break_causality():
    """The test above can fail: the same network with one edge from a later slot into an earlier one."""
    g = causal_graph(8, 0)
    m = text_model(g, vocab=40)
    bad = g.copy()
    bad.causal = False
    late, early = next(i for i in bad.ids if bad.clusters[i].slot == 6), next(i for i in bad.ids if bad.clusters[i].slot == 1)
    bad.add_edge(late, early)
    params = m.params_dict() | {f"e{late}_{early}": torch.tensor(1.0)}
    leaky = LuminaNet(bad, d_in=6, d_hidden=8, n_out=40, input_kind="tokens", vocab_size=40, params=params)
    x = torch.randint(0, 40, (2, 8))
    x2 = x.clone()
    x2[:, 6] = (x2[:, 6] + 1) % 40
    with torch.no_grad():
        assert not torch.equal(leaky(x)[:, 1], leaky(x2)[:, 1])
    bad.causal = True
    with pytest.raises(TopologyError, match="causal"):
        bad.validate()


def test_connect_never_wires_backwards_in_position():
    """The policy on a causal network adds no edge from a later slot to an earlier one; on the same network
    marked non-causal it does add such edges (they score well), so the check is not vacuous."""
    g = causal_graph(6, 1)
    cfg = EvolutionConfig(prune=False, reduce=False, grow=False, split=False, connect_k=40, max_in_degree=100)
    x = torch.randint(0, 40, (8, 6), generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 40, (8, 6), generator=torch.Generator().manual_seed(1))
    loss = lambda logits, t: torch.nn.functional.cross_entropy(logits.flatten(0, 1), t.flatten())
    backwards = {}
    for causal in (True, False):
        h = g.copy()
        h.causal = causal
        m = text_model(h, vocab=40, seed=1)
        pol = EvolutionPolicy(cfg, 0)
        ch = pol.evolve(m, x, y, loss, 10)
        ch.graph.validate()
        added = [tuple(e.clusters) for e in pol.events if e.op == "connect"]
        assert len(added) > 10
        backwards[causal] = [(s, d) for s, d in added if h.clusters[s].slot > h.clusters[d].slot]
    assert not backwards[True] and backwards[False]


# ---- generation with a slot cache ----------------------------------------------------------------------
@pytest.mark.parametrize("cl", ["source", "edge"])
def test_step_slot_gives_the_full_forward_logits(cl):
    L = 8
    m = text_model(causal_graph(L, 2), vocab=40, cl=cl, seed=2).eval()
    x = torch.randint(0, 40, (2, L))
    full = m(x)
    cache = {}
    for t in range(L):
        step = m.step_slot(x[:, t], t, cache)
        assert torch.allclose(step, full[:, t], atol=1e-5), t


@pytest.fixture(scope="module")
def evolved_text(corpus):
    """A tiny causal LuminaNet LM trained with evolution on the made-up stories (a few seconds)."""
    train_stories, val, tok = corpus
    cfg = ExperimentConfig(
        experiment="tinystories", profile="smoke",
        model=ModelConfig(context=8, d_hidden=8, init_size=8, d_embed=8),
        evolution=EvolutionConfig(m_min=2, m_max=12, grow_n=4, evolve_every=3, load_every=1, min_edge_age=3,
                                  probe_batch=8, warmup_frac=0.05, freeze_frac=0.1, max_in_degree=3),
        train=TrainConfig(threads=1, label_smoothing=0.0, augment=False, epochs=3.0, batch_size=8, lr=5e-3,
                          eval_every=20),
        data=DataConfig(dataset="tinystories", vocab_size=300, test_subset=64)).validate()
    task = TextTask(cfg, stories=(train_stories, val), tokenizer=tok)
    return cfg, task, train(cfg, task=task, log=lambda *a: None)


def test_text_training_evolves_a_causal_network(evolved_text):
    cfg, task, run = evolved_text
    g = run.model.graph
    counts = run.result["event_counts"]
    assert counts["connect"] > 0 and counts["split"] > 0 and counts["grow"] > 0, counts
    assert g.causal and g.validate() and len(g.clusters) > cfg.model.context
    assert all(g.clusters[s].slot <= g.clusters[d].slot for (s, d) in g.edges)
    initial = Graph.initial(cfg.model.context, cfg.model.init_size, causal=True)
    assert replay(initial, run.events).to_dict() == g.to_dict()
    losses = [h["train_loss"] for h in run.result["history"]]
    assert losses[-1] < losses[0] and run.result["metrics"]["test_ppl"] < 300


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_cached_and_uncached_generation_give_the_same_tokens(evolved_text, temperature):
    """Slot by slot with the cache, or the whole window per token: the same tokens, also after the window
    slid (3x the context)."""
    cfg, task, run = evolved_text
    kw = dict(max_new_tokens=3 * cfg.model.context, temperature=temperature, seed=3, stop_at_eot=False)
    calls = {"step": 0, "full": 0}
    model = run.model
    real_step, real_forward = model.step_slot, model.forward
    model.step_slot = lambda *a: calls.__setitem__("step", calls["step"] + 1) or real_step(*a)
    model.forward = lambda *a, **k: calls.__setitem__("full", calls["full"] + 1) or real_forward(*a, **k)
    try:
        cached = task.generate(model, "The cat", cache=True, **kw)
        n_step, n_full = calls["step"], calls["full"]
        uncached = task.generate(model, "The cat", cache=False, **kw)
    finally:
        del model.step_slot, model.forward
    assert cached == uncached and cached.startswith("The cat")
    n_new = len(task.encode(cached[len("The cat"):])) if cached != "The cat" else 0
    assert n_full == 0 and calls["full"] - n_full == kw["max_new_tokens"]  # cached: no full forward at all
    assert n_step < 2 * kw["max_new_tokens"]  # one slot per new token, plus the refill after each slide
    assert n_new > cfg.model.context  # more new tokens than one window holds: the window slid


def test_generate_runs_on_an_untrained_model_and_on_gpt2(corpus):
    train_stories, val, tok = corpus
    cfg = text_cfg(context=4)
    task = TextTask(cfg, stories=(train_stories, val), tokenizer=tok)
    out = task.generate(text_luminanet(cfg), "The cat", max_new_tokens=5, seed=1)
    assert out.startswith("The cat") and isinstance(out, str)
    gpt = build_gpt2(300, 4, 16, seed=0)
    a = task.generate(gpt, "The cat", max_new_tokens=6, seed=1, temperature=0, stop_at_eot=False)
    b = task.generate(gpt, "The cat", max_new_tokens=6, seed=1, temperature=0, stop_at_eot=False, cache=False)
    assert a == b and a.startswith("The cat")


# ---- GPT-2 baseline ---------------------------------------------------------------------------------
def test_gpt2_shapes_and_evaluate(corpus):
    train, val, tok = corpus
    full = build_gpt2(vocab_size=300, context=8, d_model=16, n_head=4, seed=0)
    x = torch.randint(0, 300, (3, 8))
    assert full(x).shape == (3, 8, 300)
    assert full(x[:, :5]).shape == (3, 5, 300)  # shorter prompts work (generation)
    last = build_gpt2(vocab_size=300, context=8, d_model=16, n_head=4, full_sequence=False, seed=0)
    assert last(x).shape == (3, 300)
    assert torch.allclose(last(x), full(x)[:, -1], atol=1e-5)  # same seed, same weights
    assert sum(1 for n, _ in full.named_modules() if n.endswith(".attn")) == 1  # a single layer
    task = TextTask(text_cfg(context=8, test_subset=16), stories=(train, val), tokenizer=tok)
    a = task.evaluate(full)
    assert a["n_tokens"] == 16 and 0.5 * 300 < a["ppl"] < 2 * 300
    with pytest.raises(ValueError, match="token ids"):
        full(torch.tensor([[0, 300]]))
    with pytest.raises(ValueError, match="context"):
        full(torch.zeros(1, 9, dtype=torch.int64))
    with pytest.raises(ValueError, match="divisible"):
        build_gpt2(300, 8, d_model=10, n_head=4)


def test_gpt2_is_built_from_the_config_at_luminanets_width():
    cfg = resolve("tinystories_baseline", "smoke")
    m = build_model(cfg)
    assert isinstance(m, GPT2Baseline) and m.full_sequence
    assert (m.vocab_size, m.context, m.lm.config.n_embd) == (cfg.data.vocab_size, cfg.model.context, cfg.model.d_hidden)


def test_gpt2_trains_one_step(corpus):
    train, val, tok = corpus
    task = TextTask(text_cfg(context=8), stories=(train, val), tokenizer=tok)
    model = build_gpt2(300, 8, 16, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x, y = task.batch(torch.arange(8))
    with torch.no_grad():
        before = float(task.loss(model(x), y))
    for _ in range(3):
        opt.zero_grad()
        task.loss(model(x), y).backward()
        opt.step()
    with torch.no_grad():
        assert float(task.loss(model(x), y)) < before


def test_gpt2_state_dict_safetensors_round_trip(tmp_path):
    """Tied embedding/LM head: stored once (safetensors refuses shared tensors), re-tied on load."""
    from safetensors.torch import load_file, save_file

    a, b = build_gpt2(300, 8, 16, seed=0), build_gpt2(300, 8, 16, seed=1)
    sd = a.state_dict()
    assert "lm.lm_head.weight" not in sd and "lm.transformer.wte.weight" in sd
    save_file({k: v.contiguous() for k, v in sd.items()}, tmp_path / "w.safetensors")
    b.load_state_dict(load_file(tmp_path / "w.safetensors"))
    x = torch.randint(0, 300, (2, 8))
    assert torch.equal(a(x), b(x))
    assert b.lm.lm_head.weight is b.lm.transformer.wte.weight


def test_gpt2_trains_and_resumes_exactly_through_the_shared_loop(corpus, tmp_path):
    train_stories, val, tok = corpus
    cfg = ExperimentConfig(experiment="tinystories_baseline", profile="smoke",
                           model=ModelConfig(arch="gpt2", context=8, d_hidden=16),
                           train=TrainConfig(threads=1, label_smoothing=0.0, augment=False, epochs=1.0, batch_size=8,
                                             eval_every=8),
                           data=DataConfig(dataset="tinystories", vocab_size=300, test_subset=32)).validate()
    task = lambda: TextTask(cfg, stories=(train_stories, val), tokenizer=tok)
    quiet = dict(log=lambda *a: None)
    assert train(cfg, task=task(), ckpt=tmp_path / "c.safetensors", stop_after=9, **quiet) is None
    resumed = train(cfg, task=task(), ckpt=tmp_path / "c.safetensors", **quiet)
    straight = train(cfg, task=task(), **quiet)
    assert resumed.result["metrics"] == straight.result["metrics"]
    a, b = resumed.model.state_dict(), straight.model.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in b)
    h = resumed.result["history"]
    assert h[-1]["test_n_tokens"] == 32 and h[-1]["train_loss"] < h[0]["train_loss"]
