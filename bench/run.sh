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

# --- executors (issue 14): the same 10 steps cold with bwrap, proot and inplace beside buildah ---------
# inplace overwrites /, so it runs inside a bubblewrap sandbox whose / is a scratch directory (the host's
# /usr and this repository bound read-only, docker's default capabilities), as in a throwaway job
# container. BENCH_APT=1 adds the apt-get Dockerfile on a debootstrap minbase bookworm base (needs
# debootstrap and Debian's archive; several minutes).
# Node, time(1) and their libraries go to /strata-node, outside every image path (as strata would be installed in
# a job image for inplace): the image's /usr, /lib and /bin are laid over /, not the host's.
NODE_ROOT="$WORK/strata-node"
mkdir -p "$NODE_ROOT"
for bin in "$(readlink -f "$(command -v node)")" /usr/bin/time; do
  cp "$bin" "$NODE_ROOT/"
  ldd "$bin" | awk '/=>/ { print $3 } /ld-linux/ { print $1 }' | while read -r lib; do [[ -f $lib ]] && cp -n "$lib" "$NODE_ROOT/"; done
done
LOADER=$(cd "$NODE_ROOT" && ls ld-linux* | head -1)
mkdir -p "$WORK/ictx"
inplace_root() { # SCRATCH STATE -> the command prefix, in the array INPLACE
  mkdir -p "$1" "$2/tmp"
  INPLACE=(bwrap --bind "$1" / --ro-bind "$NODE_ROOT" /strata-node --ro-bind "$ROOT" "$ROOT" --bind "$2" /strata --ro-bind "$WORK/ictx" "$WORK/ictx"
    --ro-bind /etc/resolv.conf /etc/resolv.conf --proc /proc --dev /dev --unshare-pid --die-with-parent
    --cap-add CAP_CHOWN --cap-add CAP_DAC_OVERRIDE --cap-add CAP_FOWNER --cap-add CAP_FSETID --cap-add CAP_SETUID
    --cap-add CAP_SETGID --cap-add CAP_KILL --clearenv --setenv PATH /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --setenv HOME /strata
    --setenv STRATA_ROOT /strata/store --setenv TMPDIR /strata/tmp --setenv SOURCE_DATE_EPOCH 0 --)
}

exec_bench() { # NAME CONTEXT -> measures "xNAME-EXECUTOR-REP" rows into $WORK/results
  local name=$1 ctx=$2 rep e
  for rep in $(seq 1 "$REPS"); do
    for e in bwrap proot; do
      STRATA_ROOT="$WORK/x-$name-$e-$rep" measure "x$name-$e-$rep" "${STRATA[@]}" build "$ctx" --executor "$e" --no-cache --progress quiet -t "bench-$name"
      rm -rf "$WORK/x-$name-$e-$rep"
    done
    inplace_root "$WORK/xroot-$name-$rep" "$WORK/xstate-$name-$rep"
    # time(1) outside sees bwrap only: the peak RSS comes from a time(1) inside, next to strata.
    [[ -d $WORK/ictx/$name ]] || { mkdir -p "$WORK/ictx" && cp -r "$ctx" "$WORK/ictx/$name"; }
    measure "x$name-inplace-$rep" "${INPLACE[@]}" "/strata-node/$LOADER" --library-path /strata-node /strata-node/time -v -o /strata/time.txt \
      "/strata-node/$LOADER" --library-path /strata-node /strata-node/node "$ROOT/dist/cli/main.js" \
      build "$WORK/ictx/$name" --executor inplace --force --no-cache --progress quiet -t "bench-$name"
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$WORK/xstate-$name-$rep/time.txt")
    sed -i "\$s/ [0-9]*\$/ $rss/" "$WORK/results"
    rm -rf "$WORK/xroot-$name-$rep" "$WORK/xstate-$name-$rep"
    BUD=(buildah --root "$WORK/xb-$rep/root" --runroot "$WORK/xb-$rep/runroot" --storage-driver vfs bud --isolation chroot
      --tls-verify=false --signature-policy "$BUILDAH_POLICY" -q -t "bench-$name" "$ctx")
    measure "x$name-buildah-$rep" "${BUD[@]}"
    buildah --root "$WORK/xb-$rep/root" --runroot "$WORK/xb-$rep/runroot" --storage-driver vfs rmi --all --force >/dev/null 2>&1 || true
    rm -rf "$WORK/xb-$rep"
  done
}

exec_bench steps "$CTX"
if [[ ${BENCH_APT:-0} == 1 ]]; then
  command -v debootstrap >/dev/null || { echo "bench: BENCH_APT=1 needs debootstrap" >&2; exit 1; }
  debootstrap --variant=minbase bookworm "$WORK/debian" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 \
    || { echo "bench: debootstrap failed:" >&2; tail -5 "$WORK/debootstrap.log" >&2; exit 1; }
  tar --sort=name --numeric-owner -C "$WORK/debian" -cf "$WORK/debian.tar" .
  STRATA_ROOT="$WORK/base-store" "${STRATA[@]}" append --layer "$WORK/debian.tar" \
    --set-env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --set-cmd '["bash"]' \
    -o "docker://$REG/debian:bench" --progress quiet >/dev/null
  mkdir -p "$WORK/apt"
  printf 'FROM %s\nRUN apt-get update && apt-get install -y --no-install-recommends jq\nRUN useradd -m app\n' "$REG/debian:bench" >"$WORK/apt/Dockerfile"
  exec_bench apt "$WORK/apt"
fi

grep '^x' "$WORK/results" | awk -v reps="$REPS" '
  { split($1, p, "-"); key = p[1] "-" p[2]; n[key]++; v[key, n[key]] = $2; r[key, n[key]] = $3 }
  END {
    printf "\nexecutors, cold (--no-cache), median of %d runs; inplace inside a bwrap scratch root\n\n", reps
    printf "%-8s %-8s %10s %12s %10s %12s\n", "file", "executor", "wall s", "vs bwrap", "vs buildah", "peak RSS MB"
    split("xsteps xapt", files, " ")
    for (f = 1; f <= 2; f++) {
      if (n[files[f] "-bwrap"] == 0) continue
      bw = median(files[f] "-bwrap"); bu = median(files[f] "-buildah")
      split("bwrap proot inplace buildah", ex, " ")
      for (e = 1; e <= 4; e++) {
        k = files[f] "-" ex[e]; s = median(k)
        printf "%-8s %-8s %10.2f %12.2f %10.2f %12.0f\n", substr(files[f], 2), ex[e], s, s / bw, s / bu, maxrss(k) / 1024
      }
    }
    printf "\ntargets: proot <= 2.00x bwrap on the 10-step file; every executor under 250 MB peak RSS\n"
  }
  function median(key,   i, j, t, a, m) {
    m = n[key]; for (i = 1; i <= m; i++) a[i] = v[key, i]
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
  }
  function maxrss(key,   i, m) { m = 0; for (i = 1; i <= n[key]; i++) if (r[key, i] > m) m = r[key, i]; return m }'
