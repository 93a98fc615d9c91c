import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { isStrataError } from '../../../src/errors/index.js';
import { readLayer, writeLayer, importTarLayer, type LayerEntry } from '../../../src/layer/index.js';
import { createZstdCompress, createZstdDecompress } from '../../../src/layer/zstd.js';
import { describeWithTools, findOnPath } from '../../helpers/tools.js';
import { makeTar } from './make-tar.js';
import { TempStore } from './temp-store.js';
import { tempDir } from './tree.js';

let dirs: string[];
let store: TempStore;
beforeEach(async () => {
  dirs = [];
  store = await TempStore.create();
});
afterEach(async () => {
  await store.remove();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function dir(): Promise<string> {
  const d = await tempDir('zstd');
  dirs.push(d);
  return d;
}

async function through(stream: Duplex, input: Buffer | Iterable<Buffer> | AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline(Buffer.isBuffer(input) ? Readable.from([input]) : Readable.from(input), stream, async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) chunks.push(chunk);
  });
  return Buffer.concat(chunks);
}

/** 6 MiB: random parts (which zstd cannot shrink) between text parts, fed in uneven chunks. */
function sample(): Buffer[] {
  const parts: Buffer[] = [];
  for (let i = 0; i < 6; i++) parts.push(i % 2 === 0 ? randomBytes(1024 * 1024 - 7) : Buffer.from(`line ${i}\n`.repeat(130_000)));
  return parts;
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describeWithTools(['zstd'], 'zstd program streams', () => {
  it('round-trip a few MiB, and compressing is deterministic and readable by the zstd program', async () => {
    const input = sample();
    const whole = Buffer.concat(input);
    const packed = await through(createZstdCompress(3), input);
    expect(packed.length).toBeLessThan(whole.length);
    expect(packed.subarray(0, 4)).toEqual(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
    expect((await through(createZstdDecompress('round trip'), packed)).equals(whole)).toBe(true);
    expect((await through(createZstdCompress(3), input)).equals(packed)).toBe(true);
    // Any thread count gives the same bytes from stdin (the reproducibility claim); a named file would not,
    // as zstd then records its size in the frame header.
    for (const threads of ['-T1', '-T2', '-T4']) {
      expect(execFileSync('zstd', ['-c', '-q', threads, '-3'], { input: whole, maxBuffer: 64 << 20 }).equals(packed)).toBe(true);
    }
    expect(execFileSync('zstd', ['-d', '-c', '-q'], { input: packed, maxBuffer: 64 << 20 }).equals(whole)).toBe(true);
  });

  it('bad input fails with a StrataError naming the layer, and does not hang', async () => {
    const error = await caught(through(createZstdDecompress('layer sha256:feed'), Buffer.from('this is not zstd at all'.repeat(100))));
    expect(isStrataError(error)).toBe(true);
    expect(error).toMatchObject({ code: 'E_LAYER_INVALID', message: expect.stringContaining('layer sha256:feed') });
    // Truncated: a valid start whose end never comes.
    const packed = await through(createZstdCompress(3), sample());
    const truncated = await caught(through(createZstdDecompress('layer sha256:cut'), packed.subarray(0, packed.length >> 1)));
    expect(truncated).toMatchObject({ code: 'E_LAYER_INVALID', message: expect.stringContaining('layer sha256:cut') });
  });

  it('a missing program gives the install hint', async () => {
    const empty = await dir();
    for (const options of [{ env: { PATH: empty } }, { program: join(empty, 'zstd') }]) {
      const error = await caught(through(createZstdDecompress('layer sha256:abc', options), Buffer.from('x')));
      expect(isStrataError(error)).toBe(true);
      expect(error).toMatchObject({ message: expect.stringContaining('layer sha256:abc'), hint: 'install zstd (apt-get install zstd)' });
      const writing = await caught(through(createZstdCompress(3, 'layer', options), Buffer.from('x')));
      expect(writing).toMatchObject({ hint: 'install zstd (apt-get install zstd)' });
    }
  });

  it('destroying the stream kills the child', async () => {
    const d = await dir();
    const wrapper = join(d, 'zstd-wrapper');
    const pidFile = join(d, 'pid');
    await writeFile(wrapper, `#!/bin/sh\necho $$ > '${pidFile}'\nexec '${findOnPath('zstd')!}' "$@"\n`);
    await chmod(wrapper, 0o755);
    const stream = createZstdDecompress('layer', { program: wrapper });
    const packed = await through(createZstdCompress(1), [Buffer.alloc(8 << 20)]);
    // Write the start of a stream and never end it: zstd waits for more input until it is killed.
    stream.write(packed.subarray(0, 64));
    stream.resume();
    let pid = '';
    for (let i = 0; i < 200 && pid === ''; i++) {
      await new Promise((r) => setTimeout(r, 10));
      pid = existsSync(pidFile) ? (await readFile(pidFile, 'utf8')).trim() : '';
    }
    expect(pid).not.toBe('');
    expect(alive(pid)).toBe(true);
    stream.destroy();
    for (let i = 0; i < 200 && alive(pid); i++) await new Promise((r) => setTimeout(r, 10));
    expect(alive(pid)).toBe(false);
  });

  it('refuses a level outside 1-19', () => {
    expect(() => createZstdCompress(0)).toThrow(/1 to 19/);
    expect(() => createZstdCompress(20)).toThrow(/1 to 19/);
  });
});

/** Running (a zombie counts as gone: the kill landed, only the reaping is left). */
function alive(pid: string): boolean {
  try {
    const stat = execFileSync('cat', [`/proc/${pid}/stat`], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    return !/\) Z /.test(stat);
  } catch {
    return false;
  }
}

describeWithTools(['zstd'], 'zstd layers', () => {
  const entries = (root: string): LayerEntry[] => [
    { path: 'etc', type: 'dir', mode: 0o755, size: 0, mtime: 0, uid: 0, gid: 0 },
    { path: 'etc/hello', type: 'file', mode: 0o644, size: 6, mtime: 0, uid: 0, gid: 0, data: Buffer.from('hello\n') },
    { path: 'big', type: 'file', mode: 0o644, size: 3 << 20, mtime: 0, uid: 0, gid: 0, source: join(root, 'big') },
  ];

  it('writeLayer writes +zstd layers reproducibly, and readLayer reads them back streaming', async () => {
    const root = await dir();
    const big = randomBytes(3 << 20);
    await writeFile(join(root, 'big'), big);
    const first = await writeLayer(entries(root), { compression: 'zstd', zstdLevel: 5 }, store);
    const second = await writeLayer(entries(root), { compression: 'zstd', zstdLevel: 5 }, store);
    expect(first.descriptor.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    expect(second.descriptor.digest).toBe(first.descriptor.digest);
    const other = await writeLayer(entries(root), { compression: 'zstd' }, store);
    expect(other.diffId).toBe(first.diffId);
    const blob = await readFile(store.blobPath(first.descriptor.digest));
    expect(execFileSync('zstd', ['-d', '-c', '-q'], { input: blob, maxBuffer: 64 << 20 }).length).toBe(first.uncompressedSize);

    const seen: Record<string, Buffer> = {};
    // Small chunks: the reader pulls through the child process piece by piece.
    const chunks = Array.from({ length: Math.ceil(blob.length / 4096) }, (_, i) => blob.subarray(i * 4096, (i + 1) * 4096));
    for await (const entry of readLayer(Readable.from(chunks), { compression: 'zstd', what: 'zstd layer' })) {
      const parts: Buffer[] = [];
      for await (const c of entry.content) parts.push(c);
      seen[entry.path] = Buffer.concat(parts);
    }
    expect(Object.keys(seen)).toEqual(['big', 'etc', 'etc/hello']);
    expect(seen['etc/hello']?.toString()).toBe('hello\n');
    expect(seen['big']?.equals(big)).toBe(true);
  });

  it('readLayer of bad zstd fails naming the layer; abandoning a read stops the child', async () => {
    const bad = Readable.from([Buffer.from('definitely not zstd'.repeat(1000))]);
    const error = await caught(
      (async () => {
        for await (const _entry of readLayer(bad, { compression: 'zstd', what: 'layer sha256:0bad' })) {
          /* nothing */
        }
      })(),
    );
    expect(error).toMatchObject({ code: 'E_LAYER_INVALID', message: expect.stringContaining('layer sha256:0bad') });

    const tar = await makeTar([
      { name: 'a', content: 'a'.repeat(100_000) },
      { name: 'b', content: 'b' },
    ]);
    const packed = execFileSync('zstd', ['-c', '-q'], { input: tar });
    for await (const entry of readLayer(Readable.from([packed]), { compression: 'zstd', what: 'early exit' })) {
      expect(entry.path).toBe('a');
      break;
    }
    const controller = new AbortController();
    controller.abort();
    await expect(
      (async () => {
        for await (const _entry of readLayer(Readable.from([packed]), { compression: 'zstd', signal: controller.signal })) {
          /* nothing */
        }
      })(),
    ).rejects.toMatchObject({ code: 'E_ABORTED' });
  });

  it('importTarLayer recompresses a tar as zstd; a Docker-format image is refused', async () => {
    const d = await dir();
    await writeFile(join(d, 'l.tar'), await makeTar([{ name: 'x', content: 'x\n' }]));
    const imported = await importTarLayer(join(d, 'l.tar'), { compression: 'zstd' }, store);
    expect(imported.descriptor.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    expect(execFileSync('zstd', ['-d', '-c', '-q'], { input: await readFile(store.blobPath(imported.descriptor.digest)) })).toEqual(
      await readFile(join(d, 'l.tar')),
    );
    await expect(importTarLayer(join(d, 'l.tar'), { compression: 'zstd', mediaTypeFamily: 'docker' }, store)).rejects.toMatchObject({ code: 'E_USAGE' });
    await expect(writeLayer([], { compression: 'zstd', mediaTypeFamily: 'docker' }, store)).rejects.toMatchObject({
      code: 'E_USAGE',
      hint: expect.stringContaining('--format oci'),
    });
  });
});
