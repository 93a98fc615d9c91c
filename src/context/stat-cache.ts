import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { digestOf, type Digest } from '../digest/index.js';
import { errnoCode, ioError } from '../errors/index.js';
import type { ContextEntry } from './types.js';

const FORMAT = 'strata-context-stat-cache/3';
/** Per record: path relative to the root, size, mtimeMs, ino, dev, mode, sha256 hex. */
const FIELDS = 7;
const HEX64 = /^[0-9a-f]{64}$/;
const SHA256 = /^sha256:[0-9a-f]{64}$/;
/** Stat caches kept per store: the most recently used; older contexts are hashed afresh if built again. */
const KEPT_CONTEXTS = 32;
/** An unchanged cache's mtime is moved to the time of its last use at most this often (see save). */
const TOUCH_AFTER_MS = 60 * 60 * 1000;
/** Source sets remembered per context: enough for the COPY steps of several Dockerfiles and targets. */
const KEPT_SOURCE_SETS = 64;
const NEWLINE = 0x0a;

/** Where the stat cache of the context at `root` (a real path) lives under `dir`: one file per context. */
export function statCacheFile(dir: string, root: string): string {
  return join(dir, `${digestOf(root).slice('sha256:'.length, 'sha256:'.length + 32)}.json`);
}

/**
 * Remembers the content digest of the files under one context directory by path and stat fingerprint
 * (size, mtime, inode, device, mode), so an unchanged file is not read again to compute a cache key. A
 * fingerprint mismatch is a miss; paths outside the root are never cached.
 *
 * It also remembers whole source sets: the digest hashSources gave for a listing, by a fingerprint of
 * that listing's stat data (`sourcesFingerprint` in hash.ts). A fully cached build finds every COPY there
 * and never needs the per-file records, so the persisted form keeps them apart: line one holds the source
 * sets and is parsed on load; line two, one flat JSON array of records, is parsed only when a record is
 * first asked for. The file is advisory: an unreadable or foreign one loads as empty.
 */
export class ContextStatCache {
  private readonly prefix: string;
  private values: Array<string | number> = [];
  /** Path relative to the root -> index of its record in `values`. */
  private readonly records = new Map<string, number>();
  /** The records line of a loaded file, until a record is asked for. */
  private pending: Buffer[] = [];
  /** Listing fingerprint -> its sources digest, oldest first. */
  private readonly sourceSets = new Map<string, Digest>();
  /** Whether anything was set since the last load or save: an unchanged cache need not be written. */
  private changed = false;
  /** The files this cache was loaded from, with their mtimes, for save to keep them among the recent. */
  private readonly loaded = new Map<string, number>();

  /** `root` is the real path of the context directory. */
  constructor(readonly root: string) {
    this.prefix = root.endsWith('/') ? root : `${root}/`;
  }

  /** Whether save would write: something was set since the last load or save. */
  get dirty(): boolean {
    return this.changed;
  }

  get size(): number {
    this.parsePending();
    return this.records.size;
  }

  get(entry: ContextEntry): Digest | undefined {
    this.parsePending();
    const rel = this.relative(entry.absPath);
    const at = rel === undefined ? undefined : this.records.get(rel);
    if (at === undefined) return undefined;
    const v = this.values;
    if (v[at + 1] !== entry.size || v[at + 2] !== entry.mtimeMs || v[at + 3] !== entry.ino || v[at + 4] !== entry.dev || v[at + 5] !== entry.mode) {
      return undefined;
    }
    const hex = v[at + 6];
    return typeof hex === 'string' && HEX64.test(hex) ? `sha256:${hex}` : undefined;
  }

  set(entry: ContextEntry, digest: Digest): void {
    this.parsePending();
    const rel = this.relative(entry.absPath);
    if (rel === undefined || !digest.startsWith('sha256:')) return;
    const record = [rel, entry.size, entry.mtimeMs, entry.ino, entry.dev, entry.mode, digest.slice('sha256:'.length)];
    const at = this.records.get(rel);
    if (at === undefined) {
      this.records.set(rel, this.values.length);
      for (const value of record) this.values.push(value);
    } else {
      for (const [i, value] of record.entries()) this.values[at + i] = value;
    }
    this.changed = true;
  }

  /** Whether `absPath` is inside the root: only such paths are ever remembered. */
  covers(absPath: string): boolean {
    return absPath.startsWith(this.prefix);
  }

  /** The sources digest remembered for a listing fingerprint. */
  sources(fingerprint: string): Digest | undefined {
    return this.sourceSets.get(fingerprint);
  }

  /** Remembers a listing's sources digest; the oldest source sets are forgotten beyond a few dozen. */
  rememberSources(fingerprint: string, digest: Digest): void {
    if (this.sourceSets.get(fingerprint) === digest) return;
    this.sourceSets.delete(fingerprint);
    this.sourceSets.set(fingerprint, digest);
    for (const oldest of this.sourceSets.keys()) {
      if (this.sourceSets.size <= KEPT_SOURCE_SETS) break;
      this.sourceSets.delete(oldest);
    }
    this.changed = true;
  }

  /**
   * Adds what `file` holds: its source sets now, its records when one is first asked for. A missing,
   * malformed or other context's file adds nothing.
   */
  async load(file: string): Promise<void> {
    let data: Buffer;
    let mtimeMs: number;
    try {
      const handle = await open(file, 'r');
      try {
        mtimeMs = (await handle.stat()).mtimeMs;
        data = await handle.readFile();
      } finally {
        await handle.close();
      }
    } catch (cause) {
      if (errnoCode(cause) === 'ENOENT') return;
      throw ioError('read stat cache', file, cause);
    }
    const newline = data.indexOf(NEWLINE);
    const head = parseJson(data.subarray(0, newline === -1 ? data.length : newline));
    const { format, root, sources } = (typeof head === 'object' && head !== null ? head : {}) as { format?: unknown; root?: unknown; sources?: unknown };
    if (format !== FORMAT || root !== this.root || !Array.isArray(sources)) return;
    for (const pair of sources) {
      const [fingerprint, digest] = Array.isArray(pair) ? (pair as unknown[]) : [];
      if (typeof fingerprint === 'string' && typeof digest === 'string' && HEX64.test(fingerprint) && SHA256.test(digest)) {
        this.sourceSets.set(fingerprint, digest as Digest);
      }
    }
    if (newline !== -1) this.pending.push(data.subarray(newline + 1));
    this.loaded.set(file, mtimeMs);
  }

  /** Parses the records lines loaded so far, keeping the first record of each path. */
  private parsePending(): void {
    if (this.pending.length === 0) return;
    const lines = this.pending;
    this.pending = [];
    for (const line of lines) {
      const files = parseJson(line);
      if (!Array.isArray(files)) continue;
      const base = this.values.length;
      if (base === 0) this.values = files as Array<string | number>;
      else for (const value of files as Array<string | number>) this.values.push(value);
      for (let i = 0; i + FIELDS <= files.length; i += FIELDS) {
        const rel: unknown = files[i];
        if (typeof rel === 'string' && !this.records.has(rel)) this.records.set(rel, base + i);
      }
    }
  }

  /**
   * Writes the source sets and records to `file`, a temp file beside it then a rename so readers never
   * see half, and removes the stat caches of contexts not built for a long time (all but the most recent
   * few). Says whether anything was written. An unchanged cache is not written, but when it was loaded
   * from `file` more than an hour after that file was last written, its mtime is moved to `now`: pruning
   * goes by mtime, and a context that is built often but never changes is among the recently used.
   */
  async save(file: string, now: Date): Promise<boolean> {
    if (!this.changed) {
      const mtimeMs = this.loaded.get(file);
      if (mtimeMs !== undefined && now.getTime() - mtimeMs > TOUCH_AFTER_MS) {
        await utimes(file, now, now).catch(() => undefined);
        this.loaded.set(file, now.getTime());
      }
      return false;
    }
    // Another build of the same context may have saved since this one loaded: take in what it
    // learned (this cache's records win for paths both know) rather than write over it. The caller
    // holds the file's lock around save, so nothing is lost between this read and the rename.
    const current = await stat(file).then(
      (i) => i.mtimeMs,
      () => undefined,
    );
    if (current !== undefined && current !== this.loaded.get(file)) await this.load(file);
    this.parsePending();
    const files: Array<string | number> = [];
    for (const at of this.records.values()) for (let i = 0; i < FIELDS; i++) files.push(this.values[at + i] as string | number);
    const head = { format: FORMAT, root: this.root, sources: [...this.sourceSets] };
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(dirname(file), { recursive: true });
      // JSON.stringify never writes a raw newline, so the first one ends the head.
      await writeFile(tmp, `${JSON.stringify(head)}\n${JSON.stringify(files)}`);
      await rename(tmp, file);
      this.changed = false;
      this.loaded.set(file, now.getTime());
    } catch (cause) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw ioError('write stat cache', file, cause);
    }
    await pruneStatCaches(dirname(file));
    return true;
  }

  private relative(absPath: string): string | undefined {
    return this.covers(absPath) ? absPath.slice(this.prefix.length) : undefined;
  }
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Best effort: a stat cache is only ever an optimisation, so failing to prune is not an error. */
async function pruneStatCaches(dir: string): Promise<void> {
  try {
    const names = (await readdir(dir)).filter((n) => n.endsWith('.json'));
    if (names.length <= KEPT_CONTEXTS) return;
    const aged = await Promise.all(names.map(async (n) => ({ path: join(dir, n), mtimeMs: (await stat(join(dir, n))).mtimeMs })));
    aged.sort((a, b) => b.mtimeMs - a.mtimeMs);
    await Promise.all(aged.slice(KEPT_CONTEXTS).map((a) => rm(a.path, { force: true })));
  } catch {
    // Another build may be pruning the same directory.
  }
}
