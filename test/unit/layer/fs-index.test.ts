import { lstat, mkdir, mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { extractImageToDirectory, indexImageFilesystem, type ImageFsIndex } from '../../../src/layer/index.js';
import type { Descriptor } from '../../../src/oci/index.js';
import { BlobMap, type Spec } from './blob-map.js';

/** The same words for a tree on disk and for an index: type, mode, and size or link target. */
async function describeDisk(root: string, prefix = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(join(root, prefix))).sort()) {
    const rel = prefix === '' ? name : `${prefix}/${name}`;
    const stat = await lstat(join(root, rel));
    const mode = (stat.mode & 0o7777).toString(8);
    if (stat.isSymbolicLink()) out[`/${rel}`] = `symlink -> ${await readlink(join(root, rel))}`;
    else if (stat.isDirectory()) {
      out[`/${rel}`] = `dir ${mode}`;
      Object.assign(out, await describeDisk(root, rel));
    } else if (stat.isFile()) out[`/${rel}`] = `file ${mode} ${stat.size}`;
    else if (stat.isFIFO()) out[`/${rel}`] = `fifo ${mode}`;
    else out[`/${rel}`] = `other ${mode}`;
  }
  return out;
}

function describeIndex(index: ImageFsIndex): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [path, entry] of index.entries()) {
    if (path === '/') continue;
    const mode = entry.mode.toString(8);
    out[path] =
      entry.type === 'symlink' ? `symlink -> ${entry.linkTarget ?? ''}` : entry.type === 'file' ? `file ${mode} ${entry.size}` : `${entry.type} ${mode}`;
  }
  return out;
}

const STACKS: Record<string, Array<readonly Spec[]>> = {
  'whiteouts, opaque dirs, replacements and links': [
    [
      { name: './', type: 'directory' },
      { name: 'etc/', type: 'directory' },
      { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' },
      { name: 'etc/group', content: 'root:x:0:\napp:x:1000:\n' },
      { name: 'a/', type: 'directory', mode: 0o750 },
      { name: 'a/x', content: 'x' },
      { name: 'a/sub/y', content: 'y' },
      { name: 'gone', content: 'gone' },
      { name: 'gonedir/f', content: 'f' },
      { name: 'fd', content: 'file then dir' },
      { name: 'df/c', content: 'c' },
      { name: 'bin/suid', content: 'suid', mode: 0o4755 },
      { name: 'bin/suid-link', type: 'link', linkname: 'bin/suid' },
      { name: 'lnk', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'p', type: 'fifo', mode: 0o600 },
    ],
    [
      { name: '.wh.gone' },
      { name: '.wh.gonedir' },
      { name: 'a/new', content: 'new' },
      { name: 'a/.wh..wh..opq' },
      { name: 'fd/', type: 'directory' },
      { name: 'fd/inner', content: 'inner' },
      { name: 'df', content: 'dir then file' },
      { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n' },
    ],
    [{ name: 'a/.wh.new' }, { name: 'a/newer', content: 'newer' }],
  ],
  'symlinked parents resolved inside the root': [
    [
      { name: 'x', type: 'symlink', linkname: '../../..' },
      { name: 'realetc/', type: 'directory' },
      { name: 'etc', type: 'symlink', linkname: '/realetc' },
      { name: 'abs', type: 'symlink', linkname: '/nowhere/deep' },
      { name: 'f', type: 'symlink', linkname: '/realetc/target' },
    ],
    [
      { name: 'x/tmp/evil', content: 'inside' },
      { name: 'etc/passwd', content: 'app:x:1000:1000::/:/bin/sh\n' },
      { name: 'abs/file', content: 'made its parents' },
      { name: 'f', content: 'replaced the symlink' },
      { name: 'etc/.wh.nothing' },
    ],
  ],
  // What umoci insert, GNU tar -P, and older docker write: root entries, leading / and ./, duplicates (the last
  // wins), a directory after its contents, hard links to earlier entries.
  'layers as real tools write them': [
    [
      { name: '/', type: 'directory', mode: 0o755 },
      { name: './', type: 'directory', mode: 0o755 },
      { name: '/etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n' },
      { name: './etc/group', content: 'root:x:0:\n' },
      { name: '/etc', type: 'directory', mode: 0o750 },
      { name: 'usr/bin/tool', content: 'first', mode: 0o755 },
      { name: '/usr/bin/tool', content: 'second, longer', mode: 0o700 },
      { name: '//usr/bin/./alias', type: 'link', linkname: '/usr/bin/tool' },
      { name: './usr/bin/other', type: 'link', linkname: './usr/bin/tool' },
      { name: 'usr/lib/', type: 'directory', mode: 0o700 },
      { name: 'usr/lib/', type: 'directory', mode: 0o755 },
    ],
    [
      { name: '/', type: 'directory', mode: 0o755 },
      { name: '/usr/bin/.wh.other' },
      { name: '/etc/hostname', content: 'box\n' },
      { name: '/etc/', type: 'directory', mode: 0o755 },
    ],
  ],
};

describe('indexImageFilesystem', () => {
  let base: string;
  let blobs: BlobMap;

  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'strata-fsindex-'));
    blobs = new BlobMap();
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  async function layersOf(stack: Array<readonly Spec[]>): Promise<Descriptor[]> {
    const out: Descriptor[] = [];
    for (const [i, specs] of stack.entries()) out.push(await blobs.layer(specs, i % 2 === 0 ? 'gzip' : 'none'));
    return out;
  }

  for (const [name, stack] of Object.entries(STACKS)) {
    it(`gives the same view as extraction: ${name}`, async () => {
      const layers = await layersOf(stack);
      const root = join(base, 'root');
      await mkdir(root);
      await extractImageToDirectory(layers, blobs, root);
      const index = await indexImageFilesystem(layers, blobs);
      expect(describeIndex(index)).toEqual(await describeDisk(root));
    });
  }

  it('captures wanted contents, follows hard links and resolves symlinks inside the image', async () => {
    const first = STACKS['whiteouts, opaque dirs, replacements and links'] ?? [];
    const index = await indexImageFilesystem(await layersOf(first), blobs, { wantContent: ['/etc/passwd', '/etc/group', '/a/x'] });
    expect(index.content('/etc/passwd')?.toString()).toBe('root:x:0:0:root:/root:/bin/sh\n');
    expect(index.content('/etc/group')?.toString()).toBe('root:x:0:\napp:x:1000:\n');
    expect(index.content('/lnk')?.toString()).toBe('root:x:0:0:root:/root:/bin/sh\n');
    expect(index.content('/a/x')).toBeUndefined();
    expect(index.content('/a/newer')).toBeUndefined();
    expect(index.get('/bin/suid-link')).toMatchObject({ type: 'file', mode: 0o4755, hardlinkOf: '/bin/suid' });
    expect(index.get('/lnk')).toMatchObject({ type: 'symlink', linkTarget: '/etc/passwd' });
    expect(index.get('/gone')).toBeUndefined();
    expect(index.has('/gonedir/f')).toBe(false);
    expect(index.listDir('/a')).toEqual(['newer']);
    expect(index.listDir('/lnk')).toBeUndefined();
    expect(index.listDir('/')).toEqual(['a', 'bin', 'df', 'etc', 'fd', 'lnk', 'p']);
    expect(index.resolve('/lnk', { followFinal: true })).toBe('/etc/passwd');
    expect(index.resolve('/lnk', { followFinal: false })).toBe('/lnk');
    expect(index.resolve('/a/missing/more', { followFinal: true })).toBe('/a/missing/more');
    expect(index.resolve('/lnk/under-a-file', { followFinal: true })).toBeUndefined();
  });

  it('resolves through symlinked parents and stops at loops', async () => {
    const second = STACKS['symlinked parents resolved inside the root'] ?? [];
    const layers = await layersOf([
      ...second,
      [
        { name: 'loop', type: 'symlink', linkname: 'loop' },
        { name: 'ping', type: 'symlink', linkname: 'pong' },
        { name: 'pong', type: 'symlink', linkname: '/ping' },
      ],
    ]);
    const index = await indexImageFilesystem(layers, blobs, { wantContent: ['/etc/passwd'] });
    expect(index.resolve('/x/tmp/evil', { followFinal: true })).toBe('/tmp/evil');
    expect(index.resolve('/x/../../etc/passwd', { followFinal: true })).toBe('/realetc/passwd');
    expect(index.resolve('/abs/file', { followFinal: false })).toBe('/nowhere/deep/file');
    expect(index.get('/etc/passwd')).toMatchObject({ type: 'file', size: 27 });
    expect(index.content('/etc/passwd')?.toString()).toBe('app:x:1000:1000::/:/bin/sh\n');
    expect(index.get('/f')).toMatchObject({ type: 'file' });
    expect(index.resolve('/loop', { followFinal: true })).toBeUndefined();
    expect(index.resolve('/loop', { followFinal: false })).toBe('/loop');
    expect(index.resolve('/ping/x', { followFinal: false })).toBeUndefined();
  });

  it('cleans names as containerd does and keeps them inside the root', async () => {
    const layers = await layersOf(STACKS['layers as real tools write them'] ?? []);
    const index = await indexImageFilesystem(layers, blobs, { wantContent: ['/etc/passwd'] });
    expect(index.content('/etc/passwd')?.toString()).toBe('root:x:0:0:root:/root:/bin/sh\n');
    expect(index.get('/etc')).toMatchObject({ type: 'dir', mode: 0o755 });
    expect(index.get('/usr/bin/tool')).toMatchObject({ type: 'file', mode: 0o700, size: 14 });
    expect(index.get('/usr/bin/alias')).toMatchObject({ type: 'file', hardlinkOf: '/usr/bin/tool' });
    expect(index.has('/usr/bin/other')).toBe(false);
    expect(index.listDir('/')).toEqual(['etc', 'usr']);
  });

  it('still refuses names that escape after cleaning', async () => {
    for (const name of ['../../x', '/../x', './a/../../x', '//..//x']) {
      const layers = await layersOf([[{ name, content: 'x' }]]);
      await expect(indexImageFilesystem(layers, blobs)).rejects.toMatchObject({
        code: 'E_LAYER_UNSAFE',
        message: expect.stringContaining('escapes the layer root'),
      });
      const root = join(base, 'escape');
      await mkdir(root, { recursive: true });
      await expect(extractImageToDirectory(layers, blobs, root)).rejects.toMatchObject({ code: 'E_LAYER_UNSAFE' });
      expect(await readdir(root)).toEqual([]);
    }
    const link = await layersOf([
      [
        { name: 'a', content: 'x' },
        { name: 'pw', type: 'link', linkname: '/../a' },
      ],
    ]);
    await expect(indexImageFilesystem(link, blobs)).rejects.toMatchObject({ code: 'E_LAYER_UNSAFE' });
  });

  it('refuses what extraction refuses', async () => {
    const loop = await layersOf([[{ name: 'etc', type: 'symlink', linkname: '/etc' }], [{ name: 'etc/evil', content: 'x' }]]);
    await expect(indexImageFilesystem(loop, blobs)).rejects.toMatchObject({ code: 'E_LAYER_UNSAFE' });
    const escaping = await layersOf([[{ name: '../escape', content: 'x' }]]);
    await expect(indexImageFilesystem(escaping, blobs)).rejects.toMatchObject({ code: 'E_LAYER_UNSAFE' });
    const dotdot = await layersOf([[{ name: 'a/x', content: 'x' }], [{ name: 'a/.wh...' }]]);
    await expect(indexImageFilesystem(dotdot, blobs)).rejects.toMatchObject({ code: 'E_LAYER_UNSAFE' });
    const dangling = await layersOf([[{ name: 'pw', type: 'link', linkname: 'etc/passwd' }]]);
    await expect(indexImageFilesystem(dangling, blobs)).rejects.toMatchObject({ code: 'E_LAYER_INVALID' });
    const underFile = await layersOf([[{ name: 'f', content: 'x' }], [{ name: 'f/g', content: 'y' }]]);
    await expect(indexImageFilesystem(underFile, blobs)).rejects.toMatchObject({ code: 'E_LAYER_INVALID' });
  });
});
