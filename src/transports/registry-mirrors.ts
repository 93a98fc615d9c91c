import { isStrataError } from '../errors/index.js';
import type { Descriptor } from '../oci/index.js';
import type { FetchedManifest, RegistryClient } from '../registry/index.js';
import type { BlobReader, ReadOptions } from '../store/index.js';
import type { RegistryConnection, RegistryTarget } from './registry-target.js';

export interface ServedManifest {
  /** The client that served it: a mirror's, or the registry's own. */
  client: RegistryClient;
  manifest: FetchedManifest;
  /** The mirror's host, when one served it. */
  mirror?: string | undefined;
}

/**
 * Fetches a reference's manifest through the registry's mirrors, in order, then from the registry itself,
 * as docker's `registry-mirrors` do: a mirror that is down, lacks the image or refuses it is passed over
 * (and said so in the progress). The repository path is the same on the mirror. Each host gets its own
 * credentials (a mirror is another registry), so the registry's are never sent to a mirror.
 */
export async function fetchThroughMirrors(conn: RegistryConnection, target: RegistryTarget, signal?: AbortSignal): Promise<ServedManifest> {
  const mirrors = conn.mirrors?.get(target.client.registry) ?? [];
  const reference = target.description.replace(/^docker:\/\//, '');
  for (const mirror of mirrors) {
    const client = conn.mirrorClient?.(mirror) ?? conn.client(mirror);
    try {
      const manifest = await client.getManifest(target.repository, target.reference, { signal });
      conn.progress?.({ type: 'mirror', registry: target.client.registry, mirror, reference });
      return { client, manifest, mirror };
    } catch (error) {
      if (isStrataError(error, 'E_ABORTED')) throw error;
      conn.progress?.({ type: 'mirror', registry: target.client.registry, mirror, reference, failed: isStrataError(error) ? error.code : String(error) });
    }
  }
  return { client: target.client, manifest: await target.client.getManifest(target.repository, target.reference, { signal }) };
}

/** Reads blobs from the mirror, and from the registry when the mirror cannot open one. */
export function mirrorWithFallback(mirror: BlobReader, registry: BlobReader): BlobReader {
  return {
    openBlob: (d: Descriptor, o?: ReadOptions) => mirror.openBlob(d, o).catch(() => registry.openBlob(d, o)),
    readBlob: (d: Descriptor, o?: ReadOptions) => mirror.readBlob(d, o).catch(() => registry.readBlob(d, o)),
  };
}
