#!/usr/bin/env bash
# Create or update the peers' environment of benchmarks/models.py: .venv-peers in the checkout,
# with mace-torch and schnetpack at pinned versions on the same torch as mlff's reference
# environment. A separate environment because mace-torch 0.3.16 pins e3nn 0.4.4 and mlff needs
# e3nn 0.6. Idempotent: a second run only checks a stamp (a second or so).
#
#   bash benchmarks/setup_peers.sh            # PYTHON=python3.11 to choose the interpreter
#
# schnetpack 2.1.1 declares sympy<=1.12, while torch 2.9.1 needs sympy>=1.13.3, so pip cannot
# install both. schnetpack only uses sympy for Clebsch-Gordan coefficients (nn/ops/so3.py), which
# the sympy that torch brings provides, so schnetpack goes in with --no-deps, after the
# dependencies it imports (listed below, pinned). It also imports the name T_co from
# torch.utils.data.dataloader, which torch 2.9 no longer has; the benchmark worker defines it
# before importing schnetpack (benchmarks/_model_worker.py), nothing is patched on disk.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${PEERS_VENV:-"$root/.venv-peers"}  # PEERS_VENV: elsewhere (benchmarks/models.py --peers-python)
python=${PYTHON:-python3}

# Everything installed normally (with dependencies). torch, numpy, ase and matscipy are those of
# mlff's reference environment (env/reference.txt); e3nn 0.4.4 is mace-torch's pin.
packages=(
  torch==2.9.1
  numpy==2.4.6
  ase==3.29.0
  matscipy==1.3.1
  mace-torch==0.3.16
  e3nn==0.4.4
  # what schnetpack 2.1.1 imports when `import schnetpack` runs and a model is built
  pytorch-lightning==2.6.6
  torchmetrics==1.9.0
  hydra-core==1.3.8
  omegaconf==2.3.1
  rich==15.0.0
  fasteners==0.20
  dirsync==2.2.6
  torch-ema==0.3
  progressbar2==4.6.0
  h5py==3.16.0
  PyYAML==6.0.4
  tqdm==4.70.1
)
no_deps=(schnetpack==2.1.1)

source "$root/scripts/quiet_pip.sh"

check() {
  "$venv/bin/python" - <<'EOF'
import typing
import torch.utils.data.dataloader as dataloader
if not hasattr(dataloader, "T_co"):
    dataloader.T_co = typing.TypeVar("T_co", covariant=True)
import mace  # sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD before e3nn 0.4.4 loads its constants
import e3nn, schnetpack, torch
from mace import modules
assert torch.__version__.startswith("2.9.1"), torch.__version__
assert e3nn.__version__ == "0.4.4", e3nn.__version__
print(f"[peers] torch {torch.__version__}, e3nn {e3nn.__version__}, mace-torch {mace.__version__}, schnetpack {schnetpack.__version__}")
EOF
}

if [ ! -x "$venv/bin/python" ]; then
  echo "[peers] creating $venv"
  "$python" -m venv "$venv"
fi

wanted=$(printf '%s\n' "${packages[@]}" "--no-deps" "${no_deps[@]}" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$venv/.peers-requirements" 2>/dev/null)" != "$wanted" ]; then
  echo "[peers] installing ${packages[*]} and, without dependencies, ${no_deps[*]} (the first time downloads several GB)"
  quiet_pip install --disable-pip-version-check "${packages[@]}"
  quiet_pip install --disable-pip-version-check --no-deps "${no_deps[@]}"
  check 2>/dev/null | grep -v "^cuequivariance"
  echo "$wanted" >"$venv/.peers-requirements"
fi
echo "[peers] environment ready: $venv"
