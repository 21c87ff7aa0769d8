#!/usr/bin/env bash
# Set up mlff's environments and run the test suite in each:
#   .venv         torch 2.9.1 with openmm-torch (the pinned reference)
#   .venv-latest  torch 2.13 CPU (forward compatibility)
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -x -k neighbors`.
# MLFF_TEST_ENVS="reference" restricts the run to one environment.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
envs=${MLFF_TEST_ENVS:-reference latest}
status=0
for name in $envs; do
  bash scripts/setup_env.sh "$name"
  # the reference build must contain the CUDA kernels (tests/neighbors/test_cuda.py checks)
  case "$name" in
    reference) venv=.venv; export MLFF_EXPECT_CUDA_KERNEL=1 ;;
    latest) venv=.venv-latest; unset MLFF_EXPECT_CUDA_KERNEL ;;
  esac
  echo "[mlff] running the tests in the $name environment ($venv)"
  if ! "$venv/bin/python" -m pytest "$@"; then
    echo "[mlff] tests FAILED in the $name environment" >&2
    status=1
  fi
done
exit $status
