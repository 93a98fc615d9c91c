#!/usr/bin/env bash
# `strata diff` on two large images (issue 19): two OCI layouts of MIB MiB each in FILES files over LAYERS
# layers (deterministic random data, so gzip stores it), the second with one file changed and every mtime
# moved. strata diff reads both images' layers once, hashing every file; the peer reads the same layers
# once with `gzip -dc | tar -t` (decompress and parse, no hashing). Wall time and peak RSS of each.
#   MIB=500 FILES=2000 LAYERS=4 bash bench/diff.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STRATA="$ROOT/dist/cli/main.js"
MIB=${MIB:-500}
FILES=${FILES:-2000}
LAYERS=${LAYERS:-4}
for tool in openssl /usr/bin/time tar gzip; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
done
[[ -x $STRATA ]] || { echo "bench: dist/cli/main.js is missing; run make build" >&2; exit 1; }
source "$ROOT/bench/lib.sh"
export STRATA_ROOT="$WORK/store" SOURCE_DATE_EPOCH=1700000000

# --- two images: LAYERS directories of FILES/LAYERS files each ---------------------------------------
per_file=$(( MIB * 1024 * 1024 / FILES ))
args=()
for l in $(seq 1 "$LAYERS"); do
  dir="$WORK/tree/l$l"
  mkdir -p "$dir"
  for f in $(seq 1 $((FILES / LAYERS))); do
    head -c "$per_file" < <(openssl enc -aes-128-ctr -pass "pass:$l-$f" -nosalt -pbkdf2 </dev/zero 2>/dev/null) >"$dir/f$f.bin"
  done
  args+=(--layer "$dir:/data/l$l")
done
"$STRATA" append "${args[@]}" -o "oci:$WORK/a:1" >/dev/null
echo changed >"$WORK/tree/l$LAYERS/f1.bin"
SOURCE_DATE_EPOCH=1800000000 "$STRATA" append "${args[@]}" -o "oci:$WORK/b:1" >/dev/null
echo "bench: two images of $(du -sh "$WORK/a" | cut -f1) each, $FILES files in $LAYERS layers" >&2

layers_of() { # LAYOUT -> layer blob paths
  node -e '
    const fs = require("fs"), dir = process.argv[1];
    const index = JSON.parse(fs.readFileSync(dir + "/index.json"));
    const blob = (d) => dir + "/blobs/sha256/" + d.digest.slice(7);
    const manifest = JSON.parse(fs.readFileSync(blob(index.manifests[0])));
    for (const l of manifest.layers) console.log(blob(l));' "$1"
}
mapfile -t blobs < <(layers_of "$WORK/a"; layers_of "$WORK/b")
read_layers() { for b in "${blobs[@]}"; do gzip -dc "$b" | tar -tf - >/dev/null; done; }
export -f read_layers
export BLOBS="${blobs[*]}"

measure peer-read-layers bash -c 'for b in $BLOBS; do gzip -dc "$b" | tar -tf - >/dev/null; done'
measure strata-diff "$STRATA" diff "oci:$WORK/a:1" "oci:$WORK/b:1" --format json
node -e '
  const d = JSON.parse(require("fs").readFileSync(process.argv[1]));
  if (d.identical) { console.error("bench: diff said identical"); process.exit(1); }
  console.error("bench: reasons: " + d.reasons.join("; "));' "$WORK/stdout-strata-diff"
awk '{ t[$1] = $2; r[$1] = $3 } END { printf "bench: strata diff / reading the layers once: %.2fx wall; strata peak RSS %d MiB\n", t["strata-diff"] / t["peer-read-layers"], r["strata-diff"] / 1024 }' "$WORK/results" >&2
