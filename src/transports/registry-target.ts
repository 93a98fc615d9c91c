import { StrataError } from '../errors/index.js';
import { formatReference, parseImageReference, referenceTarget, type ImageReference } from '../ref/index.js';
import type { BlobLocations, CredentialLookup, FetchLike, ProgressListener, RegistryClient } from '../registry/index.js';
import type { CredentialStore } from '../registry/credentials/index.js';
import type { RegistryIo } from './io.js';
import type { RegistryWriter } from './destinations.js';
import type { RegistryOpener } from './sources.js';

/**
 * Registry access with everything wired: one keep-alive fetch, one client per registry (so tokens
 * are reused across repositories), the credential store and the progress listener. It is a
 * RegistryIo, so every API function that takes one can read and write `docker://` images.
 */
export interface RegistryConnection extends RegistryIo {
  openRegistry: RegistryOpener;
  writeRegistry: RegistryWriter;
  /** The shared client for a registry (`docker.io`, `127.0.0.1:5000`). */
  client(registry: string): RegistryClient;
  /** A client of its own, with other credentials (for `login`), over the same connections. */
  newClient(registry: string, credentials?: CredentialLookup): RegistryClient;
  readonly credentials: CredentialStore;
  readonly fetch: FetchLike;
  readonly progress: ProgressListener | undefined;
  /** Blobs in flight at once per image. */
  readonly concurrency: number;
  /** Repositories read from per registry in this run: mount sources for pushes to the same registry. */
  readonly readFrom: Map<string, Set<string>>;
  /** Where blobs were seen in earlier runs (the store's record): mount sources, and updated by pulls and pushes. */
  readonly blobLocations?: BlobLocations | undefined;
  /** Mirrors to pull through, per registry (`docker.io` → `mirror.example:5000`), tried in order before it. */
  readonly mirrors?: ReadonlyMap<string, readonly string[]> | undefined;
  /** The client for a mirror: fewer retries, since the registry itself is the fallback. */
  mirrorClient?(host: string): RegistryClient;
}

export function isRegistryConnection(io: RegistryIo | undefined): io is RegistryConnection {
  return io !== undefined && typeof (io as Partial<RegistryConnection>).client === 'function';
}

export interface RegistryTarget {
  ref: ImageReference;
  client: RegistryClient;
  /** Path within the registry: `library/alpine`. */
  repository: string;
  /** Tag or digest to fetch. */
  reference: string;
  /** `docker://docker.io/library/alpine:latest`, for messages. */
  description: string;
}

/** Parses `docker://REF` or `REF` and picks the registry's shared client. */
export function registryTarget(conn: RegistryConnection, text: string): RegistryTarget {
  const bare = text.startsWith('docker://') ? text.slice('docker://'.length) : text;
  const ref = parseImageReference(bare);
  if (!ref.domain) throw new StrataError('E_REF_INVALID', `"${text}" names no registry`);
  return {
    ref,
    client: conn.client(ref.domain),
    repository: ref.path,
    reference: referenceTarget(ref),
    description: `docker://${formatReference(ref)}`,
  };
}

/** Records a repository an image was read from, so later pushes to its registry can mount from it. */
export function noteReadFrom(conn: RegistryConnection, registry: string, repository: string): void {
  let repos = conn.readFrom.get(registry);
  if (!repos) conn.readFrom.set(registry, (repos = new Set()));
  repos.add(repository);
}

/** Records where an image's blobs now are, for mounts by later runs; a cache, so failures are ignored. */
export async function noteBlobLocations(conn: RegistryConnection, registry: string, repository: string, digests: Iterable<string>): Promise<void> {
  if (conn.blobLocations === undefined) return;
  conn.blobLocations.note(registry, repository, digests);
  await conn.blobLocations.save();
}
