#!/usr/bin/env bash
# Set a long training's resume state aside: what `--resume` needs (last.pt: weights, moving
# average, optimiser, schedule, random state; best.pt; log.csv) goes to checkpoints/RUN/
# (ignored by git: checkpoints are megabytes; copy that folder to keep it elsewhere):
#
#   bash park.sh save RUN       # runs/RUN/ -> checkpoints/RUN/
#   bash park.sh restore RUN    # checkpoints/RUN/ -> runs/RUN/   (then: mlff train RUN.yaml --resume)
#   bash park.sh drop RUN       # remove checkpoints/RUN/ once the run is finished and recorded
set -euo pipefail

action=${1:?usage: park.sh save|restore|drop RUN}
run=${2:?usage: park.sh save|restore|drop RUN}
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
  *)
    echo "park.sh: unknown action '$action' (use save, restore or drop)" >&2; exit 2 ;;
esac
