import { chmod, chown, link, lstat, mkdir, mkdtemp, readFile, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isStrataError } from '../../../src/errors/index.js';
import { RUN_EXCLUDES, captureChanges, extractImageToDirectory, snapshotRootfs, walkLayerTree, writeLayer, type LayerEntry } from '../../../src/layer/index.js';
import { MemoryBlobStore } from '../../helpers/memory-blobs.js';
import { describeTree } from '../../helpers/tree.js';

const isRoot = process.getuid?.() === 0;
let dir: string;
let root: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strata-changes-'));
  root = join(dir, 'root');
  await mkdir(join(root, 'etc'), { recursive: true });
  await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
  await writeFile(join(root, 'etc', 'hosts'), '127.0.0.1 localhost\n');
  await mkdir(join(root, 'bin'));
  await writeFile(join(root, 'bin', 'tool'), 'tool v1\n');
  await chmod(join(root, 'bin', 'tool'), 0o755);
  await mkdir(join(root, 'data', 'sub', 'deep'), { recursive: true });
  await writeFile(join(root, 'data', 'sub', 'deep', 'f'), 'f\n');
  await writeFile(join(root, 'data', 'keep'), 'keep\n');
  await mkdir(join(root, 'cache', 'old'), { recursive: true });
  await writeFile(join(root, 'cache', 'old', 'x'), 'x\n');
  await writeFile(join(root, 'cache', 'y'), 'y\n');
  await mkdir(join(root, 'proc'));
  await symlink('tool', join(root, 'bin', 'alias'));
  // Old, fixed mtimes, as an unpacked image has.
  for (const p of ['etc/passwd', 'bin/tool', 'data/keep', 'cache/y']) await utimes(join(root, p), 1_000_000, 1_000_000);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function byPath(entries: readonly LayerEntry[]): Map<string, LayerEntry> {
  return new Map(entries.map((e) => [e.path, e]));
}

async function capture(options: { exclude?: string[] } = {}): Promise<{ entries: LayerEntry[]; map: Map<string, LayerEntry> }> {
  const entries = await captureChanges(root, snapshotBefore, { exclude: options.exclude ?? [] });
  return { entries, map: byPath(entries) };
}
let snapshotBefore: Awaited<ReturnType<typeof snapshotRootfs>>;
async function snap(): Promise<void> {
  snapshotBefore = await snapshotRootfs(root, { exclude: RUN_EXCLUDES });
  // The kernel's ctime clock is coarse (a tick); a real step starts a process, which takes longer than that.
  await new Promise((r) => setTimeout(r, 20));
}

describe('snapshotRootfs', () => {
  it('records type, mode, ids, size, ns times, inode and link target with lstat only', async () => {
    const s = await snapshotRootfs(root, { exclude: ['/proc', '/etc/hosts'] });
    const tool = s.entries.get('bin/tool');
    expect(tool).toMatchObject({ type: 'file', mode: 0o755, size: 8, nlink: 1 });
    expect(typeof tool?.mtimeNs).toBe('bigint');
    expect(tool?.mtimeNs).toBe(1_000_000n * 1_000_000_000n);
    expect(s.entries.get('bin/alias')).toMatchObject({ type: 'symlink', linkTarget: 'tool' });
    expect(s.entries.has('proc')).toBe(false);
    expect(s.entries.has('etc/hosts')).toBe(false);
    expect(s.entries.has('etc')).toBe(true);
    expect(s.entries.has('')).toBe(false);
  });

  it('does not follow symlinks out of the root', async () => {
    await symlink('/etc', join(root, 'hostetc'));
    const s = await snapshotRootfs(root);
    expect(s.entries.get('hostetc')?.type).toBe('symlink');
    expect([...s.entries.keys()].some((k) => k.startsWith('hostetc/'))).toBe(false);
  });
});

describe('captureChanges', () => {
  it('reports nothing when nothing changed', async () => {
    await snap();
    const { entries } = await capture();
    expect(entries).toEqual([]);
  });

  it('emits new files with their parents, reading content from disk only when written', async () => {
    await snap();
    await mkdir(join(root, 'app', 'lib'), { recursive: true });
    await writeFile(join(root, 'app', 'lib', 'a.js'), 'hello');
    const { map } = await capture();
    expect(map.get('app/lib/a.js')).toMatchObject({ type: 'file', size: 5, source: join(root, 'app', 'lib', 'a.js') });
    expect(map.get('app/lib')?.type).toBe('dir');
    expect(map.get('app')?.type).toBe('dir');
    expect(map.has('bin')).toBe(false);
  });

  it('detects a same-size rewrite whose mtime was set back (touch -d): ctime moves', async () => {
    await snap();
    await writeFile(join(root, 'bin', 'tool'), 'tool v2\n');
    await utimes(join(root, 'bin', 'tool'), 1_000_000, 1_000_000);
    const after = await lstat(join(root, 'bin', 'tool'));
    expect(after.mtimeMs).toBe(1_000_000_000);
    expect(after.size).toBe(8);
    const { map } = await capture();
    expect(map.get('bin/tool')).toMatchObject({ type: 'file', size: 8, mode: 0o755, mtime: 1_000_000 });
    expect(map.get('bin')?.type).toBe('dir');
    expect(map.has('bin/alias')).toBe(false);
  });

  it('emits deleted paths as whiteouts, only the top-most one', async () => {
    await snap();
    await rm(join(root, 'data', 'sub'), { recursive: true });
    await rm(join(root, 'bin', 'alias'));
    const { map } = await capture();
    expect(map.get('data/.wh.sub')).toMatchObject({ type: 'file', size: 0 });
    expect(map.get('bin/.wh.alias')).toBeDefined();
    expect([...map.keys()].filter((k) => k.includes('deep'))).toEqual([]);
    expect(map.get('data')?.type).toBe('dir');
  });

  it('marks a directory removed and made again (new inode) opaque and emits all of its new contents', async () => {
    await snap();
    // Keep the old inode alive elsewhere so the new directory cannot reuse its number.
    await rename(join(root, 'cache'), join(dir, 'old-cache'));
    await mkdir(join(root, 'cache'));
    await writeFile(join(root, 'cache', 'new'), 'n');
    const { map } = await capture();
    expect(map.get('cache')?.type).toBe('dir');
    expect(map.get('cache/.wh..wh..opq')).toBeDefined();
    expect(map.get('cache/new')).toMatchObject({ size: 1 });
    expect([...map.keys()].filter((k) => k.startsWith('cache/.wh.') && k !== 'cache/.wh..wh..opq')).toEqual([]);
  });

  it('handles rm -rf then mkdir whether or not the inode number comes back: opaque or whiteouts, same result', async () => {
    const store = new MemoryBlobStore();
    const base = await writeLayer(await walkLayerTree(root), { compression: 'none', ownership: 'keep' }, store);
    await snap();
    await rm(join(root, 'cache'), { recursive: true });
    await mkdir(join(root, 'cache'));
    await writeFile(join(root, 'cache', 'y'), 'new y');
    const changes = await captureChanges(root, snapshotBefore);
    const map = byPath(changes);
    expect(map.has('cache/.wh..wh..opq') || map.has('cache/.wh.old')).toBe(true);
    const layer = await writeLayer(changes, { compression: 'none', ownership: 'keep' }, store);
    const out = join(dir, 'out');
    await mkdir(out);
    await extractImageToDirectory([base.descriptor, layer.descriptor], store, out, { ownership: 'keep' });
    expect(await describeTree(out)).toEqual(await describeTree(root));
  });

  it('a socket that replaced a file still deletes the file', async () => {
    await snap();
    await rm(join(root, 'data', 'keep'));
    const { createServer } = await import('node:net');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(join(root, 'data', 'keep'), resolve));
    try {
      const { map } = await capture();
      expect(map.get('data/.wh.keep')).toBeDefined();
      expect(map.has('data/keep')).toBe(false);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('emits mode, owner and symlink target changes', async () => {
    await snap();
    await chmod(join(root, 'data', 'keep'), 0o4750);
    await rm(join(root, 'bin', 'alias'));
    await symlink('other', join(root, 'bin', 'alias'));
    if (isRoot) await chown(join(root, 'etc', 'passwd'), 1000, 1001);
    const { map } = await capture();
    expect(map.get('data/keep')).toMatchObject({ mode: 0o4750 });
    expect(map.get('bin/alias')).toMatchObject({ type: 'symlink', linkTarget: 'other' });
    if (isRoot) expect(map.get('etc/passwd')).toMatchObject({ uid: 1000, gid: 1001 });
  });

  it('turns new paths sharing an inode into a file and hard links, including a link to an unchanged file', async () => {
    await snap();
    await writeFile(join(root, 'data', 'h1'), 'shared');
    await link(join(root, 'data', 'h1'), join(root, 'data', 'h2'));
    await link(join(root, 'bin', 'tool'), join(root, 'bin', 'tool2'));
    const { map } = await capture();
    expect(map.get('data/h1')).toMatchObject({ type: 'file', size: 6 });
    expect(map.get('data/h2')).toMatchObject({ type: 'hardlink', linkTarget: 'data/h1', size: 0 });
    // The existing file's link count (and so its ctime) changed, so it is in the layer as the link's target.
    expect(map.get('bin/tool')).toMatchObject({ type: 'file' });
    expect(map.get('bin/tool2')).toMatchObject({ type: 'hardlink', linkTarget: 'bin/tool' });
  });

  it('handles type changes: a file becoming a directory and a directory becoming a file', async () => {
    await snap();
    await rm(join(root, 'data', 'keep'));
    await mkdir(join(root, 'data', 'keep'));
    await rm(join(root, 'data', 'sub'), { recursive: true });
    await writeFile(join(root, 'data', 'sub'), 'now a file');
    const { map } = await capture();
    expect(map.get('data/keep')?.type).toBe('dir');
    expect(map.get('data/sub')?.type).toBe('file');
    expect(map.has('data/.wh.keep')).toBe(false);
    expect(map.has('data/sub/.wh.deep')).toBe(false);
  });

  it('never leaks excluded paths (executor mounts) or their deletion', async () => {
    await snap();
    await writeFile(join(root, 'etc', 'hosts'), 'changed by the sandbox\n');
    await writeFile(join(root, 'proc', 'x'), 'x');
    await mkdir(join(root, 'run', 'secrets'), { recursive: true });
    await writeFile(join(root, 'run', 'secrets', 'token'), 'SECRET');
    await rm(join(root, 'data', 'keep'));
    const { map } = await capture({ exclude: ['/run/secrets', '/data/keep'] });
    expect([...map.keys()].filter((k) => k.startsWith('proc') || k === 'etc/hosts' || k.startsWith('run/secrets'))).toEqual([]);
    expect(map.has('data/.wh.keep')).toBe(false);
  });

  it('refuses a created name that a layer would read as a whiteout', async () => {
    await snap();
    await writeFile(join(root, 'data', '.wh.sneaky'), '');
    const error = await captureChanges(root, snapshotBefore).catch((e: unknown) => e);
    expect(isStrataError(error, 'E_LAYER_INVALID')).toBe(true);
  });

  it('round-trips: base layer + captured layer extracted equals the tree after the step', async () => {
    const store = new MemoryBlobStore();
    const base = await writeLayer(await walkLayerTree(root), { compression: 'none', ownership: 'keep' }, store);
    await snap();
    // Everything at once: create, modify in place, delete, replace a directory, chmod, links.
    await writeFile(join(root, 'bin', 'tool'), 'tool v3\n');
    await utimes(join(root, 'bin', 'tool'), 1_000_000, 1_000_000);
    await rm(join(root, 'data', 'sub'), { recursive: true });
    await rename(join(root, 'cache'), join(dir, 'gone'));
    await mkdir(join(root, 'cache', 'fresh'), { recursive: true });
    await writeFile(join(root, 'cache', 'fresh', 'z'), 'z');
    await chmod(join(root, 'data'), 0o700);
    await writeFile(join(root, 'data', 'n1'), 'n');
    await link(join(root, 'data', 'n1'), join(root, 'n2'));
    await symlink('/etc/passwd', join(root, 'pw'));
    await mkdir(join(root, 'tmp'));
    await writeFile(join(root, 'tmp', 'scratch'), 'docker keeps /tmp writes');
    const changes = await captureChanges(root, snapshotBefore);
    const layer = await writeLayer(changes, { compression: 'none', ownership: 'keep' }, store);

    const out = join(dir, 'out');
    await mkdir(out);
    await extractImageToDirectory([base.descriptor, layer.descriptor], store, out, { ownership: 'keep' });
    const want = await describeTree(root);
    const got = await describeTree(out);
    expect(got).toEqual(want);
    expect((await readFile(join(out, 'bin', 'tool'))).toString()).toBe('tool v3\n');
  });
});
