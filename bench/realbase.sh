#!/usr/bin/env bash
# Real-size base benchmark (issue 21). A base of two layers in a loopback registry: a Debian bookworm minbase
# root made by debootstrap (when Debian's archive answers; else generated files of the same shape: about 10,000
# files, 200 MB, with busybox for a shell) and 8,000 generated files (60 MB). On it a two-stage app shaped like
# a Node service: WORKDIR /app, COPY package*.json, a RUN --mount=type=cache writing 2,000 files in place of
# `npm ci`, then COPY --from=deps node_modules and COPY . . . strata (chroot executor, OCI layout output) beside
# `buildah bud --layers` (chroot isolation, fresh storage) + `buildah push oci:`: cold, one source file changed,
# fully cached. Also: base layer blobs opened by the one-file and cached builds (strace -e trace=openat), the
# slowest CACHED step, and reading a 100 MiB / 10,000-file gzip layer beside `tar -xzf`.
#   REPS=1 bash bench/realbase.sh          (BENCH_CACHE keeps the debootstrap tarball between runs)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STRATA=("$ROOT/dist/cli/main.js")
REPS=${REPS:-1}
BENCH_CACHE=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/strata-bench}
unset NODE_EXTRA_CA_CERTS

for tool in docker-registry buildah openssl /usr/bin/time tar busybox strace; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install docker-registry buildah openssl time busybox-static strace)" >&2; exit 1; }
done
[[ -x dist/cli/main.js ]] || { echo "bench: dist/cli/main.js is missing; run make build" >&2; exit 1; }
source "$ROOT/bench/lib.sh"
REG=$(start_registry realbase)

gen_files() { # DIR COUNT MIB SEED: COUNT files in 100 directories, MIB MiB, half compressible text, half random
  local dir=$1 count=$2 mib=$3 seed=$4
  python3 - "$dir" "$count" "$mib" "$seed" <<'PY'
import os, random, sys
d, count, mib, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(seed)
words = [bytes(rnd.choice(b'abcdefghijklmnopqrstuvwxyz') for _ in range(rnd.randint(2, 9))) for _ in range(4000)]
size = mib * 1024 * 1024 // count
for i in range(count):
    sub = os.path.join(d, f'g{i % 100:02d}')
    os.makedirs(sub, exist_ok=True)
    if i % 2:
        data = rnd.randbytes(size)
    else:
        out = bytearray()
        while len(out) < size: out += rnd.choice(words) + b' '
        data = bytes(out[:size])
    with open(os.path.join(sub, f'f{i:05d}.dat'), 'wb') as f: f.write(data)
PY
}

# --- the base's first layer: debootstrap minbase, cached as a tarball; else generated -------------------
mkdir -p "$BENCH_CACHE"
DEB="$WORK/debian"
mkdir -p "$DEB"
BASE_KIND=generated
if [[ -f $BENCH_CACHE/bookworm-minbase.tar ]]; then
  tar -C "$DEB" -xf "$BENCH_CACHE/bookworm-minbase.tar"; BASE_KIND=debootstrap
elif command -v debootstrap >/dev/null && curl -fsI --max-time 5 http://deb.debian.org/debian/dists/bookworm/Release >/dev/null 2>&1; then
  echo "bench: debootstrap --variant=minbase bookworm (cached in $BENCH_CACHE)..." >&2
  if debootstrap --variant=minbase bookworm "$DEB" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1; then
    rm -rf "$DEB"/var/cache/apt/archives/*.deb "$DEB"/var/lib/apt/lists/*
    tar -C "$DEB" --numeric-owner -cf "$BENCH_CACHE/bookworm-minbase.tar" .
    BASE_KIND=debootstrap
  else
    echo "bench: debootstrap failed, generating the base instead: $(tail -3 "$WORK/debootstrap.log")" >&2
    rm -rf "$DEB"; mkdir -p "$DEB"
  fi
fi
if [[ $BASE_KIND == generated ]]; then
  mkdir -p "$DEB/bin" "$DEB/etc" "$DEB/tmp" "$DEB/root"
  cp "$(command -v busybox)" "$DEB/bin/busybox"
  for applet in $(busybox --list); do [[ $applet == busybox ]] || ln -sf busybox "$DEB/bin/$applet"; done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$DEB/etc/passwd"; printf 'root:x:0:\n' >"$DEB/etc/group"
  gen_files "$DEB/usr/share" 10000 200 1
fi
EXTRA="$WORK/extra"
gen_files "$EXTRA/opt/vendor" 8000 60 2
echo "bench: base $BASE_KIND: $(find "$DEB" | wc -l) paths, $(du -sm "$DEB" | cut -f1) MiB; second layer $(find "$EXTRA" | wc -l) paths, $(du -sm "$EXTRA" | cut -f1) MiB" >&2
STRATA_ROOT="$WORK/base-store" "${STRATA[@]}" append --layer "$DEB" --layer "$EXTRA" --platform linux/amd64 \
  --set-env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --progress quiet -o "docker://$REG/base:1" >/dev/null
rm -rf "$WORK/base-store"

# --- the app ---------------------------------------------------------------------------------------------
CTX="$WORK/app"
mkdir -p "$CTX/src/lib"
printf '{"name":"bench-app","version":"1.0.0","dependencies":{"left-pad":"1.3.0"}}\n' >"$CTX/package.json"
printf '{"name":"bench-app","lockfileVersion":3}\n' >"$CTX/package-lock.json"
for i in $(seq 1 300); do printf 'export const v%d = %d;\n' "$i" "$i" >"$CTX/src/lib/m$i.js"; done
printf 'console.log("hello");\n' >"$CTX/src/index.js"
printf 'node_modules\n' >"$CTX/.dockerignore"
cat >"$CTX/Dockerfile" <<DOCKERFILE
FROM $REG/base:1 AS deps
WORKDIR /app
COPY package*.json ./
RUN --mount=type=cache,target=/root/.npm i=0; while [ \$i -lt 2000 ]; do d=node_modules/p\$((i % 100)); mkdir -p \$d; echo "module.exports = \$i;" > \$d/f\$i.js; i=\$((i + 1)); done

FROM $REG/base:1
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
CMD ["node", "src/index.js"]
DOCKERFILE
change_one() { printf '// changed %s\n' "$1" >>"$CTX/src/index.js"; }

# buildah on overlay storage where the kernel allows it (as the issue measured it); vfs copies each layer whole.
BUILDAH_DRIVER=vfs
if buildah --storage-driver overlay --root "$WORK/overlay-probe/root" --runroot "$WORK/overlay-probe/runroot" info >/dev/null 2>&1; then BUILDAH_DRIVER=overlay; fi
B() { buildah --storage-driver "$BUILDAH_DRIVER" --root "$WORK/buildah-$1/root" --runroot "$WORK/buildah-$1/runroot" "${@:2}"; }
buildah_build() { # REP: build with cached layers, then write the image to an OCI layout
  B "$1" bud --layers --isolation chroot --tls-verify=false -q -t "localhost/app:$1" "$CTX" >/dev/null &&
    rm -rf "$WORK/buildah-out-$1" && B "$1" push -q "localhost/app:$1" "oci:$WORK/buildah-out-$1:latest"
}
export -f B buildah_build
export WORK REG CTX BUILDAH_DRIVER
strata_build() { # REP: pull the base into the store when it is not there (as buildah does), build, write a layout
  local store="$WORK/strata-store-$1"
  [[ -d $store/oci/blobs ]] || STRATA_ROOT="$store" "${STRATA[@]}" pull --progress quiet "$REG/base:1" >/dev/null
  rm -rf "$WORK/strata-out-$1"
  STRATA_ROOT="$store" "${STRATA[@]}" build "$CTX" --executor chroot --progress plain -o "type=oci,dest=$WORK/strata-out-$1,tar=false"
}
export -f strata_build
export STRATA_BIN="${STRATA[0]}"
strata_run() { # LABEL REP
  measure "$1" bash -c "STRATA=(\"\$STRATA_BIN\"); strata_build $2"
  cp "$WORK/stderr-$1" "$WORK/progress-$1"
}
base_blobs() { # REP: the hex digests of the base's layer blobs in the strata store
  "${STRATA[@]}" inspect --raw manifest "docker://$REG/base:1" 2>/dev/null | python3 -c 'import json,sys; m=json.load(sys.stdin); print("\n".join(l["digest"].split(":")[1] for l in m["layers"]))'
}
opened_blobs() { # REP LABEL: a build into the local store under strace; count openat of the base's layer blobs for reading
  local log="$WORK/strace-$2"
  env STRATA_ROOT="$WORK/strata-store-$1" strace -f -qq -e trace=openat -o "$log" "${STRATA[@]}" build "$CTX" --executor chroot --progress quiet -t app:bench >/dev/null 2>&1
  local n=0 hex
  for hex in $(base_blobs); do n=$((n + $(grep "blobs/sha256/$hex\"" "$log" | grep -c O_RDONLY || true))); done
  echo "$2 $n" >>"$WORK/opens"
}
slowest_cached() { sed -n 's/.*CACHED \([0-9.]*\)s$/\1/p' "$WORK/progress-$1" | sort -n | tail -1; }

for rep in $(seq 1 "$REPS"); do
  strata_run "strata-cold-$rep" "$rep"
  change_one "strata $rep"
  strata_run "strata-one-$rep" "$rep"
  strata_run "strata-cached-$rep" "$rep"
  echo "cached-step-$rep $(slowest_cached "strata-cached-$rep")" >>"$WORK/steps"
  STRATA_ROOT="$WORK/strata-store-$rep" "${STRATA[@]}" build "$CTX" --executor chroot --progress quiet -t app:bench >/dev/null 2>&1
  change_one "strata strace $rep"
  opened_blobs "$rep" "one-file"
  opened_blobs "$rep" "cached"
  measure "buildah-cold-$rep" bash -c "buildah_build $rep"
  change_one "buildah $rep"
  measure "buildah-one-$rep" bash -c "buildah_build $rep"
  measure "buildah-cached-$rep" bash -c "buildah_build $rep"
  B "$rep" rmi --all --force >/dev/null 2>&1 || true
  rm -rf "$WORK/buildah-$rep" "$WORK/strata-store-$rep"
done

# --- one layer, 100 MiB of tar in 10,000 files: strata reading it beside tar -xzf ------------------------
LAYER_SRC="$WORK/layer-src"
gen_files "$LAYER_SRC" 10000 100 3
tar -C "$LAYER_SRC" -cf "$WORK/layer.tar" . && TAR_BYTES=$(stat -c %s "$WORK/layer.tar") && gzip -6 "$WORK/layer.tar"
rm -rf "$LAYER_SRC"
mkdir -p "$WORK/x-tar" "$WORK/x-strata"; sync
t0=$(date +%s%N); tar -C "$WORK/x-tar" -xzf "$WORK/layer.tar.gz"; t1=$(date +%s%N)
TAR_S=$(awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.3f", ns / 1e9 }')
t0=$(date +%s%N); gzip -dc "$WORK/layer.tar.gz" >/dev/null; t1=$(date +%s%N)
GZ_S=$(awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.3f", ns / 1e9 }')
read -r _ INDEX_S INDEX_MIBS < <(node bench/layer-read.mjs index "$WORK/layer.tar.gz" "$TAR_BYTES")
sync
read -r _ EXTRACT_S EXTRACT_MIBS < <(node bench/layer-read.mjs extract "$WORK/layer.tar.gz" "$TAR_BYTES" "$WORK/x-strata")

awk -v cores="$(nproc)" -v reps="$REPS" -v kind="$BASE_KIND" -v driver="$BUILDAH_DRIVER" -v opens="$(cat "$WORK/opens" | tr '\n' ' ')" -v steps="$(cat "$WORK/steps" | tr '\n' ' ')" \
    -v tarb="$TAR_BYTES" -v tar_s="$TAR_S" -v gz_s="$GZ_S" -v index_s="$INDEX_S" -v extract_s="$EXTRACT_S" '
  { split($1, p, "-"); key = p[1] "-" p[2]; n[key]++; v[key, n[key]] = $2; if ($3 > r[key]) r[key] = $3 }
  END {
    printf "\nreal-size base benchmark: %s base + 8,000 generated files, two-stage Node-shaped app, OCI layout out; buildah on %s storage; %d cores; median of %d\n\n", kind, driver, cores, reps
    printf "%-18s %10s %10s %8s %8s %12s %12s\n", "build", "strata s", "buildah s", "ratio", "target", "strata RSS", "buildah RSS"
    row("cold", "strata-cold", "buildah-cold", "0.9")
    row("one file changed", "strata-one", "buildah-one", "0.5")
    row("fully cached", "strata-cached", "buildah-cached", "0.1")
    printf "\nbase layer blobs opened (strace openat): %s\nslowest CACHED step (s): %s\n", opens, steps
    mib = tarb / 1048576
    printf "\n%.0f MiB / 10,000-file gzip layer: tar -xzf %.2f s (%.0f MiB/s); gzip -dc %.2f s (%.0f MiB/s); strata read %.2f s (%.0f MiB/s); strata unpack %.2f s (%.0f MiB/s)\n", mib, tar_s, mib / tar_s, gz_s, mib / gz_s, index_s, mib / index_s, extract_s, mib / extract_s
  }
  function median(key,   i, j, t, a, m) {
    m = n[key]; for (i = 1; i <= m; i++) a[i] = v[key, i]
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
  }
  function row(name, s, b, target,   ts, tb) {
    ts = median(s); tb = median(b)
    printf "%-18s %10.3f %10.3f %8.3f %8s %9d MiB %9d MiB\n", name, ts, tb, ts / tb, "<=" target, r[s] / 1024, r[b] / 1024
  }
' "$WORK/results"
