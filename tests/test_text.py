"""TinyStories: loading and its errors, the tokenizer, the text task and its metrics, the GPT-2 baseline.

Tiny and single-threaded. Tests marked `data` read the real slices under $LUMINA_DATA/tinystories and skip
when they are absent; every other test makes its own tiny corpus.
"""
import lzma
import math
import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one thread for the Rust tokenizer too

import pytest
import torch

from lumina.baselines.gpt2 import build_gpt2
from lumina.config import DataConfig, EvolutionConfig, ExperimentConfig, ModelConfig, TrainConfig
from lumina.data.common import DataError, data_root
from lumina.data.text import (EOT, TRAIN_FILES, VALIDATION_FILES, encode_corpus, load_stories, loose_key,
                              repair_mojibake, token_bytes, train_tokenizer)
from lumina.model import LuminaNet
from lumina.text import TextTask
from lumina.topology import Graph

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
    """As lumina.train.build_model builds it for dataset='tinystories': one cluster per position."""
    m = cfg.model
    return LuminaNet(Graph.initial(m.context, m.init_size, m.init_connect), d_in=m.d_embed, d_hidden=m.d_hidden,
                     n_out=cfg.data.vocab_size, input_kind="tokens", vocab_size=cfg.data.vocab_size,
                     aggregate=m.aggregate, seed=cfg.train.seed)


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
    monkeypatch.setenv("LUMINA_OFFLINE", "1")
    with pytest.raises(DataError, match="nowhere") as err:
        load_stories("train", root=tmp_path / "nowhere")
    assert "LUMINA_DATA" in str(err.value)


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
    """No local folder and online(): the stories come from datasets.load_dataset (faked here), repaired."""
    import datasets

    import lumina.data.text as text_data

    rows = [{"text": "  Tom said \u00e2\u20ac\u0153hi\u00e2\u20ac.  \n\nThe end.  "}, {"text": "Two."}, {"text": " "}]
    calls = []

    class Stream:
        def take(self, n):
            return rows[:n]

    def fake_load_dataset(name, split, streaming=False):
        calls.append((name, split, streaming))
        return Stream() if streaming else {"text": [r["text"] for r in rows]}

    monkeypatch.setattr(text_data, "online", lambda: True)
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
    from lumina.data.text import gpt2_tokenizer

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
    train, val, tok = corpus
    cfg = text_cfg(context=8)
    task = TextTask(cfg, stories=(train, val), tokenizer=tok)
    assert task.n_out == 300 and task.n_train == len(task.train_tokens) - 8
    idx = torch.tensor([0, 5, task.n_train - 1])
    x, y = task.batch(idx, torch.Generator())
    assert x.shape == (3, 8) and y.shape == (3,) and x.dtype == y.dtype == torch.int64
    for r, k in enumerate(idx.tolist()):
        assert torch.equal(x[r], task.train_tokens[k:k + 8]) and int(y[r]) == int(task.train_tokens[k + 8])
    assert task.example().shape == (1, 8)
    with pytest.raises(IndexError):
        task.batch(torch.tensor([task.n_train]))
    sub = TextTask(text_cfg(context=8, train_subset=10, test_subset=20), stories=(train, val), tokenizer=tok)
    assert sub.n_train == 10 and len(sub.val_tokens) == 28


def test_full_sequence_batch_for_gpt2(corpus):
    train, val, tok = corpus
    task = TextTask(text_cfg(context=8), stories=(train, val), tokenizer=tok)
    task.full_sequence = True  # what arch="gpt2" selects
    x, y = task.batch(torch.tensor([3, 7]))
    assert x.shape == y.shape == (2, 8)
    assert torch.equal(y[:, :-1], x[:, 1:]) and int(y[0, -1]) == int(task.train_tokens[3 + 8])
    logits = torch.randn(2, 8, 300, requires_grad=True)
    task.loss(logits, y).backward()
    assert logits.grad.shape == logits.shape


def test_evaluate_untrained_luminanet(corpus):
    train, val, tok = corpus
    cfg = text_cfg(context=8, vocab=300, test_subset=64)
    task = TextTask(cfg, stories=(train, val), tokenizer=tok, eval_batch=16)
    model = text_luminanet(cfg)
    x, y = task.batch(torch.arange(4))
    assert model(x).shape == (4, 300)
    loss = task.loss(model(x), y)
    assert torch.isfinite(loss)
    m = task.evaluate(model)
    assert m["n_tokens"] == 64 and model.training
    assert 0.8 * 300 < m["ppl"] < 1.6 * 300, m  # a near-uniform model: perplexity ~ the vocabulary size
    assert math.isclose(m["ppl"], math.exp(m["loss"]))
    assert 0 < m["bpb"] and 0 <= m["top1"] <= m["top5"] <= 100
    n_bytes = int(task.nbytes[task.val_tokens[8:]].sum())
    assert math.isclose(m["bpb"], m["loss"] * 64 / math.log(2) / n_bytes)


def test_evaluate_matches_per_token_loop(corpus):
    """Batching does not change the numbers: compare with a plain loop over the scored tokens."""
    train, val, tok = corpus
    cfg = text_cfg(context=4, test_subset=10)
    task = TextTask(cfg, stories=(train, val), tokenizer=tok, eval_batch=3)
    model = text_luminanet(cfg)
    v = task.val_tokens
    with torch.no_grad():
        nll = sum(float(torch.nn.functional.cross_entropy(model(v[t - 4:t].view(1, 4)), v[t].view(1)))
                  for t in range(4, len(v)))
    assert math.isclose(task.evaluate(model)["loss"], nll / 10, rel_tol=1e-5)


def test_luminanet_refuses_out_of_vocab_ids():
    cfg = text_cfg(context=4, vocab=300)
    model = text_luminanet(cfg)
    with pytest.raises(ValueError, match="token ids must lie in"):
        model(torch.tensor([[1, 2, 3, 300]]))
    with pytest.raises(ValueError, match="token ids must lie in"):
        model(torch.tensor([[1, -1, 3, 4]]))


def test_generate(corpus):
    train, val, tok = corpus
    cfg = text_cfg(context=4)
    task = TextTask(cfg, stories=(train, val), tokenizer=tok)
    out = task.generate(text_luminanet(cfg), "The cat", max_new_tokens=5, seed=1)
    assert out.startswith("The cat") and isinstance(out, str)


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
    task = TextTask(text_cfg(context=8, test_subset=20), stories=(train, val), tokenizer=tok)
    a, b = task.evaluate(full), task.evaluate(last)
    assert a["n_tokens"] == 20 and math.isclose(a["loss"], b["loss"], rel_tol=1e-5)
    assert 0.8 * 300 < a["ppl"] < 1.6 * 300
    with pytest.raises(ValueError, match="token ids"):
        full(torch.tensor([[0, 300]]))
    with pytest.raises(ValueError, match="context"):
        full(torch.zeros(1, 9, dtype=torch.int64))
    with pytest.raises(ValueError, match="divisible"):
        build_gpt2(300, 8, d_model=10, n_head=4)


def test_gpt2_trains_one_step(corpus):
    train, val, tok = corpus
    task = TextTask(text_cfg(context=8), stories=(train, val), tokenizer=tok)
    task.full_sequence = True
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
