"""Where things live: the project root and the folders named by environment variables (one home for all paths).

    LUMINA_DATA     datasets (default `data/` at the project root)
    LUMINA_RESULTS  the results store, committed for the `full` profile (default `results/`)
    LUMINA_RUNS     checkpoints of runs in progress, never committed (default `runs/`)
A relative value is resolved against the working directory of the process that reads it first, and written
back absolute into the environment, so notebooks and subprocesses started later (whose working directory
may differ) see the same folder. `check_writable` tells, before a run trains, whether its result and
checkpoint can be written there.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _env_path(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    if not value:
        return default
    p = Path(value).expanduser()
    if not p.is_absolute():
        p = p.resolve()
        os.environ[var] = str(p)  # later readers (notebook kernels in book/chapters/) get the same folder
    return p


def data_root() -> Path:
    return _env_path("LUMINA_DATA", ROOT / "data")


def results_root() -> Path:
    return _env_path("LUMINA_RESULTS", ROOT / "results")


def runs_root() -> Path:
    return _env_path("LUMINA_RUNS", ROOT / "runs")


def check_writable(folder: Path, var: str) -> None:
    """A one-line ValueError unless `folder` is a folder this process can write, or can create: checked before
    a run trains, so a results store that cannot take the result is found out at once, not after the
    training. `var` names the environment variable that chooses the folder, the fix to offer. Writing a probe
    file is the test, not `os.access`: that ignores a read-only mount's ACLs and says yes to root."""
    folder = Path(folder)
    existing = folder
    while not existing.is_dir():
        if existing.exists() or existing.is_symlink():  # a file (or a dangling link) where a folder must be
            raise ValueError(f"{existing} is not a folder, so {folder} cannot be created there; "
                             f"point {var} at a folder")
        existing = existing.parent
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".lumina-write-check.")
    except OSError as err:
        raise ValueError(f"{existing} is not writable ({err.strerror}), so {folder} cannot be written; "
                         f"point {var} at a writable folder") from None
    os.close(fd)
    os.unlink(probe)
