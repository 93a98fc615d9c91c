import { parseManifestOrIndex, type Descriptor } from '../oci/index.js';
import { formatReference } from '../ref/index.js';
import { isStrataError } from '../errors/index.js';
import { pullImage, type PulledImage, type RegistryClient } from '../registry/index.js';
import { fetchThroughMirrors } from './registry-mirrors.js';
import { LocalStore } from '../store/index.js';
import type { StrataContext } from './context.js';
import { localImageName } from './names.js';
import { noteBlobLocations, noteReadFrom, registryTarget, type RegistryConnection } from './registry-target.js';

export interface PullOptions {
  /** Pull every platform of an index and name the index; default: the context's (or host's) platform. */
  allPlatforms?: boolean | undefined;
  /** Local-store name; default the reference's full name (`:latest` added when it has no tag). */
  name?: string | undefined;
}

export interface PullResult {
  /** The local-store name the image got. */
  name: string;
  /** What the name points at: the platform's manifest, or the index with `allPlatforms`. */
  descriptor: Descriptor;
  /** What the reference names on the registry (an index or a manifest). */
  root: Descriptor;
}

/**
 * Pulls `docker://REF` (or `REF`) into the local store: blobs verified as they are written (one
 * hash pass, by the store), manifests after their blobs, the name moved last.
 */
export async function pullToStore(text: string, ctx: StrataContext, conn: RegistryConnection, options: PullOptions = {}): Promise<PullResult> {
  const target = registryTarget(conn, text);
  const store = await LocalStore.open(ctx.storeRoot);
  try {
    return await pullInto(store, target, conn, options, ctx);
  } finally {
    store.release();
  }
}

async function pullInto(
  store: LocalStore,
  target: ReturnType<typeof registryTarget>,
  conn: RegistryConnection,
  options: PullOptions,
  ctx: StrataContext,
): Promise<PullResult> {
  const pull = (client: RegistryClient) =>
    pullImage({
      client,
      repository: target.repository,
      reference: target.reference,
      // A pull is how a damaged image is mended: what it would skip as already there is checked first.
      sink: { hasBlob: (d) => store.blobs.hasIntactBlob(d), putBlob: (d, data, o) => store.blobs.putBlob(d, data, o) },
      platform: options.allPlatforms ? 'all' : ctx.platform,
      sinkVerifies: true,
      concurrency: conn.concurrency,
      progress: conn.progress,
      signal: ctx.signal,
    });
  const served = (conn.mirrors?.get(target.client.registry)?.length ?? 0) > 0 ? await fetchThroughMirrors(conn, target, ctx.signal) : undefined;
  let pulled: PulledImage;
  if (served?.mirror === undefined) pulled = await pull(target.client);
  else {
    try {
      pulled = await pull(served.client);
    } catch (error) {
      // A mirror that served the manifest but fails on the way: the registry itself, as for a mirror that is down.
      if (isStrataError(error, 'E_ABORTED')) throw error;
      conn.progress?.({
        type: 'mirror',
        registry: target.client.registry,
        mirror: served.mirror,
        reference: target.description.replace(/^docker:\/\//, ''),
        failed: isStrataError(error) ? error.code : String(error),
      });
      pulled = await pull(target.client);
    }
  }
  noteReadFrom(conn, target.client.registry, target.repository);
  if (pulled.image !== undefined) {
    const parsed = parseManifestOrIndex(pulled.image.bytes, `manifest ${pulled.image.descriptor.digest}`, pulled.image.mediaType);
    if (parsed.kind === 'manifest')
      await noteBlobLocations(
        conn,
        target.client.registry,
        target.repository,
        [parsed.manifest.config, ...parsed.manifest.layers].map((d) => d.digest),
      );
  }
  const chosen = options.allPlatforms || !pulled.image ? pulled.root.descriptor : pulled.image.descriptor;
  const { platform: _platform, ...descriptor } = chosen;
  const name = localImageName(options.name ?? formatReference(target.ref));
  ctx.signal?.throwIfAborted();
  // Where it came from, so a blob of it found corrupt later can be fetched again (strata verify --repair).
  await store.recordSource(descriptor.digest, { repository: `${target.ref.domain}/${target.ref.path}`, allPlatforms: options.allPlatforms === true });
  await store.tag(name, descriptor);
  return { name, descriptor, root: pulled.root.descriptor };
}
