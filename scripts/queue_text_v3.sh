#!/usr/bin/env bash
# TinyStories v3 on one core: the dev-split screen, the learning-rate grid, then the reported pair
# (`lumina.published`: text_screen_runs -> text_lr_runs -> text_v3_runs). Each stage's list depends on the
# previous stage's stored results, so the set is asked for again until it trains nothing.
set -u
cd "$(dirname "$0")/.."
for stage in 1 2 3; do
  echo "=== $(date -Is) stage $stage"
  OMP_NUM_THREADS=1 .venv/bin/python -m lumina run-set tinystories_v3 --profile full || exit $?
done
echo "=== $(date -Is) done"
