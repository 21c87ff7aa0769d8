# Sourced by the set-up scripts (scripts/setup_env.sh, benchmarks/setup_peers.sh,
# benchmarks/setup_nequip.sh): `quiet_pip ARGS...` runs "$venv/bin/pip" ARGS with its output in a
# log that is shown (without the harmless find-links warnings) only when pip fails.
quiet_pip() {
  local log
  log=$(mktemp)
  if ! "$venv/bin/pip" "$@" >"$log" 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" "$log" >&2 || true
    rm -f "$log"
    echo "$(basename "$0"): pip $* failed (see above)" >&2
    return 1
  fi
  rm -f "$log"
}
