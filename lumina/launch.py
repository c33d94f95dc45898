"""Run a set of configs: one after another in this process, or each missing run as its own submitit job.

    run_set(cfgs)                                   # local: train or load each config in order (the default)
    run_set(cfgs, "submitit", timeout_min=600, gpus_per_node=1, slurm_partition="gpu")

`submitit` submits every run without a stored result as one job (Slurm when `srun` is found, else
submitit's local executor, which starts a process per job on this machine; `cluster="debug"` runs jobs
inside this process, for tests). Finished runs are skipped, failed ones are reported with their log file,
and the call waits for all. Jobs write into the one results store (`LUMINA_RESULTS`, which must be on a
filesystem the nodes share) and resume from their checkpoints (`LUMINA_RUNS`), so a job killed by its
time limit continues where it stopped when the same run set is launched again.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Callable, Iterable

from .config import ExperimentConfig
from .paths import data_root, results_root, runs_root
from .results import load_result, run_dir, train_or_load_state

LAUNCHERS = ("local", "submitit")
CLUSTERS = ("auto", "slurm", "local", "debug")
DEFAULT_RESOURCES = {"timeout_min": 24 * 60}  # submitit's own default (2-5 min) would kill every real run


def state(cfg: ExperimentConfig) -> str:
    """What calling `train_or_load(cfg)` would do now: "loaded" (a stored result), "resumed" (a checkpoint
    of an unfinished run under LUMINA_RUNS) or "trained" (from step 0)."""
    if load_result(cfg) is not None:
        return "loaded"
    d = run_dir(cfg)
    return "resumed" if d.is_dir() and any(d.glob("*checkpoint*")) else "trained"


def headline(result: dict) -> str:
    """The test metrics a run set is judged by, as `name=value` pairs."""
    m = result.get("metrics", {})
    return " ".join(f"{k}={m[k]:.2f}" for k in ("test_top1", "test_ppl") if isinstance(m.get(k), (int, float)))


def _line(verb: str, cfg: ExperimentConfig, result: dict | None = None, seconds: float | None = None) -> str:
    parts = [verb, f"{cfg.experiment}/{cfg.profile}", f"key={cfg.key()}", f"arch={cfg.model.arch}",
             f"d_hidden={cfg.model.d_hidden}", f"seed={cfg.train.seed}"]
    if result is not None:
        parts.append(headline(result))
    if seconds is not None:
        parts.append(f"({seconds:.0f}s)")
    return " ".join(p for p in parts if p)


def _expected(cfg: ExperimentConfig, retrain: bool, restart: bool) -> str:
    s = "trained" if retrain else state(cfg)
    return "trained" if restart and s == "resumed" else s


def run_job(cfg_dict: dict, roots: dict[str, str], retrain: bool = False, restart: bool = False) -> dict:
    """The body of one submitit job. Top-level, so it pickles by name; the config travels as a plain dict
    and the three roots as absolute paths, so the job writes where its launcher looks whatever the node's
    working directory and environment."""
    os.environ.update(roots)
    cfg = ExperimentConfig.from_dict(cfg_dict)
    state, r = train_or_load_state(cfg, retrain=retrain, restart=restart)
    return {"key": cfg.key(), "state": state, "metrics": r["metrics"], "train_s": r.get("train_s")}


def run_set(cfgs: Iterable[ExperimentConfig], launcher: str = "local", *, folder: Path | str | None = None,
            cluster: str = "auto", parallel: int = 0, retrain: bool = False, restart: bool = False,
            poll_s: float = 2.0, log: Callable[[str], None] = lambda s: print(s, flush=True),
            **resources) -> list[dict]:
    """Train or load every config; return one record per config, in order: `cfg`, `state` (loaded, trained,
    resumed or failed), `result` (the stored result, or the job's summary), and for jobs `log` (stderr file)
    and `error`.

    submitit only: `folder` holds the jobs' pickles and logs (default `LUMINA_RUNS/submitit/<job id>`);
    `parallel` caps the jobs in flight (default: all for Slurm, cores // threads per run on one machine);
    `resources` are submitit parameters (timeout_min, cpus_per_task, gpus_per_node, mem_gb,
    slurm_partition, ...).
    """
    cfgs = list(cfgs)
    if launcher not in LAUNCHERS:
        raise ValueError(f"unknown launcher {launcher!r}; valid: {', '.join(LAUNCHERS)}")
    if cluster not in CLUSTERS:
        raise ValueError(f"unknown cluster {cluster!r}; valid: {', '.join(CLUSTERS)}")
    if launcher == "local":
        out = []
        for cfg in cfgs:  # the state is what happened (a run another process finished is "loaded")
            t = time.time()
            verb, r = train_or_load_state(cfg, retrain=retrain, restart=restart)
            log(_line(verb, cfg, r, time.time() - t))
            out.append({"cfg": cfg, "state": verb, "result": r})
        return out
    return _run_submitit(cfgs, folder, cluster, parallel, retrain, restart, poll_s, log, resources)


def _run_submitit(cfgs, folder, cluster, parallel, retrain, restart, poll_s, log, resources) -> list[dict]:
    import submitit

    records = [{"cfg": c, "state": _expected(c, retrain, restart)} for c in cfgs]
    todo = [r for r in records if r["state"] != "loaded"]
    for r in records:
        if r["state"] == "loaded":
            r["result"] = load_result(r["cfg"])
            log(_line("loaded", r["cfg"], r["result"]))
    if not todo:
        return records
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise ValueError("cluster 'slurm': sbatch is not on PATH; run on a Slurm login node, or use cluster 'local'")
    ex = submitit.AutoExecutor(folder=folder or runs_root() / "submitit" / "%j",
                               cluster=None if cluster == "auto" else cluster)
    try:  # checked once, before anything is submitted; submitit raises NameError/AssertionError for these
        ex.update_parameters(**{**DEFAULT_RESOURCES, **resources})
    except (NameError, AssertionError, TypeError, ValueError) as e:
        raise ValueError(f"bad submitit resource in {resources}: {' '.join(str(e).split())}") from None
    if not parallel:
        threads = max(getattr(r["cfg"].train, "threads", 1) or 1 for r in todo)
        parallel = len(todo) if ex.cluster == "slurm" else max(1, (os.cpu_count() or 1) // threads)
    roots = {"LUMINA_DATA": str(data_root()), "LUMINA_RESULTS": str(results_root()), "LUMINA_RUNS": str(runs_root())}
    pending, running = list(todo), []
    while pending or running:
        while pending and len(running) < parallel:
            r = pending.pop(0)
            cfg = r["cfg"]
            ex.update_parameters(name=f"lumina-{cfg.experiment}-{cfg.key()}")
            r["job"], r["t0"] = ex.submit(run_job, cfg.to_dict(), roots, retrain, restart), time.time()
            r["log"] = str(r["job"].paths.stderr)
            log(f"submitted {cfg.experiment}/{cfg.profile} key={cfg.key()} as job {r['job'].job_id} ({ex.cluster})")
            running.append(r)
        done = [r for r in running if ex.cluster == "debug" or r["job"].done()]
        if not done:
            time.sleep(poll_s)
            continue
        for r in done:
            running.remove(r)
            try:  # exception() first: the debug executor's result() would open a debugger on failure
                err = r["job"].exception()
                if err is not None:
                    raise err
                r["result"] = r["job"].result()
                r["state"] = r["result"].get("state", r["state"])  # what the job did, not what was expected
                log(_line(r["state"], r["cfg"], r["result"], time.time() - r["t0"]))
            except Exception as e:  # noqa: BLE001 - a job's failure is reported, the others go on
                last = (str(e).strip().splitlines() or [""])[-1]
                r["state"], r["error"] = "failed", f"{type(e).__name__}: {last}"
                log(f"failed {r['cfg'].experiment}/{r['cfg'].profile} key={r['cfg'].key()}: {r['error']} (log: {r['log']})")
            del r["job"], r["t0"]
    return records
