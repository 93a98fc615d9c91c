import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { digestOf, type Digest } from '../digest/index.js';
import { errnoCode, ioError } from '../errors/index.js';
import type { ContextEntry } from './types.js';

const FORMAT = 'strata-context-stat-cache/2';
/** Per record: path relative to the root, size, mtimeMs, ino, dev, mode, sha256 hex. */
const FIELDS = 7;
const HEX64 = /^[0-9a-f]{64}$/;
/** Stat caches kept per store: the most recently written; older contexts are hashed afresh if built again. */
const KEPT_CONTEXTS = 32;

/** Where the stat cache of the context at `root` (a real path) lives under `dir`: one file per context. */
export function statCacheFile(dir: string, root: string): string {
  return join(dir, `${digestOf(root).slice('sha256:'.length, 'sha256:'.length + 32)}.json`);
}

/**
 * Remembers the content digest of the files under one context directory by path and stat fingerprint
 * (size, mtime, inode, device, mode), so an unchanged file is not read again to compute a cache key. A
 * fingerprint mismatch is a miss; paths outside the root are never cached. The persisted form is advisory
 * (an unreadable or foreign file loads as empty) and compact: one flat JSON array, held as parsed and indexed
 * by path, because a fully cached build loads it for every file of the context and little else.
 */
export class ContextStatCache {
  private readonly prefix: string;
  private values: Array<string | number> = [];
  /** Path relative to the root -> index of its record in `values`. */
  private readonly records = new Map<string, number>();
  /** Whether a record was set since the last load or save: an unchanged cache need not be written. */
  private changed = false;

  /** `root` is the real path of the context directory. */
  constructor(readonly root: string) {
    this.prefix = root.endsWith('/') ? root : `${root}/`;
  }

  get size(): number {
    return this.records.size;
  }

  get(entry: ContextEntry): Digest | undefined {
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

  /** Adds the records persisted in `file`; a missing, malformed or other context's file adds nothing. */
  async load(file: string): Promise<void> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (cause) {
      if (errnoCode(cause) === 'ENOENT') return;
      throw ioError('read stat cache', file, cause);
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      return;
    }
    const { format, root, files } = (typeof data === 'object' && data !== null ? data : {}) as { format?: unknown; root?: unknown; files?: unknown };
    if (format !== FORMAT || root !== this.root || !Array.isArray(files)) return;
    const base = this.values.length;
    if (base === 0) this.values = files as Array<string | number>;
    else for (const value of files as Array<string | number>) this.values.push(value);
    for (let i = 0; i + FIELDS <= files.length; i += FIELDS) {
      const rel: unknown = files[i];
      if (typeof rel === 'string' && !this.records.has(rel)) this.records.set(rel, base + i);
    }
  }

  /**
   * Writes the records to `file`, a temp file beside it then a rename so readers never see half, and
   * removes the stat caches of contexts not built for a long time (all but the most recent few). Says
   * whether anything was written.
   */
  async save(file: string): Promise<boolean> {
    if (!this.changed) return false;
    const files: Array<string | number> = [];
    for (const at of this.records.values()) for (let i = 0; i < FIELDS; i++) files.push(this.values[at + i] as string | number);
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(dirname(file), { recursive: true });
      await writeFile(tmp, JSON.stringify({ format: FORMAT, root: this.root, files }));
      await rename(tmp, file);
      this.changed = false;
    } catch (cause) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw ioError('write stat cache', file, cause);
    }
    await pruneStatCaches(dirname(file));
    return true;
  }

  private relative(absPath: string): string | undefined {
    return absPath.startsWith(this.prefix) ? absPath.slice(this.prefix.length) : undefined;
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
