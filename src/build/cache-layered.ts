import { readdir } from 'node:fs/promises';
import type { Digest } from '../digest/index.js';
import type { Descriptor } from '../oci/index.js';
import type { BlobReader } from '../store/index.js';
import { outcomeTime, type ExpiredStep, type StepCache, type StepOutcome } from './cache.js';

/** A cache brought in from elsewhere (a registry artifact, an OCI layout): its outcomes and where their layers live. */
export interface ImportedStepCache {
  /** For messages: `registry 127.0.0.1:5000/app:buildcache`, `local /ci/cache`. */
  description: string;
  outcomes: ReadonlyMap<Digest, StepOutcome>;
  /**
   * Reads the outcomes' layer blobs. It is consulted only when something needs the bytes (an
   * unpack, a local-store write), so a hit that is pushed back to the same registry is never downloaded.
   */
  reader: BlobReader;
  /** Contents of RUN --mount=type=cache directories by mount id, each a layer (`cache-mounts=true` exports). */
  mounts?: ReadonlyMap<string, Descriptor> | undefined;
}

export interface StepCacheHit {
  outcome: StepOutcome;
  /** Where the hit came from: `local` or an imported cache's description. */
  source: string;
  /** Reads the hit's layer when it is not in the store; undefined for a local hit. */
  reader: BlobReader | undefined;
}

/**
 * `--cache-ttl`: an outcome made more than `ms` before `now` (the build's start) is not replayed, from any
 * cache (kaniko's --cache-ttl, measured from when the step was run). The store's own entries are bounded
 * too, since an imported hit is copied there with its time.
 */
export interface CacheTtl {
  ms: number;
  now: Date;
}

export interface LayeredStepCacheOptions {
  /** The store's own cache: looked up first, and where every new outcome is recorded. */
  local?: StepCache | undefined;
  imported?: readonly ImportedStepCache[] | undefined;
  /** False under --no-cache: nothing hits, but outcomes are still recorded for export. */
  reads?: boolean | undefined;
  /** False under --explain-cache: a hit from an imported cache is not copied into the store's cache. */
  writes?: boolean | undefined;
  ttl?: CacheTtl | undefined;
}

/**
 * The store's cache first, then each imported cache in the order given. Every outcome the build
 * used (hit or newly made) is remembered under its key, in order, so it can be exported afterwards.
 */
export class LayeredStepCache implements StepCache {
  private readonly local: StepCache | undefined;
  private readonly imported: readonly ImportedStepCache[];
  private readonly reads: boolean;
  private readonly writes: boolean;
  private readonly ttl: CacheTtl | undefined;
  private readonly expiredSteps = new Map<Digest, ExpiredStep>();
  private readonly used = new Map<Digest, StepOutcome>();
  private readonly mountDirs = new Map<string, Promise<void>>();
  private readonly mountPaths = new Map<string, string>();

  constructor(options: LayeredStepCacheOptions) {
    this.local = options.local;
    this.imported = options.imported ?? [];
    this.reads = options.reads ?? true;
    this.writes = options.writes ?? true;
    this.ttl = options.ttl;
  }

  /** Whether `outcome` is older than the TTL (an outcome of unknown age is); remembered for the miss's explanation. */
  private tooOld(key: Digest, outcome: StepOutcome, source: string): boolean {
    if (this.ttl === undefined) return false;
    const made = outcomeTime(outcome);
    if (made !== undefined && this.ttl.now.getTime() - made <= this.ttl.ms) return false;
    const known = this.expiredSteps.get(key);
    // The newest of the expired outcomes explains the miss best (the one closest to being used).
    if (known === undefined || (made !== undefined && (known.createdAt === undefined || Date.parse(known.createdAt) < made))) {
      this.expiredSteps.set(key, { source, createdAt: made === undefined ? undefined : new Date(made).toISOString() });
    }
    return true;
  }

  /** The imported caches' blob readers, for the build's stage readers and its outputs. */
  get readers(): BlobReader[] {
    return this.imported.map((c) => c.reader);
  }

  async lookup(key: Digest): Promise<StepCacheHit | undefined> {
    if (!this.reads) return undefined;
    const local = await this.local?.get(key);
    if (local && !this.tooOld(key, local, 'local')) {
      this.used.set(key, local);
      return { outcome: local, source: 'local', reader: undefined };
    }
    for (const cache of this.imported) {
      const outcome = cache.outcomes.get(key);
      if (!outcome || this.tooOld(key, outcome, cache.description)) continue;
      this.used.set(key, outcome);
      // Recorded locally too: once an output brings the layer into the store, later builds hit without the import.
      if (this.writes) await this.local?.put(key, outcome);
      return { outcome, source: cache.description, reader: cache.reader };
    }
    return undefined;
  }

  async get(key: Digest): Promise<StepOutcome | undefined> {
    return (await this.lookup(key))?.outcome;
  }

  expired(key: Digest): ExpiredStep | undefined {
    return this.expiredSteps.get(key);
  }

  async put(key: Digest, outcome: StepOutcome, definition?: Digest): Promise<void> {
    this.used.set(key, outcome);
    await this.local?.put(key, outcome, definition);
  }

  /** Imported caches carry keys only, so any of them may hold a key of any definition. */
  async mayHave(definition: Digest): Promise<boolean> {
    if (!this.reads) return false;
    return this.imported.length > 0 || (await this.local?.mayHave(definition)) === true;
  }

  /**
   * Restores an imported cache mount into an empty `dir` once per build, before the first RUN that
   * mounts it; a directory that already holds something (this store's own use of the mount) is kept.
   */
  cacheMount(id: string, dir: string, restore: (layer: Descriptor, reader: BlobReader) => Promise<void>): Promise<void> {
    this.mountPaths.set(id, dir);
    let done = this.mountDirs.get(id);
    if (done === undefined) {
      done = (async () => {
        if (!this.reads) return;
        const source = this.imported.find((c) => c.mounts?.has(id));
        if (source === undefined || (await readdir(dir)).length > 0) return;
        await restore(source.mounts!.get(id)!, source.reader);
      })();
      this.mountDirs.set(id, done);
    }
    return done;
  }

  /** The cache mounts this build's RUN steps used, by id: their directories. */
  mounts(): ReadonlyMap<string, string> {
    return this.mountPaths;
  }

  /** Every step outcome this build used, by key, in the order they were first used. */
  recorded(): ReadonlyMap<Digest, StepOutcome> {
    return this.used;
  }
}
