#!/usr/bin/env bash
# Transfer benchmark (issue 4): a 4 x 128 MiB random-layer image in an OCI layout, pushed to a fresh
# loopback docker-registry and pulled back, by strata and by `skopeo copy`; wall time and peak RSS
# from /usr/bin/time -v, printed as strata/skopeo ratios. Needs docker-registry, skopeo, openssl,
# /usr/bin/time and a built dist/ (make bench builds it).
#   LAYERS=4 LAYER_MIB=128 bash bench/transfer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STRATA=("$ROOT/dist/cli/main.js")
LAYERS=${LAYERS:-4}
LAYER_MIB=${LAYER_MIB:-128}

for tool in docker-registry skopeo openssl /usr/bin/time sha256sum gzip tar; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install docker-registry skopeo openssl time)" >&2; exit 1; }
done
[[ -x dist/cli/main.js ]] || { echo "bench: dist/cli/main.js is missing; run make build" >&2; exit 1; }

source "$ROOT/bench/lib.sh"

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
