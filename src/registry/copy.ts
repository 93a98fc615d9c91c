import { descendToManifest, isIndexMediaType, isManifestMediaType, type Descriptor, type Platform } from '../oci/index.js';
import type { BlobReader, ReadOptions } from '../store/types.js';
import type { RegistryClient } from './client.js';
import type { ProgressListener } from './progress.js';
import { pushImage, type PushImageOptions, type PushedImage } from './push.js';

export interface RegistryLocation {
  client: RegistryClient;
  repository: string;
}

export interface CopyOptions {
  source: RegistryLocation & { reference: string };
  target: RegistryLocation & { tags?: readonly string[] | undefined };
  /** `all` (default) copies an index with every manifest; a platform copies only that manifest. */
  platform?: Platform | 'all' | undefined;
  concurrency?: number | undefined;
  signal?: AbortSignal | undefined;
  progress?: ProgressListener | undefined;
  /** Repositories of the target registry where a blob was seen before (see PushImageOptions). */
  mountSources?: PushImageOptions['mountSources'];
}

/** A BlobReader over a registry repository that serves manifests (by digest) as well as blobs. */
export function registryImageReader(client: RegistryClient, repository: string): BlobReader {
  const blobs = client.blobReader(repository);
  const isManifest = (d: Descriptor): boolean => isIndexMediaType(d.mediaType) || isManifestMediaType(d.mediaType);
  return {
    openBlob: (d: Descriptor, o?: ReadOptions) => blobs.openBlob(d, o),
    readBlob: async (d: Descriptor, o?: ReadOptions) =>
      isManifest(d) ? (await client.getManifest(repository, d.digest, { signal: o?.signal })).bytes : blobs.readBlob(d, o),
  };
}

/**
 * Copies an image between repositories or registries, streaming each blob from source to target
 * without touching disk; blobs already in the target are skipped, and within one registry they
 * are mounted instead of copied. Manifest bytes are copied unchanged, so digests are preserved.
 */
export async function copyBetweenRegistries(options: CopyOptions): Promise<PushedImage> {
  const { source, target, signal } = options;
  const root = await source.client.getManifest(source.repository, source.reference, { signal });
  let descriptor = root.descriptor;
  const platform = options.platform ?? 'all';
  if (platform !== 'all' && root.parsed.kind === 'index') {
    const what = `${source.client.registry}/${source.repository}:${source.reference}`;
    const { node } = await descendToManifest(root, platform, what, (chosen) => source.client.getManifest(source.repository, chosen.digest, { signal }));
    descriptor = node.descriptor;
  }
  const sameRegistry = source.client.registry === target.client.registry;
  return pushImage({
    client: target.client,
    repository: target.repository,
    source: registryImageReader(source.client, source.repository),
    root: descriptor,
    tags: target.tags,
    mountFrom: sameRegistry ? [source.repository] : [],
    mountSources: options.mountSources,
    concurrency: options.concurrency,
    signal,
    progress: options.progress,
  });
}
