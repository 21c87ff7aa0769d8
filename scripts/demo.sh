#!/usr/bin/env bash
# README command 1: set up the reference environment, then run mlff's main job: 2 ps of OpenMM
# MD of ethanol with the shipped MACE potential (md_runs/demo_ethanol.yaml), with a progress
# bar in ns/day, a DCD trajectory, an energy CSV and a PNG plot in demo_output/.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup_env.sh reference
mkdir -p demo_output
# 9 atoms: one thread is fastest (more only add synchronisation)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
.venv/bin/mlff md md_runs/demo_ethanol.yaml "$@"
echo "outputs: demo_output/ethanol.dcd (trajectory), demo_output/ethanol.csv (energies, temperature), demo_output/ethanol.png (plot)"
