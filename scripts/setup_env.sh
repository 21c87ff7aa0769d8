#!/usr/bin/env bash
# Create or update one of mlff's virtual environments inside the checkout, then build mlff
# (C++ op included) into it. Idempotent: a second run only checks stamps (a few seconds).
#
#   bash scripts/setup_env.sh reference   # .venv: torch 2.9.1 + openmm-torch (the pinned reference)
#   bash scripts/setup_env.sh latest      # .venv-latest: torch 2.13 CPU (forward compatibility)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
name=${1:-reference}
# The reference torch is a CUDA build: compile the CUDA kernels there too (with NVRTC, at
# build time; no GPU needed). The latest environment's torch is CPU-only.
case "$name" in
  reference) venv="$root/.venv"; with_cuda=ON ;;
  latest) venv="$root/.venv-latest"; with_cuda=OFF ;;
  *) echo "setup_env.sh: unknown environment '$name' (use 'reference' or 'latest')" >&2; exit 2 ;;
esac
requirements="$root/env/$name.txt"
python=${PYTHON:-python3}

source "$root/scripts/quiet_pip.sh"

if [ ! -x "$venv/bin/python" ]; then
  "$python" -c 'import sys; assert sys.version_info >= (3, 10), "mlff needs Python >= 3.10"'
  echo "[mlff] creating $venv"
  "$python" -m venv "$venv"
fi

wanted=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ "$(cat "$venv/.mlff-requirements" 2>/dev/null)" != "$wanted" ]; then
  echo "[mlff] installing the $name environment from env/$name.txt (the first time downloads several GB)"
  quiet_pip install --disable-pip-version-check -r "$requirements"
  echo "$wanted" >"$venv/.mlff-requirements"
fi

sources=$(cd "$root" && cat pyproject.toml CMakeLists.txt $(find csrc cmake -type f | sort) | sha256sum | cut -d' ' -f1)
sources="$sources-cuda-$with_cuda"
if [ "$(cat "$venv/.mlff-build" 2>/dev/null)" != "$sources" ] || ! "$venv/bin/python" -c "import torch, mlff" 2>/dev/null; then
  echo "[mlff] building mlff into $venv"
  # one CMake build folder per environment: each compiles against its own torch
  export SKBUILD_BUILD_DIR="$root/build/$name"
  export MLFF_WITH_CUDA=$with_cuda
  quiet_pip install --disable-pip-version-check --no-build-isolation --no-deps -e "$root"
  "$venv/bin/python" -c "import torch, mlff"
  echo "$sources" >"$venv/.mlff-build"
fi
echo "[mlff] $name environment ready: $venv"
