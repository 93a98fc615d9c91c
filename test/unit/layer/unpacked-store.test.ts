import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseOverlay, parseSnapshots } from '../../../cli/options.js';
import { digestOf } from '../../../src/digest/index.js';
import { UnpackedStore, copyUnpacked, unpackedKey } from '../../../src/layer/index.js';

async function fill(root: string, text: string): Promise<void> {
  await mkdir(join(root, 'etc'));
  await writeFile(join(root, 'etc', 'passwd'), text);
  await mkdir(join(root, 'ro'));
  await writeFile(join(root, 'ro', 'f'), 'read-only directory\n');
  await chmod(join(root, 'ro'), 0o555);
}

describe('unpacked layer chains kept in the store', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-unpacked-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keys a chain by its diffIDs and by whether owners were applied', () => {
    const a = [digestOf('a'), digestOf('b')];
    expect(unpackedKey(a, true)).toBe(unpackedKey([...a], true));
    expect(unpackedKey(a, true)).not.toBe(unpackedKey(a, false));
    expect(unpackedKey(a, true)).not.toBe(unpackedKey([...a].reverse(), true));
  });

  it('gives back a kept tree while it matches its stat data, drops a damaged one, and keeps the most recently used', async () => {
    const store = new UnpackedStore(join(dir, 'unpacked'), 2);
    expect(await store.get('k1')).toBeUndefined();
    const { root, entries } = await store.put('k1', (r) => fill(r, 'one\n'));
    expect([...entries.keys()].sort()).toEqual(['etc', 'etc/passwd', 'ro', 'ro/f']);
    expect((await store.get('k1'))?.root).toBe(root);

    const copy = join(dir, 'copy');
    await mkdir(copy);
    await copyUnpacked(root, copy, false);
    await writeFile(join(copy, 'etc', 'passwd'), 'changed in the copy\n');
    expect((await store.get('k1'))?.root).toBe(root);

    await writeFile(join(root, 'etc', 'passwd'), 'tampered\n');
    expect(await store.get('k1')).toBeUndefined();
    expect(existsSync(join(dir, 'unpacked', 'k1'))).toBe(false);

    await store.put('k1', (r) => fill(r, 'one\n'));
    await utimes(join(dir, 'unpacked', 'k1'), new Date(1000), new Date(1000));
    await store.put('k2', (r) => fill(r, 'two\n'));
    await store.put('k3', (r) => fill(r, 'three\n'));
    expect((await readdir(join(dir, 'unpacked'))).sort()).toEqual(['k2', 'k3']);
  });

  it('leaves nothing behind when unpacking fails', async () => {
    const store = new UnpackedStore(join(dir, 'unpacked'), 2);
    await expect(
      store.put('k', async (r) => {
        await fill(r, 'x');
        throw new Error('the layer was corrupt');
      }),
    ).rejects.toThrow('corrupt');
    expect(await readdir(join(dir, 'unpacked'))).toEqual([]);
  });

  it('reads STRATA_SNAPSHOTS', () => {
    expect(parseSnapshots(undefined)).toBe(3);
    expect(parseSnapshots('0')).toBe(0);
    expect(parseSnapshots('off')).toBe(0);
    expect(parseSnapshots('5')).toBe(5);
    expect(() => parseSnapshots('many')).toThrow(/STRATA_SNAPSHOTS/);
  });

  it('reads STRATA_OVERLAY', () => {
    expect(parseOverlay(undefined)).toBe(true);
    expect(parseOverlay('auto')).toBe(true);
    expect(parseOverlay('off')).toBe(false);
    expect(parseOverlay('0')).toBe(false);
    expect(() => parseOverlay('maybe')).toThrow(/STRATA_OVERLAY/);
  });
});
