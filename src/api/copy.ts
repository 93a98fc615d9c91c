import { StrataError } from '../errors/index.js';
import { hostPlatform, type Descriptor } from '../oci/index.js';
import { convertToDockerV2s2, copyBetweenRegistries } from '../registry/index.js';
import {
  type StrataContext,
  writeImage,
  type RegistryIo,
  isRegistryConnection,
  noteBlobLocations,
  noteReadFrom,
  registryTarget,
  type RegistryConnection,
  fetchThroughMirrors,
  openImage,
  parseImageLocation,
} from '../transports/index.js';

export interface CopyImageOptions {
  /** Copy the whole index (every platform) rather than the platform's image. */
  allPlatforms?: boolean;
  /** `v2s2` writes Docker schema 2 manifests (and a manifest list) over the same blobs; the digest changes. */
  format?: 'oci' | 'v2s2' | undefined;
}

/** Copies an image between any two locations, verifying every blob on the way. */
export async function copyImage(
  source: string,
  destination: string,
  ctx: StrataContext,
  options: CopyImageOptions = {},
  io: RegistryIo = {},
): Promise<Descriptor> {
  const from = parseImageLocation(source);
  const to = parseImageLocation(destination);
  if (from.transport === 'docker' && to.transport === 'docker' && isRegistryConnection(io) && options.format !== 'v2s2') {
    return copyRegistryToRegistry(from.ref, to.ref, ctx, options, io);
  }
  const opened = await openImage(from, ctx, io);
  try {
    const descriptor = options.allPlatforms || opened.index === undefined ? opened.top.descriptor : opened.manifest.descriptor;
    const content = options.format === 'v2s2' ? await convertToDockerV2s2(descriptor, opened.reader) : { descriptor, reader: opened.reader };
    return await writeImage(to, content, ctx, io);
  } finally {
    await opened.close();
  }
}

/** Streams blobs from one registry to another without touching disk; within one registry, mounts them. */
async function copyRegistryToRegistry(
  source: string,
  destination: string,
  ctx: StrataContext,
  options: CopyImageOptions,
  conn: RegistryConnection,
): Promise<Descriptor> {
  const src = registryTarget(conn, source);
  const dest = registryTarget(conn, destination);
  // A mirror may serve the source (never the destination); the copy then streams from it.
  const served = (conn.mirrors?.get(src.client.registry)?.length ?? 0) > 0 ? await fetchThroughMirrors(conn, src, ctx.signal) : { client: src.client };
  const tags = dest.ref.tag !== undefined ? [dest.ref.tag] : dest.ref.digest !== undefined ? [] : ['latest'];
  const pushed = await copyBetweenRegistries({
    source: { client: served.client, repository: src.repository, reference: src.reference },
    target: { client: dest.client, repository: dest.repository, tags },
    platform: options.allPlatforms ? 'all' : (ctx.platform ?? hostPlatform()),
    concurrency: conn.concurrency,
    progress: conn.progress,
    mountSources: (digest) => conn.blobLocations?.sources(dest.client.registry, digest) ?? [],
    signal: ctx.signal,
  });
  noteReadFrom(conn, src.client.registry, src.repository);
  conn.blobLocations?.note(src.client.registry, src.repository, pushed.blobs);
  await noteBlobLocations(conn, dest.client.registry, dest.repository, pushed.blobs);
  if (dest.ref.digest !== undefined && dest.ref.digest !== pushed.digest) {
    throw new StrataError('E_DIGEST_MISMATCH', `${dest.description}: the copied image is ${pushed.digest}, not the digest the destination names`);
  }
  return { mediaType: pushed.mediaType, digest: pushed.digest, size: pushed.size };
}
