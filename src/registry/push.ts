import { StrataError } from '../errors/index.js';
import { parseManifestOrIndex, type Descriptor } from '../oci/index.js';
import type { BlobReader } from '../store/types.js';
import type { RegistryClient } from './client.js';
import { mapLimit } from '../store/index.js';
import type { ProgressListener } from './progress.js';
import { pushScopes } from './scopes.js';
import { blobSourceFromReader } from './upload.js';

export interface PushImageOptions {
  client: RegistryClient;
  /** Repository path within the client's registry. */
  repository: string;
  /** Where the manifests and blobs come from: a local store, an OCI layout, another registry. */
  source: BlobReader;
  /** The manifest or index to push. */
  root: Descriptor;
  /** Tags to point at the root; with none, the root is pushed by digest only. */
  tags?: readonly string[] | undefined;
  /** Repositories of the same registry that may already hold the blobs (cross-repository mount). */
  mountFrom?: readonly string[] | undefined;
  /**
   * Repositories of the same registry where one blob was seen before (the store's record across runs), tried
   * before `mountFrom`.
   */
  mountSources?: ((digest: Descriptor['digest']) => readonly string[]) | undefined;
  /** Blobs in flight at once; default 4. */
  concurrency?: number | undefined;
  signal?: AbortSignal | undefined;
  progress?: ProgressListener | undefined;
}

export interface PushedImage {
  digest: Descriptor['digest'];
  mediaType: string;
  size: number;
  /** `registry/repository:tag` for each tag, or `registry/repository@digest`. */
  references: string[];
  /** Digests of the configs and layers the image references (now all in the repository); empty when nothing was pushed. */
  blobs: Array<Descriptor['digest']>;
}

interface ManifestNode {
  descriptor: Descriptor;
  bytes: Buffer;
  mediaType: string;
}

function referenceOf(name: string, tag: string): string {
  return tag.includes(':') ? `${name}@${tag}` : `${name}:${tag}`;
}

/**
 * Whether every tag (or digest) already names this very manifest: then nothing needs pushing, since
 * the registry took that manifest with everything it references (go-containerregistry's remote.Write
 * checks the same). A registry that does not say (no digest header, an error) gets the full push.
 */
async function allNameRoot(
  client: RegistryClient,
  repository: string,
  tags: readonly string[],
  root: Descriptor,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  try {
    const heads = await Promise.all(tags.map((t) => client.headManifest(repository, t, { signal })));
    return heads.every((h) => h?.digest === root.digest);
  } catch (cause) {
    if (signal?.aborted === true) throw cause;
    return false;
  }
}

function isForeign(d: Descriptor): boolean {
  return d.mediaType.includes('nondistributable') || d.mediaType.includes('foreign');
}

/**
 * Pushes an image: every blob not already in the repository (mounted from `mountFrom` when
 * possible, else uploaded), in parallel; then child manifests by digest; then the root under
 * every tag. The manifest bytes are pushed exactly as stored, so digests are preserved.
 */
export async function pushImage(options: PushImageOptions): Promise<PushedImage> {
  const { client, repository, source, signal, progress } = options;
  const name = `${client.registry}/${repository}`;
  const mountFrom = (options.mountFrom ?? []).filter((r) => r !== repository);
  const scopes = pushScopes(repository, mountFrom);
  // Get the push token (and fail on missing rights) before reading anything big.
  await client.ping({ signal, scopes });
  const tags = options.tags && options.tags.length > 0 ? options.tags : [options.root.digest];
  if (await allNameRoot(client, repository, tags, options.root, signal)) {
    for (const tag of tags) progress?.({ type: 'manifest-unchanged', digest: options.root.digest, reference: referenceOf(name, tag) });
    return {
      digest: options.root.digest,
      mediaType: options.root.mediaType,
      size: options.root.size,
      references: tags.map((t) => referenceOf(name, t)),
      blobs: [],
    };
  }

  const { manifests, blobs } = await collectManifests(source, options.root, name, signal);
  await mapLimit(
    [...blobs.values()],
    options.concurrency ?? 4,
    (d, blobSignal) => pushBlob(d, { ...options, repository, mountFrom, scopes, signal: blobSignal }),
    signal,
  );

  // Children first (collect() recorded them before their index), the root last.
  const root = manifests[manifests.length - 1];
  if (!root) throw new StrataError('E_INTERNAL', 'no manifest collected');
  for (const m of manifests.slice(0, -1)) {
    await client.putManifest(repository, m.descriptor.digest, m.bytes, m.mediaType, { signal, scopes });
    progress?.({ type: 'manifest-done', direction: 'push', digest: m.descriptor.digest, mediaType: m.mediaType, reference: `${name}@${m.descriptor.digest}` });
  }
  const references: string[] = [];
  for (const tag of tags) {
    await client.putManifest(repository, tag, root.bytes, root.mediaType, { signal, scopes });
    const reference = referenceOf(name, tag);
    references.push(reference);
    progress?.({ type: 'manifest-done', direction: 'push', digest: root.descriptor.digest, mediaType: root.mediaType, reference });
  }
  return {
    digest: root.descriptor.digest,
    mediaType: root.mediaType,
    size: root.bytes.byteLength,
    references,
    blobs: [...blobs.values()].map((b) => b.digest),
  };
}

/** The manifests under `root` (children before their index, the root last) and the blobs they name. */
async function collectManifests(
  source: PushImageOptions['source'],
  root: Descriptor,
  name: string,
  signal: AbortSignal | undefined,
): Promise<{ manifests: ManifestNode[]; blobs: Map<string, Descriptor> }> {
  const manifests: ManifestNode[] = [];
  const blobs = new Map<string, Descriptor>();
  const collect = async (d: Descriptor, depth: number): Promise<void> => {
    if (depth > 8) throw new StrataError('E_MANIFEST_INVALID', `${name}: indexes nested too deeply`);
    const bytes = await source.readBlob(d, { signal });
    const parsed = parseManifestOrIndex(bytes, `manifest ${d.digest}`, d.mediaType);
    if (parsed.kind === 'index') {
      for (const child of parsed.index.manifests) await collect(child, depth + 1);
    } else {
      for (const b of [parsed.manifest.config, ...parsed.manifest.layers]) if (!blobs.has(b.digest)) blobs.set(b.digest, b);
    }
    if (!manifests.some((m) => m.descriptor.digest === d.digest)) manifests.push({ descriptor: d, bytes, mediaType: parsed.mediaType });
  };
  await collect(root, 0);
  return { manifests, blobs };
}

/** One blob: nothing when the repository has it (or it is foreign), a mount when one is accepted, else an upload. */
async function pushBlob(
  d: Descriptor,
  options: PushImageOptions & { mountFrom: readonly string[]; scopes: string[]; signal: AbortSignal | undefined },
): Promise<void> {
  const { client, repository, source, progress, mountFrom, scopes, signal } = options;
  if (await client.blobExists(repository, d.digest, { signal, scopes })) {
    progress?.({ type: 'blob-skipped', direction: 'push', digest: d.digest, size: d.size, reason: 'exists' });
    return;
  }
  if (isForeign(d) && d.urls?.length) {
    progress?.({ type: 'blob-skipped', direction: 'push', digest: d.digest, size: d.size, reason: 'foreign' });
    return;
  }
  let location: string | undefined;
  const remembered = (options.mountSources?.(d.digest) ?? []).filter((r) => r !== repository).slice(0, 3);
  for (const from of [...new Set([...remembered, ...mountFrom])]) {
    const mount = await client.mountBlob(repository, d.digest, from, { signal });
    if (mount.mounted) {
      progress?.({ type: 'blob-mounted', digest: d.digest, size: d.size, from });
      return;
    }
    if (mount.location) {
      location = mount.location;
      break;
    }
  }
  progress?.({ type: 'blob-start', direction: 'push', digest: d.digest, size: d.size, mediaType: d.mediaType });
  await client.uploadBlob(repository, d, blobSourceFromReader(source, d), {
    signal,
    location,
    mountFrom,
    onBytes: (bytes) => progress?.({ type: 'blob-bytes', direction: 'push', digest: d.digest, bytes, size: d.size }),
  });
  progress?.({ type: 'blob-done', direction: 'push', digest: d.digest, size: d.size });
}
