#!/usr/bin/env bash
# The seed experiment's three scenarios, measured here, next to the 2022 post's numbers, with
# the connections-over-time picture.
#
#   scripts/seed_experiment.sh [-n OPS] [-o DIR] [-- extra runner args, e.g. --dsn ...]
#
# Default: 35,000 ops per scenario as the post ran (about 6 minutes on a 2-core machine);
# -n 5000 gives a quick look. Results, summary and plots go to DIR (default seed-experiment/).
set -euo pipefail

ops=35000
dir="seed-experiment"
while getopts "n:o:h" opt; do
  case "$opt" in
    n) ops="$OPTARG" ;;
    o) dir="$OPTARG" ;;
    h) sed -n '2,9p' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
python="${PYTHON:-python}"
command -v jq >/dev/null || { echo "seed_experiment.sh: jq is required" >&2; exit 2; }
mkdir -p "$dir"

# name | runner options | the post's total s | the post's server connections
scenarios=(
  "sync|--mode sync --threads 1|202|1"
  "async|--mode async|116|~100"
  "async chunked 40|--mode chunked --chunk 40|102|~40"
)
for scenario in "${scenarios[@]}"; do
  IFS='|' read -r name options _ _ <<<"$scenario"
  file="$dir/${name// /_}.json"
  echo "seed_experiment: $name ($ops ops)" >&2
  # shellcheck disable=SC2086  # options are words on purpose
  "$python" -m runner --quiet --ops "$ops" $options --output "$file" "$@" >/dev/null || true
done

{
  printf '%-18s | %-13s | %-16s | %-10s | %-8s | %-10s | %s\n' scenario "post: total s" "post: conns" "wall s" "ops/s" "peak conns" errors
  for scenario in "${scenarios[@]}"; do
    IFS='|' read -r name _ post_s post_conns <<<"$scenario"
    file="$dir/${name// /_}.json"
    jq -r --arg n "$name" --arg s "$post_s" --arg c "$post_conns" \
      '[$n, $s, $c, (.totals.wall_s | tostring), (.totals.ops_per_s | tostring), (.totals.connections.server_peak | tostring), (.totals.errors | tostring)] | @tsv' "$file" |
      awk -F'\t' '{ printf "%-18s | %-13s | %-16s | %-10.1f | %-8.1f | %-10s | %s\n", $1, $2, $3, $4, $5, $6, $7 }'
  done
  echo "(the post: 35,000 ops, PostgreSQL 14 in Docker, timed by hand; here: $ops ops, see $dir/*.json)"
} | tee "$dir/table.txt"

"$python" -m runner report "$dir"/*.json --out "$dir/report" >/dev/null &&
  echo "seed_experiment: connections over time in $dir/report/connections_over_time.png" >&2
