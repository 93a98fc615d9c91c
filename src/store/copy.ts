import { parseManifestOrIndex, isIndexMediaType, isManifestMediaType, type Descriptor } from '../oci/index.js';
import { mapLimit } from './pool.js';
import type { FileBlobStore } from './file-blob-store.js';
import type { BlobReader, BlobSink, ReadOptions } from './types.js';

export interface CopyTreeOptions extends ReadOptions {
  /** Layer blobs copied at once. */
  concurrency?: number;
  onBlob?: (descriptor: Descriptor, state: 'copied' | 'present') => void;
}

/**
 * Copies a manifest or index and everything it references from one place to another, children
 * before parents, so a reader of the destination never sees a manifest whose blobs are missing.
 */
export async function copyContentTree(root: Descriptor, from: BlobReader, to: BlobSink, options: CopyTreeOptions = {}): Promise<void> {
  const done = new Set<string>();
  const copyBlob = async (d: Descriptor): Promise<void> => {
    if (done.has(d.digest)) return;
    done.add(d.digest);
    if (await to.hasBlob(d)) {
      options.onBlob?.(d, 'present');
      return;
    }
    // Readers verify what they hand out; the sink need not hash the same bytes again.
    await to.putBlob(d, await from.openBlob(d, options), { ...options, sourceVerified: true });
    options.onBlob?.(d, 'copied');
  };
  const visit = async (d: Descriptor): Promise<void> => {
    if (done.has(d.digest)) return;
    if (!isIndexMediaType(d.mediaType) && !isManifestMediaType(d.mediaType)) return copyBlob(d);
    const bytes = await from.readBlob(d, options);
    const parsed = parseManifestOrIndex(bytes, `manifest ${d.digest}`, d.mediaType);
    if (parsed.kind === 'index') {
      for (const child of parsed.index.manifests) await visit(child);
    } else {
      await copyBlob(parsed.manifest.config);
      await mapLimit(parsed.manifest.layers, options.concurrency ?? 4, copyBlob, options.signal);
    }
    if (done.has(d.digest)) return;
    done.add(d.digest);
    if (!(await to.hasBlob(d))) await to.putBlob(d, bytes, options);
  };
  await visit(root);
}

/**
 * A sink over `to` that takes the blobs `from` holds as hard links to `from`'s files (a build's layers and the
 * bases it pulled, written to a layout beside the store) and has the rest copied into `to` as usual.
 */
export function linkingSink(to: FileBlobStore, from: FileBlobStore): BlobSink {
  return {
    hasBlob: async (d) => (await to.hasBlob(d)) || (await to.linkFrom(from, d.digest)),
    putBlob: (d, data, options) => to.putBlob(d, data, options),
  };
}
