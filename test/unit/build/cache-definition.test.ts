import { createHash } from 'node:crypto';
import { mkdtemp, readFile, realpath, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filesystemKey, LocalStepCache, stepDefinitionKey } from '../../../src/build/cache.js';
import { statCacheFile } from '../../../src/context/index.js';
import { emptyImage, LocalStore, type Digest } from '../../../src/internals.js';
import { TEST_PLATFORM, testBuild, writeContext } from './harness.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-cache-definition-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('definition keys', () => {
  it('a cache that never saw a definition says so; one put with it says it may hold keys of it', async () => {
    const store = await LocalStore.open(join(work, 'store-keys'));
    const cache = LocalStepCache.forStore(store.root, store.blobs);
    const definition = stepDefinitionKey({ kind: 'COPY', parent: filesystemKey(emptyImage(TEST_PLATFORM)), words: {} });
    expect(await cache.mayHave(definition)).toBe(false);
    const outcome = {
      layer: {
        descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'1'.repeat(64)}` as Digest, size: 1 },
        diffId: `sha256:${'2'.repeat(64)}` as Digest,
      },
      history: {},
      config: {},
    };
    await cache.put(`sha256:${'3'.repeat(64)}` as Digest, outcome, definition);
    expect(await cache.mayHave(definition)).toBe(true);
  });

  it('a cold COPY takes the files digests from the layer write, and its key is the one hashing first gives', async () => {
    const files = { 'a.txt': 'alpha\n', 'dir/b.bin': 'x'.repeat(3 * 1024 * 1024), 'dir/c.txt': 'gamma\n' };
    const ctx = await writeContext(work, files);
    const store = await LocalStore.open(join(work, 'store-cold'));
    const text = 'FROM scratch\nCOPY . /app/\n';
    const first = await testBuild(store, text, ctx);
    expect(first.steps.cached).toBe(0);
    // The write recorded every file's digest in the stat cache.
    const statsFile = statCacheFile(join(store.root, 'cache', 'context-stats'), await realpath(ctx));
    const records = JSON.parse((await readFile(statsFile, 'utf8')).split('\n')[1]!) as Array<string | number>;
    const hexByPath = new Map<unknown, unknown>();
    for (let i = 0; i < records.length; i += 7) hexByPath.set(records[i], records[i + 6]);
    for (const [path, content] of Object.entries(files)) {
      expect(hexByPath.get(path)).toBe(createHash('sha256').update(content).digest('hex'));
    }
    // Without the stat cache the next build hashes the files before the work (a hit is possible now) and hits.
    await rm(statsFile);
    const second = await testBuild(store, text, ctx);
    expect(second.steps.cached).toBe(1);
  });

  it('a rebuild keys COPY from its remembered source set, and falls back to hashing when a stat moved', async () => {
    const files = { 'a.txt': 'alpha\n', 'dir/b.txt': 'beta\n' };
    const ctx = await writeContext(work, files);
    const store = await LocalStore.open(join(work, 'store-sets'));
    const text = 'FROM scratch\nCOPY . /app/\n';
    expect((await testBuild(store, text, ctx)).steps.cached).toBe(0);
    const statsFile = statCacheFile(join(store.root, 'cache', 'context-stats'), await realpath(ctx));
    const [head] = (await readFile(statsFile, 'utf8')).split('\n');
    expect(JSON.parse(head!)).toMatchObject({ sources: [[expect.any(String), expect.stringMatching(/^sha256:/)]] });

    // With the per-file records gone, the source set alone keys the COPY: no file is hashed (which would
    // record it again), so the cache file is left as it was.
    await writeFile(statsFile, `${head}\n[]`);
    expect((await testBuild(store, text, ctx)).steps.cached).toBe(1);
    expect(await readFile(statsFile, 'utf8')).toBe(`${head}\n[]`);
    // A moved mtime (same content, and past SOURCE_DATE_EPOCH, so the layer clamps it to the same time)
    // misses the set and the records: the files are hashed again, and it still hits.
    await utimes(join(ctx, 'a.txt'), new Date(1_800_000_000_000), new Date(1_800_000_000_000));
    expect((await testBuild(store, text, ctx)).steps.cached).toBe(1);
    const records = JSON.parse((await readFile(statsFile, 'utf8')).split('\n')[1]!) as unknown[];
    expect(records).toHaveLength(2 * 7);
    // An mtime before the epoch is written into the layer as it is, so it misses.
    await utimes(join(ctx, 'a.txt'), new Date(5000), new Date(5000));
    expect((await testBuild(store, text, ctx)).steps.cached).toBe(0);
    // New content misses.
    await writeFile(join(ctx, 'dir/b.txt'), 'changed\n');
    expect((await testBuild(store, text, ctx)).steps.cached).toBe(0);
  });
});
