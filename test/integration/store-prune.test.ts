import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, strata } from '../helpers/cli.js';

const EPOCH = '1700000000';
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-prune-'));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

interface Usage {
  images: { count: number; blobs: number; bytes: number };
  buildCache: { entries: number; blobs: number; bytes: number };
  mounts: { count: number; bytes: number };
  contexts: { count: number; bytes: number };
  corrupt: { count: number; bytes: number };
}

const cacheBytes = (u: Usage): number => u.buildCache.bytes + u.mounts.bytes + u.contexts.bytes + u.corrupt.bytes;

/** A context whose one COPY reads a file of fresh random bytes: every build makes a new layer. */
async function changedBuild(ctx: string, env: Record<string, string>, n: number): Promise<void> {
  await writeFile(join(ctx, 'data.bin'), randomBytes(8 * 1024));
  await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY data.bin /data.bin\nCOPY keep.txt /keep.txt\n');
  await writeFile(join(ctx, 'keep.txt'), 'kept\n');
  ok(await strata(['build', '-t', 'app', ctx], { ...env, BUILD_N: String(n) }));
}

describe.concurrent('strata prune and df', () => {
  it('prune keeps what names need, drops the oldest cache first, and --all leaves only named images', async () => {
    const store = join(work, 'store');
    const config = join(work, 'off.json');
    await writeFile(config, JSON.stringify({ cacheLimit: 'off' }));
    const env = { STRATA_ROOT: store, SOURCE_DATE_EPOCH: EPOCH, STRATA_CONFIG: config };
    const ctx = join(work, 'ctx');
    await mkdir(ctx);
    for (let n = 0; n < 8; n++) await changedBuild(ctx, env, n);
    const df = async (): Promise<Usage> => JSON.parse(ok(await strata(['df', '--format', 'json'], env))) as Usage;

    const before = await df();
    expect(before.images.count).toBe(1);
    // Seven earlier images: their data layers (reached by step entries), manifests and configs.
    expect(before.buildCache.blobs).toBe(21);
    expect(before.buildCache.entries).toBeGreaterThanOrEqual(9);
    expect(ok(await strata(['df'], env))).toMatch(/^Build cache\s+\d+ steps/m);

    // Nothing is older than an hour; the plain prune drops what no name and no step entry reaches
    // (the old images' manifests and configs) and keeps the seven old data layers the step cache names.
    expect(ok(await strata(['prune', '--filter', 'until=1h'], env))).toMatch(/Removed 0 cache entries and 0 blobs/);
    expect(ok(await strata(['prune'], env))).toMatch(/Removed 0 cache entries and 14 blobs/);
    expect((await df()).buildCache.blobs).toBe(7);

    // --keep-storage: the oldest entries go (with the layers only they reach) until the cache fits.
    const keep = 30 * 1024;
    ok(await strata(['prune', '--keep-storage', '30KB'], env));
    const kept = await df();
    expect(cacheBytes(kept)).toBeLessThanOrEqual(keep);
    expect(kept.buildCache.blobs).toBeLessThan(before.buildCache.blobs);
    expect(ok(await strata(['verify'], env))).toMatch(/all good/);

    // --all: the store holds the named image's blobs and nothing else, and the image still builds.
    ok(await strata(['prune', '--all'], env));
    const after = await df();
    expect(after.buildCache).toEqual({ entries: 0, blobs: 0, bytes: 0 });
    expect(cacheBytes(after)).toBe(0);
    const blobs = await readdir(join(store, 'oci', 'blobs', 'sha256'));
    expect(blobs.length).toBe(after.images.blobs);
    expect(ok(await strata(['verify'], env))).toMatch(/all good/);
    ok(await strata(['inspect', 'app'], env));
    await changedBuild(ctx, env, 99);
  }, 120_000);

  it("bounds the cache after each build by the config file's cacheLimit", async () => {
    const store = join(work, 'bounded');
    const config = join(work, 'bounded.json');
    await writeFile(config, JSON.stringify({ cacheLimit: '40KB' }));
    const env = { STRATA_ROOT: store, SOURCE_DATE_EPOCH: EPOCH, STRATA_CONFIG: config };
    const ctx = join(work, 'ctx-bounded');
    await mkdir(ctx);
    for (let n = 0; n < 10; n++) await changedBuild(ctx, env, n);
    const usage = JSON.parse(ok(await strata(['df', '--format', 'json'], env))) as Usage;
    expect(cacheBytes(usage)).toBeLessThanOrEqual(40 * 1024);
    expect(usage.buildCache.blobs).toBeGreaterThan(0);
    expect(ok(await strata(['verify'], env))).toMatch(/all good/);
  }, 120_000);

  it('refuses sizes and durations it cannot read, in one line', async () => {
    const env = { STRATA_ROOT: join(work, 'usage') };
    const size = await strata(['prune', '--keep-storage', 'lots'], env);
    expect(size.code).toBe(2);
    expect(size.stderr).toMatch(/"lots" is not a size/);
    const filter = await strata(['prune', '--filter', 'label=x'], env);
    expect(filter.code).toBe(2);
    expect(filter.stderr).toMatch(/the only filter is until=DURATION/);
  });
});
