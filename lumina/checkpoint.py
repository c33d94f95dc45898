"""File formats, without pickle: tensors in safetensors, topology/config/state in JSON; every write atomic.

- `write_network` / `read_network`: a trained network as a folder (topology.json, config.json,
  weights.safetensors). LuminaNet weights are stored under per-cluster and per-edge names (`c3_w_in`,
  `e2_7`, ...: `LuminaNet.named_tensors`), never under the executor's packing.
- `save_checkpoint` / `load_checkpoint`: one safetensors file with the weights, the optimizer state (by the
  same names) and every random-number-generator state, with topology, config and trainer state as JSON
  metadata. Tensors are written from the CPU, so a checkpoint made on a GPU resumes on a CPU and back.
A write goes to a temporary file that is renamed into place: a kill or a full disk during a save leaves the
previous file intact. Written files get the mode the umask allows (0644 under the usual 022), so the other
users of a shared results store can read them.

Nothing read back is trusted unchecked: every safetensors file carries the sha256 of its tensors (names,
dtypes, shapes and bytes) in its metadata, and `load_tensors` refuses a file whose tensors no longer match it
(a flipped bit, a truncated copy), with a `CheckpointError` that names the file and what to do.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save_file

from .topology import Graph


class CheckpointError(ValueError):
    """A checkpoint or saved network that cannot be used here (other config, corrupt file, ...)."""


def _temp_beside(path: Path) -> tuple[str, int]:
    """A new, empty temporary file next to `path`, and the mode the umask gives a new file. Not
    `tempfile.mkstemp`: it creates mode 0600 whatever the umask, and the rename would carry that mode to the
    result, unreadable by the rest of a group sharing the store. Created with 0666, the kernel applies the
    umask, so the file's mode is read back instead of changing the process-wide umask to learn it."""
    while True:
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        mode = os.fstat(fd).st_mode & 0o777
        os.close(fd)
        return tmp, mode


def _atomic(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, mode = _temp_beside(path)
    try:
        write(tmp)
        os.chmod(tmp, mode)  # safetensors replaces the file with its own, mode 0600
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


CHECKSUM = "sha256"  # metadata key of the tensors' checksum


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order: what a file must still hold.
    Computed on the tensors rather than the file's bytes, so it is written in the same file, in one atomic
    write, and does not depend on how safetensors lays the data out."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k].detach().to("cpu").contiguous()
        h.update(f"{k}|{str(t.dtype).removeprefix('torch.')}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())  # any dtype (bf16 too) as its raw bytes, no copy
    return h.hexdigest()


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None,
                 dtype: torch.dtype | None = None) -> None:
    """safetensors from the CPU (contiguous, optionally cast to `dtype`) with the sha256 of its tensors,
    atomically."""
    cpu = {k: v.detach().to("cpu", dtype if dtype is not None and v.is_floating_point() else v.dtype).contiguous()
           for k, v in tensors.items()}
    meta = {**(metadata or {}), CHECKSUM: tensors_sha256(cpu)}
    _atomic(path, lambda tmp: save_file(cpu, tmp, metadata=meta))


def _metadata(data: bytes) -> dict[str, str]:
    """The `__metadata__` of a safetensors file's bytes: an 8-byte little-endian header length, then the JSON
    header."""
    n = int.from_bytes(data[:8], "little")
    if len(data) < 8 or n > len(data) - 8:
        raise ValueError("the header is cut short")
    return json.loads(data[8:8 + n]).get("__metadata__") or {}


def load_tensors(path: Path, fix: str = "delete it") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a safetensors file whose tensors match their stored sha256. `fix` says what to
    do about a corrupt file, in the error. A file written before checksums existed (no `sha256` in its
    metadata) loads unchecked: refusing it would strand every run checkpointed by older code.

    The file is read once, into memory, and header and tensors both come from those bytes. Not
    `safe_open`: it reads the header through one open of the path and the tensors through a second
    (`torch.UntypedStorage.from_file`), so a checkpoint replaced between the two (a run saving while
    another process reads) paired one file's checksum with the next file's tensors."""
    try:
        data = Path(path).read_bytes()
        meta = _metadata(data)
        tensors = load(data)
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file ({err}); {fix}") from err
    want = meta.get(CHECKSUM)
    if want is not None and tensors_sha256(tensors) != want:
        raise CheckpointError(f"{path} is corrupt: its tensors do not match the sha256 stored with them; {fix}")
    return tensors, meta


# ---- a trained network ---------------------------------------------------------------------------
def _network_fix(folder: Path) -> str:
    """What to do about a corrupt saved network: it sits in a run's result folder (`<run>/network`)."""
    return (f"delete the run's folder {Path(folder).parent} (or rerun it with --retrain) to train it again, "
            "or restore the file from git")


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
    tensors, meta = load_tensors(path, _network_fix(folder))
    meta.pop(CHECKSUM, None)  # the cast changes the bytes: save_tensors stores the new checksum
    save_tensors(path, tensors, {**meta, "stored_dtype": str(dtype).removeprefix("torch.")}, dtype)
    return path.stat().st_size


def read_network(folder: Path) -> tuple[Graph | None, dict, dict[str, torch.Tensor], dict]:
    """(graph or None for a baseline, config dict, tensors as float32, metadata) of a saved network folder."""
    folder = Path(folder)
    for name in ("config.json", "weights.safetensors"):
        if not (folder / name).exists():
            raise CheckpointError(f"{folder / name} is missing: not a saved network folder")
    try:
        config = json.loads((folder / "config.json").read_text())
        graph = Graph.from_json((folder / "topology.json").read_text()) if (folder / "topology.json").exists() else None
    except ValueError as err:  # JSONDecodeError, TopologyError
        raise CheckpointError(f"{folder}: config.json or topology.json is unreadable ({err}); "
                              f"{_network_fix(folder)}") from err
    tensors, meta = load_tensors(folder / "weights.safetensors", _network_fix(folder))
    if not isinstance(config, dict):
        raise CheckpointError(f"{folder / 'config.json'} is not a JSON object; {_network_fix(folder)}")
    tensors = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    return graph, config, tensors, meta


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


# Every checkpoint error ends with the way out: a checkpoint only saves time, so discarding it loses nothing
# but the steps it held.
RESTART = "rerun with --restart (train_or_load(restart=True)) to discard the checkpoint and train from step 0"


def load_checkpoint(path: Path, config_key: str) -> dict:
    """Read a checkpoint written by `save_checkpoint` for the same config key. Never unpickles anything."""
    tensors, meta = load_tensors(path, RESTART)
    if meta.get("config_key") != config_key:
        raise CheckpointError(f"checkpoint {path} belongs to another config (key {meta.get('config_key')}, "
                              f"this run {config_key}); {RESTART}; saved config: {meta.get('config', '{}')[:300]}...")
    try:
        state = json.loads(meta["state"])
        topology = Graph.from_json(meta["topology"]) if meta.get("topology") else None
    except (KeyError, ValueError) as err:  # JSONDecodeError and TopologyError are ValueErrors
        raise CheckpointError(f"checkpoint {path} has no readable trainer state or topology ({err!r}); {RESTART}") from err
    return {
        "model": {k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
        "opt": {k[4:]: v for k, v in tensors.items() if k.startswith("opt.")},
        "rng": {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")},
        "state": state,
        "topology": topology,
    }
