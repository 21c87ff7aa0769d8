#!/usr/bin/env bash
# Create or update the environment of nequip's own NequIP for benchmarks/models.py: .venv-nequip
# in the checkout, with nequip at a pinned version on the same torch, numpy, ase and matscipy as
# mlff's reference environment (env/reference.txt). Idempotent: a second run only checks a stamp
# (a second or so).
#
#   bash benchmarks/setup_nequip.sh           # PYTHON=python3.11 to choose the interpreter
#
# Why not .venv-peers: mace-torch 0.3.16 there pins e3nn 0.4.4, and nequip 0.19.1 needs
# e3nn >= 0.6, < 0.7. Why not mlff's .venv (whose e3nn 0.6.0 would do): nequip brings its
# training stack (lightning, torchmetrics, hydra, lmdb), which the reference environment does not
# need. nequip 0.19.1 declares torch >= 2.2 and runs with torch 2.9.1 as it is (it builds, and
# evaluates eagerly, without any patch); nothing here departs from the reference pins.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${NEQUIP_VENV:-"$root/.venv-nequip"}  # NEQUIP_VENV: elsewhere (benchmarks/models.py --nequip-python)
python=${PYTHON:-python3}

# torch, numpy, scipy, ase, matscipy and e3nn are those of mlff's reference environment
# (env/reference.txt); the rest are nequip 0.19.1's declared dependencies, pinned.
packages=(
  torch==2.9.1
  numpy==2.4.6
  scipy==1.17.1
  ase==3.29.0
  matscipy==1.3.1
  e3nn==0.6.0
  nequip==0.19.1
  lightning==2.6.6
  torchmetrics==1.9.0
  hydra-core==1.3.8
  omegaconf==2.3.1
  lmdb==3.0.0
  tqdm==4.70.1
  PyYAML==6.0.4
  requests==2.34.2
)

source "$root/scripts/quiet_pip.sh"

check() {
  "$venv/bin/python" - <<'EOF'
import e3nn, nequip, torch
from nequip.model import NequIPGNNModel  # noqa: F401  (the builder benchmarks/_model_worker.py uses)
from nequip.integrations.ase import NequIPCalculator  # noqa: F401
assert torch.__version__.startswith("2.9.1"), torch.__version__
assert e3nn.__version__ == "0.6.0", e3nn.__version__
assert nequip.__version__ == "0.19.1", nequip.__version__
print(f"[nequip] torch {torch.__version__}, e3nn {e3nn.__version__}, nequip {nequip.__version__}")
EOF
}

if [ ! -x "$venv/bin/python" ]; then
  echo "[nequip] creating $venv"
  "$python" -m venv "$venv"
fi

wanted=$(printf '%s\n' "${packages[@]}" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$venv/.nequip-requirements" 2>/dev/null)" != "$wanted" ]; then
  echo "[nequip] installing ${packages[*]} (the first time downloads several GB)"
  quiet_pip install --disable-pip-version-check "${packages[@]}"
  check
  echo "$wanted" >"$venv/.nequip-requirements"
fi
echo "[nequip] environment ready: $venv"
