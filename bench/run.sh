#!/usr/bin/env bash
# RUN benchmark (issue 7): a busybox-static base in a loopback docker-registry and a Dockerfile of
# 10 RUN steps (files written, small loops), built cold and fully cached by strata (--executor
# chroot; a fresh store for cold, the same store again for cached) and by
# `buildah bud --layers --isolation chroot --storage-driver vfs` (a fresh root for cold, the same
# root again for cached). Wall times are medians of REPS runs; prints strata/buildah ratios.
# Needs root, busybox-static (/bin/busybox), docker-registry, buildah, /usr/bin/time and a built
# dist/ (make bench builds it).
#   REPS=3 bash bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STRATA=("$ROOT/dist/cli/main.js")
REPS=${REPS:-3}

for tool in docker-registry buildah /usr/bin/time /bin/busybox tar curl; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install docker-registry buildah time busybox-static curl)" >&2; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "bench: the chroot executor and buildah --isolation chroot need root" >&2; exit 1; }
[[ -x dist/cli/main.js ]] || { echo "bench: dist/cli/main.js is missing; run make build" >&2; exit 1; }

source "$ROOT/bench/lib.sh"

# --- the base: /bin/busybox and a link per applet, passwd/group with root and app ------------------
BASE_ROOT="$WORK/base-rootfs"
mkdir -p "$BASE_ROOT"/{bin,etc,home/app,root,tmp}
cp /bin/busybox "$BASE_ROOT/bin/busybox"
for applet in $(/bin/busybox --list); do
  [[ $applet == busybox ]] || ln -s busybox "$BASE_ROOT/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n' >"$BASE_ROOT/etc/passwd"
printf 'root:x:0:\napp:x:1000:\n' >"$BASE_ROOT/etc/group"
chmod 1777 "$BASE_ROOT/tmp"; chmod 700 "$BASE_ROOT/root"; chown 1000:1000 "$BASE_ROOT/home/app"
tar --sort=name --mtime=@1700000000 --numeric-owner -C "$BASE_ROOT" -cf "$WORK/base.tar" .

REG=$(start_registry run)
BASE="$REG/busybox:bench"
STRATA_ROOT="$WORK/base-store" "${STRATA[@]}" append --layer "$WORK/base.tar" \
  --set-env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --set-cmd '["sh"]' \
  -o "docker://$BASE" --progress quiet >/dev/null

# --- the Dockerfile: 10 RUN steps -------------------------------------------------------------------
CTX="$WORK/context"
mkdir -p "$CTX"
cat >"$CTX/Dockerfile" <<EOF
FROM $BASE
RUN mkdir -p /opt/app/data && echo hello > /opt/app/hello
RUN for i in \$(seq 1 200); do echo "line \$i" >> /opt/app/lines; done
RUN for i in \$(seq 1 50); do echo "file \$i" > /opt/app/data/f\$i; done
RUN cp -r /opt/app/data /opt/app/data-copy && chmod -R 750 /opt/app/data-copy
RUN rm -f /opt/app/data/f1 /opt/app/data/f2 && ln -s /opt/app/hello /opt/app/link
RUN sort -r /opt/app/lines > /opt/app/lines.rev && wc -l /opt/app/lines > /opt/app/count
RUN addgroup -S svc 2>/dev/null; echo 'svc:x:2000:2000::/srv:/bin/sh' >> /etc/passwd && mkdir -p /srv && chown 2000 /srv
RUN i=0; while [ \$i -lt 100 ]; do i=\$((i+1)); done; echo \$i > /opt/app/loop
RUN tar -cf /opt/app/data.tar -C /opt/app data && gzip -9 /opt/app/data.tar
RUN find /opt/app -type f | sort > /opt/app/manifest.txt && sha256sum /opt/app/manifest.txt > /opt/app/manifest.sum
EOF

BUILDAH_POLICY="$WORK/policy.json"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$BUILDAH_POLICY"
buildah_bud() { # ROOTDIR -> the command line, in the array BUD
  BUD=(buildah --root "$1/root" --runroot "$1/runroot" --storage-driver vfs bud --layers --isolation chroot
    --tls-verify=false --signature-policy "$BUILDAH_POLICY" -q -t bench-run "$CTX")
}

# --- runs ---------------------------------------------------------------------------------------------
for rep in $(seq 1 "$REPS"); do
  export STRATA_ROOT="$WORK/store-$rep"
  measure "strata-cold-$rep" "${STRATA[@]}" build "$CTX" --executor chroot --progress quiet -t bench-run
  # Plain progress (to a file) shows that every step was a cache hit.
  measure "strata-cached-$rep" "${STRATA[@]}" build "$CTX" --executor chroot --progress plain -t bench-run
  grep -q '10/10 steps cached' "$WORK/stderr-strata-cached-$rep" \
    || { echo "bench: the second strata build was not fully cached:" >&2; tail -5 "$WORK/stderr-strata-cached-$rep" >&2; exit 1; }
  buildah_bud "$WORK/buildah-$rep"
  measure "buildah-cold-$rep" "${BUD[@]}"
  measure "buildah-cached-$rep" "${BUD[@]}"
  buildah --root "$WORK/buildah-$rep/root" --runroot "$WORK/buildah-$rep/runroot" --storage-driver vfs rmi --all --force >/dev/null 2>&1 || true
  rm -rf "$WORK/buildah-$rep" "$WORK/store-$rep"
done

awk -v reps="$REPS" '
  { split($1, p, "-"); key = p[1] "-" p[2]; n[key]++; v[key, n[key]] = $2 }
  END {
    printf "\nstrata RUN benchmark: 10 RUN steps on a busybox-static base from a loopback docker-registry\n"
    printf "strata --executor chroot vs buildah bud --layers --isolation chroot --storage-driver vfs; median of %d runs\n\n", reps
    printf "%-36s %10s %10s %8s %8s\n", "build", "strata s", "buildah s", "ratio", "target"
    row("cold (fresh store / fresh root)", "cold")
    row("cached (same store / same root)", "cached")
  }
  function median(key,   i, j, t, a, m) {
    m = n[key]; for (i = 1; i <= m; i++) a[i] = v[key, i]
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
  }
  function row(name, kind,   s, b) {
    s = median("strata-" kind); b = median("buildah-" kind)
    printf "%-36s %10.2f %10.2f %8.2f %8s\n", name, s, b, (b > 0 ? s / b : 0), "<= 0.50"
  }' "$WORK/results"
