import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../../../src/digest/index.js';
import { decodeName } from '../../../src/fsname/index.js';
import { LayerIndexStore, extractImageToDirectory, indexImageFilesystem, type ImageFsIndex } from '../../../src/layer/index.js';
import { decodeRecord, encodeRecord } from '../../../src/layer/layer-index-store.js';
import type { Descriptor } from '../../../src/oci/index.js';
import type { BlobReader } from '../../../src/store/types.js';
import { BlobMap, type Spec } from './blob-map.js';

const STACK: Array<readonly Spec[]> = [
  [
    { name: '/', type: 'directory' },
    { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' },
    { name: 'etc/group', content: 'root:x:0:\n' },
    { name: 'a/x', content: 'x' },
    { name: 'a/sub/y', content: 'y' },
    { name: 'bin/tool', content: 'tool', mode: 0o4755 },
    { name: 'bin/alias', type: 'link', linkname: 'bin/tool' },
    { name: 'lnk', type: 'symlink', linkname: '/etc/passwd' },
    { name: 'p', type: 'fifo', mode: 0o600 },
  ],
  [{ name: 'a/.wh..wh..opq' }, { name: 'a/new', content: 'new' }, { name: '.wh.lnk' }, { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n' }],
];

function view(index: ImageFsIndex): unknown {
  return { entries: index.entries(), passwd: index.content('/etc/passwd')?.toString(), group: index.content('/etc/group')?.toString() };
}

describe('layer records kept by diffID', () => {
  let dir: string;
  let blobs: BlobMap;
  let layers: Descriptor[];
  let diffIds: Digest[];
  let opens: number;
  let counting: BlobReader;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-layer-index-'));
    blobs = new BlobMap();
    layers = [];
    diffIds = [];
    for (const [i, specs] of STACK.entries()) {
      const layer = await blobs.layer(specs, i === 0 ? 'gzip' : 'none');
      layers.push(layer);
      const bytes = await blobs.readBlob(layer);
      diffIds.push(digestOf(i === 0 ? gunzipSync(bytes) : bytes));
    }
    opens = 0;
    counting = {
      openBlob: (d) => {
        opens += 1;
        return blobs.openBlob(d);
      },
      readBlob: (d) => blobs.readBlob(d),
    };
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('replays a recorded layer to the same index as reading it, without opening it', async () => {
    const want = { wantContent: ['/etc/passwd', '/etc/group'] };
    const plain = await indexImageFilesystem(layers, blobs, want);
    const store = new LayerIndexStore(dir);
    const first = await indexImageFilesystem(layers, counting, { ...want, records: { cache: store, diffIds } });
    expect(opens).toBe(2);
    expect((await readdir(join(dir, 'v2'))).length).toBe(2);
    const second = await indexImageFilesystem(layers, counting, { ...want, records: { cache: new LayerIndexStore(dir), diffIds } });
    expect(opens).toBe(2);
    expect(view(first)).toEqual(view(plain));
    expect(view(second)).toEqual(view(plain));
    // An index that wants other files' bytes cannot be served by a record.
    await indexImageFilesystem(layers, counting, { wantContent: ['/a/x'], records: { cache: store, diffIds } });
    expect(opens).toBe(4);
  });

  it('records what an extraction reads, and keeps nothing under a diffID the bytes do not have', async () => {
    const root = join(dir, 'root');
    await mkdir(root);
    const store = new LayerIndexStore(join(dir, 'records'));
    const lie = digestOf('not this layer');
    await extractImageToDirectory(layers, counting, root, { records: { cache: store, diffIds: [lie, diffIds[1] ?? lie] } });
    expect(await store.load(lie)).toBeUndefined();
    expect(await store.load(diffIds[0] ?? lie)).toBeUndefined();
    const record = await store.load(diffIds[1] ?? digestOf(''));
    expect(record?.entries.map((e) => e.path)).toEqual(['a/.wh..wh..opq', 'a/new', '.wh.lnk', 'etc/passwd']);
    expect(record?.contents.get(3)?.toString()).toBe('root:x:0:0:root:/root:/bin/sh\n');
  });

  it('refuses a record whose header, checksum, version, diffID or names are wrong', () => {
    const diffId = digestOf('layer');
    const record = {
      entries: [{ path: 'etc/passwd', type: 'file' as const, mode: 0o644, uid: 0, gid: 0, size: 3, mtime: 0, devMajor: 0, devMinor: 0 }],
      contents: new Map([[0, Buffer.from('r:x')]]),
    };
    const good = encodeRecord(diffId, record);
    expect(decodeRecord(good, diffId)).toEqual({ ...record, entries: [{ ...record.entries[0], linkname: undefined }] });
    expect(decodeRecord(good, digestOf('other'))).toBeUndefined();
    const flipped = Buffer.from(good);
    flipped[flipped.length - 3] = (flipped[flipped.length - 3] ?? 0) ^ 1;
    expect(decodeRecord(flipped, diffId)).toBeUndefined();
    expect(decodeRecord(Buffer.from(good.toString('latin1').replace(' v2 ', ' v1 '), 'latin1'), diffId)).toBeUndefined();
    expect(decodeRecord(encodeRecord(diffId, { ...record, entries: [{ ...record.entries[0]!, path: '../x' }] }), diffId)).toBeUndefined();
    expect(decodeRecord(encodeRecord(diffId, { ...record, entries: [{ ...record.entries[0]!, path: '/etc/passwd' }] }), diffId)).toBeUndefined();
    expect(decodeRecord(Buffer.from('garbage'), diffId)).toBeUndefined();
  });

  it('keeps names that are not UTF-8 as their bytes, and drops the records of v1, which did not', async () => {
    const diffId = digestOf('bytes');
    const name = decodeName(Buffer.from('d/bad\xff\xfe', 'latin1'));
    const entry = { path: name, type: 'symlink' as const, mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0, linkname: name, devMajor: 0, devMinor: 0 };
    const record = { entries: [entry], contents: new Map<number, Buffer>() };
    expect(decodeRecord(encodeRecord(diffId, record), diffId)).toEqual(record);
    await mkdir(join(dir, 'v1'), { recursive: true });
    await new LayerIndexStore(dir).save(diffId, record);
    expect(await readdir(dir)).toEqual(['v2']);
  });
});
