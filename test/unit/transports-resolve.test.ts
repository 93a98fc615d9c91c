/**
 * One platform selector for every reader of an index (issue 17): FROM, inspect, copy and docker-archive
 * output resolve through `resolveImage`/`descendToManifest`, pull through the same ranking, so they all
 * pick the same entry, also when indexes nest.
 */
import { describe, expect, it } from 'vitest';
import { resolveImage } from '../../src/transports/resolve.js';
import { MediaType, type Descriptor, type Platform } from '../../src/oci/index.js';
import { addTestImage, MemoryBlobStore } from '../helpers/memory-blobs.js';

const armv5: Platform = { os: 'linux', architecture: 'arm', variant: 'v5' };
const armv7: Platform = { os: 'linux', architecture: 'arm', variant: 'v7' };
const amd64: Platform = { os: 'linux', architecture: 'amd64' };

function indexOf(store: MemoryBlobStore, manifests: Descriptor[]): Descriptor {
  return store.add(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests })), MediaType.OciIndex);
}

describe('resolveImage picks the ranked best entry, as pull does', () => {
  it('takes arm v7 for a v7 request when v5 is listed first (Debian lists them so)', async () => {
    const store = new MemoryBlobStore();
    const v5 = await addTestImage(store, { platform: armv5, label: 'v5' });
    const v7 = await addTestImage(store, { platform: armv7, label: 'v7' });
    const top = indexOf(store, [
      { ...v5.manifest, platform: armv5 },
      { ...v7.manifest, platform: armv7 },
    ]);
    const resolved = await resolveImage(top, store, 'debian', armv7);
    expect(resolved.manifest.descriptor.digest).toBe(v7.manifest.digest);
    // A v5 request is served by v5 only.
    expect((await resolveImage(top, store, 'debian', armv5)).manifest.descriptor.digest).toBe(v5.manifest.digest);
  });

  it('descends a nested index without a platform to the platform asked for, and refuses indexes nested too deep', async () => {
    const store = new MemoryBlobStore();
    const arm = await addTestImage(store, { platform: armv7, label: 'arm' });
    const x86 = await addTestImage(store, { platform: amd64, label: 'x86' });
    const inner = indexOf(store, [
      { ...arm.manifest, platform: armv7 },
      { ...x86.manifest, platform: amd64 },
    ]);
    const top = indexOf(store, [inner]);
    const resolved = await resolveImage(top, store, 'nested', amd64);
    expect(resolved.manifest.descriptor.digest).toBe(x86.manifest.digest);
    expect(resolved.index?.manifests).toEqual([inner]);

    let deep = inner;
    for (let i = 0; i < 9; i++) deep = indexOf(store, [deep]);
    await expect(resolveImage(deep, store, 'deep', amd64)).rejects.toThrow('deep: indexes nested too deeply');
  });

  it('names what the index has when nothing matches', async () => {
    const store = new MemoryBlobStore();
    const x86 = await addTestImage(store, { platform: amd64 });
    const top = indexOf(store, [{ ...x86.manifest, platform: amd64 }]);
    await expect(resolveImage(top, store, 'only-amd64', armv7)).rejects.toThrow('only-amd64 has no image for linux/arm/v7 (it has linux/amd64)');
  });
});
