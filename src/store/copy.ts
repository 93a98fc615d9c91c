import { parseManifestOrIndex, isIndexMediaType, isManifestMediaType, type Descriptor } from '../oci/index.js';
import type { BlobReader, BlobSink, ReadOptions } from './types.js';

export interface CopyTreeOptions extends ReadOptions {
  /** Layer blobs copied at once. */
  concurrency?: number;
  onBlob?: (descriptor: Descriptor, state: 'copied' | 'present') => void;
}

/**
 * Copies a manifest or index and everything it references from one place to another, children
 * before parents, so a reader of the destination never sees a manifest whose blobs are missing.
 */
export async function copyContentTree(root: Descriptor, from: BlobReader, to: BlobSink, options: CopyTreeOptions = {}): Promise<void> {
  const done = new Set<string>();
  const copyBlob = async (d: Descriptor): Promise<void> => {
    if (done.has(d.digest)) return;
    done.add(d.digest);
    if (await to.hasBlob(d)) {
      options.onBlob?.(d, 'present');
      return;
    }
    // Readers verify what they hand out; the sink need not hash the same bytes again.
    await to.putBlob(d, await from.openBlob(d, options), { ...options, sourceVerified: true });
    options.onBlob?.(d, 'copied');
  };
  const visit = async (d: Descriptor): Promise<void> => {
    if (done.has(d.digest)) return;
    if (!isIndexMediaType(d.mediaType) && !isManifestMediaType(d.mediaType)) return copyBlob(d);
    const bytes = await from.readBlob(d, options);
    const parsed = parseManifestOrIndex(bytes, `manifest ${d.digest}`, d.mediaType);
    if (parsed.kind === 'index') {
      for (const child of parsed.index.manifests) await visit(child);
    } else {
      await copyBlob(parsed.manifest.config);
      await runBounded(parsed.manifest.layers, options.concurrency ?? 4, copyBlob);
    }
    if (done.has(d.digest)) return;
    done.add(d.digest);
    if (!(await to.hasBlob(d))) await to.putBlob(d, bytes, options);
  };
  await visit(root);
}

/** Runs `work` over `items` with at most `limit` in flight; the first failure rejects. */
export async function runBounded<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
