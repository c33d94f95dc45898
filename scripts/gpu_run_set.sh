#!/usr/bin/env bash
# Run a prepared GPU run set on one CUDA machine and leave its results in results/ (then commit them).
#
#   bash scripts/gpu_run_set.sh [RUN_SET] [PROFILE]     # default: gpu paper (about 42 minutes of training
#                                                       # steps on one H200: `python -m benchmarks gpu_epochs`)
#
# What it does: a GPU smoke run first (seconds: the device path works), then every missing run of the set,
# one after another (train or load: rerunning the script resumes from checkpoints), with data resident on
# the device and bf16 autocast (the `gpu` set's configs). Results land in $LUMINA_RESULTS (default results/);
# copy that folder back to the repository if the machine is another one. LUMINA_DATA must hold CIFAR-10.
# Python: $PYTHON if set, else the project's .venv (`make venv` creates it), never a system python3 without torch.
set -euo pipefail
cd "$(dirname "$0")/.."
SET=${1:-gpu}
PROFILE=${2:-paper}
PY=${PYTHON:-.venv/bin/python}
if ! [ -x "$(command -v "$PY")" ]; then
    echo "error: $PY not found: run \`make venv\` first, or set PYTHON to a python with torch and lumina installed" >&2
    exit 2
fi
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 LUMINA_PROGRESS=${LUMINA_PROGRESS:-1}
# one `error:` line (exit 2), not a traceback, when this python cannot run the set or there is no GPU
"$PY" - <<'EOF'
import sys
try:
    import torch, lumina  # noqa: F401
except ImportError as err:
    print(f"error: {sys.executable} cannot import {err.name}: run `make venv`, or set PYTHON to the project's python",
          file=sys.stderr)
    sys.exit(2)
if not torch.cuda.is_available():
    print("error: no CUDA device: this script is for a GPU machine (on a CPU: python -m lumina run-set)", file=sys.stderr)
    sys.exit(2)
print("[gpu]", torch.cuda.get_device_name(0))
EOF
t0=$(date +%s)
LUMINA_RESULTS=$(mktemp -d) "$PY" -m lumina train cifar10 --profile smoke --set device=cuda --set amp=True
echo "[gpu] smoke run: $(( $(date +%s) - t0 )) s"
t0=$(date +%s)
"$PY" -m lumina run-set "$SET" --profile "$PROFILE"
echo "[gpu] run set $SET/$PROFILE: $(( $(date +%s) - t0 )) s; results under ${LUMINA_RESULTS:-results}/"
