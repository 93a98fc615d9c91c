import { createHash } from 'node:crypto';
import { chown, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { StrataError, isStrataError } from '../../../src/errors/index.js';
import { extractImageToDirectory, indexImageFilesystem, type ExtractImageOptions } from '../../../src/layer/index.js';
import type { BlobReader } from '../../../src/store/types.js';
import type { Descriptor } from '../../../src/oci/index.js';
import { BlobMap, type Spec } from './blob-map.js';

import { itAsRoot } from '../../helpers/tools.js';

/** Every path below `dir` with what it is: `file 644 <content>`, `dir 755`, `symlink -> target`. */
async function describeTree(dir: string, prefix = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(join(dir, prefix))).sort()) {
    const rel = prefix === '' ? name : `${prefix}/${name}`;
    const path = join(dir, rel);
    const stat = await lstat(path);
    const mode = (stat.mode & 0o7777).toString(8);
    if (stat.isSymbolicLink()) out[rel] = `symlink -> ${await readlink(path)}`;
    else if (stat.isDirectory()) {
      out[rel] = `dir ${mode}`;
      Object.assign(out, await describeTree(dir, rel));
    } else if (stat.isFile()) out[rel] = `file ${mode} ${(await readFile(path)).toString('utf8')}`;
    else out[rel] = `other ${mode}`;
  }
  return out;
}

async function sha256(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

describe('extractImageToDirectory', () => {
  let base: string;
  let root: string;
  let blobs: BlobMap;

  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'strata-rootfs-'));
    root = join(base, 'root');
    await mkdir(root);
    blobs = new BlobMap();
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  async function extract(stack: Array<readonly Spec[]>, options: ExtractImageOptions = {}): Promise<void> {
    const layers: Descriptor[] = [];
    for (const [i, specs] of stack.entries()) layers.push(await blobs.layer(specs, i % 2 === 0 ? 'gzip' : 'none'));
    await extractImageToDirectory(layers, blobs, root, options);
  }

  it('applies layers in order: whiteouts, opaque dirs, replacements, hard links, modes', async () => {
    await extract([
      [
        { name: './', type: 'directory' },
        { name: 'etc/', type: 'directory' },
        { name: 'etc/passwd', content: 'root:x:0:0::/root:/bin/sh\n' },
        { name: 'a/', type: 'directory', mode: 0o750 },
        { name: 'a/x', content: 'x' },
        { name: 'a/sub/', type: 'directory' },
        { name: 'a/sub/y', content: 'y' },
        { name: 'gone', content: 'gone' },
        { name: 'gonedir/', type: 'directory' },
        { name: 'gonedir/f', content: 'f' },
        { name: 'fd', content: 'file then dir' },
        { name: 'df/', type: 'directory' },
        { name: 'df/c', content: 'c' },
        { name: 'bin/', type: 'directory' },
        { name: 'bin/suid', content: 'suid', mode: 0o4755 },
        { name: 'bin/sticky/', type: 'directory', mode: 0o1777 },
        { name: 'bin/suid-link', type: 'link', linkname: 'bin/suid' },
        { name: 'lnk', type: 'symlink', linkname: '/etc/passwd' },
        { name: 'p', type: 'fifo', mode: 0o600 },
        { name: 'ro/', type: 'directory', mode: 0o555 },
        { name: 'ro/file', content: 'ro' },
      ],
      [
        { name: '.wh.gone' },
        { name: '.wh.gonedir' },
        { name: 'a/new', content: 'new' },
        // After a sibling of its own layer: the marker hides only the lower layer's entries.
        { name: 'a/.wh..wh..opq' },
        { name: 'fd/', type: 'directory' },
        { name: 'fd/inner', content: 'inner' },
        { name: 'df', content: 'dir then file' },
        { name: 'ro/more', content: 'more' },
        { name: 'implicit/parent/file', content: 'deep' },
      ],
      [{ name: 'a/.wh..wh..opq' }, { name: 'a/newer', content: 'newer' }, { name: 'a/.wh.nothing-here' }],
    ]);
    const tree = await describeTree(root);
    expect(tree).toEqual({
      a: 'dir 750',
      'a/newer': 'file 644 newer',
      bin: 'dir 755',
      'bin/sticky': 'dir 1777',
      'bin/suid': 'file 4755 suid',
      'bin/suid-link': 'file 4755 suid',
      df: 'file 644 dir then file',
      etc: 'dir 755',
      'etc/passwd': 'file 644 root:x:0:0::/root:/bin/sh\n',
      fd: 'dir 755',
      'fd/inner': 'file 644 inner',
      implicit: 'dir 755',
      'implicit/parent': 'dir 755',
      'implicit/parent/file': 'file 644 deep',
      lnk: 'symlink -> /etc/passwd',
      p: 'other 600',
      ro: 'dir 555',
      'ro/file': 'file 644 ro',
      'ro/more': 'file 644 more',
    });
    const [one, two] = await Promise.all([lstat(join(root, 'bin/suid')), lstat(join(root, 'bin/suid-link'))]);
    expect(one.ino).toBe(two.ino);
    expect((await lstat(join(root, 'p'))).isFIFO()).toBe(true);
    expect((await lstat(join(root, 'a/newer'))).mtimeMs).toBe(1_000_000_000);
  });

  it("keeps a layer's own entries when its opaque marker or whiteout comes first", async () => {
    await extract([
      [
        { name: 'd/', type: 'directory' },
        { name: 'd/old', content: 'old' },
        { name: 'd/kept-name', content: 'lower' },
        { name: 'w', content: 'lower' },
      ],
      [{ name: 'd/.wh..wh..opq' }, { name: 'd/kept-name', content: 'upper' }, { name: '.wh.w' }, { name: 'w', content: 'upper' }],
    ]);
    expect(await describeTree(root)).toEqual({ d: 'dir 755', 'd/kept-name': 'file 644 upper', w: 'file 644 upper' });
  });

  itAsRoot('keeps ownership and setuid bits when privileged (needs root)', async () => {
    await extract(
      [
        [
          { name: 'owned/', type: 'directory', uid: 1000, gid: 1001, mode: 0o2775 },
          { name: 'owned/suid', content: 's', uid: 1234, gid: 5678, mode: 0o6755 },
          { name: 'owned/link', type: 'symlink', linkname: 'suid', uid: 42, gid: 43 },
        ],
      ],
      { privileged: true },
    );
    const dir = await lstat(join(root, 'owned'));
    const file = await lstat(join(root, 'owned/suid'));
    const link = await lstat(join(root, 'owned/link'));
    expect([dir.uid, dir.gid, dir.mode & 0o7777]).toEqual([1000, 1001, 0o2775]);
    expect([file.uid, file.gid, file.mode & 0o7777]).toEqual([1234, 5678, 0o6755]);
    expect([link.uid, link.gid]).toEqual([42, 43]);
  });

  itAsRoot('creates device nodes when privileged and allowed (needs root)', async () => {
    await extract([[{ name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 }]], { privileged: true, devices: 'create' });
    const node = await lstat(join(root, 'dev/null'));
    expect(node.isCharacterDevice()).toBe(true);
    expect(node.mode & 0o7777).toBe(0o666);
    expect(node.rdev).toBe((1 << 8) | 3);
  });

  itAsRoot('works unprivileged through read-only directories (run as uid 65534 via seteuid)', async () => {
    await chown(base, 65534, 65534);
    await chown(root, 65534, 65534);
    const stack: Array<readonly Spec[]> = [
      [
        { name: 'ro/', type: 'directory', mode: 0o555 },
        { name: 'ro/a', content: 'a' },
        { name: 'ro/sub/', type: 'directory', mode: 0o555 },
        { name: 'ro/sub/b', content: 'b', mode: 0o400 },
        { name: 'gone/', type: 'directory', mode: 0o500 },
        { name: 'gone/deep/', type: 'directory', mode: 0o500 },
        { name: 'gone/deep/f', content: 'f' },
        { name: 'owned', content: 'o', uid: 1234, gid: 1234 },
      ],
      [{ name: 'ro/c', content: 'c' }, { name: 'ro/.wh.a' }, { name: 'ro/sub', content: 'now a file' }, { name: '.wh.gone' }],
    ];
    const layers: Descriptor[] = [];
    for (const specs of stack) layers.push(await blobs.layer(specs));
    process.setegid?.(65534);
    process.seteuid?.(65534);
    try {
      await extractImageToDirectory(layers, blobs, root, { privileged: false });
    } finally {
      process.seteuid?.(0);
      process.setegid?.(0);
    }
    expect(await describeTree(root)).toEqual({ owned: 'file 644 o', ro: 'dir 555', 'ro/c': 'file 644 c', 'ro/sub': 'file 644 now a file' });
    expect((await lstat(join(root, 'owned'))).uid).toBe(65534);
  });

  it('replaces an entry of another type, from a lower layer or earlier in the same layer (the last wins)', async () => {
    await extract([
      [
        { name: 'src', content: 'src' },
        { name: 'target-dir/', type: 'directory' },
        { name: 'f2d', content: 'file' },
        { name: 'f2s', content: 'file' },
        { name: 'f2h', content: 'file' },
        { name: 'd2f/', type: 'directory' },
        { name: 'd2f/x', content: 'x' },
        { name: 'd2s/', type: 'directory' },
        { name: 'd2s/x', content: 'x' },
        { name: 'd2h/', type: 'directory', mode: 0o555 },
        { name: 'd2h/x', content: 'x' },
        { name: 's2f', type: 'symlink', linkname: 'src' },
        { name: 's2d', type: 'symlink', linkname: 'target-dir' },
        { name: 's2h', type: 'symlink', linkname: 'nowhere' },
        { name: 'h2f', type: 'link', linkname: 'src' },
        { name: 'dd/', type: 'directory', mode: 0o700 },
        { name: 'dd/keep', content: 'k' },
        { name: 'ff', content: 'old', mode: 0o600 },
      ],
      [
        { name: 'f2d/', type: 'directory', mode: 0o750 },
        { name: 'f2d/in', content: 'in' },
        { name: 'f2s', type: 'symlink', linkname: 'src' },
        { name: 'f2h', type: 'link', linkname: 'src' },
        { name: 'd2f', content: 'was a directory' },
        { name: 'd2s', type: 'symlink', linkname: 'src' },
        { name: 'd2h', type: 'link', linkname: 'src' },
        { name: 's2f', content: 'was a link' },
        { name: 's2d/', type: 'directory' },
        { name: 's2d/in', content: 'in' },
        { name: 's2h', type: 'link', linkname: 'src' },
        { name: 'h2f', content: 'was a hard link' },
        { name: 'dd/', type: 'directory', mode: 0o755, mtime: 2_000_000 },
        { name: 'ff', content: 'new', mode: 0o640, mtime: 3_000_000 },
        { name: 'dup', content: 'first' },
        { name: 'dup', type: 'symlink', linkname: 'src' },
        { name: 'dup/', type: 'directory' },
        { name: 'dup', type: 'link', linkname: 'src' },
        { name: 'dup', content: 'last', mode: 0o600 },
      ],
    ]);
    expect(await describeTree(root)).toEqual({
      d2f: 'file 644 was a directory',
      d2h: 'file 644 src',
      d2s: 'symlink -> src',
      dd: 'dir 755',
      'dd/keep': 'file 644 k',
      dup: 'file 600 last',
      f2d: 'dir 750',
      'f2d/in': 'file 644 in',
      f2h: 'file 644 src',
      f2s: 'symlink -> src',
      ff: 'file 640 new',
      h2f: 'file 644 was a hard link',
      s2d: 'dir 755',
      's2d/in': 'file 644 in',
      s2f: 'file 644 was a link',
      s2h: 'file 644 src',
      src: 'file 644 src',
      'target-dir': 'dir 755',
    });
    const ino = async (name: string): Promise<number> => (await lstat(join(root, name))).ino;
    for (const name of ['f2h', 'd2h', 's2h']) expect(await ino(name)).toBe(await ino('src'));
    expect(await ino('h2f')).not.toBe(await ino('src'));
    expect((await lstat(join(root, 'dd'))).mtimeMs).toBe(2_000_000_000);
    expect((await lstat(join(root, 'ff'))).mtimeMs).toBe(3_000_000_000);
  });

  itAsRoot('sets owners a created entry did not get by being made: a setgid directory gives its group (needs root)', async () => {
    await extract(
      [
        [
          { name: 'sg/', type: 'directory', mode: 0o2775, gid: 1001 },
          { name: 'later/', type: 'directory', mode: 0o2775, gid: 1001 },
          // Made before its directory is setgid (modes are set when the layer ends): root's group.
          { name: 'later/f', content: 'f' },
        ],
        [
          { name: 'sg/root', content: 'r' },
          { name: 'sg/group', content: 'g', gid: 1001 },
          { name: 'sg/link', type: 'symlink', linkname: 'root' },
          { name: 'sg/user', content: 'u', uid: 1000, gid: 1001 },
          { name: 'plain', content: 'p' },
        ],
      ],
      { privileged: true },
    );
    const owner = async (name: string): Promise<[number, number]> => {
      const info = await lstat(join(root, name));
      return [info.uid, info.gid];
    };
    expect(await owner('sg/root')).toEqual([0, 0]);
    expect(await owner('sg/group')).toEqual([0, 1001]);
    expect(await owner('sg/link')).toEqual([0, 0]);
    expect(await owner('sg/user')).toEqual([1000, 1001]);
    expect(await owner('later/f')).toEqual([0, 0]);
    expect(await owner('plain')).toEqual([0, 0]);
    expect(((await lstat(join(root, 'sg'))).mode & 0o7777).toString(8)).toBe('2775');
  });

  it('streams large files', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 'z');
    await extract([[{ name: 'big', content: big }]]);
    expect((await readFile(join(root, 'big'))).equals(big)).toBe(true);
  });

  it('ignores ownership unless asked, and skips devices unless allowed', async () => {
    await extract(
      [
        [
          { name: 'f', content: 'f', uid: 1234, gid: 5678 },
          { name: 'null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
        ],
      ],
      { privileged: false, devices: 'create' },
    );
    const file = await lstat(join(root, 'f'));
    expect(file.uid).toBe(process.getuid?.() ?? file.uid);
    expect(await describeTree(root)).toEqual({ f: 'file 644 f' });
  });

  it('refuses an entry below a file of a lower layer with E_LAYER_INVALID', async () => {
    await expect(extract([[{ name: 'f', content: 'x' }], [{ name: 'f/g', content: 'y' }]])).rejects.toMatchObject({
      code: 'E_LAYER_INVALID',
      message: expect.stringMatching(/"f" is not a directory|which is not a directory/) as unknown,
    });
  });

  it("fails with the reader's verification error when a blob turns out not to match its digest", async () => {
    const layer = await blobs.layer([{ name: 'f', content: 'f' }], 'none');
    const bytes = await blobs.readBlob(layer);
    const lying: BlobReader = {
      readBlob: async () => bytes,
      openBlob: async () =>
        Readable.from(
          (async function* () {
            yield bytes;
            throw new StrataError('E_DIGEST_MISMATCH', `blob ${layer.digest} does not match its digest`);
          })(),
        ),
    };
    await expect(extractImageToDirectory([layer], lying, root)).rejects.toMatchObject({ code: 'E_DIGEST_MISMATCH' });
    await expect(indexImageFilesystem([layer], lying)).rejects.toMatchObject({ code: 'E_DIGEST_MISMATCH' });
  });

  it('fails with E_ABORTED when the signal is aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(extract([[{ name: 'f', content: 'f' }]], { signal: controller.signal })).rejects.toMatchObject({ code: 'E_ABORTED' });
  });

  describe('hostile layers', () => {
    let sentinel: string;
    let before: Record<string, string>;
    let passwdHash: string;
    let passwdLinks: number;

    beforeEach(async () => {
      sentinel = join(base, 'sentinel');
      await mkdir(sentinel);
      await writeFile(join(sentinel, 'keep'), 'sentinel');
      before = await describeTree(base).then((tree) => Object.fromEntries(Object.entries(tree).filter(([p]) => p.startsWith('sentinel'))));
      passwdHash = await sha256('/etc/passwd');
      passwdLinks = (await lstat('/etc/passwd')).nlink;
    });

    afterEach(async () => {
      const after = Object.fromEntries(Object.entries(await describeTree(base)).filter(([p]) => p.startsWith('sentinel')));
      expect(after).toEqual(before);
      expect(await sha256('/etc/passwd')).toBe(passwdHash);
      expect((await lstat('/etc/passwd')).nlink).toBe(passwdLinks);
      expect(await readdir(base)).toEqual(['root', 'sentinel']);
    });

    async function refused(stack: Array<readonly Spec[]>, code: 'E_LAYER_UNSAFE' | 'E_LAYER_INVALID' = 'E_LAYER_UNSAFE'): Promise<string> {
      try {
        await extract(stack);
      } catch (error) {
        expect(isStrataError(error, code), String(error)).toBe(true);
        return (error as Error).message;
      }
      throw new Error('the hostile layer was extracted without an error');
    }

    it('refuses ../ names', async () => {
      expect(await refused([[{ name: '../escape', content: 'x' }]])).toMatch(/escapes the layer root/);
      expect(await refused([[{ name: 'a/../../sentinel/evil', content: 'x' }]])).toMatch(/escapes/);
    });

    it('refuses an absolute symlink onto itself (etc -> /etc) followed by etc/evil: a loop inside the root', async () => {
      expect(await refused([[{ name: 'etc', type: 'symlink', linkname: '/etc' }], [{ name: 'etc/evil', content: 'pwned' }]])).toMatch(/loop/);
    });

    it('resolves absolute and ../ symlinked parents inside the root', async () => {
      await extract([
        [
          { name: 'abs', type: 'symlink', linkname: sentinel },
          { name: 'rel', type: 'symlink', linkname: '../sentinel' },
          { name: 'x', type: 'symlink', linkname: '../../..' },
          { name: 'realetc/', type: 'directory' },
          { name: 'etc', type: 'symlink', linkname: '/realetc' },
        ],
        [
          { name: 'abs/evil', content: 'pwned' },
          { name: 'rel/evil', content: 'pwned' },
          { name: 'x/tmp/evil', content: 'pwned' },
          { name: 'etc/evil', content: 'inside' },
        ],
      ]);
      expect(await readFile(join(root, sentinel, 'evil'), 'utf8')).toBe('pwned');
      expect(await readFile(join(root, 'sentinel/evil'), 'utf8')).toBe('pwned');
      expect(await readFile(join(root, 'tmp/evil'), 'utf8')).toBe('pwned');
      expect(await readFile(join(root, 'realetc/evil'), 'utf8')).toBe('inside');
    });

    it('takes a hard link to /etc/passwd inside the root, and resolves one through a symlink inside the root', async () => {
      expect(await refused([[{ name: 'pw', type: 'link', linkname: '/etc/passwd' }]], 'E_LAYER_INVALID')).toMatch(/does not exist/);
      await rm(root, { recursive: true });
      await mkdir(root);
      expect(
        await refused(
          [[{ name: 'out', type: 'symlink', linkname: '../../../../etc' }], [{ name: 'pw', type: 'link', linkname: 'out/passwd' }]],
          'E_LAYER_INVALID',
        ),
      ).toMatch(/does not exist/);
      await rm(root, { recursive: true });
      await mkdir(root);
      await extract([
        [
          { name: 'etc/passwd', content: 'image passwd' },
          { name: 'out', type: 'symlink', linkname: '../../../../etc' },
        ],
        [{ name: 'pw', type: 'link', linkname: 'out/passwd' }],
      ]);
      expect((await lstat(join(root, 'pw'))).ino).toBe((await lstat(join(root, 'etc/passwd'))).ino);
    });

    it('replaces a symlink at the final component instead of writing through it', async () => {
      await extract([
        [
          { name: 'f', type: 'symlink', linkname: join(sentinel, 'keep') },
          { name: 'g', type: 'symlink', linkname: '../sentinel/keep' },
          { name: 'd', type: 'symlink', linkname: sentinel },
          { name: 'h', type: 'symlink', linkname: join(sentinel, 'keep') },
          // A duplicate in one layer (forbidden, but hostile layers do it).
          { name: 'h', content: 'same layer' },
        ],
        [
          { name: 'f', content: 'over' },
          { name: 'g', content: 'over' },
          { name: 'd/', type: 'directory' },
          { name: 'd/evil', content: 'inside' },
        ],
      ]);
      expect(await describeTree(root)).toEqual({
        d: 'dir 755',
        'd/evil': 'file 644 inside',
        f: 'file 644 over',
        g: 'file 644 over',
        h: 'file 644 same layer',
      });
    });

    it('refuses whiteouts of . and .. (which would delete the root or its parent)', async () => {
      for (const name of ['.wh...', '.wh..', 'a/.wh...', 'a/.wh..']) {
        await rm(root, { recursive: true, force: true });
        await mkdir(root);
        expect(
          await refused([
            [
              { name: 'a/', type: 'directory' },
              { name: 'a/keep', content: 'k' },
            ],
            [{ name }],
          ]),
        ).toMatch(/whiteout/);
      }
    });

    it('refuses a root that is not a directory, and creates directories through symlinked parents inside the root', async () => {
      expect(await refused([[{ name: './', type: 'symlink', linkname: '/' }]], 'E_LAYER_INVALID')).toMatch(/root/);
      await rm(root, { recursive: true });
      await mkdir(root);
      await extract([
        [{ name: 'up', type: 'symlink', linkname: '/' }],
        [
          { name: 'up/etc/', type: 'directory', mode: 0o700 },
          { name: 'up/etc/x', content: 'x' },
        ],
      ]);
      expect(await describeTree(root)).toEqual({ etc: 'dir 700', 'etc/x': 'file 644 x', up: 'symlink -> /' });
    });

    it('whiteouts and opaque markers behind symlinks act inside the root', async () => {
      await extract([
        [
          { name: 's', type: 'symlink', linkname: sentinel },
          { name: 't', type: 'symlink', linkname: '../sentinel' },
          { name: 'k', type: 'symlink', linkname: join(sentinel, 'keep') },
        ],
        [{ name: 's/.wh.keep' }, { name: 't/.wh..wh..opq' }, { name: '.wh.k' }],
      ]);
      expect(await describeTree(root)).toEqual({ s: `symlink -> ${sentinel}`, t: 'symlink -> ../sentinel' });
    });
  });
});
