"""Train or load: a run is keyed by the hash of its resolved config; finished results are looked up first.

Layout: `results/<experiment>/<profile>/<config key>/` holds `result.json` (metrics, history, config and
provenance), `topology.json` and `events.jsonl` (LuminaNet), written atomically with `result.json` last, so
a half-written run is never read as complete. `full`/`paper` results are committed; `smoke` ones are not.
Checkpoints of runs in progress live under `runs/` (not committed).
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path

from .checkpoint import atomic_write_text
from .config import ExperimentConfig

ROOT = Path(__file__).resolve().parents[1]


def results_root() -> Path:
    return Path(os.environ.get("LUMINA_RESULTS", ROOT / "results"))


def runs_root() -> Path:
    return Path(os.environ.get("LUMINA_RUNS", ROOT / "runs"))


def result_dir(cfg: ExperimentConfig) -> Path:
    return results_root() / cfg.experiment / cfg.profile / cfg.key()


def provenance(wall_s: float | None = None) -> dict:
    import torch

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for mod in ("torchvision", "timm", "transformers", "tokenizers"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            pass
    cpu = platform.processor()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "git_commit": git("rev-parse", "HEAD"), "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "versions": versions,
        "hardware": {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                     "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_s": wall_s,
    }


def load_result(cfg: ExperimentConfig) -> dict | None:
    f = result_dir(cfg) / "result.json"
    if not f.exists():
        return None
    found = json.loads(f.read_text())
    want = cfg.to_dict()
    for section, values in want.items():  # a stored run must match every field it knows about
        stored = found["config"].get(section)
        if isinstance(values, dict):
            stale = {k: (stored.get(k), v) for k, v in values.items() if k in stored and stored[k] != v}
            if stale:
                raise ValueError(f"{f} was stored for another config (stored, wanted): {stale}; "
                                 "a default changed since it ran: rerun it or restore the default")
    return found


def save_result(cfg: ExperimentConfig, result: dict, topology_json: str | None = None, events: list | None = None) -> Path:
    d = result_dir(cfg)
    if topology_json is not None:
        atomic_write_text(d / "topology.json", topology_json)
    if events is not None:
        atomic_write_text(d / "events.jsonl", "".join(json.dumps(e) + "\n" for e in events))
    atomic_write_text(d / "result.json", json.dumps(result, indent=1))  # last: marks the run complete
    return d


def train_or_load(cfg: ExperimentConfig, retrain: bool = False, **train_kw) -> dict:
    """The finished result for `cfg` if one is stored, else train it now and store it."""
    if not retrain:
        found = load_result(cfg)
        if found is not None:
            return found
    from .train import train

    return train(cfg, **train_kw)


def find_results(experiment: str, profile: str) -> list[dict]:
    """Every stored result of an experiment/profile (for tables across widths, seeds, models)."""
    base = results_root() / experiment / profile
    return [json.loads(f.read_text()) for f in sorted(base.glob("*/result.json"))]


def artifacts(cfg: ExperimentConfig) -> dict:
    """A stored LuminaNet run's final topology (Graph) and event log (list of dicts)."""
    from .topology import Graph

    d = result_dir(cfg)
    out = {"dir": d, "topology": None, "events": []}
    if (d / "topology.json").exists():
        out["topology"] = Graph.from_json((d / "topology.json").read_text())
    if (d / "events.jsonl").exists():
        out["events"] = [json.loads(line) for line in (d / "events.jsonl").read_text().splitlines() if line]
    return out
