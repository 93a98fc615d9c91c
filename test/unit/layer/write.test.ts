import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { chmod, lstat, mkdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { digestOf } from '../../../src/digest/index.js';
import { isStrataError } from '../../../src/errors/index.js';
import { readLayer, walkLayerTree, writeLayer, type LayerEntry, type LayerReadEntry, type LayerResult } from '../../../src/layer/index.js';
import { itIfTools } from '../../helpers/tools.js';
import { rawHeaders } from './raw-tar.js';
import { TempStore } from './temp-store.js';
import { LONG_PATH, LONG_TARGET, buildTree, tempDir } from './tree.js';

const SDE = 1_600_000_000;

let store: TempStore;
let dirs: string[];

beforeEach(async () => {
  store = await TempStore.create();
  dirs = [];
});
afterEach(async () => {
  await store.remove();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tree(mtime?: Date): Promise<string> {
  const root = await tempDir('tree');
  dirs.push(root);
  await buildTree(root, mtime);
  return root;
}

async function blob(result: LayerResult): Promise<Buffer> {
  return readFile(store.blobPath(result.descriptor.digest));
}

async function readAll(result: LayerResult): Promise<Array<LayerReadEntry & { text?: string }>> {
  const out: Array<LayerReadEntry & { text?: string }> = [];
  const compression = result.descriptor.mediaType.endsWith('gzip') ? 'gzip' : 'none';
  for await (const entry of readLayer(createReadStream(store.blobPath(result.descriptor.digest)), { compression })) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry.content) chunks.push(chunk);
    out.push(entry.type === 'file' ? { ...entry, text: Buffer.concat(chunks).toString('utf8') } : entry);
  }
  return out;
}

const EXPECTED_ORDER = [
  'a',
  'a/b',
  'a-b',
  'bin',
  'bin/run.sh',
  'bin/sgid',
  'bin/suid',
  'data',
  'data/c.txt',
  'data/pipe',
  'data/readme.txt',
  'data/sticky',
  'empty',
  ...LONG_PATH.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/')),
  'hard',
  'hard/a.txt',
  'hard/b.txt',
  'links',
  'links/abs',
  'links/dangling',
  'links/long',
  'links/rel',
  'links/unicode',
  'ünïcødé',
  'ünïcødé/日本語.txt',
].sort((x, y) => Buffer.compare(Buffer.from(x.replaceAll('/', '\0')), Buffer.from(y.replaceAll('/', '\0')))); // no whiteouts here

describe('walkLayerTree', () => {
  it('lists every path in layer order with types, modes, link targets and hard links', async () => {
    const root = await tree();
    const entries = await walkLayerTree(root);
    expect(entries.map((e) => e.path)).toEqual(EXPECTED_ORDER);
    expect(EXPECTED_ORDER.indexOf('a/b')).toBeLessThan(EXPECTED_ORDER.indexOf('a-b'));
    const byPath = new Map(entries.map((e) => [e.path, e]));
    expect(byPath.get('bin/run.sh')).toMatchObject({ type: 'file', mode: 0o755, size: 18, source: join(root, 'bin/run.sh') });
    expect(byPath.get('bin/suid')).toMatchObject({ type: 'file', mode: 0o4755 });
    expect(byPath.get('bin/sgid')).toMatchObject({ type: 'file', mode: 0o2755 });
    expect(byPath.get('data/sticky')).toMatchObject({ type: 'dir', mode: 0o1777 });
    expect(byPath.get('empty')).toMatchObject({ type: 'dir', mode: 0o700, size: 0 });
    expect(byPath.get('data/pipe')).toMatchObject({ type: 'fifo' });
    expect(byPath.get('links/rel')).toMatchObject({ type: 'symlink', linkTarget: '../data/readme.txt' });
    expect(byPath.get('links/abs')).toMatchObject({ type: 'symlink', linkTarget: '/etc/hostname' });
    expect(byPath.get('links/dangling')).toMatchObject({ type: 'symlink', linkTarget: 'nowhere/missing' });
    expect(byPath.get('links/long')).toMatchObject({ type: 'symlink', linkTarget: LONG_TARGET });
    // The first name of the inode in layer order carries the content; the later ones link to it.
    expect(byPath.get('data/c.txt')).toMatchObject({ type: 'file', size: 13 });
    expect(byPath.get('hard/a.txt')).toMatchObject({ type: 'hardlink', linkTarget: 'data/c.txt', size: 0 });
    expect(byPath.get('hard/b.txt')).toMatchObject({ type: 'hardlink', linkTarget: 'data/c.txt', size: 0 });
    expect(byPath.get(LONG_PATH)?.path.length).toBe(300);
  });

  it('places the tree under a destination, with its missing parents as 0755 dirs', async () => {
    const root = await tree();
    await chmod(root, 0o750);
    const entries = await walkLayerTree(root, { dest: '/opt/app/' });
    expect(entries.slice(0, 2).map((e) => [e.path, e.type, e.mode])).toEqual([
      ['opt', 'dir', 0o755],
      ['opt/app', 'dir', 0o750],
    ]);
    expect(entries.slice(2).map((e) => e.path)).toEqual(EXPECTED_ORDER.map((p) => `opt/app/${p}`));
    expect(entries.find((e) => e.path === 'opt/app/hard/b.txt')).toMatchObject({ type: 'hardlink', linkTarget: 'opt/app/data/c.txt' });
    expect((await walkLayerTree(root, { dest: '/../x' }))[0]?.path).toBe('x');
    expect((await walkLayerTree(root, { dest: '/' })).map((e) => e.path)).toEqual(EXPECTED_ORDER);
  });

  it('follows a symlinked root but not symlinks inside it', async () => {
    const root = await tree();
    const parent = await tempDir('link');
    dirs.push(parent);
    await execFileSync('ln', ['-s', root, join(parent, 'root')]);
    const entries = await walkLayerTree(join(parent, 'root'));
    expect(entries.map((e) => e.path)).toEqual(EXPECTED_ORDER);
  });

  it('stops with E_ABORTED when its signal fires', async () => {
    const root = await tree();
    const controller = new AbortController();
    controller.abort();
    await expect(walkLayerTree(root, { signal: controller.signal })).rejects.toMatchObject({ code: 'E_ABORTED' });
  });

  it('names a missing root', async () => {
    await expect(walkLayerTree('/nonexistent/strata-layer')).rejects.toMatchObject({
      code: 'E_NOT_FOUND',
      message: expect.stringContaining('/nonexistent/strata-layer'),
    });
  });

  it('fails with E_IO naming an unreadable file', async () => {
    const root = await tree();
    await chmod(join(root, 'data/readme.txt'), 0o000);
    await chmod(join(root, 'empty'), 0o755);
    const error = await asUnprivileged(root, () =>
      walkLayerTree(root).then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    expect(isStrataError(error, 'E_IO')).toBe(true);
    expect((error as Error).message).toContain(join(root, 'data/readme.txt'));
  });
});

/** Root reads everything, so run `fn` with the effective uid of nobody (the real uid stays root to switch back). */
async function asUnprivileged<T>(root: string, fn: () => Promise<T>): Promise<T> {
  if (process.geteuid?.() !== 0 || process.seteuid === undefined) return fn();
  await chmod(root, 0o755);
  process.seteuid(65534);
  try {
    return await fn();
  } finally {
    process.seteuid(0);
  }
}

describe('writeLayer', () => {
  it('writes a layer that reads back entry for entry, with contents, modes, links and ids 0', async () => {
    const root = await tree();
    const entries = await walkLayerTree(root);
    const result = await writeLayer(entries, {}, store);
    expect(result.descriptor.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    const data = await blob(result);
    expect(result.descriptor.size).toBe(data.length);
    expect(result.descriptor.digest).toBe(digestOf(data));
    const tar = gunzipSync(data);
    expect(result.diffId).toBe(digestOf(tar));
    expect(result.uncompressedSize).toBe(tar.length);

    const read = await readAll(result);
    expect(read.map((e) => e.path)).toEqual(EXPECTED_ORDER);
    for (const [i, entry] of entries.entries()) {
      const back = read[i];
      expect(back).toMatchObject({ kind: 'entry', path: entry.path, type: entry.type, mode: entry.mode, size: entry.size, uid: 0, gid: 0, mtime: entry.mtime });
      if (entry.type === 'symlink' || entry.type === 'hardlink') expect(back?.linkname).toBe(entry.linkTarget);
      if (entry.type === 'file') expect(back?.text).toBe(await readFile(join(root, entry.path), 'utf8'));
    }
  });

  it('uses PAX only where ustar cannot hold the value, with no time records, ids 0 and empty names', async () => {
    const root = await tree();
    const result = await writeLayer(await walkLayerTree(root), { compression: 'none' }, store);
    expect(result.descriptor.mediaType).toBe('application/vnd.oci.image.layer.v1.tar');
    expect(result.descriptor.digest).toBe(result.diffId);
    const headers = rawHeaders(await blob(result));
    expect(headers).toHaveLength(EXPECTED_ORDER.length);
    const byPath = new Map(headers.map((h) => [h.pax['path'] ?? h.name.replace(/\/$/, ''), h]));
    expect(byPath.get(LONG_PATH)?.pax).toEqual({ path: LONG_PATH });
    expect(byPath.get('ünïcødé/日本語.txt')?.pax).toEqual({ path: 'ünïcødé/日本語.txt' });
    expect(byPath.get('links/long')?.pax).toEqual({ path: 'links/long', linkpath: LONG_TARGET });
    expect(byPath.get('links/unicode')?.pax).toEqual({ path: 'links/unicode', linkpath: 'ünïcødé/日本語.txt' });
    expect(byPath.get('bin/suid')).toMatchObject({ name: 'bin/suid', typeflag: '0', mode: 0o4755, pax: {} });
    expect(byPath.get('data/sticky')).toMatchObject({ name: 'data/sticky/', typeflag: '5', mode: 0o1777 });
    expect(byPath.get('hard/b.txt')).toMatchObject({ typeflag: '1', linkname: 'data/c.txt', size: 0 });
    expect(byPath.get('links/rel')).toMatchObject({ typeflag: '2', linkname: '../data/readme.txt' });
    expect(byPath.get('data/pipe')).toMatchObject({ typeflag: '6' });
    for (const header of headers) {
      expect(header).toMatchObject({ uid: 0, gid: 0, uname: '', gname: '', magic: 'ustar\u000000' });
      expect(Object.keys(header.pax).filter((k) => k !== 'path' && k !== 'linkpath')).toEqual([]);
    }
  });

  itIfTools(['tar'], 'is read by GNU tar: order, modes, ids, link targets, contents and hard links', async () => {
    const root = await tree();
    const result = await writeLayer(await walkLayerTree(root), { compression: 'none', sourceDateEpoch: SDE }, store);
    const path = store.blobPath(result.descriptor.digest);
    const names = execFileSync('tar', ['-tf', path], { encoding: 'utf8' }).trim().split('\n');
    expect(names.map((n) => n.replace(/\/$/, ''))).toEqual(EXPECTED_ORDER);
    const gzipped = await writeLayer(await walkLayerTree(root), { sourceDateEpoch: SDE }, store);
    expect(gzipped.diffId).toBe(result.diffId);
    const fromGzip = execFileSync('tar', ['-tzf', store.blobPath(gzipped.descriptor.digest)], { encoding: 'utf8' })
      .trim()
      .split('\n');
    expect(fromGzip).toEqual(names);
    const listing = execFileSync('tar', ['-tvf', path], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC', LC_ALL: 'C.UTF-8' } })
      .trim()
      .split('\n');
    const line = (name: string): string => listing.find((l) => l.includes(` ${name}`)) ?? `missing ${name}`;
    // Without uname/gname GNU tar prints the numeric ids even though root has a name.
    for (const l of listing) expect(l).toMatch(/^[-dlhpcb][-rwxsStT]{9} 0\/0 /);
    expect(line('bin/suid')).toMatch(/^-rwsr-xr-x 0\/0 +7 2020-09-13 12:26 bin\/suid$/);
    expect(line('bin/sgid')).toMatch(/^-rwxr-sr-x /);
    expect(line('data/sticky/')).toMatch(/^drwxrwxrwt /);
    expect(line('links/rel')).toMatch(/links\/rel -> \.\.\/data\/readme\.txt$/);
    expect(line('links/long')).toContain(`links/long -> ${LONG_TARGET}`);
    expect(line('hard/a.txt')).toMatch(/^hrw-r--r-- .* hard\/a\.txt link to data\/c\.txt$/);
    expect(line('data/pipe')).toMatch(/^prw-r--r-- /);

    const out = await tempDir('untar');
    dirs.push(out);
    execFileSync('tar', ['-xpf', path, '-C', out]);
    expect(await readFile(join(out, LONG_PATH), 'utf8')).toBe('deep\n');
    expect(await readFile(join(out, 'ünïcødé/日本語.txt'), 'utf8')).toBe('こんにちは\n');
    expect((await stat(join(out, 'bin/suid'))).mode & 0o7777).toBe(0o4755);
    expect(await readlink(join(out, 'links/dangling'))).toBe('nowhere/missing');
    const [a, b, c] = await Promise.all(['hard/a.txt', 'hard/b.txt', 'data/c.txt'].map((p) => lstat(join(out, p))));
    expect(a?.ino).toBe(c?.ino);
    expect(b?.ino).toBe(c?.ino);
    expect((await stat(join(out, 'empty'))).isDirectory()).toBe(true);
  });

  it('is reproducible: same tree, other directory and mtimes, SOURCE_DATE_EPOCH set => same diffID and digest', async () => {
    const one = await tree(new Date('2024-01-01T00:00:00Z'));
    const two = await tree(new Date('2025-06-01T12:00:00Z'));
    const first = await writeLayer(await walkLayerTree(one, { dest: '/app' }), { sourceDateEpoch: SDE }, store);
    const second = await writeLayer(await walkLayerTree(two, { dest: '/app' }), { sourceDateEpoch: SDE }, store);
    expect(second.diffId).toBe(first.diffId);
    expect(second.descriptor).toEqual(first.descriptor);
    for (const header of rawHeaders(gunzipSync(await blob(first)))) expect(header.mtime).toBe(SDE);

    const third = await writeLayer(await walkLayerTree(one), { normalizeMtime: true }, store);
    const fourth = await writeLayer(await walkLayerTree(two), { normalizeMtime: true }, store);
    expect(fourth.descriptor.digest).toBe(third.descriptor.digest);
    const kept = await writeLayer(await walkLayerTree(two), {}, store);
    expect(kept.diffId).not.toBe(fourth.diffId);
  });

  it('clamps only mtimes later than SOURCE_DATE_EPOCH', async () => {
    const entries: LayerEntry[] = [
      { path: 'new', type: 'file', mode: 0o644, size: 0, mtime: SDE + 100, uid: 0, gid: 0 },
      { path: 'old', type: 'file', mode: 0o644, size: 0, mtime: 1000, uid: 0, gid: 0 },
    ];
    const result = await writeLayer(entries, { sourceDateEpoch: SDE, compression: 'none' }, store);
    expect(rawHeaders(await blob(result)).map((h) => h.mtime)).toEqual([SDE, 1000]);
  });

  it('writes a gzip header with mtime 0 and a fixed OS byte', async () => {
    const root = await tree();
    const result = await writeLayer(await walkLayerTree(root), { sourceDateEpoch: SDE }, store);
    const head = (await blob(result)).subarray(0, 10);
    expect([...head]).toEqual([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]);
  });

  it('keeps or sets ownership when told, with PAX for ids ustar cannot hold', async () => {
    const entries: LayerEntry[] = [{ path: 'f', type: 'file', mode: 0o600, size: 2, mtime: 0, uid: 1234, gid: 5678, data: Buffer.from('hi') }];
    const kept = rawHeaders(await blob(await writeLayer(entries, { ownership: 'keep', compression: 'none' }, store)));
    expect(kept[0]).toMatchObject({ uid: 1234, gid: 5678, pax: {} });
    const big = rawHeaders(await blob(await writeLayer(entries, { uid: 3_000_000, gid: 7, compression: 'none' }, store)));
    expect(big[0]?.pax).toEqual({ path: 'f', uid: '3000000' });
    expect(big[0]?.gid).toBe(7);
    const back = await readAll(await writeLayer(entries, { uid: 3_000_000, gid: 7 }, store));
    expect(back[0]).toMatchObject({ uid: 3_000_000, gid: 7, text: 'hi', mode: 0o600 });
  });

  it('writes whiteouts before their siblings, and reads them back as whiteouts', async () => {
    const e = (path: string, type: LayerEntry['type'] = 'file'): LayerEntry => ({
      path,
      type,
      mode: type === 'dir' ? 0o755 : 0o644,
      size: 0,
      mtime: 0,
      uid: 0,
      gid: 0,
    });
    const result = await writeLayer([e('a/-b'), e('a/.wh.gone'), e('a', 'dir'), e('a/.wh..wh..opq'), e('-top'), e('.wh.top')], {}, store);
    const read = await readAll(result);
    expect(read.map((r) => [r.kind, r.path])).toEqual([
      ['whiteout', '.wh.top'],
      ['entry', '-top'],
      ['entry', 'a'],
      ['opaque', 'a/.wh..wh..opq'],
      ['whiteout', 'a/.wh.gone'],
      ['entry', 'a/-b'],
    ]);
  });

  it('writes Docker media types when asked', async () => {
    const entries: LayerEntry[] = [{ path: 'f', type: 'file', mode: 0o644, size: 0, mtime: 0, uid: 0, gid: 0 }];
    expect((await writeLayer(entries, { mediaTypeFamily: 'docker' }, store)).descriptor.mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip');
  });

  it('refuses duplicate paths, unnormalized paths and hard links to later or missing entries', async () => {
    const f = (path: string): LayerEntry => ({ path, type: 'file', mode: 0o644, size: 0, mtime: 0, uid: 0, gid: 0 });
    await expect(writeLayer([f('a'), f('a')], {}, store)).rejects.toMatchObject({ code: 'E_LAYER_INVALID' });
    await expect(writeLayer([f('./a')], {}, store)).rejects.toMatchObject({ code: 'E_LAYER_INVALID' });
    await expect(writeLayer([f('../a')], {}, store)).rejects.toMatchObject({ code: 'E_LAYER_INVALID' });
    await expect(writeLayer([{ ...f('a'), type: 'hardlink', linkTarget: 'b' }, f('b')], {}, store)).rejects.toMatchObject({
      code: 'E_LAYER_INVALID',
      message: expect.stringContaining('hard link a'),
    });
    expect(await store.contents()).toEqual([]);
  });

  it('fails cleanly, leaving no blob, when a file vanishes or changes before it is written', async () => {
    const root = await tree();
    const entries = await walkLayerTree(root);
    await rm(join(root, LONG_PATH));
    const gone = await writeLayer(entries, {}, store).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isStrataError(gone, 'E_IO')).toBe(true);
    expect((gone as Error).message).toContain(join(root, LONG_PATH));
    expect(await store.contents()).toEqual([]);

    await mkdir(join(root, 'x'));
    await writeFile(join(root, 'data/readme.txt'), 'now longer than before\n');
    const grown = await writeLayer(
      await walkLayerTree(root).then((es) => es.map((e) => (e.path === 'data/readme.txt' ? { ...e, size: 3 } : e))),
      {},
      store,
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(grown).toMatchObject({ code: 'E_IO', message: expect.stringContaining('changed while the layer was written') });
    expect(await store.contents()).toEqual([]);
  });

  it('fails cleanly when a file of more than 1 MiB (read in chunks) changed before it is written', async () => {
    const root = await tree();
    await writeFile(join(root, 'data/big'), Buffer.alloc(3 * 1024 * 1024));
    const entries = await walkLayerTree(root);
    await writeFile(join(root, 'data/big'), Buffer.alloc(2 * 1024 * 1024));
    const failed = await writeLayer(entries, {}, store).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failed).toMatchObject({ code: 'E_IO', message: expect.stringContaining('changed while the layer was written') });
    expect(await store.contents()).toEqual([]);
  });

  it('fails cleanly when a file becomes unreadable after the walk', async () => {
    const root = await tree();
    const entries = await walkLayerTree(root);
    await chmod(join(root, 'bin/run.sh'), 0o000);
    await chmod(store.dir, 0o777);
    for (const sub of ['tmp', 'blobs']) await chmod(join(store.dir, sub), 0o777);
    const error = await asUnprivileged(root, () =>
      writeLayer(entries, {}, store).then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    expect(error).toMatchObject({ code: 'E_IO', message: expect.stringContaining(`${join(root, 'bin/run.sh')} into the layer: permission denied`) });
    expect(await store.contents()).toEqual([]);
  });

  it('stops with E_ABORTED and leaves nothing when aborted', async () => {
    const root = await tree();
    const controller = new AbortController();
    controller.abort();
    await expect(writeLayer(await walkLayerTree(root), { signal: controller.signal }, store)).rejects.toMatchObject({ code: 'E_ABORTED' });
    expect(await store.contents()).toEqual([]);
  });
});
