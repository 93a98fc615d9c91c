import { readFile, stat } from 'node:fs/promises';
import type { Digest } from '../digest/index.js';
import { isIndexMediaType, isManifestMediaType, parseManifestOrIndex, type Descriptor } from '../oci/index.js';
import type { FileBlobStore } from './file-blob-store.js';
import { readLiveLeases } from './lease.js';
import { withLock } from './lock.js';
import type { ProcessOwner } from './owner.js';

/** Larger than any manifest or index (registries cap them at 4 MiB): a bigger leased blob is a leaf. */
const MANIFEST_MAX_BYTES = 4 * 1024 * 1024;

export interface CollectInput {
  /** Blobs read without a lease: the collector must never wait on itself. */
  blobs: FileBlobStore;
  leasesDir: string;
  gcLockPath: string;
  owner: ProcessOwner;
  /** The named roots, read after the leases (see collectGarbage). */
  readRoots: () => Promise<readonly Descriptor[]>;
}

export interface CollectOptions {
  /** Only these blobs may go (an image just untagged); default every blob of the store. */
  candidates?: Iterable<string> | undefined;
  /**
   * Picks, from the unreachable blobs (with size and mtime), those to delete; default all.
   * Prune's `--keep-storage` and `until=` filters go here.
   */
  choose?: ((unreachable: UnreachableBlob[]) => UnreachableBlob[]) | undefined;
  signal?: AbortSignal | undefined;
}

export interface UnreachableBlob {
  digest: Digest;
  size: number;
  mtimeMs: number;
}

export interface CollectResult {
  removed: number;
  freedBytes: number;
  /** Blobs no name and no live lease reaches (before `choose`). */
  unreachable: number;
}

/**
 * Deletes blobs that no named image and no live lease reaches. It holds the GC lock from before it
 * reads the leases until its last delete, and reads the leases before the index: a process tags an
 * image before it ends the lease on its blobs, so every blob in use is seen in one or the other, and
 * a process that starts using a blob during the collection waits for it (see Lease.touch).
 */
export async function collectGarbage(input: CollectInput, options: CollectOptions = {}): Promise<CollectResult> {
  return withLock(input.gcLockPath, { owner: input.owner, signal: options.signal }, async () => {
    const leased = await readLiveLeases(input.leasesDir, input.owner);
    const roots = await input.readRoots();
    const keep = await closure(input.blobs, roots, [...leased]);
    const pool = options.candidates ? [...new Set(options.candidates)] : await input.blobs.listBlobs();
    const unreachable: UnreachableBlob[] = [];
    for (const digest of pool) {
      if (keep.has(digest)) continue;
      const info = await stat(input.blobs.blobPath(digest as Digest)).catch(() => undefined);
      if (info?.isFile()) unreachable.push({ digest: digest as Digest, size: info.size, mtimeMs: info.mtimeMs });
    }
    const chosen = options.choose ? options.choose(unreachable) : unreachable;
    let freedBytes = 0;
    for (const blob of chosen) {
      if (options.signal?.aborted) break;
      await input.blobs.removeBlob(blob.digest);
      freedBytes += blob.size;
    }
    return { removed: chosen.length, freedBytes, unreachable: unreachable.length };
  });
}

/**
 * Every digest reachable from `roots` (descriptors) and `leased` (bare digests, read to see whether
 * they are manifests) through the manifests and indexes present. A manifest that cannot be parsed
 * keeps itself and nothing more: the collector never fails on a damaged store.
 */
export async function closure(blobs: FileBlobStore, roots: readonly Descriptor[], leased: readonly string[] = []): Promise<Set<string>> {
  const reachable = new Set<string>();
  const pending: Array<{ digest: string; mediaType?: string | undefined }> = [...roots, ...leased.map((digest) => ({ digest }))];
  while (pending.length > 0) {
    const d = pending.pop()!;
    if (reachable.has(d.digest)) continue;
    reachable.add(d.digest);
    if (d.mediaType !== undefined && !isIndexMediaType(d.mediaType) && !isManifestMediaType(d.mediaType)) continue;
    const children = await childrenOf(blobs, d.digest, d.mediaType);
    pending.push(...children);
  }
  return reachable;
}

async function childrenOf(blobs: FileBlobStore, digest: string, mediaType: string | undefined): Promise<Descriptor[]> {
  try {
    const path = blobs.blobPath(digest as Digest);
    const info = await stat(path);
    if (!info.isFile() || info.size > MANIFEST_MAX_BYTES) return [];
    // Read as it is, unverified: a manifest whose bytes went bad still says what it needed, and the
    // collector keeps too much rather than take the layers of an image verify --repair can mend.
    const bytes = await readFile(path);
    // A leased digest of unknown type is a manifest only if it parses as one (a config or a layer does not).
    if (mediaType === undefined && bytes[0] !== 0x7b) return [];
    const parsed = parseManifestOrIndex(bytes, `manifest ${digest}`, mediaType);
    return parsed.kind === 'index' ? parsed.index.manifests : [parsed.manifest.config, ...parsed.manifest.layers];
  } catch {
    return [];
  }
}
