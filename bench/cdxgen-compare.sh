#!/usr/bin/env bash
# By hand only (issue 16): does @cyclonedx/cdxgen, scanning the same unpacked root, find a package strata's SBOM
# misses? Never run by `make test` or `make bench`: it needs the npm registry (cdxgen itself, and `npm ci` of
# bench/cdxgen-app) and Debian's archive (apt-get install in a RUN step), and root (chroot executor, unshare).
#
# It builds one image holding every ecosystem strata scans: a Debian bookworm minbase root (debootstrap tarball in
# BENCH_CACHE, as bench/realbase.sh keeps it) with `apt-get install` Python packages (dist-info and egg-info
# under /usr/lib/python3/dist-packages), a Node app after `npm ci` of a real lockfile (nested node_modules, scoped
# packages) and Go binaries copied from this machine (skopeo, docker-registry); and a second, Alpine-shaped root with
# a hand-written apk database (Debian has no apk-tools, Alpine's mirrors are out of reach). strata builds each with
# `--sbom format=cyclonedx` (chroot executor), `strata export` flattens the image to a root, and cdxgen scans that
# root with `-t rootfs` (and `-t universal`) inside `unshare --net`, so it reaches no host. Both package sets are
# compared by purl (qualifiers and subpaths dropped, percent-decoding, Debian epochs, npm/PyPI/Go name case and
# Go's leading v normalised): counts per ecosystem and every difference are printed and kept in OUT.
#   bash bench/cdxgen-compare.sh     (OUT=DIR keeps the documents; CDXGEN_PREFIX=DIR where cdxgen is installed)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STRATA=("$ROOT/dist/cli/main.js")
BENCH_CACHE=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/strata-bench}
CDXGEN_PREFIX=${CDXGEN_PREFIX:-/tmp/cdxgen}
OUT=${OUT:-/tmp/strata-cdxgen-compare}
unset NODE_EXTRA_CA_CERTS

[[ $(id -u) == 0 ]] || { echo "cdxgen-compare: needs root (chroot executor, unshare --net)" >&2; exit 1; }
for tool in docker-registry npm tar unshare curl; do
  command -v "$tool" >/dev/null || { echo "cdxgen-compare: $tool is missing" >&2; exit 1; }
done
[[ -x dist/cli/main.js ]] || { echo "cdxgen-compare: dist/cli/main.js is missing; run make build" >&2; exit 1; }
[[ -f $BENCH_CACHE/bookworm-minbase.tar ]] || {
  echo "cdxgen-compare: $BENCH_CACHE/bookworm-minbase.tar is missing (debootstrap --variant=minbase bookworm, as bench/realbase.sh makes it)" >&2
  exit 1
}
CDXGEN="$CDXGEN_PREFIX/node_modules/.bin/cdxgen"
if [[ ! -x $CDXGEN ]]; then
  echo "cdxgen-compare: npm install --prefix $CDXGEN_PREFIX @cyclonedx/cdxgen" >&2
  npm install --prefix "$CDXGEN_PREFIX" @cyclonedx/cdxgen >/dev/null
fi
source "$ROOT/bench/lib.sh"
REG=$(start_registry cdxgen)
mkdir -p "$OUT"
: >"$OUT/compare.txt"
export STRATA_ROOT="$WORK/store"

# --- the base: the minbase root as one layer ---------------------------------------------------------------
DEB="$WORK/debian"
mkdir -p "$DEB"
tar -C "$DEB" -xf "$BENCH_CACHE/bookworm-minbase.tar"
"${STRATA[@]}" append --layer "$DEB" --platform linux/amd64 \
  --set-env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --progress quiet -o "docker://$REG/base:1" >/dev/null
rm -rf "$DEB"

# --- the context: the Node app after npm ci, Go binaries, the Dockerfile ------------------------------------
CTX="$WORK/ctx"
mkdir -p "$CTX/app" "$CTX/bin"
cp bench/cdxgen-app/package.json bench/cdxgen-app/package-lock.json "$CTX/app/"
(cd "$CTX/app" && npm ci --ignore-scripts --no-audit --no-fund >/dev/null)
printf 'console.log(require("chalk").green("hello"));\n' >"$CTX/app/index.js"
cp "$(command -v skopeo)" "$CTX/bin/skopeo" 2>/dev/null || echo "cdxgen-compare: no skopeo here; one Go binary fewer" >&2
cp "$(command -v docker-registry)" "$CTX/bin/docker-registry"
cat >"$CTX/Dockerfile" <<DOCKERFILE
FROM $REG/base:1
RUN apt-get update && apt-get install -y --no-install-recommends python3-yaml python3-six python3-requests \
      python3-packaging python3-attr python3-jinja2 && rm -rf /var/lib/apt/lists/*
COPY app /app
COPY bin/ /usr/local/bin/
CMD ["node", "/app/index.js"]
DOCKERFILE

# Alpine: Debian has no apk-tools and Alpine's mirrors are out of reach, so no apk database can be written by
# apk itself here. This root holds one hand-written in Alpine 3.19's format (entries as Alpine's own).
ALP="$WORK/alpine-ctx"
mkdir -p "$ALP/root/lib/apk/db" "$ALP/root/etc"
printf 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n' >"$ALP/root/etc/os-release"
apk_entry() { # NAME VERSION LICENSE ORIGIN
  printf 'C:Q1%s=\nP:%s\nV:%s\nA:x86_64\nS:1000\nI:2000\nT:%s package\nU:https://example.invalid/\nL:%s\no:%s\nm:bench <bench@example.invalid>\nt:1700000000\nc:0123456789abcdef0123456789abcdef01234567\n\n' \
    "$(printf %s "$1" | sha1sum | cut -c1-26)" "$1" "$2" "$1" "$3" "$4"
}
{
  apk_entry musl 1.2.4_git20230717-r4 MIT musl
  apk_entry busybox 1.36.1-r15 GPL-2.0-only busybox
  apk_entry busybox-binsh 1.36.1-r15 GPL-2.0-only busybox
  apk_entry alpine-baselayout-data 3.4.3-r2 GPL-2.0-only alpine-baselayout
  apk_entry ca-certificates-bundle 20240226-r0 "MPL-2.0 AND MIT" ca-certificates
  apk_entry zlib 1.3.1-r0 Zlib zlib
  apk_entry libcrypto3 3.1.4-r5 Apache-2.0 openssl
  apk_entry scanelf 1.3.7-r2 GPL-2.0-only pax-utils
} >"$ALP/root/lib/apk/db/installed"
printf 'FROM scratch\nCOPY root/ /\n' >"$ALP/Dockerfile"

scan_image() { # NAME CONTEXT: strata builds it with a CycloneDX SBOM and prints it; its root goes to OUT/NAME-root
  local name=$1 ctx=$2
  echo "cdxgen-compare: strata build $name..." >&2
  "${STRATA[@]}" build "$ctx" --executor chroot --progress plain --sbom format=cyclonedx \
    -o "type=oci,dest=$WORK/image-$name,tar=false" >"$OUT/$name-strata-build.log" 2>&1 || { tail -30 "$OUT/$name-strata-build.log" >&2; exit 1; }
  "${STRATA[@]}" inspect "oci:$WORK/image-$name" --sbom --format json >"$OUT/$name-strata.json"
  "${STRATA[@]}" export "oci:$WORK/image-$name" -o "$WORK/rootfs.tar" --progress quiet
  rm -rf "$OUT/$name-root" && mkdir -p "$OUT/$name-root"
  tar -C "$OUT/$name-root" -xf "$WORK/rootfs.tar"
  rm -f "$WORK/rootfs.tar"
}
scan_image debian "$CTX"
scan_image alpine "$ALP"

# --- cdxgen over the same roots, with no network --------------------------------------------------------------
for name in debian alpine; do
  for type in rootfs universal; do
    echo "cdxgen-compare: cdxgen -t $type $OUT/$name-root ..." >&2
    unshare --net env CDXGEN_TEMP_DIR="$WORK/cdxgen-tmp" FETCH_LICENSE=false \
      "$CDXGEN" -t "$type" --no-install-deps -o "$OUT/$name-cdxgen-$type.json" "$OUT/$name-root" >"$OUT/$name-cdxgen-$type.log" 2>&1 ||
      echo "cdxgen-compare: cdxgen -t $type failed on $name; see $OUT/$name-cdxgen-$type.log" >&2
  done
  echo "== $name" | tee -a "$OUT/compare.txt"
  node bench/cdxgen-compare.mjs "$OUT/$name-strata.json" "$OUT/$name-cdxgen-rootfs.json" "$OUT/$name-cdxgen-universal.json" | tee -a "$OUT/compare.txt"
done
echo "cdxgen-compare: documents, logs and the roots are in $OUT" >&2
