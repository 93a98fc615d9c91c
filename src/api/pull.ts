import type { Descriptor } from '../oci/index.js';
import { formatReference } from '../ref/index.js';
import { pullImage } from '../registry/index.js';
import { LocalStore } from '../store/index.js';
import type { StrataContext } from './context.js';
import { localImageName } from './names.js';
import { noteReadFrom, registryTarget, type RegistryConnection } from './registry-target.js';

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
  const pulled = await pullImage({
    client: target.client,
    repository: target.repository,
    reference: target.reference,
    sink: store.blobs,
    platform: options.allPlatforms ? 'all' : ctx.platform,
    sinkVerifies: true,
    concurrency: conn.concurrency,
    progress: conn.progress,
    signal: ctx.signal,
  });
  noteReadFrom(conn, target.client.registry, target.repository);
  const chosen = options.allPlatforms || !pulled.image ? pulled.root.descriptor : pulled.image.descriptor;
  const { platform: _platform, ...descriptor } = chosen;
  const name = localImageName(options.name ?? formatReference(target.ref));
  ctx.signal?.throwIfAborted();
  await store.tag(name, descriptor);
  return { name, descriptor, root: pulled.root.descriptor };
}
