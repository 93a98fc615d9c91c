import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, type Digest } from '../digest/index.js';
import { canonicalJson, type Descriptor } from '../oci/index.js';
import { writeFileAtomic } from './atomic.js';
import { FileBlobStore } from './file-blob-store.js';
import { closure, collectGarbage, type CollectOptions, type CollectResult } from './gc.js';
import { Lease } from './lease.js';
import { OciLayout, REF_NAME_ANNOTATION } from './oci-layout.js';
import { currentOwner, type ProcessOwner } from './owner.js';

/** Where the local store lives: $STRATA_ROOT, else $XDG_DATA_HOME/strata, else ~/.local/share/strata. */
export function defaultStoreRoot(env: Record<string, string | undefined>, homeDir: string): string {
  if (env.STRATA_ROOT) return env.STRATA_ROOT;
  if (env.XDG_DATA_HOME) return join(env.XDG_DATA_HOME, 'strata');
  return join(homeDir, '.local', 'share', 'strata');
}

/** Where an image was pulled from: `registry/repository`, and whether the whole index was. */
export interface ImageSource {
  repository: string;
  allPlatforms: boolean;
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
  private constructor(
    readonly root: string,
    readonly layout: OciLayout,
    private readonly lease: Lease,
    private readonly owner: ProcessOwner,
  ) {}

  /**
   * Opens (creating when needed) the store at `root`. Every blob the handle looks at or writes is
   * leased until `release` (or this process's end), so a collector in another process keeps it.
   */
  static async open(root: string): Promise<LocalStore> {
    const owner = currentOwner();
    const lease = new Lease(join(root, 'leases'), join(root, 'gc.lock'), owner);
    const layout = await OciLayout.open(join(root, 'oci'), {
      create: true,
      blobs: { lease, tempDir: join(root, 'tmp', 'blobs'), quarantineDir: join(root, 'corrupt') },
    });
    return new LocalStore(root, layout, lease, owner);
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
   * Deletes blobs that no named image and no live lease reaches (see gc.ts). With `candidates`
   * only those may go, as after an untag; `choose` picks among the unreachable (prune's filters).
   */
  async collectGarbage(options: CollectOptions = {}): Promise<CollectResult> {
    return collectGarbage(
      {
        blobs: new FileBlobStore(this.blobs.dir),
        leasesDir: join(this.root, 'leases'),
        gcLockPath: join(this.root, 'gc.lock'),
        owner: this.owner,
        readRoots: async () => (await this.layout.readIndex()).manifests,
      },
      options,
    );
  }

  /** Deletes the blobs of `roots` (an image just untagged) that no name and no live lease still reaches. */
  async removeUnreachableFrom(roots: readonly Descriptor[]): Promise<{ removed: number; freedBytes: number }> {
    const candidates = await closure(new FileBlobStore(this.blobs.dir), roots);
    return this.collectGarbage({ candidates });
  }

  /**
   * Remembers where an image came from (a registry repository), so a blob of it found corrupt can be
   * fetched again. One small file per image digest; written whole, last writer wins.
   */
  async recordSource(digest: Digest, source: ImageSource): Promise<void> {
    await writeFileAtomic(join(this.root, 'cache', 'sources', `${digestHex(digest)}.json`), canonicalJson(source));
  }

  async sourceOf(digest: Digest): Promise<ImageSource | undefined> {
    try {
      const value = JSON.parse(await readFile(join(this.root, 'cache', 'sources', `${digestHex(digest)}.json`), 'utf8')) as Partial<ImageSource>;
      return typeof value.repository === 'string' ? { repository: value.repository, allPlatforms: value.allPlatforms === true } : undefined;
    } catch {
      return undefined;
    }
  }

  /** The directory corrupt blobs are moved to when found. */
  get quarantineDir(): string {
    return join(this.root, 'corrupt');
  }

  /**
   * Ends this handle's lease: call once the names that reach what it wrote are in the index. A
   * handle used again takes a new lease.
   */
  release(): void {
    this.lease.release();
  }
}

function stripName(d: Descriptor): Descriptor {
  const { annotations, ...rest } = d;
  if (!annotations) return rest;
  const { [REF_NAME_ANNOTATION]: _name, ...others } = annotations;
  return Object.keys(others).length ? { ...rest, annotations: others } : rest;
}
