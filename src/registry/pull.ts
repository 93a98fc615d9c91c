import { StrataError } from '../errors/index.js';
import { checkImagePlatform, descendToManifest, hostPlatform, type Descriptor, type Manifest, type Platform } from '../oci/index.js';
import type { BlobSink } from '../store/types.js';
import type { FetchedManifest, RegistryClient } from './client.js';
import { mapLimit } from '../store/index.js';
import type { ProgressListener } from './progress.js';
import { findDeadline } from './deadlines.js';
import { backoffDelay, isRetryableError } from './retry.js';

export interface PullImageOptions {
  client: RegistryClient;
  /** Repository path within the client's registry (`library/alpine`). */
  repository: string;
  /** Tag or digest. */
  reference: string;
  sink: BlobSink;
  /** A platform to select from an index, or `all` to pull every manifest. Default: the host's. */
  platform?: Platform | 'all' | undefined;
  /** The default platform (injected for tests); default `hostPlatform()`. */
  defaultPlatform?: Platform | undefined;
  /** Blobs in flight at once; default 4. */
  concurrency?: number | undefined;
  /**
   * Leave hashing to the sink (its putBlob verifies, per the BlobSink contract) instead of
   * hashing in the client as well: one sha256 pass per blob. Mismatches are still refused and
   * still name the registry, repository and blob. Default false.
   */
  sinkVerifies?: boolean | undefined;
  signal?: AbortSignal | undefined;
  progress?: ProgressListener | undefined;
}

export interface PulledManifest {
  descriptor: Descriptor;
  bytes: Buffer;
  mediaType: string;
}

export interface PulledImage {
  /** What the reference names: an index or a manifest, as received. Stored in the sink only with `platform: 'all'` or when it is the image itself. */
  root: PulledManifest;
  /** The platform's manifest (with `platform` set on its descriptor when it came from an index); absent with `platform: 'all'`. */
  image: PulledManifest | undefined;
  /** Every manifest and index written to the sink, children before parents. */
  stored: Descriptor[];
}

function isForeign(d: Descriptor): boolean {
  return d.mediaType.includes('nondistributable') || d.mediaType.includes('foreign');
}

/**
 * Pulls an image into a blob sink: the manifest (or the platform's manifest from an index, or
 * every manifest), its config and layers, verified, blobs in parallel. Manifests are written after
 * the blobs they name, so the sink never holds a manifest with missing blobs.
 */
export async function pullImage(options: PullImageOptions): Promise<PulledImage> {
  const { client, repository, sink, signal, progress } = options;
  const concurrency = options.concurrency ?? 4;
  const name = `${client.registry}/${repository}`;
  const root = await client.getManifest(repository, options.reference, { signal });
  const stored: Descriptor[] = [];
  const explicit = options.platform !== undefined;
  const wanted = options.platform ?? options.defaultPlatform ?? hostPlatform();

  const putManifest = async (m: FetchedManifest | PulledManifest): Promise<void> => {
    if (!(await sink.hasBlob(m.descriptor))) await sink.putBlob(m.descriptor, m.bytes, { signal });
    stored.push(m.descriptor);
    progress?.({ type: 'manifest-done', direction: 'pull', digest: m.descriptor.digest, mediaType: m.mediaType, reference: `${name}@${m.descriptor.digest}` });
  };

  const fetchChild = async (d: Descriptor): Promise<FetchedManifest> => {
    const child = await client.getManifest(repository, d.digest, { signal });
    if (child.size !== d.size) {
      throw new StrataError('E_SIZE_MISMATCH', `manifest ${d.digest} of ${name} is ${child.size} bytes, the index says ${d.size}`);
    }
    return child;
  };

  /** Pulls a manifest's blobs then the manifest itself. */
  const pullManifest = async (m: FetchedManifest): Promise<void> => {
    if (m.parsed.kind !== 'manifest') throw new StrataError('E_INTERNAL', 'pullManifest on an index');
    await pullBlobs(options, m.parsed.manifest, concurrency);
    await putManifest(m);
  };

  if (wanted === 'all') {
    const walk = async (m: FetchedManifest): Promise<void> => {
      if (m.parsed.kind === 'manifest') return pullManifest(m);
      for (const child of m.parsed.index.manifests) await walk(await fetchChild(child));
      await putManifest(m);
    };
    await walk(root);
    return { root: pick(root), image: undefined, stored };
  }

  if (root.parsed.kind === 'manifest') {
    if (explicit) await checkPlatform(options, root.parsed.manifest, wanted, `${name}:${options.reference}`);
    await pullManifest(root);
    return { root: pick(root), image: pick(root), stored };
  }

  const { node: child, chosen } = await descendToManifest(root, wanted, `${name}:${options.reference}`, fetchChild);
  await pullManifest(child);
  const descriptor: Descriptor = { ...child.descriptor };
  if (chosen?.platform) descriptor.platform = chosen.platform;
  return { root: pick(root), image: { descriptor, bytes: child.bytes, mediaType: child.mediaType }, stored };
}

function pick(m: FetchedManifest): PulledManifest {
  return { descriptor: m.descriptor, bytes: m.bytes, mediaType: m.mediaType };
}

async function checkPlatform(options: PullImageOptions, manifest: Manifest, wanted: Platform, what: string): Promise<void> {
  const config = await options.client.readBlob(options.repository, manifest.config, { signal: options.signal });
  let doc: { os?: unknown; architecture?: unknown; variant?: unknown };
  try {
    doc = JSON.parse(config.toString('utf8')) as typeof doc;
  } catch {
    throw new StrataError('E_CONFIG_INVALID', `${what}: config ${manifest.config.digest} is not JSON`);
  }
  checkImagePlatform(what, wanted, doc);
}

async function pullBlobs(options: PullImageOptions, manifest: Manifest, concurrency: number): Promise<void> {
  const { client, repository, sink, progress } = options;
  const seen = new Set<string>();
  const blobs = [manifest.config, ...manifest.layers].filter((d) => !seen.has(d.digest) && seen.add(d.digest));
  await mapLimit(
    blobs,
    concurrency,
    async (d, signal) => {
      if (await sink.hasBlob(d)) {
        progress?.({ type: 'blob-skipped', direction: 'pull', digest: d.digest, size: d.size, reason: 'exists' });
        return;
      }
      if (isForeign(d) && d.urls?.length) {
        progress?.({ type: 'blob-skipped', direction: 'pull', digest: d.digest, size: d.size, reason: 'foreign' });
        return;
      }
      progress?.({ type: 'blob-start', direction: 'pull', digest: d.digest, size: d.size, mediaType: d.mediaType });
      for (let attempt = 1; ; attempt++) {
        try {
          const stream = await client.openBlob(repository, d, {
            signal,
            verify: options.sinkVerifies !== true,
            onBytes: (bytes) => progress?.({ type: 'blob-bytes', direction: 'pull', digest: d.digest, bytes, size: d.size }),
          });
          try {
            await sink.putBlob(d, stream, { signal });
          } catch (error) {
            if (error instanceof StrataError && error.code === 'E_DIGEST_MISMATCH' && !error.message.includes(client.registry)) {
              throw new StrataError('E_DIGEST_MISMATCH', `blob ${d.digest} of ${client.registry}/${repository}: ${error.message}`, {
                hint: error.hint,
                cause: error,
              });
            }
            throw error;
          }
          break;
        } catch (error) {
          // A connection dropped mid-body or a truncated body is worth another try; wrong bytes never are.
          const transient =
            isRetryableError(error) || (error instanceof StrataError && (error.code === 'E_SIZE_MISMATCH' || error.code === 'E_REGISTRY_UNREACHABLE'));
          const attempts = client.transport.retry.retries + 1;
          if (attempt >= attempts || !transient || signal.aborted) {
            // A stall already names the request; say how often it was asked.
            if (attempt > 1 && findDeadline(error) && error instanceof StrataError)
              throw new StrataError(error.code, `${error.message} (${attempt} attempts)`, { hint: error.hint, cause: error });
            throw error;
          }
          const retry = client.transport.retry;
          await retry.sleep(backoffDelay(attempt, retry), signal);
        }
      }
      progress?.({ type: 'blob-done', direction: 'pull', digest: d.digest, size: d.size });
    },
    options.signal,
  );
}
