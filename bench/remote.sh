#!/usr/bin/env bash
# Remote sources (issue 15): peak RSS and wall time of `ADD <url>` of a 1 GiB file and of a 1 GiB tar
# context (from stdin and from a URL), by strata and by `buildah bud --layers=false` (which takes the
# same ADD and the URL context; it has no stdin context). Random bytes, so no compression hides the size.
# Served by python3's http.server on loopback (Content-Length, Last-Modified).
# Needs root (buildah), buildah, python3, /usr/bin/time and a built dist/. SIZE_MB=1024 by default.
#   bash bench/remote.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SIZE_MB=${SIZE_MB:-1024}
for tool in buildah python3 /usr/bin/time tar; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
done
[[ -x dist/cli/main.js ]] || { echo "bench: dist/cli/main.js is missing; run make build" >&2; exit 1; }
source "$ROOT/bench/lib.sh"

mkdir -p "$WORK/www" "$WORK/ctx-add" "$WORK/ctx-tar"
head -c "${SIZE_MB}M" /dev/urandom >"$WORK/ctx-tar/big.bin"
printf 'FROM scratch\nCOPY big.bin /big.bin\n' >"$WORK/ctx-tar/Dockerfile"
tar -C "$WORK/ctx-tar" -cf "$WORK/www/ctx.tar" .
mv "$WORK/ctx-tar/big.bin" "$WORK/www/big.bin"
PORT=$(free_port)
(cd "$WORK/www" && exec python3 -m http.server "$PORT" --bind 127.0.0.1 >/dev/null 2>&1) &
PIDS+=($!)
for _ in $(seq 1 50); do curl -fsI "http://127.0.0.1:$PORT/big.bin" >/dev/null 2>&1 && break; sleep 0.1; done
printf 'FROM scratch\nADD http://127.0.0.1:%s/big.bin /big.bin\n' "$PORT" >"$WORK/ctx-add/Dockerfile"

BUILDAH=(buildah --root "$WORK/buildah-root" --runroot "$WORK/buildah-runroot" --storage-driver vfs)
unset NODE_EXTRA_CA_CERTS
measure strata-add-url env STRATA_ROOT="$WORK/s1" "$ROOT/dist/cli/main.js" build --progress quiet -t big:1 "$WORK/ctx-add"
rm -rf "$WORK/s1"
measure buildah-add-url "${BUILDAH[@]}" bud --isolation chroot --layers=false -t big1 "$WORK/ctx-add"
"${BUILDAH[@]}" rmi --all --force >/dev/null 2>&1 || true
measure strata-tar-stdin sh -c "STRATA_ROOT='$WORK/s2' '$ROOT/dist/cli/main.js' build --progress quiet -t big:2 - <'$WORK/www/ctx.tar'"
rm -rf "$WORK/s2"
measure strata-tar-url env STRATA_ROOT="$WORK/s3" "$ROOT/dist/cli/main.js" build --progress quiet -t big:3 "http://127.0.0.1:$PORT/ctx.tar"
rm -rf "$WORK/s3"
measure buildah-tar-url "${BUILDAH[@]}" bud --isolation chroot --layers=false -t big3 "http://127.0.0.1:$PORT/ctx.tar"
"${BUILDAH[@]}" rmi --all --force >/dev/null 2>&1 || true

echo "remote sources, ${SIZE_MB} MiB of random bytes (label, wall s, peak RSS MiB):"
awk '{ printf "%-18s %8.2f %8.1f\n", $1, $2, $3 / 1024 }' "$WORK/results"
