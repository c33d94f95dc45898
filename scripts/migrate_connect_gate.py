#!/usr/bin/env python3
"""One-time migration of stored results made before `connect_gate` existed (new edges then started with gate 0).

Their configs hash like today's default (connect_gate = 1), so they are moved to the key of their real config
(connect_gate = 0, and for control (a) the init_from of the moved topology), with the field written into their
stored configs. Idempotent: a result already under its right key is left alone.

    python scripts/migrate_connect_gate.py
"""
import json
import shutil

from lumina.published import evolved
from lumina.config import resolve
from lumina.paths import results_root

PROFILE = "full"
for seed in (0, 1):
    old = evolved(PROFILE, seed)  # today's default: connect_gate = 1
    new = resolve(old.experiment, PROFILE, seed=seed, d_hidden=64, connect_gate=0.0)
    moves = [(old, new)]
    old_a = resolve(old.experiment, PROFILE, seed=seed, d_hidden=64, evolve=False,
                    init_from=f"{old.experiment}/{PROFILE}/{old.key()}/topology.json")
    new_a = resolve(old.experiment, PROFILE, seed=seed, d_hidden=64, evolve=False,
                    init_from=f"{new.experiment}/{PROFILE}/{new.key()}/topology.json")
    moves.append((old_a, new_a))
    for a, b in moves:
        src = results_root() / a.experiment / PROFILE / a.key()
        dst = results_root() / b.experiment / PROFILE / b.key()
        if not (src / "result.json").exists() or dst.exists():
            continue
        r = json.loads((src / "result.json").read_text())
        if r["config"]["evolution"].get("connect_gate") is not None:
            continue  # made after the field existed
        shutil.move(src, dst)
        for f in (dst / "result.json", dst / "network" / "config.json"):
            if f.exists():
                d = json.loads(f.read_text())
                c = d["config"] if "config" in d else d
                c["evolution"]["connect_gate"] = b.evolution.connect_gate
                c["model"]["init_from"] = b.model.init_from
                if "key" in d:
                    d["key"] = b.key()
                f.write_text(json.dumps(d, indent=1))
        print(f"moved {a.key()} -> {b.key()}")
