#!/usr/bin/env bash
# Reproduce a shipped potential: bash potentials/training/train.sh ethanol|aspirin|water|si [RECIPE]
# Trains potentials/training/RECIPE.yaml (default: NAME.yaml; its output_dir is runs/RECIPE)
# from ../shared/data (next to the repository, not part of it) with the reference environment,
# deploys the best EMA weights to potentials/NAME.pt, runs the MD / materials check of its
# model card into potentials/checks/NAME/, writes the stored reference energy and forces
# (potentials/reference/NAME.json) that tests/potentials compares against, and the card.
# MLFF_TRAIN_PROCESSES=K trains on K processes (`mlff train --nproc K`: torchrun, one thread each),
# as the recipes whose comments say so were trained.
set -euo pipefail

name=${1:?usage: train.sh ethanol|aspirin|water|si [RECIPE]}
recipe=${2:-$name}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here="$root/potentials/training"
data=$root/../shared/data
[ -f "$here/$recipe.yaml" ] || { echo "train.sh: no config $here/$recipe.yaml" >&2; exit 2; }
[ -d "$data" ] || { echo "train.sh: no data folder $data (the configs read ../shared/data next to the repository)" >&2; exit 2; }

bash "$root/scripts/setup_env.sh" reference
python="$root/.venv/bin/python"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
cd "$here"
if [ "$name" = si ]; then
  "$python" prepare_si.py "$data/si_mlearn" runs/si_data
fi
processes=${MLFF_TRAIN_PROCESSES:-1}
launch=""
if [ "$processes" -gt 1 ]; then launch="--nproc $processes"; fi
"$python" -m mlff train "$recipe.yaml" $launch ${MLFF_TRAIN_OVERRIDES:-}
cp "runs/$recipe/potential.pt" "$root/potentials/$name.pt"
"$python" md_check.py "$name" "$root/potentials/$name.pt" "$root/potentials/checks/$name"
"$python" reference.py "$name" "$root/potentials/$name.pt" "$root/potentials/reference/$name.json"
"$python" card.py "$name" "$recipe"
