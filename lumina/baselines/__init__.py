"""Baseline models the LuminaNet results are compared against."""
from lumina.baselines.vision import BASELINES, baseline_info, build_baseline

__all__ = ["BASELINES", "baseline_info", "build_baseline"]
