import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/index.js';
import { registryImageReader, type ProgressListener, type RegistryClient } from '../registry/index.js';
import { CompositeBlobReader, MemoryBlobReader, type BlobReader, type ReadOptions } from '../store/index.js';
import type { StrataContext } from './context.js';
import { noteBlobLocations, noteReadFrom, registryTarget, type RegistryConnection } from './registry-target.js';
import { keepingMetadata } from './metadata-cache.js';
import { fetchThroughMirrors, mirrorWithFallback } from './registry-mirrors.js';
import { resolveImage } from './resolve.js';
import type { OpenedImage, RegistryOpenOptions } from './sources.js';

/**
 * Opens `docker://REF`: the manifest or index is fetched once (its bytes verified), resolved to
 * the context's platform, and blobs are streamed from the registry, verified, when read.
 */
export async function openFromRegistry(conn: RegistryConnection, text: string, ctx: StrataContext, options: RegistryOpenOptions = {}): Promise<OpenedImage> {
  const target = registryTarget(conn, text);
  const served = await fetchThroughMirrors(conn, target, ctx.signal);
  const root = served.manifest;
  noteReadFrom(conn, target.client.registry, target.repository);
  const origin = reportingReader(target.client, target.repository, conn.progress);
  const registry = served.mirror === undefined ? origin : mirrorWithFallback(reportingReader(served.client, target.repository, conn.progress), origin);
  // The root's bytes are kept, so resolving and copying do not GET it a second time.
  const reader = new CompositeBlobReader([
    new MemoryBlobReader().add(root.digest, root.bytes),
    options.keepMetadataIn === undefined ? registry : keepingMetadata(registry, options.keepMetadataIn),
  ]);
  const resolved = await resolveImage(root.descriptor, reader, target.description, ctx.platform, ctx.signal);
  const manifest = resolved.manifest.value;
  await noteBlobLocations(
    conn,
    target.client.registry,
    target.repository,
    [manifest.config, ...manifest.layers].map((d) => d.digest),
  );
  return {
    ...resolved,
    location: { transport: 'docker', ref: text.startsWith('docker://') ? text.slice('docker://'.length) : text },
    description: target.description,
    reader,
    close: async () => undefined,
  };
}

/** A registry reader whose blob streams report progress (pulls to a layout, archive or the store). */
export function reportingReader(client: RegistryClient, repository: string, progress: ProgressListener | undefined): BlobReader {
  const base = registryImageReader(client, repository);
  if (!progress) return base;
  return {
    readBlob: (d: Descriptor, o?: ReadOptions) => base.readBlob(d, o),
    openBlob: async (d: Descriptor, o?: ReadOptions): Promise<Readable> => {
      progress({ type: 'blob-start', direction: 'pull', digest: d.digest, size: d.size, mediaType: d.mediaType });
      const stream = await client.openBlob(repository, d, {
        signal: o?.signal,
        onBytes: (bytes) => progress({ type: 'blob-bytes', direction: 'pull', digest: d.digest, bytes, size: d.size }),
      });
      stream.once('end', () => progress({ type: 'blob-done', direction: 'pull', digest: d.digest, size: d.size }));
      return stream;
    },
  };
}
