#!/usr/bin/env python3
"""Train a list of run-set entries in order, in this one process: `run_queue.py SPEC ...`, where SPEC is
  NAME:PROFILE:INDEX         one run: the INDEX-th (from 0) of run set NAME (e.g. cifar10_short:full:1);
  NAME:PROFILE               every run of run set NAME, in its order (e.g. cifar10_short:full);
  wait:NAME:PROFILE          wait until every run of that run set is stored (e.g. the width runs, before
                             the headline runs resolve their chosen width);
  benchmark:PART             `python -m benchmarks --update PART` (e.g. baseline_parity, once its runs are stored).
Each entry is train-or-load, so a queue restarted after a kill resumes where it stopped (stored runs load,
the unfinished one resumes from its checkpoint). One run at a time: start one queue per core you may use.
Run sets are `lumina.published.RUN_SETS`, as for `python -m lumina run-set`; each is resolved when its entry
runs, so a run that needs an earlier one (a control reading its evolved run's topology) is listed by then.
`--no-weights` (anywhere in the arguments) deletes each finished run's stored weights (`network/`): for runs no
chapter loads, whose weights would otherwise be kept beside the result (`lumina.results.STORE_WEIGHTS`).
`--until=HH:MM` (UTC, today) parks the run in progress when that time comes: it stops at a step boundary,
checkpointed, copies the checkpoint into its results folder (`lumina.results.PARKED`, committed with the
results) and the queue ends; the same queue started later, on any machine, resumes it from there. For runs
longer than one session on a machine that is lent for hours."""
import datetime
import importlib
import shutil
import sys
import time
from pathlib import Path

from lumina.published import RUN_SETS
from lumina.results import load_result, result_dir, train_or_load_state

DEADLINE = {"at": None}  # --until, as a time.time()


class Parked(Exception):
    """The deadline came during a run: it is parked and the queue stops."""


def train(cfg, no_weights: bool) -> dict:
    state, r = train_or_load_state(cfg, park=DEADLINE["at"] is not None, deadline=DEADLINE["at"])
    if state == "stopped":
        raise Parked(f"parked {cfg.experiment}/{cfg.profile}/{cfg.key()} at {time.strftime('%H:%M')} UTC; "
                     "commit its results folder and run the same queue again to resume it")
    if no_weights and (result_dir(cfg) / "network").is_dir():
        shutil.rmtree(result_dir(cfg) / "network")
    return r


def until(hhmm: str) -> float:
    """'HH:MM' (UTC, today) -> time.time() of that moment."""
    try:
        h, m = (int(x) for x in hhmm.split(":"))
        now = datetime.datetime.now(datetime.timezone.utc)
        return now.replace(hour=h, minute=m, second=0, microsecond=0).timestamp()
    except ValueError:
        raise SystemExit(f"error: --until={hhmm}: expected HH:MM (UTC), e.g. --until=12:10") from None


def run(spec: str, no_weights: bool = False) -> None:
    parts = spec.split(":")
    if parts[0] == "wait":
        _, name, profile = parts
        while any(load_result(c) is None for c in RUN_SETS[name](profile)):
            time.sleep(20)
    elif parts[0] == "benchmark":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        common = importlib.import_module("benchmarks.common")
        common.OUT["dir"] = common.ROOT / "results"
        importlib.import_module(f"benchmarks.{parts[1]}").main([])
    elif len(parts) == 2:
        for i, cfg in enumerate(RUN_SETS[parts[0]](parts[1])):
            r = train(cfg, no_weights)
            print(f"done {spec}[{i}] {cfg.model.arch} seed={cfg.train.seed} {cfg.key()} {r['metrics']}", flush=True)
    else:
        name, profile, index = parts
        cfgs = RUN_SETS[name](profile)
        if not index.isdigit() or int(index) >= len(cfgs):
            raise SystemExit(f"error: {spec}: run set {name!r} ({profile}) lists {len(cfgs)} runs; INDEX is 0-{len(cfgs) - 1}")
        cfg = cfgs[int(index)]
        r = train(cfg, no_weights)
        print(f"done {spec} {cfg.key()} {r['metrics']}", flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    flags = [a for a in args if a.startswith("--")]
    for f in flags:
        if f.startswith("--until="):
            DEADLINE["at"] = until(f.split("=", 1)[1])
        elif f != "--no-weights":
            raise SystemExit(f"error: unknown option {f}; options: --no-weights, --until=HH:MM")
    try:
        for spec in (a for a in args if not a.startswith("--")):
            run(spec, "--no-weights" in args)
    except Parked as e:
        print(e, flush=True)
