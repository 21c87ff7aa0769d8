#!/usr/bin/env bash
# Set up the reference environment and run mlff's main job. Until the MD demo exists, the
# main job is a short run of the neighbour-list benchmark against vesin, matscipy and ASE.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup_env.sh reference
exec .venv/bin/python benchmarks/neighbors.py --quick "$@"
