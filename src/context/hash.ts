import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { fsPath } from '../fsname/index.js';
import { open, type FileHandle } from 'node:fs/promises';
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
  /** Digests already known by absolute path (from a layer write that read the files): used before reading. */
  known?: ReadonlyMap<string, Digest> | undefined;
  /**
   * The path each entry is keyed under in place of its relPath, index for index. The entries are then
   * hashed in the order given (a COPY's matches, each listing sorted), not sorted again.
   */
  paths?: readonly string[] | undefined;
  /**
   * Also key each entry's mtime in whole seconds, clamped to this many seconds (SOURCE_DATE_EPOCH):
   * a COPY writes exactly that time into its layer, so two sources differing only there give different
   * layers. Left out (the default), mtimes are not hashed, as when no epoch makes the layer reproducible anyway.
   */
  mtimesUpTo?: number | undefined;
  /** Files hashed at once. */
  concurrency?: number | undefined;
  signal?: AbortSignal | undefined;
}

const FORMAT = 'strata-context-sources/1';
const READ_CHUNK = 1024 * 1024;

/**
 * A digest of what a set of entries would copy, for cache keys: sha256 over canonical JSON of each entry's
 * path, type, mode, owner, link target, size and (for files) content digest, in path order (as given with
 * `paths`). Mtimes, inode numbers and absolute paths are left out, so a fresh checkout elsewhere hashes
 * the same.
 */
export async function hashSources(entries: readonly ContextEntry[], options: HashSourcesOptions = {}): Promise<Digest> {
  const sorted = hashOrder(entries, options);
  const set = sourceSet(sorted, options);
  return set.digest ?? set.remember(digestRows(sorted, await contentDigests(sorted, options), options));
}

/**
 * hashSources from the stat cache alone, for a build that would reuse a cached step: undefined as soon as
 * one file's digest is not there (it would have to be read), so a miss costs no read.
 */
export function hashSourcesFromCache(entries: readonly ContextEntry[], options: HashSourcesOptions = {}): Digest | undefined {
  const sorted = hashOrder(entries, options);
  const set = sourceSet(sorted, options);
  if (set.digest !== undefined) return set.digest;
  const contents: Array<Digest | undefined> = new Array<Digest | undefined>(sorted.length);
  for (let i = 0; i < sorted.length; i++) {
    const e = sorted[i]!;
    if (e.type !== 'file') continue;
    const digest = options.statCache?.get(e);
    if (digest === undefined) return undefined;
    contents[i] = digest;
  }
  return set.remember(digestRows(sorted, contents, options));
}

interface SourceSet {
  /** The sources digest the stat cache remembers for this listing. */
  digest: Digest | undefined;
  /** Records a digest computed for this listing, and returns it. */
  remember: (digest: Digest) => Digest;
}

/**
 * The stat cache's memory of this listing as a whole: nothing without a stat cache, or for a listing
 * that reaches outside its root (like the per-file records, which other roots never get: those are
 * temporary directories, where a new file can come back with an old one's path, size, mtime and inode).
 */
function sourceSet(sorted: readonly ContextEntry[], options: HashSourcesOptions): SourceSet {
  const { statCache } = options;
  if (statCache === undefined || !sorted.every((e) => statCache.covers(e.absPath))) return { digest: undefined, remember: (digest) => digest };
  const fingerprint = sourcesFingerprint(sorted, options);
  return {
    digest: statCache.sources(fingerprint),
    remember: (digest) => {
      statCache.rememberSources(fingerprint, digest);
      return digest;
    },
  };
}

const FINGERPRINT_FORMAT = 'strata-context-fingerprint/1';
const TYPE_CODES: Record<ContextEntry['type'], number> = { file: 1, dir: 2, symlink: 3, fifo: 4, char: 5, block: 6, socket: 7 };
const FINGERPRINT_NUMBERS = 9;

/**
 * A digest of everything hashSources would hash, with each file's stat identity (size, mtime, inode,
 * device, mode, absolute path) in place of its content: the condition under which the stat cache would
 * give every file's digest, taken at once. Equal fingerprints mean equal sources digests as far as the
 * stat cache can tell, so a fully cached build keys a COPY without a lookup per file. Numbers are hashed
 * as raw float64s (machine byte order: a stat cache is only ever read where it was written, and a
 * mismatch is only a miss); names are joined by NUL, which no file name holds.
 */
function sourcesFingerprint(sorted: readonly ContextEntry[], options: HashSourcesOptions): string {
  const n = sorted.length;
  const numbers = new Float64Array(n * FINGERPRINT_NUMBERS);
  const names = new Array<string>(2 * n);
  let links = '';
  for (let i = 0; i < n; i++) {
    const e = sorted[i]!;
    const file = e.type === 'file';
    const o = i * FINGERPRINT_NUMBERS;
    numbers[o] = TYPE_CODES[e.type];
    numbers[o + 1] = e.mode;
    numbers[o + 2] = e.uid;
    numbers[o + 3] = e.gid;
    numbers[o + 4] = file ? e.size : 0;
    // Only a file's content stands behind its stat identity; a directory's mtime moves with any change inside.
    numbers[o + 5] = file || options.mtimesUpTo !== undefined ? e.mtimeMs : 0;
    numbers[o + 6] = file ? e.ino : 0;
    numbers[o + 7] = file ? e.dev : 0;
    numbers[o + 8] = e.type === 'char' || e.type === 'block' ? e.rdev : 0;
    names[2 * i] = options.paths?.[i] ?? e.relPath;
    names[2 * i + 1] = e.absPath;
    if (e.linkTarget !== undefined) links += `${i}\0${e.linkTarget}\0`;
  }
  return createHash('sha256')
    .update(JSON.stringify([FINGERPRINT_FORMAT, FORMAT, options.includeOwnership ?? true, n, options.mtimesUpTo ?? null]))
    .update(numbers)
    .update(names.join('\0'))
    .update(links)
    .digest('hex');
}

/** The entries in the order they are hashed: as given when the caller keys them by `paths`. */
function hashOrder(entries: readonly ContextEntry[], options: HashSourcesOptions): readonly ContextEntry[] {
  return options.paths !== undefined ? entries : sortByPath(entries);
}

function digestRows(sorted: readonly ContextEntry[], contents: ReadonlyArray<Digest | undefined>, options: HashSourcesOptions): Digest {
  const owner = options.includeOwnership ?? true;
  const rows = sorted.map((e, i) => {
    const row: Array<string | number | null> = [options.paths?.[i] ?? e.relPath, e.type, e.mode];
    row.push(owner ? e.uid : null, owner ? e.gid : null);
    row.push(e.linkTarget ?? null);
    row.push(e.type === 'file' ? e.size : null);
    row.push(contents[i] ?? null);
    if (e.type === 'char' || e.type === 'block') row.push(e.rdev);
    if (options.mtimesUpTo !== undefined) row.push('mtime', Math.min(Math.floor(e.mtimeMs / 1000), options.mtimesUpTo));
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
        digest = options.known?.get(e.absPath) ?? (await read(e));
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
 * Hashes a listed file. O_NOFOLLOW and an inode check make sure the bytes hashed are those of the object
 * that was listed, not of something swapped in since (a symlink pointing elsewhere, another file). Files up
 * to one read are read with blocking calls: from the page cache that costs a quarter of the CPU of the
 * promise-based calls, which is what hashing a tree of many small files waits on.
 */
export async function digestRegularFile(entry: ContextEntry): Promise<Digest> {
  if (entry.size <= READ_CHUNK) return digestSmallFile(entry);
  let handle: FileHandle;
  try {
    handle = await open(fsPath(entry.absPath), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (cause) {
    throw ioError('read', entry.absPath, cause);
  }
  try {
    checkUnchanged(entry, await handle.stat());
    const hasher = new Hasher();
    const buffer = Buffer.allocUnsafe(READ_CHUNK);
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

function digestSmallFile(entry: ContextEntry): Digest {
  let fd: number;
  try {
    fd = openSync(fsPath(entry.absPath), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (cause) {
    throw ioError('read', entry.absPath, cause);
  }
  try {
    checkUnchanged(entry, fstatSync(fd));
    const buffer = Buffer.allocUnsafe(entry.size + 1);
    // One byte more than listed is asked for, so a file that grew since its stat is noticed.
    let length = 0;
    while (length < buffer.length) {
      const n = readSync(fd, buffer, length, buffer.length - length, length);
      if (n === 0) break;
      length += n;
    }
    if (length !== entry.size) throw changedError(entry);
    return digestOf(buffer.subarray(0, length));
  } catch (cause) {
    if (cause instanceof StrataError) throw cause;
    throw ioError('read', entry.absPath, cause);
  } finally {
    closeSync(fd);
  }
}

function checkUnchanged(entry: ContextEntry, st: Stats): void {
  if (!st.isFile() || st.ino !== entry.ino || st.dev !== entry.dev || st.size !== entry.size || st.mtimeMs !== entry.mtimeMs) throw changedError(entry);
}

function changedError(entry: ContextEntry): StrataError {
  return new StrataError('E_IO', `${entry.absPath} changed while the build was reading it`, {
    hint: 'do not modify the build context during a build',
  });
}
