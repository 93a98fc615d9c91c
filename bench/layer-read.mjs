// Reads one layer blob the way a build does, for bench/realbase.sh: `index` streams every entry (decompress and
// parse, content skipped), `extract` unpacks it into DIR. Prints "MODE SECONDS MIB_PER_S" (MiB of the tar).
import { createReadStream, statSync } from 'node:fs';
import { extractImageToDirectory, readLayer } from '../dist/src/layer/index.js';
import { BLOB_READ_CHUNK } from '../dist/src/store/index.js';

const [mode, blob, tarBytes, dir] = process.argv.slice(2);
const mib = Number(tarBytes) / 1024 / 1024;
const descriptor = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: 'sha256:bench', size: statSync(blob).size };
// The blob is read as the store reads one (FileBlobStore.openBlob), less the digest check.
const open = () => createReadStream(blob, { highWaterMark: BLOB_READ_CHUNK });
const reader = { openBlob: async () => open(), readBlob: async () => { throw new Error('unused'); } };
const start = process.hrtime.bigint();
if (mode === 'index') {
  for await (const entry of readLayer(open(), { compression: 'gzip', what: blob })) void entry;
} else {
  await extractImageToDirectory([descriptor], reader, dir, { privileged: true });
}
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
console.log(`${mode} ${seconds.toFixed(3)} ${(mib / seconds).toFixed(1)}`);
