"""The byte-level BPE tokenizer of TinyStories: training, its cache, token bytes and token streams.

Tokenizer [ours]
----------------
`train_tokenizer`: byte-level BPE (the GPT-2 scheme: GPT-2's pre-tokenisation regex, 256 byte symbols, no
prefix space, so `decode(encode(s)) == s` exactly) with one special token `<|endoftext|>` (EOT), trained on
the training stories only. Saved as JSON under `<results>/tokenizers/` (`tokenizer_path`; the folder is
`lumina.paths.results_root()`, so the data package needs nothing from the results package), keyed by the
vocabulary size, `n_stories` and the train files' names and sizes, so LuminaNet and the GPT-2 baseline share
one tokenizer. `tokenizer="gpt2"` uses GPT-2's own tokenizer (50,257 tokens) when it is in the local Hugging Face
cache. `encode_corpus` concatenates the stories, each followed by the EOT id, as in the source files.
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

import torch

from ..paths import results_root
from .common import DataError
from .stories import EOT, load_stories, source_fingerprint


# ---- training and the cache ---------------------------------------------------------------------
def train_tokenizer(stories: list[str], vocab_size: int):
    """A byte-level BPE `tokenizers.Tokenizer` with `<|endoftext|>` (id 0), trained on `stories` only."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if vocab_size < 257:
        raise ValueError(f"vocab_size={vocab_size}: a byte-level BPE needs at least 257 tokens (256 bytes + EOT)")
    if not stories:
        raise ValueError("cannot train a tokenizer on no stories")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(stories, trainer=trainer, length=len(stories))
    return tok


def save_tokenizer(tok, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tok.save(str(tmp))
    tmp.replace(path)  # atomic: a reader never sees half a file
    return path


def load_tokenizer(path: Path | str):
    from tokenizers import Tokenizer

    path = Path(path)
    if not path.is_file():
        raise DataError(f"tokenizer file {path} is missing")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as e:
        raise DataError(f"tokenizer file {path} is corrupt ({e}); delete it and it will be retrained") from e
    if tok.token_to_id(EOT) is None:
        raise DataError(f"tokenizer {path} has no {EOT} token")
    return tok


def gpt2_tokenizer():
    """GPT-2's byte-level BPE (50,257 tokens, EOT = 50256) from the local Hugging Face cache, as a
    `tokenizers.Tokenizer`; never downloads."""
    try:
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained("gpt2", local_files_only=True)
    except Exception as e:
        raise DataError(
            "the GPT-2 tokenizer is not in the local Hugging Face cache (HF_HOME / ~/.cache/huggingface), and "
            "nothing is downloaded at run time. On a machine with internet run "
            "`python -c \"from transformers import AutoTokenizer; AutoTokenizer.from_pretrained('gpt2')\"` and "
            f"copy the cache over, or use tokenizer='bpe'. ({type(e).__name__}: {e})") from e
    return hf.backend_tokenizer


def tokenizer_path(cfg) -> Path:
    """Where the BPE tokenizer of `cfg` lives: `<results>/tokenizers/tinystories-bpe{V}-{hash}.json`, shared by
    every config with the same vocabulary size, `n_stories` and training files (so both models of a
    comparison use the same tokenizer)."""
    d = cfg.data
    blob = json.dumps({"vocab_size": d.vocab_size, "n_stories": d.n_stories, "source": source_fingerprint(),
                       "kind": cfg.model.tokenizer}, sort_keys=True)
    h = hashlib.sha256(blob.encode()).hexdigest()[:12]
    return results_root() / "tokenizers" / f"tinystories-{cfg.model.tokenizer}{d.vocab_size}-{h}.json"


def get_tokenizer(cfg, train_stories: list[str] | None = None):
    """The tokenizer `cfg.model.tokenizer` names: "gpt2" from the local cache, or "bpe" loaded from
    `tokenizer_path(cfg)`, trained on `train_stories` (loaded when not given) and saved there if absent."""
    if cfg.model.tokenizer == "gpt2":
        return gpt2_tokenizer()
    if cfg.model.tokenizer != "bpe":
        raise ValueError(f"unknown tokenizer {cfg.model.tokenizer!r}; valid: 'bpe', 'gpt2'")
    path = tokenizer_path(cfg)
    if path.is_file():
        return load_tokenizer(path)
    if train_stories is None:
        train_stories = load_stories("train", cfg.data.n_stories)
    save_tokenizer(train_tokenizer(train_stories, cfg.data.vocab_size), path)
    return load_tokenizer(path)  # read back, so a fresh run and a cached one use the very same object


def encode_corpus(tok, stories: list[str]) -> torch.Tensor:
    """One token stream (N,) int64: every story's tokens followed by the EOT id."""
    eot = tok.token_to_id(EOT)
    if eot is None:
        raise ValueError(f"the tokenizer has no {EOT} token")
    encs = tok.encode_batch(list(stories), add_special_tokens=False)
    total = sum(len(e.ids) + 1 for e in encs)
    out = torch.empty(total, dtype=torch.int64)
    pos = 0
    for e in encs:
        n = len(e.ids)
        out[pos:pos + n] = torch.tensor(e.ids, dtype=torch.int64)
        out[pos + n] = eot
        pos += n + 1
    return out


@lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode: the printable stand-in character of each byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def token_bytes(tok) -> list[bytes]:
    """The UTF-8 bytes each token id stands for (byte-level BPE); special tokens (EOT) stand for `b"\\n"`,
    one byte, the story boundary a plain-text file would hold."""
    u2b = _unicode_to_byte()
    special = {t.content for t in tok.get_added_tokens_decoder().values() if t.special}
    out = []
    for i in range(tok.get_vocab_size()):
        s = tok.id_to_token(i)
        if s is None or s in special:
            out.append(b"\n")
        elif all(c in u2b for c in s):
            out.append(bytes(u2b[c] for c in s))
        else:  # not a byte-level token (should not happen with the tokenizers made here)
            out.append(s.encode("utf-8"))
    return out
