#!/usr/bin/env python3
"""Train a list of run-set entries in order, one process per core: `run_queue.py NAME:PROFILE:INDEX ...`.
Each entry is train-or-load, so a queue restarted after a kill resumes where it stopped.
Entries `wait:NAME:PROFILE` wait until every run of that run set is stored (e.g. the width runs, before
the headline runs resolve their chosen width)."""
import sys
import time

from lumina.published import RUN_SETS, ablation_runs, cifar10_runs, tinystories_controls, tinystories_runs, width_runs
from lumina.results import load_result, train_or_load

GROUPS = {"cifar10": cifar10_runs, "cifar10_ablation": ablation_runs, "tinystories": tinystories_runs,
          "cifar10_widths": lambda p: {"w": list(width_runs(p).values())},
          "tinystories_controls": lambda p: {"c": list(tinystories_controls(p).values())}}

for spec in sys.argv[1:]:
    if spec.startswith("wait:"):
        _, name, profile = spec.split(":")
        while any(load_result(c) is None for c in RUN_SETS[name](profile)):
            time.sleep(20)
        continue
    name, profile, group, index = spec.split(":")
    cfg = GROUPS[name](profile)[group][int(index)]  # resolved only now: a control may need an earlier run
    r = train_or_load(cfg)
    print(f"done {spec} {cfg.key()} {r['metrics']}", flush=True)
