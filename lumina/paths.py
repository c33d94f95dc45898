"""Where things live: the project root and the folders named by environment variables (one home for all paths).

    LUMINA_DATA     datasets (default `data/` at the project root)
    LUMINA_RESULTS  the results store, committed for the `full` profile (default `results/`)
    LUMINA_RUNS     checkpoints of runs in progress, never committed (default `runs/`)
A relative value is resolved against the working directory of the process that reads it first, and written
back absolute into the environment, so notebooks and subprocesses started later (whose working directory
may differ) see the same folder.
"""
from __future__ import annotations

import os
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
