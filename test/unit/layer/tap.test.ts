import { createReadStream } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isStrataError } from '../../../src/errors/index.js';
import { readLayer, writeLayer, type LayerEntry, type LayerEntryView, type LayerResult, type LayerTap } from '../../../src/layer/index.js';
import { TempStore } from './temp-store.js';
import { tempDir } from './tree.js';

const MiB = 1024 * 1024;

let store: TempStore;
let dir: string;

beforeEach(async () => {
  store = await TempStore.create();
  dir = await tempDir('tap');
});
afterEach(async () => {
  await store.remove();
  await rm(dir, { recursive: true, force: true });
});

/** What a tap saw, or what readLayer reads back: each entry's view, and the content read where it was. */
type Seen = { view: LayerEntryView; content?: Buffer };

/** A tap that reads the content of entries `wants` picks, up to `limit` bytes of each (then stops reading). */
function recordingTap(wants: (view: LayerEntryView) => boolean, limit = Number.POSITIVE_INFINITY): { tap: LayerTap; seen: Seen[] } {
  const seen: Seen[] = [];
  const tap: LayerTap = {
    entry(view) {
      const record: Seen = { view };
      seen.push(record);
      if (!wants(view)) return undefined;
      return async (content) => {
        const chunks: Buffer[] = [];
        let length = 0;
        for await (const chunk of content) {
          chunks.push(Buffer.from(chunk));
          length += chunk.length;
          if (length >= limit) break;
        }
        record.content = Buffer.concat(chunks);
      };
    },
  };
  return { tap, seen };
}

async function readBack(result: LayerResult): Promise<Seen[]> {
  const out: Seen[] = [];
  for await (const entry of readLayer(createReadStream(store.blobPath(result.descriptor.digest)), { compression: 'gzip' })) {
    const { content, ...view } = entry;
    const chunks: Buffer[] = [];
    for await (const chunk of content) chunks.push(chunk);
    out.push({ view, content: Buffer.concat(chunks) });
  }
  return out;
}

async function entries(): Promise<LayerEntry[]> {
  const big = Buffer.alloc(2 * MiB + 77, 7);
  big.write('\x7fELF', 0, 'latin1');
  await writeFile(join(dir, 'big'), big);
  await writeFile(join(dir, 'small'), 'small file\n');
  const file = (path: string, source: string, size: number, mode = 0o644): LayerEntry => ({ path, type: 'file', mode, size, mtime: 5, uid: 1, gid: 2, source });
  const data = (path: string, text: string): LayerEntry => ({
    path,
    type: 'file',
    mode: 0o600,
    size: text.length,
    mtime: 5,
    uid: 0,
    gid: 0,
    data: Buffer.from(text),
  });
  return [
    { path: 'app', type: 'dir', mode: 0o755, size: 0, mtime: 5, uid: 0, gid: 0 },
    file('app/big', join(dir, 'big'), big.length, 0o755),
    file('app/small', join(dir, 'small'), 11),
    data('app/.wh.gone', ''),
    data('old/.wh..wh..opq', ''),
    data('app/bad\udcffname', 'x'),
    { path: 'app/link', type: 'symlink', mode: 0o777, size: 0, mtime: 5, uid: 0, gid: 0, linkTarget: 'small' },
    { path: 'app/so-hard', type: 'hardlink', mode: 0o644, size: 0, mtime: 5, uid: 0, gid: 0, linkTarget: 'app/small' },
  ];
}

describe('writeLayer with a tap', () => {
  it('shows each entry and its bytes as readLayer reads them back from the blob', async () => {
    const { tap, seen } = recordingTap((v) => v.kind === 'entry' && v.type === 'file');
    const result = await writeLayer(await entries(), { ownership: 'keep', sourceDateEpoch: 3, tap }, store);
    const read = await readBack(result);
    expect(seen.map((s) => s.view)).toEqual(read.map((r) => r.view));
    expect(seen.map((s) => s.view.kind)).toContain('whiteout');
    expect(seen.map((s) => s.view.kind)).toContain('opaque');
    for (const [i, s] of seen.entries()) if (s.content !== undefined) expect(s.content.equals(read[i]!.content!)).toBe(true);
    expect(seen.find((s) => s.view.path === 'app/big')?.content?.length).toBe(2 * MiB + 77);
  });

  it('writes the same layer when the tap stops reading early, or reads nothing', async () => {
    const plain = await writeLayer(await entries(), { ownership: 'keep' }, store);
    const early = recordingTap(() => true, 10);
    const stopped = await writeLayer(await entries(), { ownership: 'keep', tap: early.tap }, store);
    expect(stopped).toEqual(plain);
    expect(early.seen.find((s) => s.view.path === 'app/big')?.content?.length).toBe(MiB);
    const idle = await writeLayer(await entries(), { ownership: 'keep', tap: recordingTap(() => false).tap }, store);
    expect(idle).toEqual(plain);
  });

  it('fails the write when a file changed, even if the tap swallows the error', async () => {
    const listed = await entries();
    await writeFile(join(dir, 'big'), Buffer.alloc(MiB + 5));
    const swallowing: LayerTap = {
      entry: () => async (content) => {
        try {
          for await (const _chunk of content) {
            // read it all
          }
        } catch {
          // a tap that hides errors must not hide the write's
        }
      },
    };
    const failed = await writeLayer(listed, { tap: swallowing }, store).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isStrataError(failed, 'E_IO')).toBe(true);
    expect(await store.contents()).toEqual([]);
  });
});
