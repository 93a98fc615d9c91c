import { access, mkdir, readFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, digestOf, parseDigest, type Digest } from '../digest/index.js';
import { errnoCode } from '../errors/index.js';
import type { Image, ImageLayer } from '../image/index.js';
import { canonicalJson, type ContainerConfig, type HistoryEntry } from '../oci/index.js';
import { writeFileAtomic, type BlobReader } from '../store/index.js';
import type { Descriptor } from '../oci/index.js';

/**
 * Version 2 keys a step by what it reads (the layer chain below it, not the image config); a key of
 * version 1 (config included) is never computed again, so an old local or imported cache is a miss.
 */
const CACHE_VERSION = 2;

/**
 * The identity of an image's content for cache keys: layers by diffID plus the runtime config and
 * platform. History and `created` are left out, so a step rebuilt to the same content lets the
 * steps after it hit again, with or without SOURCE_DATE_EPOCH.
 */
export function imageContentKey(image: Image): Digest {
  const c = image.config;
  return digestOf(canonicalJson({ diffIds: c.rootfs.diff_ids, config: c.config ?? {}, os: c.os, architecture: c.architecture, variant: c.variant ?? null }));
}

/**
 * The identity of an image's filesystem: its chain of layer diffIDs and nothing else. Labels, ENV,
 * USER and the other config fields are not in it, so a step that does not read them is not keyed by them.
 */
export function filesystemKey(image: Image): Digest {
  return digestOf(canonicalJson({ diffIds: image.config.rootfs.diff_ids }));
}

/**
 * Everything a layer step's result depends on, as recorded per instruction line to explain a miss:
 * the filesystem below it, its resolved words, the environment it sees (values by digest) and the
 * content digest of what it reads. The step's key is the digest of exactly this.
 */
export interface KeyComponents {
  kind: string;
  /** filesystemKey of the image below the step. */
  parent: Digest;
  /** The resolved instruction and every setting the step reads (destination, owner, user, shell, mounts …). */
  words: Record<string, unknown>;
  /** ENV entries the step runs with: name → digest of the value. */
  env?: Record<string, Digest> | undefined;
  /** Build ARGs in scope the step runs with (not shadowed by ENV): name → digest of the value. */
  args?: Record<string, Digest> | undefined;
  /** Content digest of the files the step reads (a COPY's sources). */
  sources?: Digest | undefined;
}

/** A step's key: a hash of canonical JSON of its components, never a joined string. */
export function stepCacheKey(c: KeyComponents): Digest {
  return digestOf(canonicalJson({ v: CACHE_VERSION, ...c, env: c.env ?? null, args: c.args ?? null, sources: c.sources ?? null }));
}

/**
 * A step's definition: its key without the digests of the files it reads. A cache that has never seen a
 * definition cannot hit on any of its keys, so the step can skip hashing its sources before the work and
 * take their digests from the layer write instead (BuildKit's definition vs content keys).
 */
export function stepDefinitionKey(c: Omit<KeyComponents, 'sources'>): Digest {
  return digestOf(canonicalJson({ v: CACHE_VERSION, definition: true, ...c, env: c.env ?? null, args: c.args ?? null }));
}

/** name=value entries as name → digest of the value (values are never kept in cache records). */
export function valueDigests(entries: Iterable<readonly [string, string]>): Record<string, Digest> {
  const out: Record<string, Digest> = {};
  for (const [k, v] of entries) out[k] = digestOf(v);
  return out;
}

/** What a layer-making step did, recorded so a later build can replay it without doing the work. */
export interface StepOutcome {
  layer: ImageLayer;
  history: HistoryEntry;
  config: ContainerConfig;
  /**
   * When the step was run: the wall-clock start of the build that made it (never SOURCE_DATE_EPOCH), kept
   * when the outcome is replayed, copied into the store or exported again. `--cache-ttl` measures an
   * outcome's age from it. Absent in outcomes recorded before it was kept (see outcomeTime).
   */
  createdAt?: string | undefined;
}

/**
 * When an outcome was made, in ms since 1970: its `createdAt`, else its history time (outcomes recorded
 * before `createdAt` was kept), which is the build's start too, or with SOURCE_DATE_EPOCH the epoch, never
 * later than the run. Undefined when neither is a time.
 */
export function outcomeTime(outcome: StepOutcome): number | undefined {
  for (const text of [outcome.createdAt, outcome.history.created]) {
    const ms = typeof text === 'string' ? Date.parse(text) : Number.NaN;
    if (!Number.isNaN(ms)) return ms;
  }
  return undefined;
}

/** An outcome a cache held for a key but did not give, being older than `--cache-ttl`: for the miss's explanation. */
export interface ExpiredStep {
  /** Where it was: `local` or an imported cache's description. */
  source: string;
  /** When it was made (ISO 8601), when known. */
  createdAt: string | undefined;
}

/** Where step outcomes are looked up and recorded: the store's own cache, or one layered over imported ones. */
export interface StepCache {
  get(key: Digest): Promise<StepOutcome | undefined>;
  /** Records an outcome; `definition` (see stepDefinitionKey) marks that keys of that definition exist. */
  put(key: Digest, outcome: StepOutcome, definition?: Digest): Promise<void>;
  /** False only when no key of this definition can hit. */
  mayHave(definition: Digest): Promise<boolean>;
  /**
   * A RUN is about to mount the cache mount `id` from `dir`: remembered for export, and filled from an
   * imported cache (by `restore`) when the store has nothing in it yet. Optional: the store's own cache has no mounts to bring.
   */
  cacheMount?(id: string, dir: string, restore: (layer: Descriptor, reader: BlobReader) => Promise<void>): Promise<void>;
  /** The outcome `get(key)` found but did not give because it was older than `--cache-ttl`; optional. */
  expired?(key: Digest): ExpiredStep | undefined;
}

/** Step outcomes kept as small JSON files under the store (`<root>/cache/steps/<key>.json`). */
export class LocalStepCache implements StepCache {
  /**
   * `recordUse: false` (--explain-cache, which writes nothing) leaves a hit's mtime, which otherwise
   * records its last use.
   */
  constructor(
    private readonly dir: string,
    private readonly blobs: BlobReader & { hasBlob(d: { digest: Digest }): Promise<boolean> },
    private readonly options: { recordUse?: boolean } = {},
  ) {}

  static forStore(
    storeRoot: string,
    blobs: BlobReader & { hasBlob(d: { digest: Digest }): Promise<boolean> },
    options: { recordUse?: boolean } = {},
  ): LocalStepCache {
    return new LocalStepCache(join(storeRoot, 'cache', 'steps'), blobs, options);
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
      if (this.options.recordUse !== false) {
        const now = new Date();
        await utimes(join(this.dir, `${digestHex(key)}.json`), now, now).catch(() => undefined);
      }
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
