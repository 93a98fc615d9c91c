import { posix } from 'node:path';
import { digestOf, type Digest } from '../digest/index.js';
import {
  extendImageFilesystem,
  indexImageFilesystem,
  extractImageToDirectory,
  classifyWhiteout,
  LayerIndexStore,
  UnpackedStore,
  layerIndexDir,
  unpackedDir,
  unpackedKey,
  type ImageFsIndex,
  type LayerIndexCache,
  type LayerRecord,
  type LayerRecords,
  type UnpackedTree,
} from '../layer/index.js';
import type { Image } from '../image/index.js';
import { currentOwner, type BlobReader } from '../store/index.js';
import { imageContentKey } from './cache.js';
import { chainAnswer } from './chain-answers.js';
import type { BuildSession } from './session.js';
import { MemoKind } from './memo.js';

const FILE_INDEXES = new MemoKind<ImageFsIndex>('fs-index');
const LAYER_RECORDS = new MemoKind<BuildLayerRecords>('layer-records');
/** Images unpacked whole (by content key) or in part (content key and the layers unpacked). */
const ROOTS = new MemoKind<string>('rootfs');
const SNAPSHOTS = new MemoKind<UnpackedTree | undefined>('unpacked');

const USER_FILES = ['/etc/passwd', '/etc/group'];

/**
 * The image's merged filesystem as metadata, with /etc/passwd and /etc/group captured for name
 * lookups. The filesystem depends only on the layers, so indexes are kept per layer chain: a step's
 * image extends the index of its parent's chain by its one new layer instead of reading the base's
 * layers again (which, for a registry base, would download them again). Each layer's entries are
 * kept in the store by diffID once read, so a later build indexes a known layer without opening it.
 */
export function imageFilesystem(session: BuildSession, image: Image, reader: BlobReader): Promise<ImageFsIndex> {
  const layers = image.layers.map((l) => l.descriptor);
  return session.memo.get(FILE_INDEXES.key(layerChainKey(image, layers.length)), async () => {
    const records = await layerRecords(session, image);
    for (let n = layers.length - 1; n >= 1; n--) {
      const prefix = session.memo.peek(FILE_INDEXES.key(layerChainKey(image, n)));
      if (prefix) {
        return extendImageFilesystem(await prefix, layers.slice(n), reader, {
          signal: session.deps.signal,
          records: { ...records, diffIds: records.diffIds.slice(n) },
        });
      }
    }
    return indexImageFilesystem(layers, reader, { wantContent: USER_FILES, signal: session.deps.signal, records });
  });
}

/** The identity of an image's first `n` layers. */
function layerChainKey(image: Image, n: number): string {
  return digestOf(
    image.layers
      .slice(0, n)
      .map((l) => l.diffId)
      .join(','),
  );
}

/** The store's layer records, read at most once per build, for the layers of `image`. */
export async function layerRecords(session: BuildSession, image: Image): Promise<LayerRecords> {
  const cache = await session.memo.get(LAYER_RECORDS.key(), async () => new BuildLayerRecords(new LayerIndexStore(layerIndexDir(session.deps.store.root))));
  return { cache, diffIds: image.layers.map((l) => l.diffId) };
}

/** The image unpacked into a private directory (for COPY --from and RUN), made once per build. */
export function imageRootfs(session: BuildSession, image: Image, reader: BlobReader): Promise<string> {
  return session.memo.get(ROOTS.key(imageContentKey(image)), async () => {
    const root = await session.tempDir('rootfs');
    await extractImageToDirectory(
      image.layers.map((l) => l.descriptor),
      reader,
      root,
      {
        privileged: session.deps.privileged === true,
        signal: session.deps.signal,
        records: await layerRecords(session, image),
      },
    );
    return root;
  });
}

/**
 * A directory holding at least `sources` (absolute paths, no wildcards) of the image, as `imageRootfs` would: only
 * the layers whose records show an entry at, under or above a source are unpacked. COPY --from=deps
 * /app/node_modules then reads the few layers that made it, not the base below. Anything the records cannot
 * decide (a wildcard, a symlink on the way, a hard link out of the sources, a layer never recorded) takes the
 * whole image.
 */
export async function imageRootfsFor(session: BuildSession, image: Image, reader: BlobReader, sources: readonly string[]): Promise<string> {
  const needed = await layersHolding(session, image, reader, sources);
  if (needed === undefined || needed.length === image.layers.length) return imageRootfs(session, image, reader);
  return session.memo.get(ROOTS.key(`${imageContentKey(image)}:${needed.join(',')}`), async () => {
    const root = await session.tempDir('rootfs');
    const records = await layerRecords(session, image);
    await extractImageToDirectory(
      needed.map((i) => image.layers[i]!.descriptor),
      reader,
      root,
      {
        privileged: session.deps.privileged === true,
        signal: session.deps.signal,
        records: { ...records, diffIds: needed.map((i) => records.diffIds[i]!) },
      },
    );
    return root;
  });
}

/**
 * What decides the content of `sources` in the image (owners included), when the layer records can tell: the
 * diffIDs of the layers that make them, the sources, and whether owners are applied. Undefined otherwise.
 */
export async function sourcesFromRecords(session: BuildSession, image: Image, reader: BlobReader, sources: readonly string[]): Promise<Digest | undefined> {
  const needed = await layersHolding(session, image, reader, sources);
  if (needed === undefined) return undefined;
  const diffIds = needed.map((i) => image.layers[i]!.diffId);
  return digestOf(JSON.stringify({ v: 1, privileged: session.deps.privileged === true, layers: diffIds, sources }));
}

async function layersHolding(session: BuildSession, image: Image, reader: BlobReader, sources: readonly string[]): Promise<number[] | undefined> {
  // Kept once known (a function of the chain and the sources), so a rebuild neither indexes the image nor
  // walks its records; "cannot tell" is not kept, as it may come from a record the store failed to keep.
  const answer = await chainAnswer(
    session,
    image,
    `layers holding\n${JSON.stringify(sources)}`,
    async () => ({ needed: (await findLayersHolding(session, image, reader, sources)) ?? null }),
    (a) => a.needed !== null,
  );
  return answer.needed ?? undefined;
}

async function findLayersHolding(session: BuildSession, image: Image, reader: BlobReader, sources: readonly string[]): Promise<number[] | undefined> {
  const rels: string[] = [];
  for (const source of sources) {
    if (/[*?[\\]/.test(source)) return undefined;
    const rel = posix.normalize(`/${source}`).replace(/^\/+|\/+$/g, '');
    if (rel === '') return undefined;
    rels.push(rel);
  }
  // Indexing the image records every layer it reads, so the records below are there unless the store refused them.
  const fs = await imageFilesystem(session, image, reader);
  if (rels.some((rel) => fs.resolve(`/${rel}`, { followFinal: true }) !== `/${rel}` || !fs.has(`/${rel}`))) return undefined;
  const { cache, diffIds } = await layerRecords(session, image);
  const records: LayerRecord[] = [];
  for (const diffId of diffIds) {
    const record = await cache.load(diffId);
    if (record === undefined) return undefined;
    records.push(record);
  }
  const touches = (path: string): boolean => rels.some((rel) => path === rel || path.startsWith(`${rel}/`) || rel.startsWith(`${path}/`));
  const within = (path: string): boolean => rels.some((rel) => path === rel || path.startsWith(`${rel}/`));
  const needed: number[] = [];
  for (const [i, record] of records.entries()) {
    let holds = false;
    for (const entry of record.entries) {
      if (entry.path === '.') continue;
      const whiteout = classifyWhiteout(entry.path);
      const path = whiteout.kind === 'whiteout' ? whiteout.target : whiteout.kind === 'opaque' ? whiteout.dir : entry.path;
      // An opaque root hides every lower path, the sources included.
      if (!touches(path) && path !== '.') continue;
      if (entry.type === 'hardlink' && !within(entry.linkname ?? '')) return undefined;
      holds = true;
    }
    if (holds) needed.push(i);
  }
  return needed;
}

/**
 * The first `layers` layers of the image kept unpacked in the store (STRATA_SNAPSHOTS), checked against the stat
 * data taken when they were unpacked, made (and the layers recorded) when missing or damaged. Undefined when the
 * build keeps none. The tree is shared: read it, or copy it (copyUnpacked), never write into it. It is held for
 * this build (no prune by another build removes it) until the build ends.
 */
export function imageSnapshot(session: BuildSession, image: Image, reader: BlobReader, layers = image.layers.length): Promise<UnpackedTree | undefined> {
  const keep = session.deps.snapshots ?? 0;
  if (keep <= 0 || layers === 0) return Promise.resolve(undefined);
  const privileged = session.deps.privileged === true;
  const chain = image.layers.slice(0, layers);
  const key = unpackedKey(
    chain.map((l) => l.diffId),
    privileged,
  );
  return session.memo.get(SNAPSHOTS.key(key), async () => {
    const store = new UnpackedStore(unpackedDir(session.deps.store.root), keep, currentOwner());
    const tree = (await store.get(key, session.deps.signal)) ?? (await putSnapshot(session, store, key, image, reader, layers));
    session.onEnd(tree.release);
    return tree;
  });
}

/** The image's first `layers` layers unpacked into the store as `key` (the layers recorded on the way). */
async function putSnapshot(session: BuildSession, store: UnpackedStore, key: string, image: Image, reader: BlobReader, layers: number): Promise<UnpackedTree> {
  const records = await layerRecords(session, image);
  const privileged = session.deps.privileged === true;
  const chain = image.layers.slice(0, layers);
  return store.put(key, (root) =>
    extractImageToDirectory(
      chain.map((l) => l.descriptor),
      reader,
      root,
      {
        privileged,
        signal: session.deps.signal,
        records: { ...records, diffIds: records.diffIds.slice(0, layers) },
      },
    ).then(() => undefined),
  );
}

/**
 * Before a stage with RUN steps starts: when some base layer was never read, unpack the base into the store now
 * (recording its layers on the way), so the steps' looks at the filesystem and the first RUN's root come from that
 * one read. When every layer is recorded nothing is done: a cached build must not touch the base.
 */
export async function unpackBaseAhead(session: BuildSession, image: Image, reader: BlobReader): Promise<void> {
  if ((session.deps.snapshots ?? 0) <= 0 || image.layers.length === 0) return;
  const { cache, diffIds } = await layerRecords(session, image);
  for (const diffId of diffIds) {
    // Whether a record is there, not the record: a cached build would otherwise decode every base record.
    if (!(await (cache.has?.(diffId) ?? cache.load(diffId).then((r) => r !== undefined)))) {
      await imageSnapshot(session, image, reader);
      return;
    }
  }
}

/** The store's records, each loaded once per build and kept in memory for every stage and platform. */
class BuildLayerRecords implements LayerIndexCache {
  private readonly loaded = new Map<Digest, Promise<LayerRecord | undefined>>();

  constructor(private readonly store: LayerIndexCache) {}

  load(diffId: Digest): Promise<LayerRecord | undefined> {
    let record = this.loaded.get(diffId);
    if (record === undefined) {
      record = this.store.load(diffId);
      this.loaded.set(diffId, record);
    }
    return record;
  }

  async save(diffId: Digest, record: LayerRecord): Promise<void> {
    this.loaded.set(diffId, Promise.resolve(record));
    await this.store.save(diffId, record);
  }

  async has(diffId: Digest): Promise<boolean> {
    const loaded = this.loaded.get(diffId);
    if (loaded !== undefined) return (await loaded) !== undefined;
    return this.store.has?.(diffId) ?? (await this.load(diffId)) !== undefined;
  }
}
