import { StrataError } from '../errors/index.js';
import { isDigest, type Digest } from '../digest/index.js';
import { formatReference, parseImageReference } from '../ref/index.js';
import type { RegistryClient } from '../registry/index.js';
import {
  type RegistryIo,
  type StrataContext,
  registryTarget,
  isRegistryConnection,
  type RegistryConnection,
  openImage,
  parseImageLocation,
} from '../transports/index.js';

/** `strata ls REPO`: every tag of a repository, following the registry's `Link` pages. */
export async function listRepositoryTags(text: string, conn: RegistryConnection, options: { pageSize?: number | undefined } = {}): Promise<string[]> {
  const bare = text.startsWith('docker://') ? text.slice('docker://'.length) : text;
  const ref = parseImageReference(bare);
  if (ref.tag !== undefined) {
    throw new StrataError('E_USAGE', `${text}: ls lists a repository's tags; give the repository without a tag`);
  }
  if (ref.digest !== undefined) throw new StrataError('E_USAGE', `${text}: ls lists a repository's tags; give the repository without a digest`);
  const target = registryTarget(conn, bare);
  return target.client.listTags(target.repository, { pageSize: options.pageSize });
}

/**
 * The digest of the manifest (or index) a reference names, as `crane digest` prints it: for a registry
 * a HEAD (its `Docker-Content-Digest`), else a GET whose bytes are hashed; for other transports the
 * top descriptor. With `platform`, the platform's manifest of an index.
 */
export async function imageDigest(text: string, ctx: StrataContext, io: RegistryIo, options: { platform?: boolean } = {}): Promise<Digest> {
  const location = parseImageLocation(text);
  if (location.transport === 'docker' && options.platform !== true && isRegistryConnection(io)) {
    const target = registryTarget(io, location.ref);
    return registryDigest(target.client, target.repository, target.reference);
  }
  const opened = await openImage(location, ctx, io);
  try {
    return options.platform === true ? opened.manifest.descriptor.digest : opened.top.descriptor.digest;
  } finally {
    await opened.close();
  }
}

async function registryDigest(client: RegistryClient, repository: string, reference: string): Promise<Digest> {
  if (isDigest(reference)) return reference as Digest;
  const head = await client.headManifest(repository, reference);
  if (head?.digest !== undefined) return head.digest;
  // No header (some registries and proxies drop it), or not found by HEAD: the GET says which, and its bytes are hashed.
  return (await client.getManifest(repository, reference)).digest;
}

/**
 * `strata delete REF`: deletes the manifest a reference names, by digest (registries delete manifests,
 * not tags: every tag pointing at it goes with it). Returns the reference deleted.
 */
export async function deleteImage(text: string, conn: RegistryConnection): Promise<string> {
  const location = parseImageLocation(text);
  if (location.transport !== 'docker' && location.transport !== 'local') {
    throw new StrataError('E_USAGE', `delete removes images from registries; ${text} is not a registry reference`);
  }
  const bare = location.transport === 'docker' ? location.ref : location.name;
  const target = registryTarget(conn, bare);
  const digest = await registryDigest(target.client, target.repository, target.reference);
  await target.client.deleteManifest(target.repository, digest);
  return formatReference({ domain: target.ref.domain, path: target.ref.path, digest });
}
