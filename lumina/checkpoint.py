"""File formats, without pickle: tensors in safetensors, topology/config/state in JSON; every write atomic.

- `write_network` / `read_network`: a trained network as a folder (topology.json, config.json,
  weights.safetensors). LuminaNet weights are stored under per-cluster and per-edge names (`c3_w_in`,
  `e2_7`, ...: `LuminaNet.named_tensors`), never under the executor's packing.
- `save_checkpoint` / `load_checkpoint`: one safetensors file with the weights, the optimizer state (by the
  same names) and every random-number-generator state, with topology, config and trainer state as JSON
  metadata. Tensors are written from the CPU, so a checkpoint made on a GPU resumes on a CPU and back.
A write goes to a temporary file that is renamed into place: a kill or a full disk during a save leaves the
previous file intact.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from .topology import Graph


class CheckpointError(ValueError):
    """A checkpoint or saved network that cannot be used here (other config, corrupt file, ...)."""


def _atomic(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    _atomic(path, write)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None,
                 dtype: torch.dtype | None = None) -> None:
    """safetensors from the CPU (contiguous, optionally cast to `dtype`), atomically."""
    cpu = {k: v.detach().to("cpu", dtype if dtype is not None and v.is_floating_point() else v.dtype).contiguous()
           for k, v in tensors.items()}
    _atomic(path, lambda tmp: save_file(cpu, tmp, metadata=metadata or {}))


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            return {k: f.get_tensor(k) for k in f.keys()}, meta
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file: {err}") from err


# ---- a trained network ---------------------------------------------------------------------------
def write_network(folder: Path, tensors: dict[str, torch.Tensor], config: dict, config_key: str,
                  topology_json: str | None = None, dtype: torch.dtype | None = None) -> None:
    folder = Path(folder)
    if topology_json is not None:
        atomic_write_text(folder / "topology.json", topology_json)
    atomic_write_text(folder / "config.json", json.dumps(config, indent=1))
    save_tensors(folder / "weights.safetensors", tensors, {"config_key": config_key, "format": "named-v2"}, dtype)


def shrink_network(folder: Path, dtype: torch.dtype = torch.float16) -> int:
    """Rewrite a saved network's weights in `dtype` (half the bytes for fp16), for networks committed so the
    book can sample from them; `read_network` returns float32 either way. Returns the new file size in bytes."""
    path = Path(folder) / "weights.safetensors"
    tensors, meta = load_tensors(path)
    save_tensors(path, tensors, {**meta, "stored_dtype": str(dtype).removeprefix("torch.")}, dtype)
    return path.stat().st_size


def read_network(folder: Path) -> tuple[Graph | None, dict, dict[str, torch.Tensor], dict]:
    """(graph or None for a baseline, config dict, tensors as float32, metadata) of a saved network folder."""
    folder = Path(folder)
    for name in ("config.json", "weights.safetensors"):
        if not (folder / name).exists():
            raise CheckpointError(f"{folder / name} is missing: not a saved network folder")
    graph = Graph.from_json((folder / "topology.json").read_text()) if (folder / "topology.json").exists() else None
    tensors, meta = load_tensors(folder / "weights.safetensors")
    tensors = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    return graph, json.loads((folder / "config.json").read_text()), tensors, meta


# ---- a training checkpoint -----------------------------------------------------------------------
def save_checkpoint(path: Path, *, weights: dict, opt_state: dict, rng: dict, state: dict, config: dict,
                    config_key: str, topology_json: str = "") -> None:
    """`weights` {name: tensor}; `opt_state` {name.key: tensor}; `rng` named generator states (uint8);
    `state`: the JSON-able trainer state."""
    tensors = {f"model.{k}": v for k, v in weights.items()}
    tensors.update({f"opt.{k}": (v if v.ndim else v.reshape(1)) for k, v in opt_state.items()})
    tensors.update({f"rng.{k}": v for k, v in rng.items()})
    meta = {"config": json.dumps(config), "config_key": config_key, "state": json.dumps(state), "topology": topology_json}
    save_tensors(path, tensors, meta)


def load_checkpoint(path: Path, config_key: str) -> dict:
    """Read a checkpoint written by `save_checkpoint` for the same config key. Never unpickles anything."""
    tensors, meta = load_tensors(path)
    if meta.get("config_key") != config_key:
        raise CheckpointError(f"checkpoint {path} belongs to another config (key {meta.get('config_key')}, "
                              f"this run {config_key}); saved config: {meta.get('config', '{}')[:300]}...")
    try:
        state = json.loads(meta["state"])
    except (KeyError, json.JSONDecodeError) as err:
        raise CheckpointError(f"checkpoint {path} has no readable trainer state: {err!r}") from err
    return {
        "model": {k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
        "opt": {k[4:]: v for k, v in tensors.items() if k.startswith("opt.")},
        "rng": {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")},
        "state": state,
        "topology": Graph.from_json(meta["topology"]) if meta.get("topology") else None,
    }
