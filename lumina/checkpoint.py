"""Saving and loading without pickle: tensors in safetensors, topology/config/state in JSON.

- `save_network` / `load_network`: an evolved network as a folder (topology.json, config.json,
  weights.safetensors). Loading rebuilds the graph first, then fills in the weights.
- `save_checkpoint` / `load_checkpoint`: one safetensors file holding the weights, the AdamW moments and
  every random-number-generator state, with the topology, config, policy state, history and position in
  the data order as JSON metadata. Written to a temporary file and renamed, so a kill during a save leaves
  the previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from .config import ExperimentConfig
from .topology import Graph


class CheckpointError(ValueError):
    """A checkpoint that cannot be used here (other config, corrupt file, ...)."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _atomic_save_file(tensors: dict, path: Path, metadata: dict[str, str]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ---- an evolved network --------------------------------------------------------------------------
def save_network(model, cfg: ExperimentConfig, folder: Path) -> None:
    folder = Path(folder)
    atomic_write_text(folder / "topology.json", model.graph.to_json())
    atomic_write_text(folder / "config.json", json.dumps(cfg.to_dict(), indent=1))
    _atomic_save_file(dict(model.state_dict()), folder / "weights.safetensors", {"config_key": cfg.key()})


def save_weights(model, cfg: ExperimentConfig, path: Path) -> None:
    """A baseline's trained weights (safetensors), tagged with its config key."""
    _atomic_save_file(dict(model.state_dict()), path, {"config_key": cfg.key()})


def load_weights(cfg: ExperimentConfig, path: Path):
    """Rebuild a baseline from its config and fill in stored weights; refuses weights of another config."""
    from .train import build_model  # noqa: avoid an import cycle

    try:
        with safe_open(str(path), framework="pt") as f:
            key = (f.metadata() or {}).get("config_key")
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file: {err}") from err
    if key != cfg.key():
        raise CheckpointError(f"{path} holds weights of config {key}, not {cfg.key()}")
    model = build_model(cfg)
    _load_state(model, load_file(path), path)
    return model


def load_network(folder: Path, cfg: ExperimentConfig | None = None):
    """Rebuild a saved LuminaNet. With `cfg`, refuse a network saved under a different model config."""
    from .train import build_model  # noqa: avoid an import cycle

    folder = Path(folder)
    for name in ("topology.json", "config.json", "weights.safetensors"):
        if not (folder / name).exists():
            raise CheckpointError(f"{folder / name} is missing: not a saved network folder")
    saved = ExperimentConfig.from_dict(json.loads((folder / "config.json").read_text()))
    if cfg is not None and saved.model != cfg.model:
        diff = {k: (getattr(saved.model, k), getattr(cfg.model, k)) for k in saved.model.__dataclass_fields__
                if getattr(saved.model, k) != getattr(cfg.model, k)}
        raise CheckpointError(f"network in {folder} was saved with another model config: (saved, requested) {diff}")
    graph = Graph.from_json((folder / "topology.json").read_text())
    model = build_model(saved, graph=graph)
    try:
        state = load_file(folder / "weights.safetensors")
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{folder / 'weights.safetensors'} is not a readable safetensors file: {err}") from err
    _load_state(model, state, folder)
    return model, saved


def _load_state(model, state: dict, where) -> None:
    own = model.state_dict()
    if set(own) != set(state):
        raise CheckpointError(f"weights in {where} do not match the topology: missing {sorted(set(own) - set(state))[:5]}, "
                              f"unexpected {sorted(set(state) - set(own))[:5]}")
    bad = [k for k in own if own[k].shape != state[k].shape]
    if bad:
        raise CheckpointError(f"weights in {where} have other shapes than the model for {bad[:5]} "
                              f"(e.g. {tuple(state[bad[0]].shape)} vs {tuple(own[bad[0]].shape)}): another d_hidden or config?")
    model.load_state_dict(state)


# ---- a training checkpoint -----------------------------------------------------------------------
def save_checkpoint(path: Path, *, model, optimizer, cfg: ExperimentConfig, rng: dict[str, torch.Tensor],
                    state: dict) -> None:
    """`rng`: named generator states (uint8 tensors); `state`: JSON-able trainer state."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    names = {id(p): n for n, p in model.named_parameters()}
    for p, st in optimizer.state.items():
        for k, v in st.items():
            tensors[f"opt.{names[id(p)]}.{k}"] = v if v.ndim else v.reshape(1)
    tensors.update({f"rng.{k}": v for k, v in rng.items()})
    meta = {"config": json.dumps(cfg.to_dict()), "config_key": cfg.key(), "state": json.dumps(state),
            "topology": model.graph.to_json() if hasattr(model, "graph") else ""}
    _atomic_save_file(tensors, path, meta)


def load_checkpoint(path: Path, cfg: ExperimentConfig) -> dict:
    """Read a checkpoint written by `save_checkpoint` for the same config. Never unpickles anything."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable checkpoint (safetensors): {err}") from err
    if meta.get("config_key") != cfg.key():
        saved = meta.get("config", "{}")
        raise CheckpointError(f"checkpoint {path} belongs to another config (key {meta.get('config_key')}, "
                              f"this run {cfg.key()}); saved config: {saved[:300]}...")
    return {
        "model": {k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
        "opt": {k[4:]: v for k, v in tensors.items() if k.startswith("opt.")},
        "rng": {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")},
        "state": json.loads(meta["state"]),
        "topology": meta.get("topology") or None,
    }


def restore_optimizer(optimizer, model, opt_tensors: dict) -> None:
    for n, p in model.named_parameters():
        st = {k: opt_tensors[f"{n}.{k}"] for k in ("step", "exp_avg", "exp_avg_sq") if f"{n}.{k}" in opt_tensors}
        if st:
            st["step"] = st["step"].reshape(())
            optimizer.state[p] = st
