import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '../digest/index.js';
import { isIndexMediaType, isManifestMediaType, parseManifestOrIndex, type Descriptor } from '../oci/index.js';
import { OciLayout, REF_NAME_ANNOTATION } from './oci-layout.js';

/** Where the local store lives: $STRATA_ROOT, else $XDG_DATA_HOME/strata, else ~/.local/share/strata. */
export function defaultStoreRoot(env: Record<string, string | undefined>, homeDir: string): string {
  if (env.STRATA_ROOT) return env.STRATA_ROOT;
  if (env.XDG_DATA_HOME) return join(env.XDG_DATA_HOME, 'strata');
  return join(homeDir, '.local', 'share', 'strata');
}

export interface StoredImage {
  name: string;
  descriptor: Descriptor;
}

/**
 * The local image store: one OCI layout (`<root>/oci`) whose index entries carry the image names
 * (full references such as `docker.io/library/app:latest`) in the ref.name annotation. Names are
 * normalized by the caller; the store only compares strings.
 */
export class LocalStore {
  private constructor(readonly root: string, readonly layout: OciLayout) {}

  static async open(root: string): Promise<LocalStore> {
    return new LocalStore(root, await OciLayout.open(join(root, 'oci'), { create: true }));
  }

  get blobs() {
    return this.layout.blobs;
  }

  /** Directory for scratch files on the store's file system (archives being unpacked, and the like). */
  get tmpDir(): string {
    return join(this.root, 'tmp');
  }

  async list(): Promise<StoredImage[]> {
    const index = await this.layout.readIndex();
    return index.manifests
      .filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== undefined)
      .map((m) => ({ name: m.annotations![REF_NAME_ANNOTATION]!, descriptor: stripName(m) }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async lookup(name: string): Promise<Descriptor | undefined> {
    const found = (await this.list()).find((i) => i.name === name);
    return found?.descriptor;
  }

  async lookupDigest(digest: Digest): Promise<Descriptor | undefined> {
    const found = (await this.list()).find((i) => i.descriptor.digest === digest);
    return found?.descriptor;
  }

  async tag(name: string, descriptor: Descriptor): Promise<void> {
    await this.layout.setManifest(stripName(descriptor), name);
  }

  async untag(name: string): Promise<boolean> {
    return this.layout.removeName(name);
  }

  /**
   * Deletes blobs no named image reaches. Blobs written in the last `graceMs` are kept, because a
   * build or pull running right now may have written them without naming them yet.
   */
  async collectGarbage(graceMs = 60 * 60 * 1000, now = Date.now()): Promise<{ removed: number; freedBytes: number }> {
    const reachable = await this.closure((await this.layout.readIndex()).manifests);
    const unreachable = (await this.blobs.listBlobs()).filter((d) => !reachable.has(d));
    return this.removeBlobs(unreachable, graceMs, now);
  }

  /**
   * Deletes the blobs of `roots` (an image just untagged) that no image in the store still reaches.
   * Only those blobs are candidates, so blobs a concurrent build has written are never touched.
   */
  async removeUnreachableFrom(roots: readonly Descriptor[]): Promise<{ removed: number; freedBytes: number }> {
    const candidates = await this.closure(roots);
    const reachable = await this.closure((await this.layout.readIndex()).manifests);
    return this.removeBlobs([...candidates].filter((d) => !reachable.has(d)) as Digest[], 0, Date.now());
  }

  /** Every digest reachable from `roots` through indexes and manifests that are present. */
  private async closure(roots: readonly Descriptor[]): Promise<Set<string>> {
    const reachable = new Set<string>();
    const pending: Descriptor[] = [...roots];
    while (pending.length > 0) {
      const d = pending.pop()!;
      if (reachable.has(d.digest)) continue;
      reachable.add(d.digest);
      if (!isIndexMediaType(d.mediaType) && !isManifestMediaType(d.mediaType)) continue;
      if (!(await this.blobs.hasBlob(d))) continue;
      const parsed = parseManifestOrIndex(await this.blobs.readBlob(d), `manifest ${d.digest}`, d.mediaType);
      if (parsed.kind === 'index') pending.push(...parsed.index.manifests);
      else pending.push(parsed.manifest.config, ...parsed.manifest.layers);
    }
    return reachable;
  }

  private async removeBlobs(digests: readonly Digest[], graceMs: number, now: number): Promise<{ removed: number; freedBytes: number }> {
    let removed = 0;
    let freedBytes = 0;
    for (const digest of digests) {
      const info = await stat(this.blobs.blobPath(digest)).catch(() => undefined);
      if (!info || now - info.mtimeMs < graceMs) continue;
      await this.blobs.removeBlob(digest);
      removed++;
      freedBytes += info.size;
    }
    return { removed, freedBytes };
  }
}

function stripName(d: Descriptor): Descriptor {
  const { annotations, ...rest } = d;
  if (!annotations) return rest;
  const { [REF_NAME_ANNOTATION]: _name, ...others } = annotations;
  return Object.keys(others).length ? { ...rest, annotations: others } : rest;
}
