#!/usr/bin/env bash
# Build benchmark (issue 6): a generated context of 5,000 files and about 100 MB of deterministic
# random data, a Dockerfile FROM a small base in a loopback registry with COPY, ENV, LABEL and CMD,
# pushed to that registry. strata beside `buildah bud --layers` + `buildah push` on the same inputs,
# and beside `tar -cf - CTX | pigz -6 >/dev/null`: cold build, fully cached rebuild, and a rebuild
# after changing one file. Wall time and peak RSS from /usr/bin/time -v, printed as a table.
#   FILES=5000 MIB=100 BIG_MIB=2048 bash bench/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STRATA=(node "$ROOT/dist/cli/main.js")
FILES=${FILES:-5000}
MIB=${MIB:-100}
BIG_MIB=${BIG_MIB:-2048} # one file this large, built and pushed by strata alone for its peak RSS; 0 skips it

for tool in docker-registry buildah pigz openssl /usr/bin/time tar busybox; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install docker-registry buildah pigz openssl time busybox-static)" >&2; exit 1; }
done
[[ -f dist/cli/main.js ]] || { echo "bench: dist/cli/main.js is missing; run make build" >&2; exit 1; }
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
head -c $((MIB * 1024 * 1024)) /dev/zero | openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv 0 >"$WORK/random.bin"
per=$((MIB * 1024 * 1024 / FILES))
(cd "$CTX" && split -a 4 -d -b "$per" "$WORK/random.bin" part- && i=0 && for f in part-*; do
  d="dir$((i % 50))"; mkdir -p "$d"; mv "$f" "$d/$f.bin"; i=$((i + 1)); done)
rm "$WORK/random.bin"
cat >"$CTX/Dockerfile" <<DOCKERFILE
FROM $REG/base:1
COPY . /app/
ENV APP_HOME=/app MODE=bench
LABEL org.opencontainers.image.title=bench
CMD ["/bin/sh", "-c", "ls /app"]
DOCKERFILE
one_file=$(cd "$CTX" && ls dir7 | head -1)

# --- runs ---------------------------------------------------------------------------------------------
change_one() { printf 'changed %s\n' "$1" >>"$CTX/dir7/$one_file"; }
B="buildah --storage-driver vfs --root $WORK/buildah-root --runroot $WORK/buildah-runroot"
buildah_cmd() { # TAG -> one shell command line: build with cached layers, then push
  echo "$B bud --layers --isolation chroot --tls-verify=false -q -t $REG/buildah:$1 $CTX >/dev/null && $B push --tls-verify=false -q $REG/buildah:$1 docker://$REG/buildah:$1"
}
strata_run() { # LABEL TAG
  measure "$1" env STRATA_ROOT="$WORK/strata-store" "${STRATA[@]}" build "$CTX" --progress quiet --push -t "$REG/strata:$2"
}

measure pigz bash -c "tar -cf - -C '$CTX' . | pigz -6 >/dev/null"
strata_run strata-cold cold
strata_run strata-cached cached
change_one strata
strata_run strata-one one
if ((BIG_MIB > 0)); then
  BIG="$WORK/big-context"
  mkdir -p "$BIG"
  echo "bench: writing one $BIG_MIB MiB file..." >&2
  head -c $((BIG_MIB * 1024 * 1024)) /dev/zero | openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv 0 2>/dev/null >"$BIG/big.bin"
  printf 'FROM %s/base:1\nCOPY big.bin /data/\nCMD ["/bin/sh"]\n' "$REG" >"$BIG/Dockerfile"
  measure strata-big env STRATA_ROOT="$WORK/strata-big-store" "${STRATA[@]}" build "$BIG" --progress quiet --push -t "$REG/big:1"
  rm -rf "$BIG" "$WORK/strata-big-store"
fi
measure buildah-cold bash -c "$(buildah_cmd cold)"
measure buildah-cached bash -c "$(buildah_cmd cached)"
change_one buildah
measure buildah-one bash -c "$(buildah_cmd one)"

awk -v cores="$(nproc)" -v files="$FILES" -v mib="$MIB" -v big="$BIG_MIB" '
  { t[$1] = $2; r[$1] = $3 }
  END {
    printf "\nstrata build benchmark: %d files, %d MiB context, FROM a loopback-registry base, pushed; %d cores\n\n", files, mib, cores
    printf "%-22s %10s %10s %12s %14s %12s\n", "build", "strata s", "buildah s", "vs buildah", "vs tar|pigz", "strata RSS"
    row("cold", "strata-cold", "buildah-cold")
    row("fully cached", "strata-cached", "buildah-cached")
    row("one file changed", "strata-one", "buildah-one")
    printf "\ntar | pigz -6: %.2f s\n", t["pigz"]
    if ("strata-big" in t) printf "one %d MiB file, built and pushed by strata: %.2f s, peak RSS %d MiB\n", big, t["strata-big"], r["strata-big"] / 1024
    printf "targets: cold <= 1.5x tar|pigz; cached <= 0.05x buildah; one file changed <= 0.25x buildah; RSS < 250 MiB\n"
  }
  function row(name, s, b) { printf "%-22s %10.2f %10.2f %12.2f %14.2f %9d MiB\n", name, t[s], t[b], t[s] / t[b], t[s] / t["pigz"], r[s] / 1024 }
' "$WORK/results"
