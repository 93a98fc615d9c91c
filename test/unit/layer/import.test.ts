import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { digestOf } from '../../../src/digest/index.js';
import { importTarLayer } from '../../../src/layer/index.js';
import { makeTar } from './make-tar.js';
import { TempStore } from './temp-store.js';
import { tempDir } from './tree.js';

let store: TempStore;
let dir: string;

beforeEach(async () => {
  store = await TempStore.create();
  dir = await tempDir('import');
});
afterEach(async () => {
  await store.remove();
  await rm(dir, { recursive: true, force: true });
});

async function put(name: string, data: Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, data);
  return path;
}

const GOOD = [
  { name: './', type: 'directory' as const },
  { name: './etc/', type: 'directory' as const },
  { name: './etc/motd', content: 'welcome\n' },
  { name: './etc/motd2', type: 'link' as const, linkname: './etc/motd' },
  { name: './lib', type: 'symlink' as const, linkname: '../usr/lib' },
];

describe('importTarLayer', () => {
  it('keeps a plain tar byte for byte and gzips it into the store', async () => {
    const tar = await makeTar(GOOD);
    const result = await importTarLayer(await put('layer.tar', tar), {}, store);
    expect(result.diffId).toBe(digestOf(tar));
    expect(result.uncompressedSize).toBe(tar.length);
    expect(result.descriptor.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    const stored = await readFile(store.blobPath(result.descriptor.digest));
    expect(result.descriptor).toMatchObject({ digest: digestOf(stored), size: stored.length });
    expect(gunzipSync(stored).equals(tar)).toBe(true);
    expect([...stored.subarray(4, 10)]).toEqual([0, 0, 0, 0, 0, 0xff]);
  });

  it('detects gzip by its magic bytes, whatever the name, and can store uncompressed', async () => {
    const tar = await makeTar(GOOD);
    const path = await put('misleading.tar', gzipSync(tar));
    const result = await importTarLayer(path, { compression: 'none', mediaTypeFamily: 'docker' }, store);
    expect(result.diffId).toBe(digestOf(tar));
    expect(result.descriptor).toEqual({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar', digest: digestOf(tar), size: tar.length });
    expect((await readFile(store.blobPath(result.descriptor.digest))).equals(tar)).toBe(true);
  });

  it.each([
    [
      'a ../ entry',
      [
        { name: 'ok', content: 'x' },
        { name: '../evil', content: 'pwned' },
      ],
      '"../evil" escapes',
    ],
    ['a nested escape', [{ name: 'a/../../evil', content: 'pwned' }], '"a/../../evil" escapes'],
    ['an absolute path', [{ name: '/etc/passwd', content: 'root::0:0' }], '"/etc/passwd" has an absolute path'],
    ['a hard link out of the root', [{ name: 'shadow', type: 'link' as const, linkname: '../../etc/shadow' }], 'hard link "shadow" points outside'],
  ])('refuses %s with E_LAYER_UNSAFE and leaves the store empty', async (_what, specs, message) => {
    // A big first entry makes sure bytes are already flowing into the store when the bad entry arrives.
    const tar = await makeTar([{ name: 'big', content: randomBytes(3 * 1024 * 1024) }, ...specs]);
    for (const [name, data] of [
      ['bad.tar', tar],
      ['bad.tar.gz', gzipSync(tar)],
    ] as const) {
      const path = await put(name, data);
      const error = await importTarLayer(path, {}, store).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ code: 'E_LAYER_UNSAFE' });
      expect((error as Error).message).toContain(path);
      expect((error as Error).message).toContain(message);
      expect(await store.contents()).toEqual([]);
    }
  });

  it('gives a clean error for a corrupt or truncated gzip and keeps nothing', async () => {
    const gz = gzipSync(await makeTar([{ name: 'big', content: randomBytes(256 * 1024) }]));
    const corrupt = Buffer.from(gz);
    for (let i = 1000; i < 1100; i++) corrupt[i] = (corrupt[i] ?? 0) ^ 0x55;
    const truncated = gz.subarray(0, gz.length - 100);
    for (const [name, data] of [
      ['corrupt.tar.gz', corrupt],
      ['truncated.tar.gz', truncated],
    ] as const) {
      const path = await put(name, data);
      const error = await importTarLayer(path, {}, store).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ code: 'E_LAYER_INVALID', message: expect.stringContaining(path) });
      expect(await store.contents()).toEqual([]);
    }
  });

  it('refuses what is not a tar, and names a missing file', async () => {
    const path = await put('noise.tar', randomBytes(4096));
    await expect(importTarLayer(path, {}, store)).rejects.toMatchObject({
      code: 'E_LAYER_INVALID',
      message: expect.stringContaining('is not a valid tar archive'),
    });
    expect(await store.contents()).toEqual([]);
    await expect(importTarLayer(join(dir, 'missing.tar'), {}, store)).rejects.toMatchObject({
      code: 'E_NOT_FOUND',
      message: expect.stringContaining('missing.tar'),
    });
  });
});
