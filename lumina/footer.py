"""The reproducibility footer that closes every chapter: what produced the stored results the page showed.

Every result a process reads through `lumina.results.load_result` is remembered (`results.SHOWN`); the footer
summarises them from their provenance: the commits they were trained at, the package versions, the hardware,
and the CPU time they took (training seconds × torch threads).
"""
from __future__ import annotations

from collections import Counter

from .results import SHOWN
from .tables import hardware


def footer(shown: dict | None = None) -> str:
    """One paragraph about the stored runs read so far (by default every one this process has read)."""
    shown = SHOWN if shown is None else shown
    runs = [r for r in shown.values() if isinstance(r.get("provenance"), dict)]
    if not runs:
        return "Reproducibility: this page shows no stored run; what it trains, it trains here."
    prov = [r["provenance"] for r in runs]
    commits = Counter(p.get("git_commit", "?")[:10] + ("+" if p.get("git_dirty") else "") for p in prov)
    versions = Counter(", ".join(f"{k} {v}" for k, v in sorted(p.get("versions", {}).items()) if k in ("torch", "python"))
                       for p in prov)
    machines = Counter(hardware(p.get("hardware")) for p in prov)
    cpu_h = sum(r.get("train_s", 0) * (r["provenance"].get("hardware") or {}).get("torch_threads", 1) for r in runs) / 3600
    dates = sorted(p.get("date", "")[:10] for p in prov if p.get("date"))
    top = lambda c: "; ".join(f"{k} ({n} run{'s' if n > 1 else ''})" for k, n in c.most_common(3)) + (  # noqa: E731
        f"; {len(c) - 3} more" if len(c) > 3 else "")
    return (f"Reproducibility: this page shows {len(runs)} stored run{'s' if len(runs) > 1 else ''}, trained "
            f"{dates[0]} to {dates[-1]} in {cpu_h:.1f} CPU-hours (training time × threads) on {top(machines)}; "
            f"code at commit {top(commits)} (a + marks uncommitted changes beside the commit); {top(versions)}. Every run's "
            f"config, seed and full provenance are in its results/<experiment>/<profile>/<key>/result.json.")
