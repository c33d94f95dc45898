"""Where and how a result was made: git commit, package versions, hardware, date, wall time."""
from __future__ import annotations

import datetime
import os
import platform
import subprocess

import torch

from .paths import ROOT


def _git(*args) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def provenance(wall_s: float | None = None, device: torch.device | None = None) -> dict:
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for mod in ("torchvision", "timm", "transformers", "tokenizers"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            pass
    cpu = platform.processor()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    on_gpu = device is not None and device.type == "cuda"
    return {
        "git_commit": _git("rev-parse", "HEAD"), "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "versions": versions,
        "hardware": {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                     "device": str(device) if device is not None else "cpu",
                     "gpu": torch.cuda.get_device_name(device) if on_gpu else None},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_s": wall_s,
    }
