#!/usr/bin/env bash
# Shared by the benchmarks: a work dir cleaned on exit, loopback registries, and `measure`, which
# records wall time (from the clock) and peak RSS (from /usr/bin/time -v) of one command.
# Source it after `set -euo pipefail`.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench-XXXXXX")
PIDS=()
cleanup() {
  # start_registry runs in a command substitution (a subshell), so its pids come back through files.
  for f in "$WORK"/*.pid; do [[ -f $f ]] && PIDS+=("$(cat "$f")"); done
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

start_registry() { # NAME -> prints host:port
  local dir="$WORK/registry-$1" port
  port=$(free_port)
  mkdir -p "$dir/storage"
  cat > "$dir/config.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
http:
  addr: 127.0.0.1:$port
  secret: strata-bench
YAML
  docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  echo $! >"$WORK/registry-$1.pid"
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && { echo "127.0.0.1:$port"; return; }
    sleep 0.1
  done
  echo "bench: docker-registry did not start: $(cat "$dir/log")" >&2
  exit 1
}


measure() { # LABEL CMD... ; appends "LABEL seconds rss_kib" to $WORK/results
  local label=$1; shift
  local out="$WORK/time-$label" start end
  # Each run starts with no writeback of the one before competing with it for the disk.
  sync
  start=$(date +%s%N)
  if ! /usr/bin/time -v -o "$out" "$@" >"$WORK/stdout-$label" 2>"$WORK/stderr-$label"; then
    echo "bench: $label failed:" >&2; cat "$WORK/stderr-$label" >&2; exit 1
  fi
  end=$(date +%s%N)
  # Wall time from the clock in nanoseconds: time(1) reports hundredths, too coarse for a 0.2 s run.
  local wall rss
  wall=$(awk -v ns=$((end - start)) 'BEGIN { printf "%.3f", ns / 1e9 }')
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$out")
  echo "$label $wall $rss" >>"$WORK/results"
  printf 'bench: %-18s %7.3f s  %6d MiB\n' "$label" "$wall" $((rss / 1024)) >&2
}
