/**
 * The layered step cache (store first, then imported caches) and the cache artifact round trip
 * through an OCI layout, with the engine building in fresh temporary stores.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStore, serializeImage, type BuildEvent, type Digest } from '../../../src/internals.js';
import { LocalStepCache, type StepOutcome } from '../../../src/build/cache.js';
import { LayeredStepCache, type ImportedStepCache } from '../../../src/build/cache-layered.js';
import {
  BUILD_CACHE_ARTIFACT_TYPE,
  buildCacheArtifact,
  exportBuildCache,
  importBuildCaches,
  parseCacheExport,
  parseCacheImport,
} from '../../../src/pipeline/cache-artifact.js';
import { OciLayout, type BlobReader } from '../../../src/store/index.js';
import { testBuild, writeContext } from './harness.js';

let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-cache-layered-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const context = (files: Record<string, string>): Promise<string> => writeContext(work, files);

async function freshStore(): Promise<LocalStore> {
  return LocalStore.open(await mkdtemp(join(work, 'store-')));
}

function build(store: LocalStore, text: string, contextDir: string, cache: LayeredStepCache, events: BuildEvent[] = []) {
  return testBuild(store, text, contextDir, {}, { events: (e) => events.push(e), stepCache: cache, cacheReaders: cache.readers });
}

function stepStates(events: readonly BuildEvent[]): string[] {
  return events.flatMap((e) => (e.type === 'step' && e.state !== 'metadata' ? [`${e.text} ${e.state}`] : []));
}

const KEY = `sha256:${'1'.repeat(64)}` as Digest;
const OUTCOME: StepOutcome = {
  layer: {
    descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'2'.repeat(64)}` as Digest, size: 10 },
    diffId: `sha256:${'3'.repeat(64)}` as Digest,
  },
  history: { created_by: 'COPY a /a' },
  config: {},
};
const NO_READER: BlobReader = {
  openBlob: async () => {
    throw new Error('not read in this test');
  },
  readBlob: async () => {
    throw new Error('not read in this test');
  },
};

describe('LayeredStepCache', () => {
  it('hits an imported cache, hands back its reader, records the hit and writes it through to the local cache', async () => {
    const local = new Map<Digest, StepOutcome>();
    const localCache = { get: async (k: Digest) => local.get(k), put: async (k: Digest, o: StepOutcome) => void local.set(k, o), mayHave: async () => false };
    const imported: ImportedStepCache = { description: 'test import', outcomes: new Map([[KEY, OUTCOME]]), reader: NO_READER };
    const cache = new LayeredStepCache({ local: localCache, imported: [imported] });
    expect(cache.readers).toEqual([NO_READER]);
    const hit = await cache.lookup(KEY);
    expect(hit).toEqual({ outcome: OUTCOME, source: 'test import', reader: NO_READER });
    expect(local.get(KEY)).toEqual(OUTCOME);
    expect([...cache.recorded().keys()]).toEqual([KEY]);
    // Now the local cache answers first.
    expect((await cache.lookup(KEY))?.source).toBe('local');
    expect(await cache.get(`sha256:${'4'.repeat(64)}` as Digest)).toBeUndefined();
    // An imported cache holds keys only, so every definition may hit there.
    expect(await cache.mayHave(`sha256:${'5'.repeat(64)}` as Digest)).toBe(true);
    expect(await new LayeredStepCache({ local: localCache }).mayHave(KEY)).toBe(false);
    expect(await new LayeredStepCache({ local: localCache, imported: [imported], reads: false }).mayHave(KEY)).toBe(false);
  });

  it('under --no-cache nothing hits, but new outcomes are still recorded for export', async () => {
    const cache = new LayeredStepCache({ imported: [{ description: 'x', outcomes: new Map([[KEY, OUTCOME]]), reader: NO_READER }], reads: false });
    expect(await cache.get(KEY)).toBeUndefined();
    await cache.put(KEY, OUTCOME);
    expect(cache.recorded().get(KEY)).toEqual(OUTCOME);
  });
});

describe('cache specs', () => {
  it('parses buildx syntax and the bare-REF shorthand', () => {
    expect(parseCacheImport('127.0.0.1:5000/app:cache')).toEqual({ type: 'registry', ref: '127.0.0.1:5000/app:cache' });
    expect(parseCacheImport('type=registry,ref=127.0.0.1:5000/app:cache')).toEqual({ type: 'registry', ref: '127.0.0.1:5000/app:cache' });
    expect(parseCacheImport('type=local,src=c', '/ci')).toEqual({ type: 'local', src: '/ci/c' });
    expect(parseCacheExport('type=registry,ref=127.0.0.1:5000/app:cache,mode=max')).toEqual({ type: 'registry', ref: '127.0.0.1:5000/app:cache', mode: 'max' });
    expect(parseCacheExport('type=local,dest=/tmp/c')).toEqual({ type: 'local', dest: '/tmp/c', mode: 'min' });
    expect(parseCacheExport('type=registry,ref=r.example/app:c,image-manifest=true,oci-mediatypes=true').type).toBe('registry');
  });

  it.each([
    ['--cache-to', 'type=registry,ref=127.0.0.1:5000/app:c,mode=all', /mode must be min or max/],
    ['--cache-to', 'type=gha', /cache type "gha" is not supported/],
    ['--cache-to', 'type=local', /needs dest=DIR/],
    ['--cache-to', 'type=registry', /needs ref=/],
    ['--cache-to', `type=registry,ref=127.0.0.1:5000/app@sha256:${'a'.repeat(64)}`, /not a digest/],
    ['--cache-from', 'type=local,dest=/x', /unknown attribute "dest"/],
    ['--cache-from', 'type=registry,ref=UPPER/Case', /--cache-from/],
    ['--cache-from', 'type=registry,junk', /"junk" is not KEY=VALUE/],
    ['--cache-to', 'type=local,dest=/x,ignore-error=maybe', /ignore-error must be true or false/],
  ])('%s %s fails before any build', (flag, spec, message) => {
    const parse = flag === '--cache-to' ? parseCacheExport : parseCacheImport;
    expect(() => parse(spec)).toThrow(message);
  });
});

describe('local cache round trip', () => {
  const dockerfile = 'FROM scratch\nCOPY a.txt /a.txt\nENV X=1\nCOPY b.txt /b.txt\nWORKDIR /app\n';

  it('a fresh store hits every layer step from an exported cache, reading no layer it does not need', async () => {
    const ctx = await context({ 'a.txt': 'alpha\n', 'b.txt': 'beta\n' });
    const first = await freshStore();
    const cache1 = new LayeredStepCache({ local: LocalStepCache.forStore(first.root, first.blobs) });
    const built1 = await build(first, dockerfile, ctx, cache1);
    expect(cache1.recorded().size).toBe(3);
    const dest = join(work, 'cache-out');
    const words = await exportBuildCache({ type: 'local', dest, mode: 'min' }, { cache: cache1, finals: [built1.image], reader: built1.reader, io: {} });
    expect(words).toContain('3 steps');
    const layout = await OciLayout.open(dest);
    const root = await layout.resolve('cache');
    expect(root.artifactType).toBe(BUILD_CACHE_ARTIFACT_TYPE);

    const second = await freshStore();
    const warnings: string[] = [];
    const imported = await importBuildCaches([{ type: 'local', src: dest }], {}, (m) => warnings.push(m));
    expect(warnings).toEqual([]);
    expect(imported[0]!.outcomes.size).toBe(3);
    const cache2 = new LayeredStepCache({ local: LocalStepCache.forStore(second.root, second.blobs), imported });
    const events: BuildEvent[] = [];
    const built2 = await build(second, dockerfile, ctx, cache2, events);
    expect(stepStates(events)).toEqual(['COPY a.txt /a.txt cached', 'COPY b.txt /b.txt cached', 'WORKDIR /app cached']);
    expect(serializeImage(built2.image).manifest.descriptor.digest).toBe(serializeImage(built1.image).manifest.descriptor.digest);
    // Every layer can be read through the build's reader (from the imported layout); the store holds none of them.
    for (const l of built2.image.layers) {
      expect(await second.blobs.hasBlob(l.descriptor)).toBe(false);
      expect((await built2.reader.readBlob(l.descriptor)).byteLength).toBe(l.descriptor.size);
    }
  });

  it('mode=min keeps only the final image chain; mode=max keeps every stage', async () => {
    const ctx = await context({ 'a.txt': 'alpha\n', 'b.txt': 'beta\n' });
    const store = await freshStore();
    const cache = new LayeredStepCache({ local: LocalStepCache.forStore(store.root, store.blobs) });
    const text = 'FROM scratch AS tools\nCOPY a.txt /tools/a\nFROM scratch\nCOPY --from=tools /tools/a /a\nCOPY b.txt /b\n';
    const built = await build(store, text, ctx, cache);
    expect(cache.recorded().size).toBe(3);
    const min = buildCacheArtifact({ type: 'local', dest: '/unused', mode: 'min' }, { cache, finals: [built.image] });
    const max = buildCacheArtifact({ type: 'local', dest: '/unused', mode: 'max' }, { cache, finals: [built.image] });
    expect(min.steps).toBe(2);
    expect(max.steps).toBe(3);
  });

  it('a failed export fails the build unless ignore-error=true, which makes it a warning', async () => {
    const ctx = await context({ 'a.txt': 'alpha\n' });
    const store = await freshStore();
    const cache = new LayeredStepCache({ local: LocalStepCache.forStore(store.root, store.blobs) });
    const built = await build(store, 'FROM scratch\nCOPY a.txt /a\n', ctx, cache);
    const blocker = join(work, 'a-file');
    await writeFile(blocker, 'not a directory');
    const spec = parseCacheExport(`type=local,dest=${blocker}/cache`);
    const warnings: string[] = [];
    const options = { cache, finals: [built.image], reader: built.reader, io: {}, warn: (m: string) => warnings.push(m) };
    await expect(exportBuildCache(spec, options)).rejects.toThrow();
    expect(await exportBuildCache(parseCacheExport(`type=local,dest=${blocker}/cache,ignore-error=true`), options)).toBeUndefined();
    expect(warnings).toEqual([expect.stringMatching(/^build cache not exported \(ignore-error=true\): /)]);
  });

  it('a missing or foreign cache is a warning and imports nothing', async () => {
    const warnings: string[] = [];
    const notCache = join(work, 'not-cache');
    await OciLayout.open(notCache, { create: true });
    const imported = await importBuildCaches(
      [
        { type: 'local', src: join(work, 'nowhere') },
        { type: 'local', src: notCache },
      ],
      {},
      (m) => warnings.push(m),
    );
    expect(imported).toEqual([]);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/local cache .*nowhere not imported: .*does not exist/);
    expect(warnings[1]).toMatch(/not-cache not imported/);
  });
});
