import { isStrataError } from '../errors/index.js';
import type { Descriptor } from '../oci/index.js';
import type { BlobReader, BlobStore, ReadOptions } from '../store/index.js';

/** Larger than any manifest or config a registry serves (distribution caps manifests at 4 MiB). */
const METADATA_MAX_BYTES = 4 * 1024 * 1024;

/**
 * A registry reader that keeps the small blobs read whole (manifests, indexes, configs) in the local
 * store and takes them from there next time. A rebuild then resolves its base with one request (the
 * tag, which may have moved) instead of up to three (tag, platform manifest, config, the last often a
 * redirect to a CDN). Blobs are named by digest and verified when read, so a kept one is the same bytes;
 * one the store cannot give back is read from the registry, and failing to keep one changes nothing.
 * Layers (openBlob) stream from the registry as before.
 */
export function keepingMetadata(registry: BlobReader, store: BlobStore): BlobReader {
  return {
    openBlob: (descriptor: Descriptor, options?: ReadOptions) => registry.openBlob(descriptor, options),
    async readBlob(descriptor: Descriptor, options?: ReadOptions): Promise<Buffer> {
      if (descriptor.size > METADATA_MAX_BYTES) return registry.readBlob(descriptor, options);
      try {
        return await store.readBlob(descriptor, options);
      } catch (cause) {
        if (isStrataError(cause, 'E_ABORTED')) throw cause;
      }
      const bytes = await registry.readBlob(descriptor, options);
      await store.putBlob(descriptor, bytes, options).catch(() => undefined);
      return bytes;
    },
  };
}
