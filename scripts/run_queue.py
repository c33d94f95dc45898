#!/usr/bin/env python3
"""Train a list of run-set entries in order, in this one process: `run_queue.py SPEC ...`, where SPEC is
  NAME:PROFILE:GROUP:INDEX   one run of a run set's groups (e.g. cifar10_short:full:lenet5:1);
  NAME:PROFILE               every run of run set NAME, in its order (e.g. cifar10_short:full);
  wait:NAME:PROFILE          wait until every run of that run set is stored (e.g. the width runs, before
                             the headline runs resolve their chosen width);
  benchmark:PART             `python -m benchmarks --update PART` (e.g. baseline_parity, once its runs are stored).
Each entry is train-or-load, so a queue restarted after a kill resumes where it stopped (stored runs load,
the unfinished one resumes from its checkpoint). One run at a time: start one queue per core you may use.
`--no-weights` (anywhere in the arguments) deletes each finished run's stored weights (`network/`): for runs no
chapter loads, whose weights would otherwise be kept beside the result (`lumina.results.STORE_WEIGHTS`)."""
import importlib
import shutil
import sys
import time
from pathlib import Path

from lumina.published import (RUN_SETS, ablation_runs, cifar10_parity_runs, cifar10_runs, cifar10_short_runs,
                              tinystories_controls, tinystories_runs, width_runs)
from lumina.results import load_result, result_dir, train_or_load

GROUPS = {"cifar10": cifar10_runs, "cifar10_ablation": ablation_runs, "tinystories": tinystories_runs,
          "cifar10_widths": lambda p: {"w": list(width_runs(p).values())},
          "tinystories_controls": lambda p: {"c": list(tinystories_controls(p).values())},
          "cifar10_short": cifar10_short_runs, "cifar10_parity": cifar10_parity_runs}


def train(cfg, no_weights: bool) -> dict:
    r = train_or_load(cfg)
    if no_weights and (result_dir(cfg) / "network").is_dir():
        shutil.rmtree(result_dir(cfg) / "network")
    return r


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
        name, profile, group, index = parts
        cfg = GROUPS[name](profile)[group][int(index)]  # resolved only now: a control may need an earlier run
        r = train(cfg, no_weights)
        print(f"done {spec} {cfg.key()} {r['metrics']}", flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    for spec in (a for a in args if a != "--no-weights"):
        run(spec, "--no-weights" in args)
