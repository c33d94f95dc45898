"""Command line: train one config, or every run a chapter shows (train or load).

    python -m lumina train cifar10 --profile full --set d_hidden=32 --set seed=1
    python -m lumina run-set cifar10 --profile full
    python -m lumina show cifar10 --profile full        # what is stored
    python -m lumina report --profile full              # markdown tables of every stored result
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
import time

from .config import PROFILES, resolve
from .results import find_results, load_result, train_or_load


def _parse_sets(items: list[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            out[k] = v
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lumina", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    rp = sub.add_parser("report")
    rp.add_argument("--profile", default="full", choices=PROFILES)
    for name in ("train", "run-set", "show"):
        p = sub.add_parser(name)
        p.add_argument("name", help="experiment (train, show) or run set (run-set)")
        p.add_argument("--profile", default="smoke", choices=PROFILES)
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
        p.add_argument("--retrain", action="store_true", help="train even if a stored result exists")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "report":
            from .report import report

            print(report(a.profile), end="")
        elif a.cmd == "train":
            cfg = resolve(a.name, a.profile, **_parse_sets(a.set))
            r = train_or_load(cfg, retrain=a.retrain)
            print(json.dumps({"key": cfg.key(), "metrics": r["metrics"], "train_s": r["train_s"]}))
        elif a.cmd == "run-set":
            from .published import RUN_SETS

            if a.name not in RUN_SETS:
                raise ValueError(f"unknown run set {a.name!r}; valid: {', '.join(RUN_SETS)}")
            for cfg in RUN_SETS[a.name](a.profile):
                t = time.time()
                done = load_result(cfg) is not None
                r = train_or_load(cfg, retrain=a.retrain)
                print(f"{'loaded' if done and not a.retrain else 'trained'} {cfg.model.arch} d_hidden={cfg.model.d_hidden} "
                      f"seed={cfg.train.seed} key={cfg.key()} top1={r['metrics']['test_top1']:.2f} "
                      f"({time.time() - t:.0f}s)", flush=True)
        else:
            for r in find_results(a.name, a.profile):
                print(r["key"], r["arch"], r["config"]["model"]["d_hidden"], r["config"]["train"]["seed"], r["metrics"])
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
