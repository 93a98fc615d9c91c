#!/usr/bin/env bash
# Build benchmark (issue 6): a generated context of 5,000 files and about 100 MB of deterministic
# random data, a Dockerfile FROM a small base in a loopback registry with COPY, ENV, LABEL and CMD,
# pushed to that registry. strata beside `buildah bud --layers` + `buildah push` on the same inputs,
# and beside `tar -cf - CTX | pigz -6 >/dev/null`: cold build, fully cached rebuild, a rebuild
# after changing one file, and one after changing only the revision LABEL at the top (what CI does on
# every commit; issue 18), each REPS times (cold with a fresh store, buildah root and repository). Wall
# time (median) and peak RSS (largest) from /usr/bin/time -v, printed as a table.
#   FILES=5000 MIB=100 BIG_MIB=2048 REPS=3 bash bench/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STRATA=("$ROOT/dist/cli/main.js")
FILES=${FILES:-5000}
MIB=${MIB:-100}
BIG_MIB=${BIG_MIB:-2048} # one file this large, built and pushed by strata alone for its peak RSS; 0 skips it
REPS=${REPS:-3}         # runs of each case; the table shows medians

for tool in docker-registry buildah pigz openssl /usr/bin/time tar busybox; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install docker-registry buildah pigz openssl time busybox-static)" >&2; exit 1; }
done
[[ -x dist/cli/main.js ]] || { echo "bench: dist/cli/main.js is missing; run make build" >&2; exit 1; }
source "$ROOT/bench/lib.sh"

REG=$(start_registry build)

# --- the base: busybox-static and its applets, pushed by strata -------------------------------------
BASE="$WORK/base"
mkdir -p "$BASE/bin" "$BASE/etc" "$BASE/tmp"
cp "$(command -v busybox)" "$BASE/bin/busybox"
for applet in sh ls cat echo; do ln -s busybox "$BASE/bin/$applet"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$BASE/etc/passwd"
printf 'root:x:0:\n' >"$BASE/etc/group"
STRATA_ROOT="$WORK/base-store" "${STRATA[@]}" append --layer "$BASE" --progress quiet -o "docker://$REG/base:1" >/dev/null

# --- the context: FILES files, MIB MiB in all, from AES-CTR of zeros (the same bytes every run) ------
CTX="$WORK/context"
mkdir -p "$CTX"
echo "bench: writing $FILES files, $MIB MiB..." >&2
head -c $((MIB * 1024 * 1024)) /dev/zero | openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv 00000000000000000000000000000000 >"$WORK/random.bin"
per=$((MIB * 1024 * 1024 / FILES))
(cd "$CTX" && split -a 4 -d -b "$per" "$WORK/random.bin" part- && i=0 && for f in part-*; do
  d="dir$((i % 50))"; mkdir -p "$d"; mv "$f" "$d/$f.bin"; i=$((i + 1)); done)
rm "$WORK/random.bin"
cat >"$CTX/Dockerfile" <<'DOCKERFILE'
FROM ${BASE_REF}
ARG REVISION=0
LABEL org.opencontainers.image.revision=$REVISION
COPY . /app/
ENV APP_HOME=/app MODE=bench
LABEL org.opencontainers.image.title=bench
CMD ["/bin/sh", "-c", "ls /app"]
DOCKERFILE
sed -i "s|\${BASE_REF}|$REG/base:1|" "$CTX/Dockerfile"
one_file=$(cd "$CTX" && ls dir7 | head -1)

# --- runs: REPS of each, wall time the median, peak RSS the largest ----------------------------------
change_one() { printf 'changed %s\n' "$1" >>"$CTX/dir7/$one_file"; }
B() { buildah --storage-driver vfs --root "$WORK/buildah-$1/root" --runroot "$WORK/buildah-$1/runroot" "${@:2}"; }
buildah_build() { # REP TAG [REVISION]: build with cached layers, then push (a repository per rep: nothing there yet when cold)
  B "$1" bud --layers --isolation chroot --tls-verify=false -q --build-arg "REVISION=${3:-0}" -t "$REG/buildah-$1:$2" "$CTX" >/dev/null &&
    B "$1" push --tls-verify=false -q "$REG/buildah-$1:$2" "docker://$REG/buildah-$1:$2"
}
export -f B buildah_build
export WORK REG CTX
strata_run() { # LABEL REP TAG [REVISION]
  measure "$1" env STRATA_ROOT="$WORK/strata-store-$2" "${STRATA[@]}" build "$CTX" --progress quiet --push -t "$REG/strata-$2:$3" --build-arg "REVISION=${4:-0}"
}

for rep in $(seq 1 "$REPS"); do
  measure "pigz-tar-$rep" bash -c "tar -cf - -C '$CTX' . | pigz -6 >/dev/null"
  strata_run "strata-cold-$rep" "$rep" cold
  strata_run "strata-cached-$rep" "$rep" cached
  change_one "strata $rep"
  strata_run "strata-one-$rep" "$rep" one
  strata_run "strata-label-$rep" "$rep" label "rev-$rep"
  measure "buildah-cold-$rep" bash -c "buildah_build $rep cold"
  measure "buildah-cached-$rep" bash -c "buildah_build $rep cached"
  change_one "buildah $rep"
  measure "buildah-one-$rep" bash -c "buildah_build $rep one"
  measure "buildah-label-$rep" bash -c "buildah_build $rep label rev-$rep"
  B "$rep" rmi --all --force >/dev/null 2>&1 || true
  rm -rf "$WORK/buildah-$rep" "$WORK/strata-store-$rep"
done
if ((BIG_MIB > 0)); then
  BIG="$WORK/big-context"
  mkdir -p "$BIG"
  echo "bench: writing one $BIG_MIB MiB file..." >&2
  head -c $((BIG_MIB * 1024 * 1024)) /dev/zero | openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv 00000000000000000000000000000000 >"$BIG/big.bin"
  printf 'FROM %s/base:1\nCOPY big.bin /data/\nCMD ["/bin/sh"]\n' "$REG" >"$BIG/Dockerfile"
  measure strata-big-1 env STRATA_ROOT="$WORK/strata-big-store" "${STRATA[@]}" build "$BIG" --progress quiet --push -t "$REG/big:1"
  rm -rf "$BIG" "$WORK/strata-big-store"
fi

awk -v cores="$(nproc)" -v files="$FILES" -v mib="$MIB" -v big="$BIG_MIB" -v reps="$REPS" '
  { split($1, p, "-"); key = p[1] "-" p[2]; n[key]++; v[key, n[key]] = $2; if ($3 > r[key]) r[key] = $3 }
  END {
    printf "\nstrata build benchmark: %d files, %d MiB context, FROM a loopback-registry base, pushed; %d cores; median of %d runs\n\n", files, mib, cores, reps
    printf "%-22s %10s %10s %12s %14s %12s\n", "build", "strata s", "buildah s", "vs buildah", "vs tar|pigz", "strata RSS"
    pigz = median("pigz-tar")
    row("cold", "strata-cold", "buildah-cold")
    row("fully cached", "strata-cached", "buildah-cached")
    row("one file changed", "strata-one", "buildah-one")
    row("label changed", "strata-label", "buildah-label")
    printf "\nlabel changed vs strata fully cached: %.2fx\n", median("strata-label") / median("strata-cached")
    printf "\ntar | pigz -6: %.2f s\n", pigz
    if (n["strata-big"] > 0) printf "one %d MiB file, built and pushed by strata: %.2f s, peak RSS %d MiB\n", big, median("strata-big"), r["strata-big"] / 1024
    printf "targets: cold <= 1.5x tar|pigz; cached <= 0.05x buildah; one file changed <= 0.25x buildah; label changed <= 0.1x buildah and <= 1.5x fully cached; RSS < 250 MiB\n"
  }
  function median(key,   i, j, t, a, m) {
    m = n[key]; for (i = 1; i <= m; i++) a[i] = v[key, i]
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
  }
  function row(name, s, b,   ts, tb) {
    ts = median(s); tb = median(b)
    printf "%-22s %10.3f %10.3f %12.3f %14.2f %9d MiB\n", name, ts, tb, ts / tb, ts / pigz, r[s] / 1024
  }
' "$WORK/results"
