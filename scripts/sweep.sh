#!/usr/bin/env bash
# Sweep a grid of runner options, one JSON line per run appended to a file, then a report.
#
#   scripts/sweep.sh [-g "name=v1 v2 ..."]... [-p PROCS] [-c CHUNKS] [-m MODES] [-o sweep.jsonl]
#                    [-r REPORT_DIR] [-- extra runner args]
#
#   -g  a grid axis: any runner option without its dashes and its values, e.g. -g "layer=orm raw"
#       -g "driver=asyncpg psycopg"; repeat -g for more axes (every combination runs)
#   -p, -c, -m  shorthands for -g "procs=...", -g "chunk=...", -g "mode=..." (default: procs
#       "1 2 4" x chunk "10 40 100" when no axis is given)
#   -o  results file (default sweep.jsonl). Resumable: a combination already in it is skipped
#   -r  report folder (default: the results file's name + "-report"); "" skips the report
#
# Every run is `$PYTHON -m runner` (PYTHON defaults to python); extra args follow `--`.
#
# With --scale among the extra args the sweep loads once: every run clones the load the first
# one made (--keep-load, runner.load.reuse), on the --dsn / $DATABASE_URL server, or without one
# on one embedded server started for the whole sweep (`python -m runner.server`) and removed at
# its end. On a server of your own the last run drops the kept load.
set -euo pipefail

names=()
values=()
out="sweep.jsonl"
report=""
report_set=0
axis() { names+=("${1%%=*}"); values+=("${1#*=}"); }
while getopts "g:p:c:m:o:r:h" opt; do
  case "$opt" in
    g) axis "$OPTARG" ;;
    p) axis "procs=$OPTARG" ;;
    c) axis "chunk=$OPTARG" ;;
    m) axis "mode=$OPTARG" ;;
    o) out="$OPTARG" ;;
    r) report="$OPTARG"; report_set=1 ;;
    h) sed -n '2,15p' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
if [ ${#names[@]} -eq 0 ]; then axis "procs=1 2 4"; axis "chunk=10 40 100"; fi
[ $report_set -eq 1 ] || report="${out%.jsonl}-report"
python="${PYTHON:-python}"
command -v jq >/dev/null || { echo "sweep.sh: jq is required" >&2; exit 2; }
touch "$out"

combos() {  # every combination of the axes, one per line: "name=value name=value ..."
  local i=$1 prefix=$2 v
  if [ "$i" -eq ${#names[@]} ]; then echo "$prefix"; return; fi
  for v in ${values[$i]}; do combos $((i + 1)) "$prefix ${names[$i]}=$v"; done
}

scaled=0
own_server=0
for arg in "$@"; do
  case "$arg" in
    --scale|--scale=*) scaled=1 ;;
    --dsn|--dsn=*) own_server=1 ;;
  esac
done
[ -n "${DATABASE_URL:-}" ] && own_server=1
if [ $scaled -eq 1 ] && [ $own_server -eq 0 ]; then  # one embedded server for the sweep: one load
  private=$(mktemp -d)  # 0700: the DSN file holds the server's password
  "$python" -m runner.server --dsn-file "$private/dsn" &
  server_pid=$!
  trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; rm -rf "$private"' EXIT
  for _ in $(seq 1200); do
    [ -s "$private/dsn" ] && break
    kill -0 "$server_pid" 2>/dev/null || { echo "sweep.sh: the shared embedded server did not start" >&2; exit 3; }
    sleep 0.1
  done
  DATABASE_URL=$(cat "$private/dsn")
  export DATABASE_URL
fi

mapfile -t all_combos < <(combos 0 "")
last=$(( ${#all_combos[@]} - 1 ))
for index in "${!all_combos[@]}"; do
  combo="${all_combos[$index]}"
  keep=()
  # Every run keeps the load for the next; on your own server the last one drops it.
  if [ $scaled -eq 1 ] && { [ $own_server -eq 0 ] || [ "$index" -lt $last ]; }; then keep=(--keep-load); fi
  args=()
  filter="true"
  for pair in $combo; do
    name="${pair%%=*}"
    value="${pair#*=}"
    args+=("--$name" "$value")
    filter="$filter and ((.config.${name//-/_} // \"\") | tostring) == \"$value\""
  done
  if jq -e -s "any(.[]; $filter)" "$out" >/dev/null 2>&1; then
    echo "sweep: skip (already in $out): $combo" >&2
    continue
  fi
  echo "sweep: $combo" >&2
  # jq -c turns the run's document into one line; a failed run still appends what it measured.
  "$python" -m runner --quiet "${args[@]}" "${keep[@]}" "$@" | jq -c . >>"$out" || true
done

echo "sweep: results in $out" >&2
if [ -n "$report" ]; then
  "$python" -m runner report "$out" --out "$report" >/dev/null || echo "sweep: no report (see above)" >&2
fi
