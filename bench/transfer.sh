#!/usr/bin/env bash
# Transfer benchmark (issue 4): a 4 x 128 MiB random-layer image in an OCI layout, pushed to a fresh
# loopback docker-registry and pulled back, by strata and by `skopeo copy`; wall time and peak RSS
# from /usr/bin/time -v, printed as strata/skopeo ratios. Needs docker-registry, skopeo, openssl,
# /usr/bin/time and a built dist/ (make bench builds it).
#   LAYERS=4 LAYER_MIB=128 bash bench/transfer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STRATA=(node "$ROOT/dist/cli/main.js")
LAYERS=${LAYERS:-4}
LAYER_MIB=${LAYER_MIB:-128}

for tool in docker-registry skopeo openssl /usr/bin/time sha256sum gzip tar; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install docker-registry skopeo openssl time)" >&2; exit 1; }
done
[[ -f dist/cli/main.js ]] || { echo "bench: dist/cli/main.js is missing; run make build" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench-XXXXXX")
PIDS=()
cleanup() {
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
  PIDS+=($!)
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && { echo "127.0.0.1:$port"; return; }
    sleep 0.1
  done
  echo "bench: docker-registry did not start: $(cat "$dir/log")" >&2
  exit 1
}

# --- the image: deterministic random bytes (AES-CTR of zeros with a fixed key), gzip layers --------
LAYOUT="$WORK/layout"
mkdir -p "$LAYOUT/blobs/sha256"
echo "bench: writing a ${LAYERS} x ${LAYER_MIB} MiB random-layer image to an OCI layout..." >&2
digest_of() { sha256sum "$1" | cut -d' ' -f1; }
put_blob() { local d; d=$(digest_of "$1"); mv "$1" "$LAYOUT/blobs/sha256/$d"; echo "$d"; }
layers_json=""; diff_ids=""
for i in $(seq 1 "$LAYERS"); do
  dir="$WORK/layer$i"; mkdir -p "$dir"
  head -c $((LAYER_MIB * 1024 * 1024)) /dev/zero \
    | openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv "$(printf '%032x' "$i")" >"$dir/random-$i.bin"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$WORK/layer$i.tar" -C "$dir" "random-$i.bin"
  rm -rf "$dir"
  diff_id=$(digest_of "$WORK/layer$i.tar")
  gzip -1 -n -c "$WORK/layer$i.tar" >"$WORK/layer$i.tar.gz"; rm "$WORK/layer$i.tar"
  size=$(stat -c %s "$WORK/layer$i.tar.gz")
  d=$(put_blob "$WORK/layer$i.tar.gz")
  layers_json+="${layers_json:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$d\",\"size\":$size}"
  diff_ids+="${diff_ids:+,}\"sha256:$diff_id\""
done
arch=$(node -p "({x64:'amd64',arm64:'arm64'})[process.arch] ?? process.arch")
printf '{"architecture":"%s","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$arch" "$diff_ids" >"$WORK/config.json"
csize=$(stat -c %s "$WORK/config.json"); cdigest=$(put_blob "$WORK/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
  "$cdigest" "$csize" "$layers_json" >"$WORK/manifest.json"
msize=$(stat -c %s "$WORK/manifest.json"); mdigest=$(put_blob "$WORK/manifest.json")
printf '{"imageLayoutVersion":"1.0.0"}' >"$LAYOUT/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' \
  "$mdigest" "$msize" >"$LAYOUT/index.json"

# --- runs -------------------------------------------------------------------------------------------
measure() { # LABEL CMD... ; appends "LABEL seconds rss_kib" to $WORK/results
  local label=$1; shift
  local out="$WORK/time-$label"
  if ! /usr/bin/time -v -o "$out" "$@" >"$WORK/stdout-$label" 2>"$WORK/stderr-$label"; then
    echo "bench: $label failed:" >&2; cat "$WORK/stderr-$label" >&2; exit 1
  fi
  local wall rss
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$out" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$out")
  echo "$label $wall $rss" >>"$WORK/results"
  printf 'bench: %-18s %7.2f s  %6d MiB\n' "$label" "$wall" $((rss / 1024)) >&2
}

STRATA_REG=$(start_registry strata)
SKOPEO_REG=$(start_registry skopeo)
export STRATA_ROOT="$WORK/store"
SK=(skopeo --insecure-policy)

measure strata-push "${STRATA[@]}" copy --progress quiet "oci:$LAYOUT:bench" "docker://$STRATA_REG/bench:1"
measure skopeo-push "${SK[@]}" copy -q --dest-tls-verify=false "oci:$LAYOUT:bench" "docker://$SKOPEO_REG/bench:1"
measure strata-pull "${STRATA[@]}" pull --progress quiet "$STRATA_REG/bench:1"
measure strata-pull-oci "${STRATA[@]}" pull --progress quiet "$STRATA_REG/bench:1" -o "oci:$WORK/strata-pulled:bench"
measure skopeo-pull "${SK[@]}" copy -q --src-tls-verify=false "docker://$SKOPEO_REG/bench:1" "oci:$WORK/skopeo-pulled:bench"

pushed=$(cat "$WORK/stdout-strata-push"); pulled=$(cat "$WORK/stdout-strata-pull")
[[ "$pushed" == "sha256:$mdigest" && "$pulled" == "sha256:$mdigest" ]] || { echo "bench: digest mismatch: layout sha256:$mdigest, pushed $pushed, pulled $pulled" >&2; exit 1; }

awk -v layers="$LAYERS" -v mib="$LAYER_MIB" '
  { wall[$1] = $2; rss[$1] = $3 }
  END {
    printf "\nstrata transfer benchmark: %d x %d MiB random layers, loopback docker-registry\n\n", layers, mib
    printf "%-30s %10s %10s %12s %12s %11s %10s\n", "direction", "strata s", "skopeo s", "time ratio", "strata RSS", "skopeo RSS", "RSS ratio"
    row("push  oci: -> docker://", "strata-push", "skopeo-push")
    row("pull  docker:// -> store", "strata-pull", "skopeo-pull")
    row("pull  docker:// -> oci:", "strata-pull-oci", "skopeo-pull")
    printf "\ntarget: time ratio <= 1.00 both ways, strata peak RSS < 200 MiB\n"
  }
  function row(name, s, k) {
    printf "%-30s %10.2f %10.2f %12.2f %9d MiB %7d MiB %10.2f\n", name, wall[s], wall[k], wall[s] / wall[k], rss[s] / 1024, rss[k] / 1024, rss[s] / rss[k]
  }' "$WORK/results"
