"""A second worker for one run set: its missing runs in reverse order, so two 1-thread processes (this and
`python -m lumina run-set NAME`) share a set and meet in the middle (a run being trained by the other one is
waited for and loaded, never trained twice: `lumina.results.run_lock`).

    python scripts/run_reverse.py tinystories_v3 --profile full
"""
import argparse

from lumina.published import RUN_SETS
from lumina.results import train_or_load_state

ap = argparse.ArgumentParser()
ap.add_argument("name", choices=sorted(RUN_SETS))
ap.add_argument("--profile", default="full")
a = ap.parse_args()
for cfg in reversed(RUN_SETS[a.name](a.profile)):
    state, r = train_or_load_state(cfg)
    print(state, cfg.experiment, cfg.key(), r["metrics"], flush=True)
