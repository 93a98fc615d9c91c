import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { keepingMetadata } from '../../src/transports/metadata-cache.js';
import { digestOf } from '../../src/digest/index.js';
import { StrataError, type Descriptor } from '../../src/internals.js';
import { FileBlobStore, MemoryBlobReader, type BlobReader } from '../../src/store/index.js';

let dir: string;
let store: FileBlobStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strata-metadata-cache-'));
  store = new FileBlobStore(join(dir, 'blobs'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A registry stand-in that counts what it serves. */
function counting(blobs: Buffer[]): { reader: BlobReader; reads: string[] } {
  const memory = new MemoryBlobReader();
  for (const b of blobs) memory.add(digestOf(b), b);
  const reads: string[] = [];
  return {
    reads,
    reader: {
      openBlob: (d) => memory.openBlob(d),
      readBlob: (d) => {
        reads.push(d.digest);
        return memory.readBlob(d);
      },
    },
  };
}

const descriptorOf = (bytes: Buffer): Descriptor => ({ mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(bytes), size: bytes.length });

describe('keepingMetadata', () => {
  it('reads a manifest or config from the registry once, then from the store', async () => {
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    const registry = counting([config]);
    const reader = keepingMetadata(registry.reader, store);
    expect((await reader.readBlob(descriptorOf(config))).equals(config)).toBe(true);
    expect((await reader.readBlob(descriptorOf(config))).equals(config)).toBe(true);
    expect(registry.reads).toEqual([digestOf(config)]);
  });

  it('goes back to the registry when the kept copy is damaged, and keeps nothing larger than a manifest can be', async () => {
    const config = Buffer.from('{"os":"linux"}');
    const registry = counting([config]);
    const reader = keepingMetadata(registry.reader, store);
    await reader.readBlob(descriptorOf(config));
    await writeFile(store.blobPath(digestOf(config)), '{"os":"LINUX"}');
    expect((await reader.readBlob(descriptorOf(config))).equals(config)).toBe(true);
    expect(registry.reads).toHaveLength(2);

    const big = Buffer.alloc(5 * 1024 * 1024, 1);
    const bigRegistry = counting([big]);
    const bigReader = keepingMetadata(bigRegistry.reader, store);
    await bigReader.readBlob(descriptorOf(big));
    expect(await store.hasBlob({ digest: digestOf(big) })).toBe(false);
  });

  it('a failing registry read fails as it was', async () => {
    const missing = Buffer.from('{}');
    const reader = keepingMetadata(counting([]).reader, store);
    await expect(reader.readBlob(descriptorOf(missing))).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    const aborting: BlobReader = {
      openBlob: () => Promise.reject(new StrataError('E_ABORTED', 'aborted')),
      readBlob: () => Promise.reject(new StrataError('E_ABORTED', 'aborted')),
    };
    await expect(keepingMetadata(aborting, store).readBlob(descriptorOf(missing))).rejects.toMatchObject({ code: 'E_ABORTED' });
  });
});
