"""Where data lives and how a missing or corrupt dataset is reported."""
from __future__ import annotations

import os
import socket
from pathlib import Path


class DataError(RuntimeError):
    """A dataset is missing or corrupt; the message names the file and how to get it."""


def data_root() -> Path:
    """`$LUMINA_DATA` if set, else `data/` at the project root."""
    env = os.environ.get("LUMINA_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "data"


def online(host: str = "pypi.org", timeout: float = 2.0) -> bool:
    """Downloads are allowed unless LUMINA_OFFLINE / HF_DATASETS_OFFLINE is set, and only when a host answers."""
    if os.environ.get("LUMINA_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False
