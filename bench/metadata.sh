#!/usr/bin/env bash
# Metadata benchmark (issue 20): Dockerfiles of N ENV lines (distinct keys, FROM scratch, no layer)
# built by strata with --no-cache, beside `strata parse` of the same file (the floor: reading and
# parsing). A linear build keeps build/parse roughly constant as N grows. Wall time and peak RSS.
#   SIZES="20000 40000 200000" bash bench/metadata.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STRATA=("$ROOT/dist/cli/main.js")
SIZES=${SIZES:-20000 40000 200000}
[[ -x dist/cli/main.js ]] || { echo "bench: dist/cli/main.js is missing; run make build" >&2; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "bench: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
source "$ROOT/bench/lib.sh"

for n in $SIZES; do
  ctx="$WORK/ctx-$n"
  mkdir -p "$ctx"
  { echo 'FROM scratch'; for ((i = 0; i < n; i++)); do echo "ENV K$i=v$i"; done; } >"$ctx/Dockerfile"
  measure "parse-$n" "${STRATA[@]}" parse "$ctx/Dockerfile"
  STRATA_ROOT="$WORK/store-$n" measure "build-$n" "${STRATA[@]}" build --no-cache --progress quiet -t "meta:$n" "$ctx"
done

echo
printf '%-8s %10s %10s %8s %10s\n' lines parse_s build_s ratio build_MiB
for n in $SIZES; do
  read -r _ p _ < <(grep "^parse-$n " "$WORK/results")
  read -r _ b rss < <(grep "^build-$n " "$WORK/results")
  printf '%-8s %10s %10s %8.1f %10d\n' "$n" "$p" "$b" "$(awk -v b="$b" -v p="$p" 'BEGIN { print b / p }')" $((rss / 1024))
done
