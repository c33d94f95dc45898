"""TinyStories (Eldan & Li 2023, arXiv:2305.07759): the stories as strings, and which split each file feeds.

The tokenizer that turns them into token streams is `lumina.data.tokenizer`.

Where the stories come from
---------------------------
Local first: `$LUMINA_DATA/tinystories/*.xz` (`data_root()`; the project ships real *slices*, not the whole
dataset: see `../shared/data/README.md`). Each file is UTF-8 text in which every story is followed by a line
holding only `<|endoftext|>`. xz's own CRC check catches a corrupt file; an empty file, non-UTF-8 bytes or a
missing file raise `DataError` naming the file. When the local folder is missing and the user allows
downloads (`LUMINA_DOWNLOAD=1`), the stories are read from the Hugging Face hub
(`datasets.load_dataset("roneneldan/TinyStories")`), their cp1252 mojibake repaired and their whitespace
normalised the way the local files were; without it, a `DataError` says where to put the files.

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
"""
from __future__ import annotations

import lzma
import re
from functools import lru_cache
from pathlib import Path

from .common import DataError, data_root, downloading, downloads_allowed, not_found

EOT = "<|endoftext|>"
HUB_ID = "roneneldan/TinyStories"
TRAIN_FILES = ("train_prefix.eot.txt.xz", "train_extra.txt.xz", "unknown_split.txt.xz")
LOWERCASE_FILE = "train_lowercase_extra.txt.xz"
VALIDATION_FILES = ("validation_prefix.eot.txt.xz",)
SPLITS = ("train", "validation")

_HOW_TO_GET = ("Get the TinyStories slices (train_prefix.eot.txt.xz, ..., see ../shared/data/README.md) and put "
               "them in a folder `tinystories/` under LUMINA_DATA (e.g. LUMINA_DATA=../shared/data).")


# ---- local files ------------------------------------------------------------------------------------
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
    missing and the user allows downloads (`LUMINA_DOWNLOAD=1`), the stories come from the Hugging Face hub.
    """
    split_files(split)  # validates the name
    if n_stories < 0:
        raise ValueError(f"n_stories={n_stories} must be >= 0 (0 = all)")
    folder = tinystories_root(root)
    if not folder.is_dir():
        if downloads_allowed():
            return load_hub_stories(split, n_stories, folder)
        raise not_found("TinyStories folder", folder, "tinystories", _HOW_TO_GET)
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


def load_hub_stories(split: str, n_stories: int = 0, folder: Path | None = None) -> list[str]:
    """`split` of roneneldan/TinyStories from the hub (streamed when `n_stories` > 0), repaired and normalised.
    Any failure (network, cache, versions) is a `DataError` that names `folder`, the local alternative."""
    with downloading(f"{HUB_ID} ({split}) from the Hugging Face hub", folder or tinystories_root(), "tinystories",
                     _HOW_TO_GET):
        import datasets

        if n_stories:
            rows = datasets.load_dataset(HUB_ID, split=split, streaming=True).take(n_stories)
            texts = [r["text"] for r in rows]
        else:
            texts = datasets.load_dataset(HUB_ID, split=split)["text"]
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
