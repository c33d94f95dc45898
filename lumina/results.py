"""Train or load: the only module that saves and loads runs.

A run is keyed by the hash of its resolved config. `results/<experiment>/<profile>/<config key>/` holds
`result.json` (metrics, history, config and provenance), and for LuminaNet `topology.json`, `events.jsonl`
and (where the book loads it) `network/`; `result.json` is written last, so a half-written run is never read
as complete. `full`/`paper` results are committed; `smoke` ones are not.

`train_or_load(cfg)`: a stored result is loaded and never retrained; otherwise the run trains with a
checkpoint under `runs/` (every `checkpoint_every` steps and at the end), resumes from it after a kill, and
holds a file lock so a second process starting the same config waits instead of writing the same files.

Nothing read back is trusted unchecked: a `result.json` that is not a usable result (not JSON, a field
missing, a metric that is NaN) is a `ValueError` naming the file and what to do, never a traceback far
downstream; stored weights carry a checksum (`lumina.checkpoint`). Before a run trains, the results and runs
folders are checked to be writable folders, so a bad `LUMINA_RESULTS` is found out before the training.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import math
import os
import shutil
from pathlib import Path


from .build import build_model, make_task
from .checkpoint import CheckpointError, atomic_write_text, read_network, write_network
from .config import ExperimentConfig
from .loop import Run, train
from .model import LuminaNet
from .naming import is_module_key
from .paths import check_writable, results_root, runs_root
from .topology import Graph

STORE_WEIGHTS = 16_000_000  # networks up to this many parameters keep their weights with the result (the
# largest TinyStories LuminaNet has 14M); only those the book loads are committed, the rest are deleted first


def result_dir(cfg: ExperimentConfig) -> Path:
    return results_root() / cfg.experiment / cfg.profile / cfg.key()


def run_dir(cfg: ExperimentConfig) -> Path:
    return runs_root() / cfg.experiment / cfg.profile / cfg.key()


def _fix(f: Path) -> str:
    """What to do about an unusable file of a run's folder (result, topology, events): the folder only
    caches that run, so deleting it costs a retraining and nothing else."""
    return f"delete its folder {f.parent} (or rerun with --retrain) to train it again, or restore it from git"


def _read_json(f: Path, fix: str | None = None):
    """The parsed JSON of `f`; a truncated or garbled file is a ValueError that names it and says `fix`
    (default: `_fix`, for a file of a run's folder)."""
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{f} is not valid JSON ({err}); {fix or _fix(f)}") from err


_SECTIONS = tuple(f.name for f in dataclasses.fields(ExperimentConfig) if f.default_factory is not dataclasses.MISSING)
_NUMBERS = ("n_params", "steps", "epochs_done", "train_s", "evolve_s", "train_flops", "flops_per_example")


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_result(found, f: Path) -> dict:
    """`found` (parsed from `f`) if it is a usable stored result: an object with a `config` of sections and
    `metrics` that are finite numbers, as are its counts and times where present. Checked on load because a
    NaN or a missing field otherwise fails far downstream (a table, a verdict), without naming the file."""
    def bad(why: str) -> ValueError:
        return ValueError(f"{f} is not a usable stored result ({why}); {_fix(f)}")

    if not isinstance(found, dict):
        raise bad(f"a JSON {type(found).__name__}, not an object")
    missing = [k for k in ("config", "metrics") if k not in found]
    if missing:
        raise bad(f"no {' and no '.join(repr(k) for k in missing)} field")
    config, metrics = found["config"], found["metrics"]
    if not isinstance(config, dict) or any(not isinstance(config.get(s, {}), dict) for s in _SECTIONS):
        raise bad(f"'config' is not an object of the sections {', '.join(_SECTIONS)}")
    if not isinstance(metrics, dict) or not metrics:
        raise bad("'metrics' is not a non-empty object")
    odd = {k: v for k, v in metrics.items() if not _finite(v)} | {
        k: found[k] for k in _NUMBERS if found.get(k) is not None and not _finite(found[k])}
    if odd:
        raise bad(f"not finite numbers: {odd}")
    return found


SHOWN: dict[str, dict] = {}  # every stored result this process has read, by run: the footer of a chapter


def load_result(cfg: ExperimentConfig) -> dict | None:
    f = result_dir(cfg) / "result.json"
    if not f.exists():
        return None
    found = check_result(_read_json(f), f)
    for section, values in cfg.to_dict().items():  # a stored run must match every field it knows about
        stored = found["config"].get(section) or {}
        if isinstance(values, dict):
            stale = {k: (stored.get(k), v) for k, v in values.items() if k in stored and stored[k] != v}
            if stale:
                raise ValueError(f"{f} was stored for another config (stored, wanted): {stale}; "
                                 "a default changed since it ran: rerun it or restore the default")
    SHOWN[f"{cfg.experiment}/{cfg.profile}/{cfg.key()}"] = found
    return found


def save_run(cfg: ExperimentConfig, run: Run, weights: bool | None = None) -> Path:
    """Store a finished run; weights for networks up to `STORE_WEIGHTS` parameters unless told otherwise."""
    d = result_dir(cfg)
    model, result = run.model, dict(run.result)
    keep = weights if weights is not None else result["n_params"] <= STORE_WEIGHTS
    if isinstance(model, LuminaNet):
        atomic_write_text(d / "topology.json", model.graph.to_json())
        atomic_write_text(d / "events.jsonl", "".join(json.dumps(e) + "\n" for e in run.events))
        if keep:
            write_network(d / "network", model.named_tensors(), cfg.to_dict(), cfg.key(), model.graph.to_json())
    elif keep:
        write_network(d / "network", model.state_dict(), cfg.to_dict(), cfg.key())
    result["dir"] = str(d.relative_to(results_root())) if d.is_relative_to(results_root()) else str(d)
    atomic_write_text(d / "result.json", json.dumps(result, indent=1))  # last: marks the run complete
    return d


@contextlib.contextmanager
def run_lock(cfg: ExperimentConfig, log=print):
    """One process per config: a second one waits for the first (and then loads its result)."""
    path = run_dir(cfg) / "lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"[lumina] {cfg.experiment}/{cfg.profile}/{cfg.key()} is being trained by another process; waiting")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def train_or_load(cfg: ExperimentConfig, retrain: bool = False, restart: bool = False, *,
                  checkpoint_every: int = 200, log=None, **train_kw) -> dict:
    """The stored result for `cfg` (loaded, never retrained), else train it now (resuming from its
    checkpoint unless `restart`) and store it. `retrain` ignores a stored result and starts afresh."""
    return train_or_load_state(cfg, retrain, restart, checkpoint_every=checkpoint_every, log=log, **train_kw)[1]


PARKED = "parked_checkpoint.safetensors"  # a run's checkpoint kept beside its (future) result, see `train_or_load_state`


def train_or_load_state(cfg: ExperimentConfig, retrain: bool = False, restart: bool = False, *,
                        checkpoint_every: int = 200, log=None, park: bool = False, **train_kw) -> tuple[str, dict]:
    """`train_or_load`, and what it did: "loaded", "resumed" (from a checkpoint) or "trained" (from step 0).
    Told by what happened, not guessed beforehand: a process that waited for another one loads its result,
    and `restart` trains from step 0 though a checkpoint was there. `log` gets every line; by default they
    are printed, except the "loaded" ones while progress output is off (LUMINA_PROGRESS=0: a built book page,
    CI), so a published page does not open with them and a reader in JupyterLab still sees them.

    A run longer than a machine is lent for is parked: stopped at a `deadline` (passed to the loop) with `park`,
    it returns ("stopped", {}) and leaves a copy of its checkpoint in its results folder (PARKED), which is
    committed like a result; on any machine a later call resumes from it when `runs/` has no checkpoint of its
    own, and deletes it once the result is stored."""
    quiet_loads = log is None and os.environ.get("LUMINA_PROGRESS", "1") == "0"
    log = log or print
    if not (retrain or restart):
        found = load_result(cfg)
        if found is not None:
            if not quiet_loads:
                log(f"[lumina] loaded {cfg.experiment}/{cfg.profile}/{cfg.key()} (stored result)")
            return "loaded", found
    if os.environ.get("LUMINA_LOAD_ONLY") == "1":  # the published-output check (nbval) reads, never trains
        raise ValueError(f"no stored result for {cfg.experiment}/{cfg.profile}/{cfg.key()} and LUMINA_LOAD_ONLY=1 "
                         f"forbids training it; train it first (python -m lumina run-set ... --profile {cfg.profile})")
    check_writable(result_dir(cfg), "LUMINA_RESULTS")  # before hours of training, not after them
    check_writable(run_dir(cfg), "LUMINA_RUNS")
    with run_lock(cfg, log):
        if not (retrain or restart):
            found = load_result(cfg)  # another process may have finished it while we waited
            if found is not None:
                return "loaded", found
        ckpt, parked = run_dir(cfg) / "checkpoint.safetensors", result_dir(cfg) / PARKED
        if (retrain or restart) and ckpt.exists():
            ckpt.unlink()
        if not (retrain or restart) and not ckpt.exists() and parked.exists():  # parked on another machine
            shutil.copyfile(parked, ckpt)
            log(f"[lumina] resuming {cfg.experiment}/{cfg.profile}/{cfg.key()} from its parked checkpoint ({parked})")
        state = "resumed" if ckpt.exists() else "trained"
        if state == "trained":
            log(f"[lumina] training {cfg.experiment}/{cfg.profile}/{cfg.key()} (checkpoint: {ckpt})")
        run = train(cfg, ckpt=ckpt, checkpoint_every=checkpoint_every, log=log, **train_kw)
        if run is None:  # stopped early on request (tests, a deadline)
            if park and ckpt.exists():
                tmp = parked.with_suffix(".tmp")
                parked.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(ckpt, tmp)
                os.replace(tmp, parked)  # atomic: a parked file is whole or absent
                log(f"[lumina] parked {cfg.experiment}/{cfg.profile}/{cfg.key()} at its checkpoint ({parked})")
            return "stopped", {}
        save_run(cfg, run)
        parked.unlink(missing_ok=True)
        f = result_dir(cfg) / "result.json"
        return state, check_result(_read_json(f), f)


def find_results(experiment: str, profile: str) -> list[dict]:
    """Every stored result of an experiment/profile (for tables across widths, seeds, models)."""
    base = results_root() / experiment / profile
    return [check_result(_read_json(f), f) for f in sorted(base.glob("*/result.json"))]


def _reference_inputs(cfg: ExperimentConfig) -> dict:
    """What a text reference's metrics depend on: the data config and the context, not the model."""
    data = dataclasses.asdict(cfg.data)
    del data["random_offsets"]  # how training windows are read: not what a reference is scored on
    if not cfg.data.validation:
        del data["dev_stories"]  # only the dev split depends on it
    return {"data": data, "context": cfg.model.context, "tokenizer": cfg.model.tokenizer}


def load_unigram(cfg: ExperimentConfig) -> dict | None:
    """The stored validation metrics of the unigram predictor (`lumina.text.UnigramLM`) for `cfg`'s data, or
    None when missing or stored for other data."""
    f = results_root() / cfg.experiment / cfg.profile / "unigram.json"
    if not f.exists():
        return None
    stored = _read_json(f, "delete it to compute it again")
    if not isinstance(stored, dict) or not isinstance(stored.get("metrics"), dict):
        raise ValueError(f"{f} holds no 'metrics' object; delete it to compute it again")
    return stored["metrics"] if stored.get("inputs") == _reference_inputs(cfg) else None


def unigram_or_load(cfg: ExperimentConfig, task=None) -> dict:
    """`load_unigram`, else compute it on `task` (built from `cfg` when None: needs the stories) and store it
    beside the runs: the line a collapsed language model falls to (no training, seconds)."""
    found = load_unigram(cfg)
    if found is not None:
        return found
    metrics = (task or make_task(cfg)).unigram_metrics()
    atomic_write_text(results_root() / cfg.experiment / cfg.profile / "unigram.json",
                      json.dumps({"inputs": _reference_inputs(cfg), "metrics": metrics}, indent=1))
    return metrics


def references_or_load(cfg: ExperimentConfig, task=None) -> dict[str, dict]:
    """The n-gram references (unigram, Kneser-Ney bigram and trigram; `TextTask.reference_metrics`) on the
    evaluation text of `cfg`'s data (the dev split when `cfg.data.validation`), stored once per data config
    under `<experiment>/<profile>/references/` and computed on first use (no training; about a minute)."""
    inputs = _reference_inputs(cfg)
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:12]
    f = results_root() / "tinystories" / cfg.profile / "references" / f"{key}.json"  # one home for every text model
    if f.exists():
        stored = _read_json(f, "delete it to compute it again")
        if isinstance(stored, dict) and stored.get("inputs") == inputs and isinstance(stored.get("metrics"), dict):
            return stored["metrics"]
        raise ValueError(f"{f} does not hold the references of this data config; delete it to compute it again")
    metrics = (task or make_task(cfg)).reference_metrics()
    f.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(f, json.dumps({"inputs": inputs, "metrics": metrics}, indent=1))
    return metrics


def measured_or_load(cfg: ExperimentConfig, name: str, compute) -> dict:
    """An analysis of a stored run (e.g. its pruning test), stored as `<run>/<name>.json` the first time
    `compute()` runs, so the book shows it later without the data or the weights."""
    found = load_measured(cfg, name)
    if found is not None:
        return found
    out = compute()
    atomic_write_text(result_dir(cfg) / f"{name}.json", json.dumps(out, indent=1))
    return out


def load_measured(cfg: ExperimentConfig, name: str) -> dict | None:
    """The stored analysis `name` of a run, or None."""
    f = result_dir(cfg) / f"{name}.json"
    return _read_json(f, "delete it to measure it again") if f.exists() else None


def artifacts(cfg: ExperimentConfig) -> dict:
    """A stored LuminaNet run's final topology (Graph) and event log (list of dicts)."""
    d = result_dir(cfg)
    out = {"dir": d, "topology": None, "events": []}
    if (d / "topology.json").exists():
        try:
            out["topology"] = Graph.from_json((d / "topology.json").read_text())
        except ValueError as err:  # JSONDecodeError, TopologyError
            raise ValueError(f"{d / 'topology.json'} is not a valid topology ({err}); {_fix(d / 'topology.json')}") from err
    if (d / "events.jsonl").exists():
        f = d / "events.jsonl"
        try:
            out["events"] = [json.loads(line) for line in f.read_text().splitlines() if line]
        except json.JSONDecodeError as err:
            raise ValueError(f"{f} is not valid JSON lines ({err}); {_fix(f)}") from err
    return out


def load_network(folder: Path, cfg: ExperimentConfig | None = None, device="cpu"):
    """Rebuild a saved network (LuminaNet from its graph and named weights, no throw-away initialisation;
    a baseline from its config). With `cfg`, refuse a network saved under another model config."""
    graph, config, tensors, meta = read_network(folder)
    saved = ExperimentConfig.from_dict(config)
    if cfg is not None and saved.model != cfg.model:
        diff = {k: (getattr(saved.model, k), getattr(cfg.model, k)) for k in saved.model.__dataclass_fields__
                if getattr(saved.model, k) != getattr(cfg.model, k)}
        raise CheckpointError(f"network in {folder} was saved with another model config: (saved, requested) {diff}")
    if graph is None:
        model = build_model(saved, device=device)
        _load_state(model, tensors, folder)
        return model, saved
    extra = {k: v for k, v in tensors.items() if is_module_key(k)}
    params = {k: v for k, v in tensors.items() if "." not in k}
    try:
        model = build_model(saved, graph, params, extra, device)
    except (ValueError, RuntimeError) as err:
        raise CheckpointError(f"weights in {folder} do not match its topology: {err}") from err
    return model, saved


def _load_state(model, state: dict, where) -> None:
    own = model.state_dict()
    if set(own) != set(state):
        raise CheckpointError(f"weights in {where} do not match the model: missing {sorted(set(own) - set(state))[:5]}, "
                              f"unexpected {sorted(set(state) - set(own))[:5]}")
    bad = [k for k in own if own[k].shape != state[k].shape]
    if bad:
        raise CheckpointError(f"weights in {where} have other shapes than the model for {bad[:5]}: another config?")
    model.load_state_dict(state)


def load_model(cfg: ExperimentConfig, device="cpu"):
    """The trained network of a stored run (its `network/` folder)."""
    folder = result_dir(cfg) / "network"
    if not folder.exists():
        raise CheckpointError(f"{folder} does not exist: the run stored no weights (too large, or not trained yet)")
    return load_network(folder, cfg, device)[0]
