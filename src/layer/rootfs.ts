import * as fs from 'node:fs';
import { StrataError, ioError } from '../errors/index.js';
import { layerCompression, type Descriptor } from '../oci/index.js';
import type { BlobReader } from '../store/types.js';
import type { Digest } from '../digest/index.js';
import type { LayerRecords } from './fs-index.js';
import { emptyRecord, recordEntries } from './layer-record.js';
import { readLayer } from './read.js';
import { Extractor } from './rootfs-extractor.js';
import type { ExtractStats } from './rootfs-extract-types.js';

export type { ExtractStats };

export interface ExtractImageOptions {
  /** The process may chown and create devices (it runs as root). Default false. */
  privileged?: boolean | undefined;
  /** `keep` applies the uid/gid of the entries; default: `keep` when privileged, else `ignore`. */
  ownership?: 'keep' | 'ignore' | undefined;
  /** Device nodes are skipped unless `create` and privileged. */
  devices?: 'skip' | 'create' | undefined;
  signal?: AbortSignal | undefined;
  /** Records each layer read under its diffID (when none is kept yet), so indexing it later reads nothing. */
  records?: LayerRecords | undefined;
}

/**
 * Unpacks an image's layers, in order, into `rootDir` (which must exist and should be empty and private to
 * this call), applying whiteouts and opaque directories as the OCI layer spec says.
 *
 * Nothing is ever written outside `rootDir`: every parent path is resolved inside the root (symlinks followed with
 * absolute targets taken relative to the root, `..` stopped at the root) and checked with realpath before use; the
 * last component is never followed (an entry is created with calls that fail on any existing name: files opened
 * O_EXCL|O_NOFOLLOW, mkdir, symlink, link; whatever is there is looked at and removed only then, and the call made
 * again); hardlink targets are resolved inside the root too. A symlink loop in a path fails with E_LAYER_UNSAFE.
 *
 * Blobs are verified as they stream, but a mismatch is only known at the end of a layer: when this throws, the
 * content of `rootDir` is undefined and the caller must discard it.
 */
export async function extractImageToDirectory(
  layers: readonly Descriptor[],
  reader: BlobReader,
  rootDir: string,
  options: ExtractImageOptions = {},
): Promise<ExtractStats> {
  const privileged = options.privileged === true;
  let realRoot: string;
  try {
    realRoot = fs.realpathSync.native(rootDir);
  } catch (error) {
    throw ioError('extract into', rootDir, error);
  }
  const extractor = new Extractor(realRoot, {
    privileged,
    keepOwnership: (options.ownership ?? (privileged ? 'keep' : 'ignore')) === 'keep',
    createDevices: options.devices === 'create' && privileged,
  });
  for (const [i, descriptor] of layers.entries()) {
    if (options.signal?.aborted === true) throw new StrataError('E_ABORTED', `extracting into ${rootDir} was aborted`);
    const compression = layerCompression(descriptor.mediaType);
    const what = `layer ${descriptor.digest}`;
    if (compression === undefined) {
      throw new StrataError('E_LAYER_INVALID', `${what} has media type ${descriptor.mediaType}, which is not a layer strata can unpack`, {
        hint: 'strata unpacks tar, tar+gzip and tar+zstd layers',
      });
    }
    const stream = await reader.openBlob(descriptor, options.signal === undefined ? {} : { signal: options.signal });
    const diffId = options.records?.diffIds[i];
    const cache = diffId === undefined ? undefined : options.records?.cache;
    if (cache === undefined || diffId === undefined || (await cache.load(diffId)) !== undefined) {
      await extractor.layer(readLayer(stream, { compression, what, signal: options.signal }), what, options.signal);
      continue;
    }
    const record = emptyRecord();
    let read: Digest | undefined;
    await extractor.layer(
      recordEntries(readLayer(stream, { compression, what, signal: options.signal, onDiffId: (d) => (read = d) }), record),
      what,
      options.signal,
    );
    if (read === diffId) await cache.save(diffId, record);
  }
  return extractor.stats;
}
