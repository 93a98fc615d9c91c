#!/usr/bin/env bash
# A fully cached build (5,000-file context, three COPY steps) with the strata of this tree against
# another strata (PEER=path to its dist/cli/main.js, e.g. one built from the commit before the shared
# store): the index lock, the blob leases and the leftover sweep must not make it measurably slower.
# Runs alternate between the two; prints the median of RUNS each and the ratio.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
unset NODE_EXTRA_CA_CERTS
OURS="$here/../dist/cli/main.js"
PEER=${PEER:?set PEER to the dist/cli/main.js of the strata to compare with}
RUNS=${RUNS:-15}

ctx="$WORK/ctx"
mkdir -p "$ctx/src" "$ctx/deps"
for i in $(seq 1 5000); do echo "file $i" > "$ctx/src/f$i.txt"; done
for i in $(seq 1 50); do head -c 20000 /dev/urandom > "$ctx/deps/d$i.bin"; done
printf 'FROM scratch\nCOPY deps/ /deps/\nCOPY src/ /src/\nLABEL x=y\nCOPY src/f1.txt /one.txt\n' > "$ctx/Dockerfile"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }

for who in ours peer; do
  bin=$OURS; [[ $who == peer ]] && bin=$PEER
  STRATA_ROOT="$WORK/store-$who" SOURCE_DATE_EPOCH=1700000000 "$bin" build -t app "$ctx" >/dev/null 2>&1
  STRATA_ROOT="$WORK/store-$who" SOURCE_DATE_EPOCH=1700000000 "$bin" build -t app "$ctx" >/dev/null 2>&1
done
: > "$WORK/ours.ms"; : > "$WORK/peer.ms"
for _ in $(seq 1 "$RUNS"); do
  STRATA_ROOT="$WORK/store-ours" SOURCE_DATE_EPOCH=1700000000 time_ms "$OURS" build -t app "$ctx" >> "$WORK/ours.ms"
  STRATA_ROOT="$WORK/store-peer" SOURCE_DATE_EPOCH=1700000000 time_ms "$PEER" build -t app "$ctx" >> "$WORK/peer.ms"
done
ours=$(median < "$WORK/ours.ms"); peer=$(median < "$WORK/peer.ms")
echo "fully cached build, median of $RUNS: this tree ${ours} ms, peer ${peer} ms, ratio $(awk -v a="$ours" -v b="$peer" 'BEGIN {printf "%.2f", a / b}')"
