import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { Hasher, digestOf, type Digest } from '../digest/index.js';
import { StrataError, ioError } from '../errors/index.js';
import { sortByPath } from './order.js';
import type { ContextStatCache } from './stat-cache.js';
import type { ContextEntry } from './types.js';

export interface HashSourcesOptions {
  statCache?: ContextStatCache | undefined;
  /** Include uid/gid (default true). Leave them out when the copy sets its own owner anyway. */
  includeOwnership?: boolean | undefined;
  /** Reads a file's content digest; the default streams it (tests count calls through this). */
  digestContent?: ((entry: ContextEntry) => Promise<Digest>) | undefined;
  /** Files hashed at once. */
  concurrency?: number | undefined;
  signal?: AbortSignal | undefined;
}

const FORMAT = 'strata-context-sources/1';
const READ_CHUNK = 1024 * 1024;

/**
 * A digest of what a set of entries would copy, for cache keys: sha256 over canonical JSON of each entry's
 * path, type, mode, owner, link target, size and (for files) content digest, in path order. Mtimes, inode
 * numbers and absolute paths are left out, so a fresh checkout elsewhere hashes the same.
 */
export async function hashSources(entries: readonly ContextEntry[], options: HashSourcesOptions = {}): Promise<Digest> {
  const sorted = sortByPath(entries);
  const contents = await contentDigests(sorted, options);
  const owner = options.includeOwnership ?? true;
  const rows = sorted.map((e, i) => {
    const row: Array<string | number | null> = [e.relPath, e.type, e.mode];
    row.push(owner ? e.uid : null, owner ? e.gid : null);
    row.push(e.linkTarget ?? null);
    row.push(e.type === 'file' ? e.size : null);
    row.push(contents[i] ?? null);
    if (e.type === 'char' || e.type === 'block') row.push(e.rdev);
    return row;
  });
  return digestOf(JSON.stringify([FORMAT, rows]));
}

async function contentDigests(sorted: readonly ContextEntry[], options: HashSourcesOptions): Promise<Array<Digest | undefined>> {
  const out: Array<Digest | undefined> = new Array<Digest | undefined>(sorted.length).fill(undefined);
  const read = options.digestContent ?? digestRegularFile;
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < sorted.length; i = next++) {
      const e = sorted[i] as ContextEntry;
      if (e.type !== 'file') continue;
      if (options.signal?.aborted === true) throw new StrataError('E_ABORTED', 'hashing the COPY sources was aborted');
      let digest = options.statCache?.get(e);
      if (digest === undefined) {
        digest = await read(e);
        options.statCache?.set(e, digest);
      }
      out[i] = digest;
    }
  };
  const n = Math.max(1, Math.min(options.concurrency ?? 8, sorted.length));
  await Promise.all(Array.from({ length: n }, worker));
  return out;
}

/**
 * Streams a listed file into sha256. O_NOFOLLOW and an inode check make sure the bytes hashed are those of
 * the object that was listed, not of something swapped in since (a symlink pointing elsewhere, another file).
 */
export async function digestRegularFile(entry: ContextEntry): Promise<Digest> {
  let handle;
  try {
    handle = await open(entry.absPath, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (cause) {
    throw ioError('read', entry.absPath, cause);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile() || st.ino !== entry.ino || st.dev !== entry.dev || st.size !== entry.size || st.mtimeMs !== entry.mtimeMs) {
      throw new StrataError('E_IO', `${entry.absPath} changed while the build was reading it`, {
        hint: 'do not modify the build context during a build',
      });
    }
    // Plain reads into one buffer: a read stream's machinery costs more than the bytes for small files.
    const hasher = new Hasher();
    const buffer = Buffer.allocUnsafe(Math.max(1, Math.min(entry.size, READ_CHUNK)));
    for (let position = 0; ; ) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) break;
      hasher.update(buffer.subarray(0, bytesRead));
      position += bytesRead;
    }
    return hasher.digest();
  } catch (cause) {
    if (cause instanceof StrataError) throw cause;
    throw ioError('read', entry.absPath, cause);
  } finally {
    await handle.close();
  }
}
