import { digestOf, type Digest } from '../digest/index.js';
import {
  extendImageFilesystem,
  indexImageFilesystem,
  extractImageToDirectory,
  LayerIndexStore,
  layerIndexDir,
  type ImageFsIndex,
  type LayerIndexCache,
  type LayerRecord,
  type LayerRecords,
} from '../layer/index.js';
import type { Image } from '../image/index.js';
import type { BlobReader } from '../store/index.js';
import { imageContentKey } from './cache.js';
import type { BuildSession } from './session.js';

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
  return session.memo(`fs-index:${layerChainKey(image, layers.length)}`, async () => {
    const records = await layerRecords(session, image);
    for (let n = layers.length - 1; n >= 1; n--) {
      const prefix = session.memoized<ImageFsIndex>(`fs-index:${layerChainKey(image, n)}`);
      if (prefix) {
        return extendImageFilesystem(await prefix, layers.slice(n), reader, { signal: session.deps.signal, records: { ...records, diffIds: records.diffIds.slice(n) } });
      }
    }
    return indexImageFilesystem(layers, reader, { wantContent: USER_FILES, signal: session.deps.signal, records });
  });
}

/** The identity of an image's first `n` layers. */
function layerChainKey(image: Image, n: number): string {
  return digestOf(image.layers.slice(0, n).map((l) => l.diffId).join(','));
}

/** The store's layer records, read at most once per build, for the layers of `image`. */
export async function layerRecords(session: BuildSession, image: Image): Promise<LayerRecords> {
  const cache = await session.memo('layer-records', async () => new BuildLayerRecords(new LayerIndexStore(layerIndexDir(session.deps.store.root))));
  return { cache, diffIds: image.layers.map((l) => l.diffId) };
}

/** The image unpacked into a private directory (for COPY --from and RUN), made once per build. */
export function imageRootfs(session: BuildSession, image: Image, reader: BlobReader): Promise<string> {
  return session.memo(`rootfs:${imageContentKey(image)}`, async () => {
    const root = await session.tempDir('rootfs');
    await extractImageToDirectory(image.layers.map((l) => l.descriptor), reader, root, {
      privileged: session.deps.privileged === true,
      signal: session.deps.signal,
      records: await layerRecords(session, image),
    });
    return root;
  });
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
}
