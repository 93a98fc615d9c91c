import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyImage, LocalStore, StrataError, type BaseImage, type Image } from '../../../src/internals.js';
import { TEST_PLATFORM, testBuild, writeContext } from './harness.js';

// A stage's context COPYs are listed while its base image resolves (src/build/handlers/copy-sources.ts).
// These hold that the overlap changes nothing a user sees: the same results, the same errors, and no
// stray failure when the build stops before the COPY runs.
let work: string;
let store: LocalStore;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-prefetch-'));
  store = await LocalStore.open(join(work, 'store'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A base whose resolution waits until `release` is called, with ENV SRC=b.txt. */
function slowBase(): { open: () => Promise<BaseImage>; release: () => void } {
  let release = (): void => undefined;
  const gate = new Promise<void>((r) => (release = r));
  const image: Image = emptyImage(TEST_PLATFORM);
  image.config.config = { Env: ['SRC=b.txt'] };
  return {
    release: () => release(),
    open: async () => {
      await gate;
      return { image, reader: store.blobs, description: 'slow' };
    },
  };
}

describe('COPY sources listed while the base resolves', () => {
  it('gives the same layer as a build whose COPY lists after the base, and words with $ wait for the base', async () => {
    const ctx = await writeContext(work, { 'a.txt': 'a', 'b.txt': 'b', 'dir/c.txt': 'c' });
    const text = 'FROM slow\nCOPY a.txt dir /out/\nCOPY $SRC /env/\n';
    const base = slowBase();
    const building = testBuild(store, text, ctx, { noCache: true }, { openImage: base.open });
    setTimeout(base.release, 20);
    const first = await building;
    const layers = first.image.layers.map((l) => l.diffId);
    expect(layers).toHaveLength(2);
    // The same Dockerfile split so that nothing is literal: nothing is listed ahead.
    const other = slowBase();
    other.release();
    const plain = await testBuild(store, 'FROM slow\nARG A=a.txt\nCOPY $A dir /out/\nCOPY $SRC /env/\n', ctx, { noCache: true }, { openImage: other.open });
    expect(plain.image.layers.map((l) => l.diffId)).toEqual(layers);
  });

  it('a missing source fails the COPY with its line, as before', async () => {
    const ctx = await writeContext(work, { 'a.txt': 'a' });
    const base = slowBase();
    base.release();
    await expect(testBuild(store, 'FROM slow\nCOPY nope.txt /x\n', ctx, {}, { openImage: base.open })).rejects.toMatchObject({
      code: 'E_NOT_FOUND',
      message: expect.stringMatching(/^Dockerfile:2: COPY failed: .*nope\.txt/),
    });
  });

  it('a listing that fails for a build that never reaches the COPY is no unhandled rejection', async () => {
    const ctx = await writeContext(work, { 'a.txt': 'a' });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const failing = async (): Promise<BaseImage> => {
        await new Promise((r) => setTimeout(r, 20));
        throw new StrataError('E_NOT_FOUND', 'no such base');
      };
      await expect(testBuild(store, 'FROM gone\nCOPY nope.txt /x\n', ctx, {}, { openImage: failing })).rejects.toMatchObject({
        message: expect.stringContaining('no such base'),
      });
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
