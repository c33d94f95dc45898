"""The check of a chapter's `parameters` cell, run in the chapter's first code cell.

papermill hands a chapter whatever was typed (`-p d_hidden 0`, `-p quick '{"epochs": -1}'`, `-p profile
bogus`), and a bad value used to crash cells later (a ZeroDivisionError, a StatisticsError) or, worse, run.
Each parameter name has one rule here, shared by every chapter that uses the name; a value that breaks it is
a one-line `ValueError` in the style of `lumina.config.resolve`:

    profile, seed, d_hidden, size = check_parameters(profile=profile, seed=seed, d_hidden=d_hidden, size=size)
    profile, seed, overrides, retrain = check_parameters(profile=profile, seed=seed, overrides=overrides,
                                                         retrain=retrain, experiment="evolution")

The values come back in the order given, normalised (an integral float as an int, JSON text as a dict).
"""
from __future__ import annotations

from .config import PROFILES, parse_overrides, resolve

AGGREGATES = ("mean", "sum")  # lumina.model's 1/n over in-edges, or the plain sum
# Integer parameters: (low, high, what for). The toy networks of chapters 1 and 8 are built by hand on a CPU;
# n_random >= 2 because the similarity baseline reports a standard deviation.
INTEGERS = {
    "seed": (0, 2**32 - 1, "a random seed"),
    "d_hidden": (1, 1024, "the CL width of the hand-built network"),
    "size": (1, 1024, "neurons per cluster of the hand-built network"),
    "n_random": (2, 1000, "random graphs per similarity baseline"),
}
OVERRIDES = ("overrides", "quick")  # config overrides: a mapping, or JSON text as papermill passes it
KNOWN = ("profile", "retrain", "aggregate", *INTEGERS, *OVERRIDES)


def _integer(name: str, value) -> int:
    low, high, what = INTEGERS[name]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name}={value!r} must be an integer in [{low}, {high}] ({what})")
    return value


def check_parameters(experiment: str | None = None, **params) -> tuple:
    """Every value of `params` checked by its name's rule and returned, normalised, in the order given.
    `experiment` is where `overrides`/`quick` are resolved (with `profile` and `seed` when given), so an
    unknown field or a bad value is refused here, before any cell has run."""
    out = {}
    for name, value in params.items():
        if name == "profile":
            if not isinstance(value, str) or value not in PROFILES:
                raise ValueError(f"unknown profile {value!r}; valid: {', '.join(PROFILES)}")
        elif name == "retrain":
            if not isinstance(value, bool):
                raise ValueError(f"retrain must be True or False, got {value!r}")
        elif name == "aggregate":
            if value not in AGGREGATES:
                raise ValueError(f"aggregate={value!r}; valid: {', '.join(repr(a) for a in AGGREGATES)}")
        elif name in INTEGERS:
            value = _integer(name, value)
        elif name in OVERRIDES:
            try:
                value = parse_overrides(value)
            except ValueError as err:  # its message names `overrides`; say which parameter held them
                raise ValueError(f"{name}: {err}" if name != "overrides" else str(err)) from None
        else:
            raise ValueError(f"no rule for the parameter {name!r}; known: {', '.join(KNOWN)}")
        out[name] = value
    if experiment is not None:
        profile, seed = out.get("profile", "smoke"), ({"seed": out["seed"]} if "seed" in out else {})
        for name in OVERRIDES:
            if name in out:
                try:
                    resolve(experiment, profile, **{**out[name], **seed})
                except (ValueError, TypeError) as err:
                    raise ValueError(f"{name}: {' '.join(str(err).split())}") from None
    return tuple(out.values())
