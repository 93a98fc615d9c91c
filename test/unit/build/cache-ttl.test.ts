/**
 * `--cache-ttl` (issue 18): a cached step made longer ago than the TTL is run again, from an imported cache
 * or the store's own; the miss says so; an outcome's creation time travels through the cache artifact, and
 * an artifact written before the time was recorded is dated by its history entries.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStore, type BuildEvent, type Digest } from '../../../src/internals.js';
import { LocalStepCache, outcomeTime, type StepOutcome } from '../../../src/build/cache.js';
import { LayeredStepCache, type CacheTtl, type ImportedStepCache } from '../../../src/build/cache-layered.js';
import { exportBuildCache, importBuildCaches } from '../../../src/pipeline/cache-artifact.js';
import type { BlobReader } from '../../../src/store/index.js';
import { testBuild, writeContext } from './harness.js';

let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-cache-ttl-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const DAY = 86_400_000;
const KEY = `sha256:${'1'.repeat(64)}` as Digest;
const NOW = new Date('2024-01-10T00:00:00Z');
const outcome = (createdAt: string | undefined, historyCreated?: string): StepOutcome => ({
  layer: {
    descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'2'.repeat(64)}` as Digest, size: 10 },
    diffId: `sha256:${'3'.repeat(64)}` as Digest,
  },
  history: { created_by: 'COPY a /a', ...(historyCreated !== undefined ? { created: historyCreated } : {}) },
  config: {},
  ...(createdAt !== undefined ? { createdAt } : {}),
});
const NO_READER: BlobReader = {
  openBlob: async () => {
    throw new Error('not read in this test');
  },
  readBlob: async () => {
    throw new Error('not read in this test');
  },
};
const imported = (description: string, o: StepOutcome): ImportedStepCache => ({ description, outcomes: new Map([[KEY, o]]), reader: NO_READER });
const ttl = (days: number): CacheTtl => ({ ms: days * DAY, now: NOW });

function memoryCache(): {
  map: Map<Digest, StepOutcome>;
  cache: { get(k: Digest): Promise<StepOutcome | undefined>; put(k: Digest, o: StepOutcome): Promise<void>; mayHave(): Promise<boolean> };
} {
  const map = new Map<Digest, StepOutcome>();
  return { map, cache: { get: async (k) => map.get(k), put: async (k, o) => void map.set(k, o), mayHave: async () => false } };
}

describe('LayeredStepCache with a TTL', () => {
  it('leaves out an imported outcome older than the TTL and says when it was made; a younger one hits', async () => {
    const made = '2024-01-01T00:00:00.000Z';
    const old = new LayeredStepCache({ imported: [imported('registry cache r/app:cache', outcome(made))], ttl: ttl(7) });
    expect(await old.get(KEY)).toBeUndefined();
    expect(old.expired(KEY)).toEqual({ source: 'registry cache r/app:cache', createdAt: made });
    const young = new LayeredStepCache({ imported: [imported('registry cache r/app:cache', outcome(made))], ttl: ttl(14) });
    expect((await young.get(KEY))?.createdAt).toBe(made);
    expect(young.expired(KEY)).toBeUndefined();
    // Without a TTL nothing is too old.
    expect(await new LayeredStepCache({ imported: [imported('x', outcome(made))] }).get(KEY)).toBeDefined();
  });

  it('dates an outcome without createdAt by its history time; one of unknown age is too old', async () => {
    expect(outcomeTime(outcome(undefined, '2024-01-08T00:00:00Z'))).toBe(Date.parse('2024-01-08T00:00:00Z'));
    expect(outcomeTime(outcome('not a time', '2024-01-08T00:00:00Z'))).toBe(Date.parse('2024-01-08T00:00:00Z'));
    expect(outcomeTime(outcome(undefined))).toBeUndefined();
    const dated = new LayeredStepCache({ imported: [imported('x', outcome(undefined, '2024-01-08T00:00:00Z'))], ttl: ttl(7) });
    expect(await dated.get(KEY)).toBeDefined();
    const unknown = new LayeredStepCache({ imported: [imported('x', outcome(undefined))], ttl: ttl(7) });
    expect(await unknown.get(KEY)).toBeUndefined();
    expect(unknown.expired(KEY)).toEqual({ source: 'x', createdAt: undefined });
  });

  it("bounds the store's own entries too, and takes a younger imported outcome over an expired local one", async () => {
    const { map, cache: local } = memoryCache();
    map.set(KEY, outcome('2023-12-01T00:00:00.000Z'));
    const fresh = outcome('2024-01-09T00:00:00.000Z');
    const layered = new LayeredStepCache({
      local,
      imported: [imported('older import', outcome('2023-12-20T00:00:00.000Z')), imported('newer import', fresh)],
      ttl: ttl(7),
    });
    const hit = await layered.lookup(KEY);
    expect(hit?.source).toBe('newer import');
    // Written through to the store with its own time, which keeps counting from when the step was run.
    expect(map.get(KEY)).toEqual(fresh);
    const none = new LayeredStepCache({ local, imported: [imported('older import', outcome('2023-12-20T00:00:00.000Z'))], ttl: ttl(0.5) });
    expect(await none.get(KEY)).toBeUndefined();
    // The newest of the expired outcomes is the one named.
    expect(none.expired(KEY)).toEqual({ source: 'local', createdAt: '2024-01-09T00:00:00.000Z' });
  });
});

describe('builds with a TTL', () => {
  function cacheFor(store: LocalStore, days: number, now: Date, imports: ImportedStepCache[] = []): LayeredStepCache {
    return new LayeredStepCache({ local: LocalStepCache.forStore(store.root, store.blobs), imported: imports, ttl: { ms: days * DAY, now } });
  }

  async function build(store: LocalStore, contextDir: string, cache: LayeredStepCache, now: Date) {
    const events: BuildEvent[] = [];
    const built = await testBuild(
      store,
      'FROM scratch\nCOPY a.txt /a\nCOPY b.txt /b\n',
      contextDir,
      {},
      {
        events: (e) => events.push(e),
        stepCache: cache,
        cacheReaders: cache.readers,
        now: () => now,
      },
    );
    const steps = events.flatMap((e) => (e.type === 'step' ? [{ state: e.state, miss: e.miss?.reason }] : []));
    return { built, steps };
  }

  it('runs a step made before the TTL again, explains the miss, and dates the new outcome', async () => {
    const ctx = await writeContext(work, { 'a.txt': 'alpha\n', 'b.txt': 'beta\n' });
    const store = await LocalStore.open(join(work, 'store-build'));
    const t0 = new Date('2024-01-01T00:00:00Z');
    const t1 = new Date('2024-01-10T00:00:00Z');
    await build(store, ctx, cacheFor(store, 7, t0), t0);
    const within = await build(store, ctx, cacheFor(store, 14, t1), t1);
    expect(within.steps.map((s) => s.state)).toEqual(['cached', 'cached']);
    const expired = await build(store, ctx, cacheFor(store, 7, t1), t1);
    expect(expired.steps).toEqual([
      { state: 'done', miss: 'COPY a.txt missed: cached step older than --cache-ttl (made 2024-01-01T00:00:00.000Z)' },
      { state: 'done', miss: 'COPY b.txt missed: cached step older than --cache-ttl (made 2024-01-01T00:00:00.000Z)' },
    ]);
    // The same layers, made again: the step records now carry this build's time, so the next build hits.
    expect(expired.built.image.layers.map((l) => l.diffId)).toEqual(within.built.image.layers.map((l) => l.diffId));
    const again = await build(store, ctx, cacheFor(store, 7, t1), t1);
    expect(again.steps.map((s) => s.state)).toEqual(['cached', 'cached']);
  });

  it('an exported outcome keeps its time; one without (an older artifact) is dated by its history entry', async () => {
    const ctx = await writeContext(work, { 'a.txt': 'one\n', 'b.txt': 'two\n' });
    const first = await LocalStore.open(join(work, 'store-export'));
    const t0 = new Date('2024-01-01T00:00:00Z');
    const cache = cacheFor(first, 7, t0);
    const { built } = await build(first, ctx, cache, t0);
    const [[keyA, a], [keyB, b]] = [...cache.recorded()] as [[Digest, StepOutcome], [Digest, StepOutcome]];
    expect(a.createdAt).toBe('2024-01-01T00:00:00.000Z');
    // As an older strata wrote it: no createdAt, history dated by SOURCE_DATE_EPOCH (2023-11-14), never later than the run.
    const { createdAt: _time, ...older } = b;
    const written = new LayeredStepCache({});
    await written.put(keyA, a);
    await written.put(keyB, older);
    const dest = join(work, 'cache-export');
    await exportBuildCache({ type: 'local', dest, mode: 'max' }, { cache: written, finals: [built.image], reader: built.reader, io: {} });
    const [read] = await importBuildCaches([{ type: 'local', src: dest }], {}, () => undefined);
    expect(read!.outcomes.get(keyA)?.createdAt).toBe('2024-01-01T00:00:00.000Z');
    expect(read!.outcomes.get(keyB)?.createdAt).toBeUndefined();

    const second = await LocalStore.open(join(work, 'store-import'));
    const t1 = new Date('2024-01-05T00:00:00Z');
    const result = await build(second, ctx, cacheFor(second, 7, t1, [read!]), t1);
    expect(result.steps[0]).toEqual({ state: 'cached', miss: undefined });
    expect(result.steps[1]!.state).toBe('done');
    expect(result.steps[1]!.miss).toMatch(/^COPY b\.txt missed: step in local cache .*cache-export older than --cache-ttl \(made 2023-11-14T22:13:20\.000Z\)$/);
  });
});
