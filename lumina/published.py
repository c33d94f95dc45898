"""The runs each results chapter shows, by profile: one definition for the chapters and the command line.

    python -m lumina run-set cifar10 --profile full     # trains whatever is missing, in order
"""
from __future__ import annotations

from .config import ExperimentConfig, resolve

CIFAR_WIDTHS = (10, 32, 64, 84, 128)  # the paper's released CIFAR-10 structures
BASELINE_ORDER = ("lenet5", "alexnet", "resnet18", "mlp_mixer", "resmlp", "deit_tiny", "mobilevit")


def cifar10_runs(profile: str) -> dict[str, list[ExperimentConfig]]:
    """LuminaNet at every released width (seed 0, plus seed 1 at the best-by-default width 64), every baseline
    (seed 0, plus seed 1 for LeNet-5 and AlexNet, so the paper's two gaps carry a spread)."""
    if profile == "smoke":
        return {"luminanet": [resolve("cifar10", "smoke", d_hidden=16)],
                "baselines": [resolve("cifar10_baseline", "smoke", arch="lenet5")]}
    lumina = [resolve("cifar10", profile, d_hidden=d) for d in CIFAR_WIDTHS]
    lumina.append(resolve("cifar10", profile, d_hidden=64, seed=1))
    base = [resolve("cifar10_baseline", profile, arch=a) for a in BASELINE_ORDER]
    base += [resolve("cifar10_baseline", profile, arch=a, seed=1) for a in ("lenet5", "alexnet")]
    return {"luminanet": lumina, "baselines": base}


ABLATIONS = {  # name -> overrides of the cifar10_ablation experiment
    "evolved from scratch": {},
    "dense start": {"init_connect": "dense"},
    "evolution off": {"evolve": False},
    "no split": {"split": False},
    "no grow": {"grow": False, "reduce": False},
    "no connect": {"connect": False},
}


def ablation_runs(profile: str) -> dict[str, ExperimentConfig]:
    names = list(ABLATIONS) if profile != "smoke" else ["evolved from scratch", "dense start"]
    return {n: resolve("cifar10_ablation", profile, **ABLATIONS[n]) for n in names}


TEXT_WIDTHS = (128, 256, 384)  # the paper's TinyStories widths


def tinystories_runs(profile: str) -> dict[str, list[ExperimentConfig]]:
    """LuminaNet at the paper's widths (two seeds at 384, for the convergence claim) and the 1-layer GPT-2."""
    if profile == "smoke":
        return {"luminanet": [resolve("tinystories", "smoke")], "baselines": [resolve("tinystories_baseline", "smoke")]}
    lumina = [resolve("tinystories", profile, d_hidden=d) for d in TEXT_WIDTHS]
    lumina.append(resolve("tinystories", profile, d_hidden=TEXT_WIDTHS[-1], seed=1))
    return {"luminanet": lumina, "baselines": [resolve("tinystories_baseline", profile)]}


RUN_SETS = {
    "evolution": lambda profile: [resolve("evolution", profile)],
    "tinystories": lambda profile: [c for group in tinystories_runs(profile).values() for c in group],
    "cifar10_ablation": lambda profile: list(ablation_runs(profile).values()),
    "cifar10": lambda profile: [c for group in cifar10_runs(profile).values() for c in group],
    "cifar10_baselines": lambda profile: cifar10_runs(profile)["baselines"],
    "cifar10_luminanet": lambda profile: cifar10_runs(profile)["luminanet"],
}
