#!/usr/bin/env python3
"""Store saved networks in fp16 (half the bytes), for the networks the book loads and the repository keeps:

    python scripts/shrink_network.py results/tinystories/full/<key>/network [...]

Loading gives float32 tensors again (`lumina.checkpoint.read_network`); the weights lose precision below
fp16's 11 significant bits, so a shrunk network's metrics differ from its stored result in the last digits."""
import sys
from pathlib import Path

from lumina.checkpoint import CheckpointError, shrink_network

for arg in sys.argv[1:]:
    try:
        print(f"{arg}: {shrink_network(Path(arg)) / 2 ** 20:.1f} MiB")
    except CheckpointError as err:
        sys.exit(f"error: {err}")
