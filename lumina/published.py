"""The runs each results chapter shows, by profile: one definition for the chapters and the command line.

    python -m lumina run-set cifar10 --profile full     # trains whatever is missing, in order
"""
from __future__ import annotations

from .config import ExperimentConfig, resolve
from .results import load_result

CIFAR_WIDTHS = (10, 32, 64, 84, 128)  # the paper's released CIFAR-10 structures
BASELINE_ORDER = ("lenet5", "alexnet", "resnet18", "mlp_mixer", "resmlp", "deit_tiny", "mobilevit")
HEADLINE_WIDTH = 64
SEEDS = (0, 1)  # controls and ablations: two seeds each
HEADLINE_SEEDS = (0, 1, 2)  # the headline pair: three seeds each


def width_runs(profile: str) -> dict[int, ExperimentConfig]:
    """LuminaNet at every released width on the validation split (seed 0): the width is chosen here."""
    widths = (8, 16) if profile == "smoke" else CIFAR_WIDTHS
    return {w: resolve("cifar10_ablation", profile, d_hidden=w) for w in widths}


def chosen_width(profile: str) -> int:
    """The width with the best validation top-1 among `width_runs` (the intro: how a comparison is run); HEADLINE_WIDTH until all are stored."""
    found = {w: load_result(c) for w, c in width_runs(profile).items()}
    if profile == "smoke" or any(r is None for r in found.values()):
        return 16 if profile == "smoke" else HEADLINE_WIDTH
    return max(found, key=lambda w: (found[w]["metrics"]["test_top1"], -w))


def cifar10_runs(profile: str) -> dict[str, list[ExperimentConfig]]:
    """The headline pair at equal epochs: LuminaNet (at the width chosen on the validation split) and LeNet-5,
    the same recipe, epochs, seeds and data order."""
    seeds = HEADLINE_SEEDS[:1] if profile == "smoke" else HEADLINE_SEEDS
    width = chosen_width(profile)
    return {"luminanet": [resolve("cifar10", profile, d_hidden=width, seed=s) for s in seeds],
            "baselines": [resolve("cifar10_baseline", profile, arch="lenet5", seed=s) for s in seeds]}


def gpu_runs(epochs: float = 30.0) -> list[ExperimentConfig]:
    """Every CIFAR-10 baseline and LuminaNet at equal epochs on one GPU (data resident on the device, bf16)."""
    kw = dict(epochs=epochs, device="auto", amp=True, threads=2)
    return ([resolve("cifar10", "paper", d_hidden=HEADLINE_WIDTH, **kw)]
            + [resolve("cifar10_baseline", "paper", arch=a, **kw) for a in BASELINE_ORDER])


# ---- evolution's worth (the intro: how a comparison is run): controls that differ in one thing, on the validation split --------------
MECHANISMS = {  # name -> overrides of the cifar10_ablation experiment
    "no split": {"split": False},
    "no grow": {"grow": False, "reduce": False},
    "no connect": {"connect": False, "prune": False},
    "per-edge CL": {"cl": "edge"},
}


def evolved(profile: str, seed: int, **kw) -> ExperimentConfig:
    return resolve("cifar10_ablation", profile, seed=seed, **({} if profile == "smoke" else {"d_hidden": HEADLINE_WIDTH}), **kw)


def final_topology(ev: ExperimentConfig) -> ExperimentConfig:
    """Control (a) of an evolved run: its final topology trained from scratch, evolution off."""
    return resolve(ev.experiment, ev.profile, seed=ev.train.seed, evolve=False, d_hidden=ev.model.d_hidden,
                   init_from=f"{ev.experiment}/{ev.profile}/{ev.key()}/topology.json")


def controls(profile: str, seed: int) -> dict[str, ExperimentConfig]:
    """(a) the evolved run's final topology from scratch, evolution off; (b) the initial clusters with fixed
    dense feedforward + feedback wiring; (c) the initial clusters without edges; both evolution off."""
    ev = evolved(profile, seed)
    kw = dict(seed=seed, evolve=False, **({} if profile == "smoke" else {"d_hidden": HEADLINE_WIDTH}))
    return {
        "evolved from scratch": ev,
        "(a) final topology, from scratch": final_topology(ev),
        "(b) dense start, fixed": resolve("cifar10_ablation", profile, init_connect="dense_fb", **kw),
        "(c) no edges, fixed": resolve("cifar10_ablation", profile, **kw),
    }


def gate_runs(profile: str, seed: int) -> dict[str, ExperimentConfig]:
    """The choice of `connect_gate` on the validation split: new edges silent (0) against full strength (1)."""
    ev0 = evolved(profile, seed, connect_gate=0.0)
    return {"evolved, new edges at gate 0": ev0, "(a) of the gate-0 run": final_topology(ev0)}


def ablation_runs(profile: str) -> dict[str, list[ExperimentConfig]]:
    seeds = SEEDS[:1] if profile == "smoke" else SEEDS
    out: dict[str, list[ExperimentConfig]] = {}
    for s in seeds:
        for name, cfg in controls(profile, s).items():
            out.setdefault(name, []).append(cfg)
    if profile != "smoke":
        for s in seeds:
            for name, cfg in gate_runs(profile, s).items():
                out.setdefault(name, []).append(cfg)
        for name, kw in MECHANISMS.items():
            out[name] = [resolve("cifar10_ablation", profile, d_hidden=HEADLINE_WIDTH, **kw)]  # one seed
    return out


TEXT_WIDTHS = (128, 256, 384)  # the paper's TinyStories widths


def tinystories_runs(profile: str) -> dict[str, list[ExperimentConfig]]:
    """LuminaNet and the 1-layer GPT-2 at matched width (d_model = d_hidden): the same tokenizer, windows,
    context and epochs, so the same number of predicted training tokens.

    The second seed runs at the widest width, fixed before any result (the seed-similarity claim is about
    it), so no width is chosen on the validation stories that also report the result."""
    pairs = [(32, 0)] if profile == "smoke" else [(w, 0) for w in TEXT_WIDTHS] + [(TEXT_WIDTHS[-1], 1)]
    return {"luminanet": [resolve("tinystories", profile, d_hidden=w, seed=s) for w, s in pairs],
            "baselines": [resolve("tinystories_baseline", profile, d_hidden=w, seed=s) for w, s in pairs]}


def tinystories_controls(profile: str) -> dict[str, ExperimentConfig]:
    """LuminaNet at the smallest width beside controls that each differ from it in one thing, to measure what
    limits the text network: how much the evolved connections carry (with the schedule of `full` the
    connection rate, connect_k edges per event, bounds the edge count, not the in-degree cap: the controls
    quadruple it, or switch connection off) and the token embedding's width (d_embed, ours: 64 at every
    d_hidden; the control gives it d_hidden, as GPT-2's embedding has d_model)."""
    w = 32 if profile == "smoke" else TEXT_WIDTHS[0]
    base = resolve("tinystories", profile, d_hidden=w)
    out = {"evolved (as published)": base,
           "4x the connection rate (connect_k 16)": resolve("tinystories", profile, d_hidden=w, connect_k=16),
           "no connections (connect off)": resolve("tinystories", profile, d_hidden=w, connect=False)}
    if base.model.d_embed != w:  # `paper` already embeds at d_hidden 128
        out[f"token embedding d_embed = {w} (not {base.model.d_embed})"] = resolve("tinystories", profile, d_hidden=w, d_embed=w)
    return out


def _flat(groups: dict) -> list[ExperimentConfig]:
    return [c for g in groups.values() for c in g]


RUN_SETS = {
    "evolution": lambda profile: [resolve("evolution", profile)],
    "cifar10": lambda profile: _flat(cifar10_runs(profile)),
    "cifar10_ablation": lambda profile: _flat(ablation_runs(profile)),
    "cifar10_widths": lambda profile: list(width_runs(profile).values()),
    "tinystories": lambda profile: _flat(tinystories_runs(profile)),
    "tinystories_controls": lambda profile: list(tinystories_controls(profile).values()),
    "gpu": lambda profile: gpu_runs(1.0 if profile == "smoke" else 30.0),
}
