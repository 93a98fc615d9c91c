import { execFileSync } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { readLayer, type LayerReadEntry } from '../../../src/layer/index.js';
import { toTarHeader } from '../../../src/layer/tar-header.js';
import { itIfTools } from '../../helpers/tools.js';
import { makeTar } from './make-tar.js';
import { rawHeaders } from './raw-tar.js';
import { tempDir } from './tree.js';

async function collect(
  data: Buffer,
  compression: 'gzip' | 'none',
  read: (entry: LayerReadEntry) => Promise<string | undefined>,
): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  for await (const entry of readLayer(Readable.from([data]), { compression, what: 'test layer' })) {
    const { content: _content, ...rest } = entry;
    out.push({ ...rest, text: await read(entry) });
  }
  return out;
}

async function text(entry: LayerReadEntry): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of entry.content) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

describe('readLayer', () => {
  const layer = makeTar([
    { name: './', type: 'directory' },
    { name: './dir/', type: 'directory' },
    { name: './dir/.wh..wh..opq', content: '' },
    { name: './dir/.wh.gone', content: '' },
    { name: './dir/kept', content: 'kept\n'.repeat(40_000) },
    { name: './dir/skipped', content: 'skipped\n'.repeat(40_000) },
    { name: './dir/half', content: 'x'.repeat(1_000_000) },
    { name: './.wh.top', content: '' },
    { name: './dir/link', type: 'link', linkname: './dir/kept' },
    { name: './dir/sym', type: 'symlink', linkname: '../outside/is/fine/for/symlinks' },
  ]);

  it('streams entries with normalized paths and classifies whiteouts; unread content is skipped', async () => {
    for (const [data, compression] of [
      [await layer, 'none'],
      [gzipSync(await layer), 'gzip'],
    ] as const) {
      const entries = await collect(data, compression, async (entry) => {
        if (entry.path === 'dir/kept') return text(entry);
        if (entry.path === 'dir/half') {
          // Read one chunk and walk away: the reader must skip the rest.
          for await (const chunk of entry.content) return `${chunk.length > 0}`;
        }
        return undefined;
      });
      expect(entries.map((e) => [e['kind'], e['path']])).toEqual([
        ['entry', '.'],
        ['entry', 'dir'],
        ['opaque', 'dir/.wh..wh..opq'],
        ['whiteout', 'dir/.wh.gone'],
        ['entry', 'dir/kept'],
        ['entry', 'dir/skipped'],
        ['entry', 'dir/half'],
        ['whiteout', '.wh.top'],
        ['entry', 'dir/link'],
        ['entry', 'dir/sym'],
      ]);
      expect(entries[2]).toMatchObject({ dir: 'dir' });
      expect(entries[3]).toMatchObject({ target: 'dir/gone' });
      expect(entries[7]).toMatchObject({ target: 'top' });
      expect(entries[4]).toMatchObject({ type: 'file', size: 200_000, mode: 0o644, uid: 0, gid: 0, mtime: 0, text: 'kept\n'.repeat(40_000) });
      expect(entries[6]).toMatchObject({ text: 'true' });
      expect(entries[8]).toMatchObject({ type: 'hardlink', linkname: 'dir/kept' });
      expect(entries[9]).toMatchObject({ type: 'symlink', linkname: '../outside/is/fine/for/symlinks' });
    }
  });

  it('refuses entries that escape the root', async () => {
    const bad = await makeTar([
      { name: 'ok', content: 'x' },
      { name: 'a/../../evil', content: 'x' },
    ]);
    await expect(collect(bad, 'none', async () => undefined)).rejects.toMatchObject({ code: 'E_LAYER_UNSAFE', message: expect.stringContaining('test layer') });
    const link = await makeTar([{ name: 'l', type: 'link', linkname: '/../etc/shadow' }]);
    await expect(collect(link, 'none', async () => undefined)).rejects.toMatchObject({ code: 'E_LAYER_UNSAFE' });
  });

  it("takes an archive that stops after the last entry's content, as Go's archive/tar does (umoci insert writes them)", async () => {
    const tar = await makeTar([
      { name: '/', type: 'directory' },
      { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n' },
    ]);
    const contentEnd = 512 * 2 + 30;
    for (const [cut, ok] of [
      [contentEnd, true],
      [512 * 4, true],
      [512 * 4 + 300, true],
      [contentEnd - 1, false],
      [512 + 100, false],
    ] as const) {
      const data = Buffer.from(tar.subarray(0, cut));
      for (const compression of ['none', 'gzip'] as const) {
        const reading = collect(compression === 'gzip' ? gzipSync(data) : data, compression, text);
        if (ok)
          expect((await reading).map((e) => [e['path'], e['text']])).toEqual([
            ['.', ''],
            ['etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n'],
          ]);
        else await expect(reading, `cut at ${cut}`).rejects.toMatchObject({ code: 'E_LAYER_INVALID' });
      }
    }
    const garbage = Buffer.concat([tar.subarray(0, 512 * 3), Buffer.from('partial header')]);
    await expect(collect(garbage, 'none', text)).rejects.toMatchObject({ code: 'E_LAYER_INVALID' });
  });

  it('cleans root entries and leading / or ./ as containerd does', async () => {
    const tar = await makeTar([
      { name: '/', type: 'directory' },
      { name: '.', type: 'directory' },
      { name: '/etc/shadow', content: 'x' },
      { name: './/etc/./passwd', content: 'x' },
      { name: 'l', type: 'link', linkname: '/etc/shadow' },
    ]);
    const entries = await collect(tar, 'none', async () => undefined);
    expect(entries.map((e) => [e['path'], e['linkname']])).toEqual([
      ['.', undefined],
      ['.', undefined],
      ['etc/shadow', undefined],
      ['etc/passwd', undefined],
      ['l', 'etc/shadow'],
    ]);
  });

  it('fails with E_LAYER_INVALID on a corrupt gzip, a truncated tar, or the wrong compression', async () => {
    const tar = await layer;
    const gz = gzipSync(tar);
    const corrupt = Buffer.from(gz);
    for (let i = 200; i < 260; i++) corrupt[i] = (corrupt[i] ?? 0) ^ 0xff;
    await expect(collect(corrupt, 'gzip', text)).rejects.toMatchObject({ code: 'E_LAYER_INVALID', message: expect.stringContaining('test layer') });
    await expect(collect(tar.subarray(0, 5000), 'none', text)).rejects.toMatchObject({ code: 'E_LAYER_INVALID' });
    await expect(collect(tar, 'gzip', text)).rejects.toMatchObject({ code: 'E_LAYER_INVALID' });
    await expect(collect(gz, 'none', text)).rejects.toMatchObject({ code: 'E_LAYER_INVALID' });
  });

  it('stops with E_ABORTED when its signal fires', async () => {
    const controller = new AbortController();
    const reading = (async () => {
      for await (const entry of readLayer(Readable.from([await layer]), { compression: 'none', signal: controller.signal })) {
        if (entry.path === 'dir/kept') controller.abort();
      }
    })();
    await expect(reading).rejects.toMatchObject({ code: 'E_ABORTED' });
  });

  it('can be abandoned midway without hanging', async () => {
    for await (const entry of readLayer(Readable.from([await layer]), { compression: 'none' })) {
      if (entry.path === 'dir/kept') break;
    }
  });
});

describe('files over 8 GiB', () => {
  const SIZE = 9 * 1024 ** 3 + 123;

  /** The header blocks tar-stream emits for such a file; its 9 GiB body is never written. */
  async function bigHeader(): Promise<Buffer> {
    const packer = pack();
    const header = toTarHeader({ path: 'huge.bin', type: 'file', mode: 0o644, size: SIZE, mtime: 0, uid: 0, gid: 0 }, {});
    expect(header.pax).toEqual({ size: String(SIZE) });
    packer.entry(header, () => undefined);
    const chunks: Buffer[] = [];
    let length = 0;
    for await (const chunk of packer) {
      chunks.push(chunk as Buffer);
      length += (chunk as Buffer).length;
      if (length >= 1536) break;
    }
    return Buffer.concat(chunks).subarray(0, 1536);
  }

  it('records the size in a PAX header, which the reader honours', async () => {
    const head = await bigHeader();
    const [entry] = rawHeaders(Buffer.concat([head, Buffer.alloc(1024)]));
    expect(entry?.pax).toEqual({ path: 'huge.bin', size: String(SIZE) });
    expect(entry?.size).toBe(SIZE);
    for await (const read of readLayer(Readable.from([head]), { compression: 'none' })) {
      expect(read).toMatchObject({ path: 'huge.bin', size: SIZE });
      break;
    }
  });

  itIfTools(['tar'], 'is listed by GNU tar with its full size', async () => {
    const dir = await tempDir('big');
    try {
      const path = join(dir, 'head.tar');
      await writeFile(path, await bigHeader());
      let listing = '';
      try {
        listing = execFileSync('tar', ['-tvf', path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (error) {
        listing = String((error as { stdout?: unknown }).stdout);
      }
      expect(listing).toMatch(new RegExp(`^-rw-r--r-- 0/0 +${SIZE} .* huge\\.bin`));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
