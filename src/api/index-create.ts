import { StrataError } from '../errors/index.js';
import { digestOf, type Digest } from '../digest/index.js';
import { MediaType, canonicalJsonBytes, parseImageConfig, type Descriptor, type Index } from '../oci/index.js';
import { pushImage, registryImageReader } from '../registry/index.js';
import type { BlobReader, ReadOptions } from '../store/index.js';
import { annotationsFor, parseAnnotation } from '../output/index.js';
import { isRegistryConnection, noteReadFrom, registryTarget, type RegistryTarget, type RegistryIo } from '../transports/index.js';

export interface IndexCreateOptions {
  /** Where the index goes: `REGISTRY/REPO:TAG`. */
  target: string;
  /** Images or indexes to combine, in a registry. */
  sources: readonly string[];
  /** `--annotation`: index and manifest-descriptor types (the manifests themselves are not rewritten). */
  annotations?: readonly string[] | undefined;
  /** Keep what the target already names (its index's entries, or its one manifest) and add to it. */
  append?: boolean | undefined;
  signal?: AbortSignal | undefined;
}

export interface IndexCreateResult {
  descriptor: Descriptor;
  manifests: Descriptor[];
}

/** Reads manifests from memory and each blob from the repository it came from (only when it cannot be mounted). */
class RoutingReader implements BlobReader {
  readonly manifests = new Map<Digest, Buffer>();
  readonly blobs = new Map<Digest, BlobReader>();
  /** Where each blob is: registry and repository, to mount it from there. */
  readonly homes = new Map<Digest, { registry: string; repository: string; size: number }>();

  async openBlob(d: Descriptor, o?: ReadOptions): ReturnType<BlobReader['openBlob']> {
    const r = this.blobs.get(d.digest);
    if (!r) throw new StrataError('E_NOT_FOUND', `blob ${d.digest} is in none of the sources`);
    return r.openBlob(d, o);
  }

  async readBlob(d: Descriptor, o?: ReadOptions): Promise<Buffer> {
    const m = this.manifests.get(d.digest);
    if (m) return m;
    const r = this.blobs.get(d.digest);
    if (!r) throw new StrataError('E_NOT_FOUND', `blob ${d.digest} is in none of the sources`);
    return r.readBlob(d, o);
  }
}

/**
 * Fetches a manifest or index and everything it lists that is a manifest (small documents), recording
 * which repository holds each blob. Layers are never read: the push mounts them.
 */
async function gather(
  t: RegistryTarget,
  reference: string,
  reader: RoutingReader,
  signal: AbortSignal | undefined,
  depth = 0,
): Promise<{ descriptor: Descriptor; index?: Index; configDigest?: Descriptor }> {
  if (depth > 4) throw new StrataError('E_MANIFEST_INVALID', `${t.description}: indexes nested too deeply`);
  const fetched = await t.client.getManifest(t.repository, reference, { signal });
  reader.manifests.set(fetched.digest, fetched.bytes);
  const source = registryImageReader(t.client, t.repository);
  if (fetched.parsed.kind === 'index') {
    for (const child of fetched.parsed.index.manifests) await gather(t, child.digest, reader, signal, depth + 1);
    return { descriptor: fetched.descriptor, index: fetched.parsed.index };
  }
  for (const b of [fetched.parsed.manifest.config, ...fetched.parsed.manifest.layers]) {
    if (reader.blobs.has(b.digest)) continue;
    reader.blobs.set(b.digest, source);
    reader.homes.set(b.digest, { registry: t.client.registry, repository: t.repository, size: b.size });
  }
  return { descriptor: fetched.descriptor, configDigest: fetched.parsed.manifest.config };
}

/**
 * `strata index create -t TARGET SRC...` (buildx `imagetools create`): an index over the images
 * (their platforms read from their configs) and the entries of the indexes given, attestation
 * manifests kept, pushed to TARGET. Blobs are mounted from the sources' repositories in the same
 * registry, so no layer is downloaded; manifests are pushed with the bytes they have.
 */
export async function createIndex(options: IndexCreateOptions, io: RegistryIo): Promise<IndexCreateResult> {
  if (!isRegistryConnection(io)) throw new StrataError('E_TRANSPORT_INVALID', 'registry access is not available here');
  if (options.sources.length === 0 && !options.append) throw new StrataError('E_USAGE', 'index create needs at least one source image');
  const specs = (options.annotations ?? []).map(parseAnnotation);
  for (const s of specs) {
    if (s.targets.some((t) => t === 'manifest' || t === 'index-descriptor')) {
      throw new StrataError(
        'E_USAGE',
        `--annotation ${s.targets.join(',')}:${s.key}: index create sets index and manifest-descriptor annotations only (it does not rewrite manifests)`,
      );
    }
  }
  const target = registryTarget(io, options.target);
  if (target.ref.tag === undefined && target.ref.digest !== undefined) throw new StrataError('E_USAGE', `-t ${options.target}: name a tag, not a digest`);
  const reader = new RoutingReader();
  const entries: Descriptor[] = [];
  const add = (d: Descriptor): void => {
    if (!entries.some((e) => e.digest === d.digest)) entries.push(d);
  };
  const mountFrom = new Set<string>();
  const include = async (t: RegistryTarget, reference: string): Promise<void> => {
    if (t.client.registry === target.client.registry) mountFrom.add(t.repository);
    noteReadFrom(io, t.client.registry, t.repository);
    const got = await gather(t, reference, reader, options.signal);
    if (got.index) {
      for (const m of got.index.manifests) add(m);
      return;
    }
    const config = parseImageConfig(
      await reader.blobs.get(got.configDigest!.digest)!.readBlob(got.configDigest!, { signal: options.signal }),
      `config of ${t.description}`,
    );
    add({ ...got.descriptor, platform: { architecture: config.architecture, os: config.os, ...(config.variant ? { variant: config.variant } : {}) } });
  };
  if (options.append && (await target.client.headManifest(target.repository, target.reference, { signal: options.signal })) !== undefined) {
    await include(target, target.reference);
  }
  for (const source of options.sources) {
    const t = registryTarget(io, source);
    await include(t, t.reference);
  }
  const manifests = entries.map((e) => {
    const extra = e.platform ? annotationsFor(specs, 'manifest-descriptor', e.platform) : annotationsFor(specs, 'manifest-descriptor');
    // Attestation manifests keep their own annotations; descriptor annotations go on the images.
    if (!extra || e.platform?.os === 'unknown') return e;
    return { ...e, annotations: { ...(e.annotations ?? {}), ...extra } };
  });
  const indexAnnotations = annotationsFor(specs, 'index');
  const index: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests, ...(indexAnnotations ? { annotations: indexAnnotations } : {}) };
  const bytes = canonicalJsonBytes(index);
  const descriptor: Descriptor = { mediaType: MediaType.OciIndex, digest: digestOf(bytes), size: bytes.byteLength };
  reader.manifests.set(descriptor.digest, bytes);
  // Each blob is mounted from the repository it is in (the push would try only one source repository
  // per blob); what is already there or cannot be mounted is left to the push, which checks and uploads.
  for (const [digest, home] of reader.homes) {
    if (home.registry !== target.client.registry || home.repository === target.repository) continue;
    if (await target.client.blobExists(target.repository, digest, { signal: options.signal })) continue;
    const mounted = await target.client.mountBlob(target.repository, digest, home.repository, { signal: options.signal });
    if (mounted.mounted) io.progress?.({ type: 'blob-mounted', digest, size: home.size, from: home.repository });
  }
  await pushImage({
    client: target.client,
    repository: target.repository,
    source: reader,
    root: descriptor,
    tags: [target.reference],
    mountFrom: [...mountFrom],
    concurrency: io.concurrency,
    progress: io.progress,
    signal: options.signal,
  });
  return { descriptor, manifests };
}
