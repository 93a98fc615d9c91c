import { access, mkdir, readFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, digestOf, parseDigest, type Digest } from '../digest/index.js';
import { errnoCode } from '../errors/index.js';
import type { Image, ImageLayer } from '../image/index.js';
import { canonicalJson, type ContainerConfig, type HistoryEntry } from '../oci/index.js';
import { writeFileAtomic, type BlobReader } from '../store/index.js';

const CACHE_VERSION = 1;

/**
 * The identity of an image's content for cache keys: layers by diffID plus the runtime config and
 * platform. History and `created` are left out, so a step rebuilt to the same content lets the
 * steps after it hit again, with or without SOURCE_DATE_EPOCH.
 */
export function imageContentKey(image: Image): Digest {
  const c = image.config;
  return digestOf(canonicalJson({ diffIds: c.rootfs.diff_ids, config: c.config ?? {}, os: c.os, architecture: c.architecture, variant: c.variant ?? null }));
}

/** A step's key: a hash of canonical JSON, never a joined string. */
export function stepCacheKey(parts: { parent: Image; instruction: unknown; env: readonly string[]; sources?: Digest | null }): Digest {
  return digestOf(canonicalJson({ v: CACHE_VERSION, parent: imageContentKey(parts.parent), instruction: parts.instruction, env: parts.env, sources: parts.sources ?? null }));
}

/**
 * A step's definition: its key without the digests of the files it reads. A cache that has never seen a
 * definition cannot hit on any of its keys, so the step can skip hashing its sources before the work and
 * take their digests from the layer write instead (BuildKit's definition vs content keys).
 */
export function stepDefinitionKey(parts: { parent: Image; instruction: unknown; env: readonly string[] }): Digest {
  return digestOf(canonicalJson({ v: CACHE_VERSION, definition: true, parent: imageContentKey(parts.parent), instruction: parts.instruction, env: parts.env }));
}

/** What a layer-making step did, recorded so a later build can replay it without doing the work. */
export interface StepOutcome {
  layer: ImageLayer;
  history: HistoryEntry;
  config: ContainerConfig;
}

/** Where step outcomes are looked up and recorded: the store's own cache, or one layered over imported ones. */
export interface StepCache {
  get(key: Digest): Promise<StepOutcome | undefined>;
  /** Records an outcome; `definition` (see stepDefinitionKey) marks that keys of that definition exist. */
  put(key: Digest, outcome: StepOutcome, definition?: Digest): Promise<void>;
  /** False only when no key of this definition can hit. */
  mayHave(definition: Digest): Promise<boolean>;
}

/** Step outcomes kept as small JSON files under the store (`<root>/cache/steps/<key>.json`). */
export class LocalStepCache implements StepCache {
  constructor(private readonly dir: string, private readonly blobs: BlobReader & { hasBlob(d: { digest: Digest }): Promise<boolean> }) {}

  static forStore(storeRoot: string, blobs: BlobReader & { hasBlob(d: { digest: Digest }): Promise<boolean> }): LocalStepCache {
    return new LocalStepCache(join(storeRoot, 'cache', 'steps'), blobs);
  }

  /** The outcome for `key`, when it is recorded and its layer blob is still in the store. */
  async get(key: Digest): Promise<StepOutcome | undefined> {
    let text: string;
    try {
      text = await readFile(join(this.dir, `${digestHex(key)}.json`), 'utf8');
    } catch (cause) {
      if (errnoCode(cause) === 'ENOENT') return undefined;
      throw cause;
    }
    try {
      const outcome = JSON.parse(text) as StepOutcome;
      parseDigest(outcome.layer.diffId);
      if (!(await this.blobs.hasBlob(outcome.layer.descriptor))) return undefined;
      // The entry's mtime is its last use: `strata prune` and the cache bound remove the oldest first.
      const now = new Date();
      await utimes(join(this.dir, `${digestHex(key)}.json`), now, now).catch(() => undefined);
      return outcome;
    } catch {
      // A damaged entry is a miss, never a failure: the step is simply done again.
      return undefined;
    }
  }

  async put(key: Digest, outcome: StepOutcome, definition?: Digest): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(join(this.dir, `${digestHex(key)}.json`), canonicalJson(outcome));
    if (definition !== undefined) {
      await mkdir(join(this.dir, 'definitions'), { recursive: true });
      await writeFileAtomic(join(this.dir, 'definitions', digestHex(definition)), '');
    }
  }

  async mayHave(definition: Digest): Promise<boolean> {
    try {
      await access(join(this.dir, 'definitions', digestHex(definition)));
      return true;
    } catch {
      return false;
    }
  }
}
