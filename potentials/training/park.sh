#!/usr/bin/env bash
# Set a long training's resume state aside: what `--resume` needs (last.pt: weights, moving
# average, optimiser, schedule, random state; best.pt; log.csv) goes to checkpoints/RUN/
# (ignored by git: checkpoints are megabytes; copy that folder to keep it elsewhere):
#
#   bash park.sh save RUN       # runs/RUN/ -> checkpoints/RUN/
#   bash park.sh restore RUN    # checkpoints/RUN/ -> runs/RUN/   (then: mlff train RUN.yaml --resume)
#   bash park.sh drop RUN       # remove checkpoints/RUN/ once the run is finished and recorded
#
# A fresh clone has neither runs/ nor checkpoints/. What git can keep is small: `carry` writes the
# moving-average weights of runs/RUN/last.pt (its latest epoch) as a weights-only checkpoint,
# carry/RUN.pt (about 1 MB for a 64-channel MACE), and refuses files over CARRY_MAX_BYTES
# (2 MB). A later session continues from it with training.initial_weights: carry/RUN.pt (optimiser
# and schedule start afresh, so give that run the learning rates it should continue with):
#
#   bash park.sh carry RUN      # runs/RUN/last.pt -> carry/RUN.pt (tracked)
set -euo pipefail

usage="usage: park.sh save|restore|drop|carry RUN"
action=${1:?$usage}
run=${2:?$usage}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
live="$here/runs/$run"
parked="$here/checkpoints/$run"
files="last.pt best.pt log.csv"

copy() {  # copy FROM TO: every file that exists, each through a temporary name (never half-written)
  mkdir -p "$2"
  for file in $files; do
    if [ -f "$1/$file" ]; then
      cp "$1/$file" "$2/.$file.partial"
      mv "$2/.$file.partial" "$2/$file"
    fi
  done
}

case "$action" in
  save)
    [ -f "$live/last.pt" ] || { echo "park.sh: $live/last.pt does not exist (has the run finished an epoch?)" >&2; exit 2; }
    copy "$live" "$parked"
    echo "park.sh: saved $run (epoch $(tail -n 1 "$parked/log.csv" | cut -d, -f1)) to $parked" ;;
  restore)
    [ -f "$parked/last.pt" ] || { echo "park.sh: nothing parked for $run in $parked" >&2; exit 2; }
    if [ -f "$live/last.pt" ]; then
      echo "park.sh: $live/last.pt exists (a live or finished run); not overwriting it: remove it first if the parked state should replace it" >&2; exit 2
    fi
    copy "$parked" "$live"
    echo "park.sh: restored $run to $live; continue with: mlff train $run.yaml --resume" ;;
  drop)
    rm -rf "$parked"
    echo "park.sh: dropped $parked" ;;
  carry)
    [ -f "$live/last.pt" ] || { echo "park.sh: $live/last.pt does not exist (has the run finished an epoch?)" >&2; exit 2; }
    python=${PYTHON:-$here/../../.venv/bin/python}
    limit=${CARRY_MAX_BYTES:-2000000}
    mkdir -p "$here/carry"
    partial="$here/carry/.$run.partial.pt"
    # the checkpoint without its training state: weights and statistics, about 1 MB for a
    # 64-channel MACE with l = 3 harmonics
    "$python" - "$live/last.pt" "$partial" <<'PYTHON'
import sys
from mlff.train.checkpoint import load_checkpoint, save_checkpoint
potential, state = load_checkpoint(sys.argv[1])
save_checkpoint(potential, sys.argv[2], state.get("metadata", {}))
PYTHON
    size=$(wc -c < "$partial")
    if [ "$size" -gt "$limit" ]; then
      rm -f "$partial"
      echo "park.sh: the weights of $run take $size bytes, over the $limit that git keeps (CARRY_MAX_BYTES); use 'park.sh save $run' and copy checkpoints/$run/ elsewhere" >&2; exit 2
    fi
    mv "$partial" "$here/carry/$run.pt"
    echo "park.sh: carried $run (epoch $(tail -n 1 "$live/log.csv" | cut -d, -f1), $size bytes) to $here/carry/$run.pt; continue with training.initial_weights: carry/$run.pt" ;;
  *)
    echo "park.sh: unknown action '$action' (use save, restore, drop or carry)" >&2; exit 2 ;;
esac
