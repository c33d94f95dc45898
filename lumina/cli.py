"""Command line: train one config, or every run a chapter shows (train or load).

    python -m lumina train cifar10 --profile full --set d_hidden=32 --set seed=1
    python -m lumina run-set cifar10 --profile full                       # missing runs, one after another
    python -m lumina run-set cifar10 --profile paper --launcher submitit --resource timeout_min=600 \\
        --resource gpus_per_node=1 --resource slurm_partition=gpu        # each missing run as a Slurm job
    python -m lumina show cifar10 --profile full                          # what is stored
    python -m lumina report --profile full                                # markdown tables of every stored result
    python -m lumina report --profile full --readme                       # the README's results section, regenerated

A mistake in what was typed (an unknown name, a bad value, missing or corrupt data, a checkpoint of another
config, a corrupt stored file, a results folder that cannot be written) is printed as one `error: ...` line,
with exit status 2 and no traceback: the message is the fix.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import shlex
import sys

from .config import EXPERIMENTS, PROFILES, ExperimentConfig, resolve
from .paths import results_root

def _user_error(err: BaseException) -> bool:
    """A mistake in what was typed or pointed at: a ValueError (config, CheckpointError and TopologyError
    are ValueErrors), a missing or unwritable path, or a DataError. Names and values are checked before
    the training modules (and torch, seconds to import) are loaded, so a typo is answered at once; the
    DataError class is therefore looked up only once the data code has run."""
    data = sys.modules.get("lumina.data.common")
    return isinstance(err, (ValueError, FileNotFoundError, PermissionError)) or (
        data is not None and isinstance(err, data.DataError))


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one `error:` line like every other user error (exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _key_values(items: list[str], flag: str) -> dict:
    """`KEY=VALUE` pairs; a value is a Python literal (32, 0.1, True, 'mean') or else a plain string."""
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k.strip():
            raise ValueError(f"{flag} expects KEY=VALUE, got {item!r}")
        try:
            out[k.strip()] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            out[k.strip()] = v
    return out


def train_command(cfg: ExperimentConfig) -> str:
    """The shell command that trains or loads exactly `cfg`: a `--set` for every field that differs from its
    profile's config, so a chapter's "rerun from the shell" hint carries the overrides it ran with."""
    base, sets = resolve(cfg.experiment, cfg.profile).to_dict(), []
    for section, values in cfg.to_dict().items():
        if isinstance(values, dict):
            for k, v in values.items():
                if v != base[section][k]:
                    # a string that reads back as a literal ('True', '32') keeps its quotes; see _key_values
                    text = repr(v) if not isinstance(v, str) or _literal(v) else v
                    sets.append(f"--set {shlex.quote(f'{k}={text}')}")
    return " ".join(["python -m lumina train", cfg.experiment, "--profile", cfg.profile, *sets])


def _literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
        return True
    except (ValueError, SyntaxError):
        return False


def _check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")


def _parser() -> _Parser:
    ap = _Parser(prog="python -m lumina", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    profile = dict(default=None, metavar="PROFILE", help=f"one of {', '.join(PROFILES)} (default: smoke; report: full)")
    p = sub.add_parser("report", help="markdown tables of every stored result")
    p.add_argument("--profile", **profile)
    p.add_argument("--readme", action="store_true", help="write the README's results section from the stored results")
    p = sub.add_parser("show", help="the stored results of an experiment")
    p.add_argument("name", metavar="EXPERIMENT")
    p.add_argument("--profile", **profile)
    for name in ("train", "run-set"):
        p = sub.add_parser(name, help="train or load one config" if name == "train" else "train or load a run set")
        p.add_argument("name", metavar="EXPERIMENT" if name == "train" else "RUN_SET")
        p.add_argument("--profile", **profile)
        p.add_argument("--retrain", action="store_true", help="train again even if a result is stored")
        p.add_argument("--restart", action="store_true", help="discard the checkpoint of an unfinished run")
    sub.choices["train"].add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                                      help="config override, e.g. --set d_hidden=32")
    p = sub.choices["run-set"]
    p.add_argument("--launcher", default="local",  # values checked by lumina.launch.run_set, their one home
                   help="local (default): one run after another here; submitit: each missing run as its own job")
    p.add_argument("--cluster", default="auto",
                   help="submitit executor: auto (Slurm when found, else local processes), slurm, local, debug")
    p.add_argument("--folder", default=None, help="submitit logs and pickles (default: LUMINA_RUNS/submitit/<job>)")
    p.add_argument("--parallel", type=int, default=0, help="submitit jobs in flight at once (0: automatic)")
    p.add_argument("--resource", action="append", default=[], metavar="KEY=VALUE",
                   help="submitit parameter per job, e.g. timeout_min=600, gpus_per_node=1, slurm_partition=gpu")
    return ap


def _run(a: argparse.Namespace) -> int:
    a.profile = a.profile or ("full" if a.cmd == "report" else "smoke")
    _check_profile(a.profile)
    if a.cmd == "report":
        from .report import report, update_readme

        if a.readme:
            print("README.md: results section " + ("updated" if update_readme(a.profile) else "unchanged"))
        else:
            print(report(a.profile), end="")
    elif a.cmd == "train":
        cfg = resolve(a.name, a.profile, **_key_values(a.set, "--set"))
        from .results import train_or_load_state

        verb, r = train_or_load_state(cfg, retrain=a.retrain, restart=a.restart)
        print(json.dumps({"state": verb, "key": cfg.key(), "metrics": r["metrics"], "train_s": r.get("train_s")}))
    elif a.cmd == "run-set":
        from .published import RUN_SETS

        if a.name not in RUN_SETS:
            raise ValueError(f"unknown run set {a.name!r}; valid: {', '.join(RUN_SETS)}")
        cfgs, resources = RUN_SETS[a.name](a.profile), _key_values(a.resource, "--resource")
        from .launch import run_set

        records = run_set(cfgs, a.launcher, folder=a.folder, cluster=a.cluster,
                          parallel=a.parallel, retrain=a.retrain, restart=a.restart, **resources)
        failed = [r for r in records if r["state"] == "failed"]
        if failed:
            print(f"{len(failed)} of {len(records)} runs failed; logs: " + ", ".join(r["log"] for r in failed),
                  file=sys.stderr)
            return 1
    else:  # show
        if a.name not in EXPERIMENTS:
            raise ValueError(f"unknown experiment {a.name!r}; valid: {', '.join(sorted(EXPERIMENTS))}")
        from .results import find_results

        found = find_results(a.name, a.profile)
        if not found:
            print(f"no stored results for {a.name}/{a.profile} under {results_root() / a.name / a.profile}")
        for r in found:  # validated: a config of sections and finite metrics; the rest may be absent
            model, train = r["config"].get("model", {}), r["config"].get("train", {})
            print(r.get("key"), model.get("arch"), model.get("d_hidden"), train.get("seed"), r["metrics"])
    return 0


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    try:
        return _run(a)
    except BrokenPipeError:  # `... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except FloatingPointError as err:  # a run diverged (NonFiniteLoss): not a typo, but one line says what to do
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    except Exception as err:
        if not _user_error(err):
            raise
        msg = " ".join(str(err).split()) or type(err).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; the same command resumes from the last checkpoint", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
