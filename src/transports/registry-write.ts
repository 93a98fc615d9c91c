import { StrataError } from '../errors/index.js';
import type { Descriptor } from '../oci/index.js';
import type { ImageContent } from '../output/index.js';
import { pushImage } from '../registry/index.js';
import { noteBlobLocations, registryTarget, type RegistryConnection } from './registry-target.js';

/**
 * Pushes an image to `docker://REF`: every blob HEAD-checked, then mounted (from repositories of
 * the same registry this run read from) or uploaded; manifests last. Returns the root as pushed.
 */
export async function pushToRegistry(conn: RegistryConnection, text: string, content: ImageContent, signal?: AbortSignal): Promise<Descriptor> {
  const target = registryTarget(conn, text);
  const { ref } = target;
  if (ref.digest !== undefined && ref.digest !== content.descriptor.digest) {
    throw new StrataError('E_USAGE', `${target.description}: the image is ${content.descriptor.digest}, not the digest the destination names`, {
      hint: "push to a tag (REPO:TAG) or to the image's own digest",
    });
  }
  const tags = ref.tag !== undefined ? [ref.tag] : ref.digest !== undefined ? [] : ['latest'];
  const mountFrom = [...(conn.readFrom.get(target.client.registry) ?? [])];
  const pushed = await pushImage({
    client: target.client,
    repository: target.repository,
    source: content.reader,
    root: content.descriptor,
    tags,
    mountFrom,
    mountSources: (digest) => conn.blobLocations?.sources(target.client.registry, digest) ?? [],
    concurrency: conn.concurrency,
    progress: conn.progress,
    signal,
  });
  await noteBlobLocations(conn, target.client.registry, target.repository, pushed.blobs);
  return { mediaType: pushed.mediaType, digest: pushed.digest, size: pushed.size };
}
