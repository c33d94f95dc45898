"""How a missing or corrupt dataset is reported, and the one gate for downloads.

Downloads happen only when the user allows them (`LUMINA_DOWNLOAD=1`): a machine without internet, or one
whose network answers for some hosts and not others, would otherwise fail half-way with a `urllib`
traceback. Every failure of an allowed download becomes a `DataError` that names the folder looked in,
the variable to set and how to get the data. Where data lives is `lumina.paths.data_root()`.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from ..paths import data_root

__all__ = ["DataError", "data_root", "downloads_allowed", "not_found", "downloading"]


class DataError(RuntimeError):
    """A dataset is missing or corrupt; the message names the file and how to get it."""


def downloads_allowed() -> bool:
    """True only when the user set `LUMINA_DOWNLOAD=1`; nothing probes the network to decide."""
    return os.environ.get("LUMINA_DOWNLOAD", "").strip() == "1"


def _where(path: Path, folder: str) -> str:
    return f"looked in {path}; set LUMINA_DATA to the folder that holds `{folder}/` (now {data_root()})"


def not_found(what: str, path: Path, folder: str, how: str) -> DataError:
    """The error for data that is absent while downloads are off: where, which variable, how to get it."""
    return DataError(f"{what} is missing: {_where(path, folder)}. {how} "
                     "Or set LUMINA_DOWNLOAD=1 to let lumina download it.")


@contextmanager
def downloading(what: str, path: Path, folder: str, how: str):
    """Wrap an allowed download: any failure (URLError, OSError, the hub's connection errors, a bad
    archive) becomes one `DataError`, since its cause is the network or the source, never the caller."""
    try:
        yield
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever the transport raises, the user's fix is the same
        raise DataError(f"downloading {what} failed ({type(e).__name__}: {e}); {_where(path, folder)}. {how}") from e
