"""TinyStories (Eldan & Li 2023, arXiv:2305.07759): stories as strings, a byte-level BPE tokenizer, token streams.

Where the stories come from
---------------------------
Local first: `$LUMINA_DATA/tinystories/*.xz` (`data_root()`; the project ships real *slices*, not the whole
dataset: see `../shared/data/README.md`). Each file is UTF-8 text in which every story is followed by a line
holding only `<|endoftext|>`. xz's own CRC check catches a corrupt file; an empty file, non-UTF-8 bytes or a
missing file raise `DataError` naming the file. When the local folder is missing and `online()` is true, the
stories are read from the Hugging Face hub (`datasets.load_dataset("roneneldan/TinyStories")`), their
cp1252 mojibake repaired and their whitespace normalised the way the local files were.

Split policy [ours]
-------------------
    train       train_prefix.eot.txt.xz    V1 train stories 1-245
                train_extra.txt.xz         V1 train stories 246-2316 (+ 5 V2-GPT4 train stories)
                unknown_split.txt.xz       6,334 V1 stories of unknown split, most likely train; they are used
                                           for training only, never for validation
    validation  validation_prefix.eot.txt.xz   V1 validation stories 1-1000
    unused      train_lowercase_extra.txt.xz   lowercased by its source: it would skew the case distribution
                                           (opt in with `include_lowercase=True`)
                possibly_validation.txt.xz     16 stories whose split is not proven: never used
Train stories are listed in that file order, so `n_stories=N` takes the first N (cased V1 train first).
The README says each story appears once across all files (deduplicated on a loose key: lowercase, only
[a-z0-9]); nothing is deduplicated here, but loading the train split checks, with that same loose key, that
no validation story appears in it and raises `DataError` if one does.

Tokenizer [ours]
----------------
`train_tokenizer`: byte-level BPE (the GPT-2 scheme: GPT-2's pre-tokenisation regex, 256 byte symbols, no
prefix space, so `decode(encode(s)) == s` exactly) with one special token `<|endoftext|>` (EOT), trained on
the training stories only. Saved as JSON under `results/tokenizers/` (`tokenizer_path`), keyed by the vocabulary
size, `n_stories` and the train files' names and sizes, so LuminaNet and the GPT-2 baseline share one
tokenizer. `tokenizer="gpt2"` uses GPT-2's own tokenizer (50,257 tokens) when it is in the local Hugging Face
cache. `encode_corpus` concatenates the stories, each followed by the EOT id, as in the source files.
"""
from __future__ import annotations

import hashlib
import json
import lzma
import os
import re
from functools import lru_cache
from pathlib import Path

import torch

from .common import DataError, data_root, online

EOT = "<|endoftext|>"
HUB_ID = "roneneldan/TinyStories"
TRAIN_FILES = ("train_prefix.eot.txt.xz", "train_extra.txt.xz", "unknown_split.txt.xz")
LOWERCASE_FILE = "train_lowercase_extra.txt.xz"
VALIDATION_FILES = ("validation_prefix.eot.txt.xz",)
SPLITS = ("train", "validation")

_HOW_TO_GET = ("Put the TinyStories slices (train_prefix.eot.txt.xz, ..., see ../shared/data/README.md) in a "
               "folder `tinystories/` and set LUMINA_DATA to its parent (e.g. LUMINA_DATA=../shared/data), or run "
               f"on a machine with internet to read {HUB_ID} from the Hugging Face hub.")


# ---- stories ------------------------------------------------------------------------------------
def tinystories_root(root: Path | str | None = None) -> Path:
    """The folder that holds the TinyStories .xz files: `root`, else `data_root()/tinystories`."""
    return Path(root) if root is not None else data_root() / "tinystories"


def split_files(split: str, include_lowercase: bool = False) -> tuple[str, ...]:
    """The local files that make up `split` (see the module docstring for the policy)."""
    if split not in SPLITS:
        raise ValueError(f"unknown TinyStories split {split!r}; valid: {', '.join(map(repr, SPLITS))}")
    if split == "validation":
        return VALIDATION_FILES
    return TRAIN_FILES + ((LOWERCASE_FILE,) if include_lowercase else ())


def read_stories(path: Path | str) -> list[str]:
    """The stories of one `.xz` file (each followed by an `<|endoftext|>` line), stripped, in file order."""
    path = Path(path)
    st = path.stat() if path.is_file() else None
    if st is None:
        raise DataError(f"TinyStories file {path} is missing. {_HOW_TO_GET}")
    return list(_read_cached(str(path.resolve()), st.st_mtime_ns, st.st_size))


@lru_cache(maxsize=16)
def _read_cached(path: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    try:
        with lzma.open(path, "rb") as f:
            raw = f.read()
    except (lzma.LZMAError, EOFError) as e:
        raise DataError(f"TinyStories file {path} is corrupt ({e}). Get a fresh copy: {_HOW_TO_GET}") from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"TinyStories file {path} is not valid UTF-8 (byte {e.start} of the decompressed text: "
                        f"{raw[e.start:e.start + 8]!r}). Get a fresh copy: {_HOW_TO_GET}") from e
    stories = tuple(s.strip() for s in text.split(EOT) if s.strip())
    if not stories:
        raise DataError(f"TinyStories file {path} holds no stories (empty after decompression). "
                        f"Get a fresh copy: {_HOW_TO_GET}")
    return stories


def loose_key(story: str) -> str:
    """The README's deduplication key: lowercase, everything except [a-z0-9] removed."""
    return re.sub(r"[^a-z0-9]", "", story.lower())


def check_disjoint(train: list[str], validation: list[str]) -> None:
    """Raise `DataError` if a validation story (by its loose key) also appears among the training stories."""
    val = {loose_key(s) for s in validation}
    bad = [s for s in train if loose_key(s) in val]
    if bad:
        raise DataError(f"{len(bad)} training stories also appear in the validation split, e.g. {bad[0][:80]!r}...; "
                        "the split files overlap, so validation would measure memorisation.")


def load_stories(split: str, n_stories: int = 0, root: Path | str | None = None, *,
                 include_lowercase: bool = False) -> list[str]:
    """The stories of `split` ("train" or "validation"), the first `n_stories` if > 0.

    `root` is the folder holding the .xz files (default `$LUMINA_DATA/tinystories`). When that folder is
    missing and downloads are allowed (`online()`), the stories come from the Hugging Face hub instead.
    """
    split_files(split)  # validates the name
    if n_stories < 0:
        raise ValueError(f"n_stories={n_stories} must be >= 0 (0 = all)")
    folder = tinystories_root(root)
    if not folder.is_dir():
        if online():
            return load_hub_stories(split, n_stories)
        raise DataError(f"TinyStories folder {folder} is missing and downloads are off or unreachable. {_HOW_TO_GET}")
    stories = [s for name in split_files(split, include_lowercase) for s in read_stories(folder / name)]
    if split == "train":
        check_disjoint(stories, [s for name in VALIDATION_FILES for s in read_stories(folder / name)])
    return stories[:n_stories] if n_stories else stories


# ---- the hub --------------------------------------------------------------------------------------
_MOJIBAKE = re.compile("[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
                       "\u2013\u2014\u2018\u2019\u201a\u201c\u201d\u201e\u2020\u2021\u2022\u2026\u2030\u2039\u203a"
                       "\u20ac\u2122]+")


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 read as cp1252 (`â€œ` -> `“`), as was done for the local files; a bare `â€` reads as `”`."""
    def fix(m: re.Match) -> str:
        s = m.group(0)
        try:
            return s.encode("cp1252").decode("utf-8")
        except UnicodeError:
            if s.startswith("\u00e2\u20ac"):  # 'â€' whose third byte (0x9d, undefined in cp1252) was lost
                return "\u201d" + repair_mojibake(s[2:])
            return s

    return _MOJIBAKE.sub(fix, text)


def normalize_story(text: str) -> str:
    """The local files' layout: paragraphs separated by one `\\n`, no blank lines, no trailing spaces."""
    return "\n".join(line.rstrip() for line in text.strip().splitlines() if line.strip())


def load_hub_stories(split: str, n_stories: int = 0) -> list[str]:
    """`split` of roneneldan/TinyStories from the hub (streamed when `n_stories` > 0), repaired and normalised."""
    try:
        import datasets

        if n_stories:
            rows = datasets.load_dataset(HUB_ID, split=split, streaming=True).take(n_stories)
            texts = [r["text"] for r in rows]
        else:
            texts = datasets.load_dataset(HUB_ID, split=split)["text"]
    except Exception as e:  # network, cache, or version trouble: say what to do instead
        raise DataError(f"could not read {HUB_ID} ({split}) from the Hugging Face hub: {e}. {_HOW_TO_GET}") from e
    stories = [normalize_story(repair_mojibake(t)) for t in texts]
    stories = [s for s in stories if s]
    if not stories:
        raise DataError(f"{HUB_ID} ({split}) gave no stories. {_HOW_TO_GET}")
    return stories


def source_fingerprint(root: Path | str | None = None, include_lowercase: bool = False) -> str:
    """What the training stories are read from: the train files' names and sizes, or the hub id."""
    folder = tinystories_root(root)
    if not folder.is_dir():
        return f"hub:{HUB_ID}"
    parts = [f"{n}:{(folder / n).stat().st_size if (folder / n).is_file() else 'missing'}"
             for n in split_files("train", include_lowercase)]
    return ";".join(parts)


# ---- tokenizers -----------------------------------------------------------------------------------
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
    """Where the BPE tokenizer of `cfg` lives: `results/tokenizers/tinystories-bpe{V}-{hash}.json`, shared by
    every config with the same vocabulary size, `n_stories` and training files (so both models of a
    comparison use the same tokenizer)."""
    from ..results import results_root

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
