import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStore, type BlobReader } from '../../../src/internals.js';
import { indexImageFilesystem } from '../../../src/layer/index.js';
import { testBuild, writeContext } from './harness.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-imagefs-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('the base filesystem index', () => {
  it('reads each base layer once however many steps look at the filesystem', async () => {
    const store = await LocalStore.open(join(work, 'store'));
    const baseCtx = await writeContext(work, {
      'a.txt': 'a',
      'etc/passwd': 'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n',
      'etc/group': 'root:x:0:\napp:x:1000:\n',
    });
    const base = await testBuild(store, 'FROM scratch\nCOPY a.txt /a\nCOPY etc/ /etc/\n', baseCtx);
    const opened = new Map<string, number>();
    const counting: BlobReader = {
      openBlob: (d, o) => {
        opened.set(d.digest, (opened.get(d.digest) ?? 0) + 1);
        return base.reader.openBlob(d, o);
      },
      readBlob: (d, o) => base.reader.readBlob(d, o),
    };
    const ctx = await writeContext(work, { 'b.txt': 'b', 'c.txt': 'c' });
    // Another store, so the base's layers can only come through the counting reader.
    const fresh = await LocalStore.open(join(work, 'fresh-store'));
    await testBuild(
      fresh,
      'FROM base\nCOPY b.txt /b/\nCOPY --chown=app c.txt /c/\nWORKDIR /w\nCOPY c.txt /w/\n',
      ctx,
      { noCache: true },
      {
        openImage: async () => ({ image: base.image, reader: counting, description: 'base' }),
      },
    );
    expect(base.image.layers).toHaveLength(2);
    for (const layer of base.image.layers) expect(opened.get(layer.descriptor.digest)).toBe(1);

    // The store now keeps each layer's entries by diffID: a rebuild, fully cached or with one source file
    // changed (so the COPY after it and WORKDIR look at the filesystem again), opens no base layer.
    opened.clear();
    const again = (dir: string, noCache: boolean) =>
      testBuild(
        fresh,
        'FROM base\nCOPY b.txt /b/\nCOPY --chown=app c.txt /c/\nWORKDIR /w\nCOPY c.txt /w/\n',
        dir,
        { noCache },
        {
          openImage: async () => ({ image: base.image, reader: counting, description: 'base' }),
        },
      );
    await again(ctx, false);
    const changed = await writeContext(work, { 'b.txt': 'b', 'c.txt': 'c changed' });
    const rebuilt = await again(changed, false);
    expect([...opened]).toEqual([]);
    // Even without the step cache, every look at the base is answered by the records.
    await again(changed, true);
    expect([...opened]).toEqual([]);
    expect(rebuilt.image.layers.length).toBe(base.image.layers.length + 4);
  });

  it('COPY --from a stage unpacks only the layers that hold the sources', async () => {
    const store = await LocalStore.open(join(work, 'store-from'));
    const baseCtx = await writeContext(work, { 'etc/passwd': 'root:x:0:0::/root:/bin/sh\n', 'usr/lib/big': 'x'.repeat(10_000) });
    const base = await testBuild(store, 'FROM scratch\nCOPY etc/ /etc/\nCOPY usr/ /usr/\n', baseCtx);
    const opened = new Map<string, number>();
    const counting: BlobReader = {
      openBlob: (d, o) => {
        opened.set(d.digest, (opened.get(d.digest) ?? 0) + 1);
        return base.reader.openBlob(d, o);
      },
      readBlob: (d, o) => base.reader.readBlob(d, o),
    };
    const fresh = await LocalStore.open(join(work, 'fresh-from'));
    const ctx = await writeContext(work, { 'pkg/a.js': 'a', 'pkg/sub/b.js': 'b' });
    const text =
      'FROM base AS deps\nWORKDIR /app\nCOPY pkg/ ./node_modules/\nFROM base\nWORKDIR /app\nCOPY --from=deps /app/node_modules ./node_modules\nCOPY --from=deps /usr/lib/big /big\n';
    const built = await testBuild(
      fresh,
      text,
      ctx,
      {},
      {
        openImage: async () => ({ image: base.image, reader: counting, description: 'base' }),
      },
    );
    // Each base layer is read by the first look at the base's filesystem; the COPY --from of /app unpacks none of
    // them, the COPY --from of /usr/lib/big only the layer that holds it.
    const [etc, usr] = base.image.layers;
    expect(opened.get(etc?.descriptor.digest ?? '')).toBe(1);
    expect(opened.get(usr?.descriptor.digest ?? '')).toBe(2);
    const index = await indexImageFilesystem(
      built.image.layers.map((l) => l.descriptor),
      built.reader,
      {},
    );
    expect(index.get('/app/node_modules/sub/b.js')).toMatchObject({ type: 'file', size: 1 });
    expect(index.get('/app/node_modules/a.js')).toMatchObject({ type: 'file', size: 1 });
    expect(index.get('/big')).toMatchObject({ type: 'file', size: 10_000 });

    // Rebuilt with the cache, the COPY --from steps are keyed by the records of the layers that make their
    // sources: every step hits, the final image is the same, and no base layer is opened.
    opened.clear();
    const again = await testBuild(
      fresh,
      text,
      ctx,
      {},
      {
        openImage: async () => ({ image: base.image, reader: counting, description: 'base' }),
      },
    );
    expect(again.steps.cached).toBe(again.steps.total);
    expect(again.image.layers.map((l) => l.diffId)).toEqual(built.image.layers.map((l) => l.diffId));
    expect([...opened]).toEqual([]);
    // A changed source in the deps stage changes the records that key the COPY --from: it runs again.
    const changed = await writeContext(work, { 'pkg/a.js': 'a changed', 'pkg/sub/b.js': 'b' });
    const rebuilt = await testBuild(
      fresh,
      text,
      changed,
      {},
      {
        openImage: async () => ({ image: base.image, reader: counting, description: 'base' }),
      },
    );
    // The two WORKDIRs hit; the COPY --from of node_modules runs, and so does the one after it (its parent changed).
    expect(rebuilt.steps.cached).toBe(2);
    const after = await indexImageFilesystem(
      rebuilt.image.layers.map((l) => l.descriptor),
      rebuilt.reader,
      {},
    );
    expect(after.get('/app/node_modules/a.js')).toMatchObject({ size: 9 });
  });

  it('ignores a damaged record and reads the layer instead', async () => {
    const store = await LocalStore.open(join(work, 'store-damaged'));
    const baseCtx = await writeContext(work, { 'etc/passwd': 'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' });
    const base = await testBuild(store, 'FROM scratch\nCOPY etc/ /etc/\n', baseCtx);
    let opens = 0;
    const counting: BlobReader = {
      openBlob: (d, o) => {
        opens += 1;
        return base.reader.openBlob(d, o);
      },
      readBlob: (d, o) => base.reader.readBlob(d, o),
    };
    const fresh = await LocalStore.open(join(work, 'fresh-damaged'));
    const ctx = await writeContext(work, { 'c.txt': 'c' });
    const build = () =>
      testBuild(
        fresh,
        'FROM base\nCOPY --chown=app c.txt /c/\n',
        ctx,
        { noCache: true },
        {
          openImage: async () => ({ image: base.image, reader: counting, description: 'base' }),
        },
      );
    await build();
    expect(opens).toBe(1);
    const dir = join(fresh.root, 'cache', 'layer-index', 'v2');
    const [file] = await readdir(dir);
    const bytes = await readFile(join(dir, file ?? ''));
    bytes[bytes.length - 5] = (bytes[bytes.length - 5] ?? 0) ^ 0xff;
    await writeFile(join(dir, file ?? ''), bytes);
    const built = await build();
    expect(opens).toBe(2);
    expect(built.image.layers).toHaveLength(2);
    await build();
    expect(opens).toBe(2);
  });
});
