import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isDigest, type Digest } from '../digest/index.js';
import { errnoCode, ioError } from '../errors/index.js';
import type { ContextEntry } from './types.js';

interface Record {
  size: number;
  mtimeMs: number;
  ino: number;
  dev: number;
  mode: number;
  digest: Digest;
}

const FORMAT = 'strata-context-stat-cache/1';

/**
 * Remembers the content digest of files by path and stat fingerprint (size, mtime, inode, device, mode),
 * so an unchanged file is not read again to compute a cache key. A fingerprint mismatch is a miss. The
 * persisted form is advisory: an unreadable or foreign file loads as empty.
 */
export class ContextStatCache {
  private readonly records = new Map<string, Record>();
  /** Whether a record was set since the last load or save: an unchanged cache need not be written. */
  private changed = false;

  get size(): number {
    return this.records.size;
  }

  get(entry: ContextEntry): Digest | undefined {
    const r = this.records.get(entry.absPath);
    if (r === undefined) return undefined;
    if (r.size !== entry.size || r.mtimeMs !== entry.mtimeMs || r.ino !== entry.ino || r.dev !== entry.dev || r.mode !== entry.mode) {
      return undefined;
    }
    return r.digest;
  }

  set(entry: ContextEntry, digest: Digest): void {
    this.changed = true;
    this.records.set(entry.absPath, {
      size: entry.size,
      mtimeMs: entry.mtimeMs,
      ino: entry.ino,
      dev: entry.dev,
      mode: entry.mode,
      digest,
    });
  }

  /** Adds the records persisted in `file` (JSON); a missing or malformed file adds nothing. */
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
    if (typeof data !== 'object' || data === null || (data as { format?: unknown }).format !== FORMAT) return;
    const entries = (data as { entries?: unknown }).entries;
    if (typeof entries !== 'object' || entries === null) return;
    for (const [path, value] of Object.entries(entries as { [k: string]: unknown })) {
      if (isRecord(value)) this.records.set(path, value);
    }
  }

  /** Writes every record to `file` as JSON: a temp file beside it, then a rename, so readers never see half. */
  async save(file: string): Promise<void> {
    if (!this.changed) return;
    const entries: { [path: string]: Record } = {};
    for (const [path, r] of [...this.records].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) entries[path] = r;
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(dirname(file), { recursive: true });
      await writeFile(tmp, JSON.stringify({ format: FORMAT, entries }));
      await rename(tmp, file);
      this.changed = false;
    } catch (cause) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw ioError('write stat cache', file, cause);
    }
  }
}

function isRecord(v: unknown): v is Record {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as { [k: string]: unknown };
  return (
    typeof r.size === 'number' &&
    typeof r.mtimeMs === 'number' &&
    typeof r.ino === 'number' &&
    typeof r.dev === 'number' &&
    typeof r.mode === 'number' &&
    typeof r.digest === 'string' &&
    isDigest(r.digest)
  );
}
