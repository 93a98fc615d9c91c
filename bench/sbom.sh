#!/usr/bin/env bash
# Supply-chain benchmark (issue 16): the build benchmark's image (FILES files, MIB MiB of random data,
# FROM a busybox base in a loopback registry, pushed) built cold without and with --sbom (the SBOM's
# cost is the difference, as a share of the plain cold build; target <= 10%), then fully cached
# without and with --sbom --provenance (target: within 1.5x). Fresh store per cold run; the cached
# runs alternate in one store. Medians of REPS runs.
#   FILES=5000 MIB=100 REPS=3 bash bench/sbom.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STRATA=("$ROOT/dist/cli/main.js")
FILES=${FILES:-5000}
MIB=${MIB:-100}
REPS=${REPS:-3}
unset NODE_EXTRA_CA_CERTS
for tool in docker-registry openssl /usr/bin/time busybox; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
done
[[ -x dist/cli/main.js ]] || { echo "bench: dist/cli/main.js is missing; run make build" >&2; exit 1; }
source "$ROOT/bench/lib.sh"
REG=$(start_registry sbom)

BASE="$WORK/base"
mkdir -p "$BASE/bin" "$BASE/etc"
cp "$(command -v busybox)" "$BASE/bin/busybox"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$BASE/etc/passwd"
STRATA_ROOT="$WORK/base-store" "${STRATA[@]}" append --layer "$BASE" --progress quiet -o "docker://$REG/base:1" >/dev/null

CTX="$WORK/context"
mkdir -p "$CTX"
head -c $((MIB * 1024 * 1024)) /dev/zero | openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv 00000000000000000000000000000000 >"$WORK/random.bin"
per=$((MIB * 1024 * 1024 / FILES))
(cd "$CTX" && split -a 4 -d -b "$per" "$WORK/random.bin" part- && i=0 && for f in part-*; do
  d="dir$((i % 50))"; mkdir -p "$d"; mv "$f" "$d/$f.bin"; i=$((i + 1)); done)
rm "$WORK/random.bin"
# A few package records, so the scan has something to find.
mkdir -p "$CTX/node_modules/left-pad"
printf '{"name":"left-pad","version":"1.3.0","license":"WTFPL"}\n' >"$CTX/node_modules/left-pad/package.json"
printf 'FROM %s/base:1\nCOPY . /app/\nENV APP_HOME=/app\nCMD ["/bin/sh"]\n' "$REG" >"$CTX/Dockerfile"

run() { # LABEL STORE TAG ARGS... ; also records "LABEL cpu_seconds" (user + system) in $WORK/cpu
  local label=$1 store=$2 tag=$3; shift 3
  measure "$label" env STRATA_ROOT="$WORK/$store" "${STRATA[@]}" build "$CTX" --progress quiet --push -t "$REG/app:$tag" "$@"
  awk -v l="$label" -F': ' '/User time|System time/ { s += $2 } END { print l, s }' "$WORK/time-$label" >>"$WORK/cpu"
}
for rep in $(seq 1 "$REPS"); do
  run "plain-cold-$rep" "plain-$rep" "p$rep"
  run "sbom-cold-$rep" "sbom-$rep" "s$rep" --sbom
  for i in 1 2; do
    run "plain-cached-$rep$i" "sbom-$rep" "c$rep" 
    run "attest-cached-$rep$i" "sbom-$rep" "a$rep" --sbom --provenance
  done
  rm -rf "$WORK/plain-$rep" "$WORK/sbom-$rep"
done

# Wall time is the figure; CPU time (user + system) is printed beside it, as it moves less on a shared machine.
awk -v files="$FILES" -v mib="$MIB" -v reps="$REPS" -v cores="$(nproc)" '
  FNR == 1 { file++ }
  { split($1, p, "-"); key = (file == 1 ? "" : "cpu:") p[1] "-" p[2]; n[key]++; v[key, n[key]] = $2 }
  END {
    pc = median("plain-cold"); sc = median("sbom-cold"); pk = median("plain-cached"); ak = median("attest-cached")
    cpc = median("cpu:plain-cold"); csc = median("cpu:sbom-cold"); cpk = median("cpu:plain-cached"); cak = median("cpu:attest-cached")
    printf "\nstrata supply-chain benchmark: %d files, %d MiB, FROM a loopback-registry base, pushed; %d cores; medians of %d\n\n", files, mib, cores, reps
    printf "                                    wall                                  cpu\n"
    printf "cold build                      %8.3f s                           %8.3f s\n", pc, cpc
    printf "cold build --sbom               %8.3f s   SBOM cost %5.1f%%         %8.3f s   %5.1f%%   (target <= 10%%)\n", sc, 100 * (sc - pc) / pc, csc, 100 * (csc - cpc) / cpc
    printf "cached build                    %8.3f s                           %8.3f s\n", pk, cpk
    printf "cached --sbom --provenance      %8.3f s   %.2fx                    %8.3f s   %.2fx    (target <= 1.5x)\n", ak, ak / pk, cak, cak / cpk
  }
  function median(key,   i, j, t, a, m) {
    m = n[key]; for (i = 1; i <= m; i++) a[i] = v[key, i]
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
  }
' "$WORK/results" "$WORK/cpu"
