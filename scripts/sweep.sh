#!/usr/bin/env bash
# Sweep --procs x --chunk (x --mode), one JSON line per run appended to a file.
#
#   scripts/sweep.sh [-p "1 2 4"] [-c "10 40 100"] [-m "chunked"] [-o sweep.jsonl] [-- extra runner args]
#
# Every run is a full `python -m runner` invocation ($PYTHON if set); extra args (e.g. --ops 5000 --dsn ...) follow `--`.
set -euo pipefail

procs="1 2 4"
chunks="10 40 100"
modes="chunked"
out="sweep.jsonl"
while getopts "p:c:m:o:h" opt; do
  case "$opt" in
    p) procs="$OPTARG" ;;
    c) chunks="$OPTARG" ;;
    m) modes="$OPTARG" ;;
    o) out="$OPTARG" ;;
    h) sed -n '2,6p' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift

command -v jq >/dev/null || { echo "sweep.sh: jq is required" >&2; exit 2; }
for mode in $modes; do
  for p in $procs; do
    for c in $chunks; do
      echo "sweep: mode=$mode procs=$p chunk=$c" >&2
      # jq -c turns the run's document into one line; a failed run still appends what it measured.
      "${PYTHON:-python}" -m runner --quiet --mode "$mode" --procs "$p" --chunk "$c" "$@" | jq -c . >>"$out" || true
    done
  done
done
echo "sweep: results in $out" >&2
