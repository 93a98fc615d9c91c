import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../../../src/digest/index.js';
import { LocalStore, type Platform } from '../../../src/internals.js';
import type { LayerResult } from '../../../src/layer/index.js';
import type { BlobIngester } from '../../../src/store/index.js';
import { testBuild, writeContext } from './harness.js';

// The platform builds of one multi-platform build share their layer writes (BuildDeps.sharedLayers):
// a COPY layer that is the same bytes for every platform is read, compressed and stored once.
let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-shared-layers-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const AMD64: Platform = { os: 'linux', architecture: 'amd64' };
const ARM64: Platform = { os: 'linux', architecture: 'arm64' };

function counting(inner: BlobIngester): { ingester: BlobIngester; writes: () => number } {
  let writes = 0;
  return {
    writes: () => writes,
    ingester: {
      ingestBlob: (data, options) => {
        writes++;
        return inner.ingestBlob(data, options);
      },
    },
  };
}

describe('layers shared across the platforms of one build', () => {
  it('writes a COPY layer that is the same for two platforms once, and each platform caches it under its own key', async () => {
    const ctx = await writeContext(work, { 'app.bin': 'x'.repeat(2 * 1024 * 1024), 'conf/a.txt': 'a\n' });
    const store = await LocalStore.open(join(work, 'store-same'));
    const shared = new Map<Digest, Promise<LayerResult>>();
    const count = counting(store.blobs);
    const text = 'FROM scratch\nARG TARGETARCH\nCOPY . /app/\nENV ARCH=$TARGETARCH\n';
    const deps = { sharedLayers: shared, layerIngester: count.ingester };
    const amd = await testBuild(store, text, ctx, { platform: AMD64 }, deps);
    const arm = await testBuild(store, text, ctx, { platform: ARM64 }, deps);
    expect(count.writes()).toBe(1);
    expect(arm.image.layers.map((l) => l.diffId)).toEqual(amd.image.layers.map((l) => l.diffId));
    expect(arm.image.config.config?.Env).toContain('ARCH=arm64');
    // The reused layer was recorded for arm64 too: its rebuild alone is a hit.
    const again = await testBuild(store, text, ctx, { platform: ARM64 });
    expect(again.steps.cached).toBe(1);
  });

  it('writes a layer per platform when the platforms copy different files', async () => {
    const ctx = await writeContext(work, { 'amd64.txt': 'amd\n', 'arm64.txt': 'arm\n' });
    const store = await LocalStore.open(join(work, 'store-differ'));
    const count = counting(store.blobs);
    const deps = { sharedLayers: new Map<Digest, Promise<LayerResult>>(), layerIngester: count.ingester };
    const text = 'FROM scratch\nARG TARGETARCH\nCOPY ${TARGETARCH}.txt /etc/arch.txt\n';
    const amd = await testBuild(store, text, ctx, { platform: AMD64 }, deps);
    const arm = await testBuild(store, text, ctx, { platform: ARM64 }, deps);
    expect(count.writes()).toBe(2);
    expect(arm.image.layers[0]!.diffId).not.toBe(amd.image.layers[0]!.diffId);
  });
});
