import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { digestHex, digestOf, type Digest } from '../digest/index.js';
import { StrataError, errnoCode, ioError } from '../errors/index.js';
import { walkRootfs, type SnapshotEntry } from './snapshot.js';

const run = promisify(execFile);
const VERSION = 'v1';

/** `$STRATA_ROOT/cache/unpacked`. */
export function unpackedDir(storeRoot: string): string {
  return join(storeRoot, 'cache', 'unpacked');
}

/** The identity of an unpacked layer chain: its diffIDs in order, and whether owners were applied. */
export function unpackedKey(diffIds: readonly Digest[], privileged: boolean): string {
  return digestHex(digestOf(`${VERSION}\n${privileged ? 'owners' : 'no-owners'}\n${diffIds.join('\n')}`));
}

/** An unpacked chain: its root and the lstat data of every path under it (taken when it was checked or made). */
export interface UnpackedTree {
  root: string;
  entries: ReadonlyMap<string, SnapshotEntry>;
}

/**
 * Layer chains kept unpacked between builds, so a RUN on a known base starts without decompressing it.
 * Each lives in `dir/KEY/root` beside `dir/KEY/stat.json`, the lstat data of every path taken right after
 * unpacking. A tree is used only while it still matches that list (a step never writes into it: callers copy
 * it, but a person or a crash might), and is removed and made again when it does not. At most `keep` trees
 * are kept; the least recently used go first.
 */
export class UnpackedStore {
  constructor(
    private readonly dir: string,
    private readonly keep: number,
  ) {}

  /** The unpacked chain `key`, checked; undefined when there is none or it was damaged (then removed). */
  async get(key: string, signal?: AbortSignal): Promise<UnpackedTree | undefined> {
    const base = join(this.dir, key);
    let listed: Record<string, string>;
    try {
      listed = JSON.parse(await readFile(join(base, 'stat.json'), 'utf8')) as Record<string, string>;
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') await this.discard(base);
      return undefined;
    }
    const root = join(base, 'root');
    let now: Map<string, SnapshotEntry>;
    try {
      now = walkRootfs(root, new Set(), signal);
    } catch {
      await this.discard(base);
      return undefined;
    }
    if (now.size !== Object.keys(listed).length || [...now].some(([path, entry]) => listed[path] !== describe(entry))) {
      await this.discard(base);
      return undefined;
    }
    const time = new Date();
    await utimes(base, time, time).catch(() => undefined);
    return { root, entries: now };
  }

  /**
   * Unpacks a chain with `fill` into a fresh directory and puts it in place as `key`; returns its root. When
   * another build put the same chain in place first, that one is kept and this one discarded.
   */
  async put(key: string, fill: (root: string) => Promise<void>): Promise<UnpackedTree> {
    await mkdir(this.dir, { recursive: true });
    const temp = join(this.dir, `.tmp-${key.slice(0, 16)}-${randomBytes(6).toString('hex')}`);
    let entries: Map<string, SnapshotEntry>;
    try {
      await mkdir(join(temp, 'root'), { recursive: true, mode: 0o755 });
      await fill(join(temp, 'root'));
      entries = walkRootfs(join(temp, 'root'), new Set());
      const listed: Record<string, string> = {};
      for (const [path, entry] of entries) listed[path] = describe(entry);
      await writeFile(join(temp, 'stat.json'), JSON.stringify(listed));
      try {
        await rename(temp, join(this.dir, key));
      } catch (error) {
        const code = errnoCode(error);
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw ioError('keep unpacked layers in', join(this.dir, key), error);
        await this.discard(temp);
        // Another build put the same chain in place first: that tree is the one to use.
        const kept = await this.get(key);
        if (kept === undefined) throw new StrataError('E_IO', `the unpacked layers another build kept in ${join(this.dir, key)} went away`);
        entries = new Map(kept.entries);
      }
    } catch (error) {
      await this.discard(temp);
      throw error;
    }
    await this.prune(key);
    // The walk's inode and device numbers are those of the same files after the rename.
    return { root: join(this.dir, key, 'root'), entries };
  }

  /** Removes the least recently used trees beyond `keep` (never `current`), and temp trees of dead builds. */
  async prune(current?: string): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return;
    }
    const kept: Array<{ name: string; used: number }> = [];
    for (const name of names) {
      const info = await stat(join(this.dir, name)).catch(() => undefined);
      if (info === undefined) continue;
      if (name.startsWith('.tmp-')) {
        if (Date.now() - info.mtimeMs > 24 * 3600 * 1000) await this.discard(join(this.dir, name));
        continue;
      }
      if (name !== current) kept.push({ name, used: info.mtimeMs });
    }
    kept.sort((a, b) => b.used - a.used);
    const room = Math.max(0, this.keep - (current === undefined ? 0 : 1));
    for (const old of kept.slice(room)) await this.discard(join(this.dir, old.name));
  }

  private async discard(path: string): Promise<void> {
    try {
      await rm(path, { recursive: true, force: true });
    } catch {
      // Read-only directories inside (an unprivileged unpack keeps modes): open them up, then try again.
      await run('chmod', ['-R', 'u+rwx', path]).catch(() => undefined);
      await rm(path, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

/**
 * A private, writable copy of an unpacked tree for one step: reflinks where the file system has them (cp
 * --reflink=auto), else a full copy; hard links inside the tree stay hard links. The step writes only into
 * the copy.
 */
export async function copyUnpacked(from: string, to: string, privileged: boolean): Promise<void> {
  const preserve = privileged ? ['-a'] : ['-R', '--no-dereference', '--preserve=mode,timestamps,links'];
  try {
    await run('cp', [...preserve, '--reflink=auto', '--', `${from}/.`, to], { maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const stderr = (error as { stderr?: unknown }).stderr;
    throw new StrataError(
      'E_IO',
      `cannot copy the unpacked base ${from} to ${to}: ${typeof stderr === 'string' && stderr !== '' ? stderr.trim() : String(error)}`,
      {
        cause: error,
        hint: 'check free space in the store; STRATA_SNAPSHOTS=0 unpacks the base for each build instead',
      },
    );
  }
}

function describe(entry: SnapshotEntry): string {
  return `${entry.type} ${entry.mode} ${entry.uid} ${entry.gid} ${entry.size} ${entry.mtimeNs} ${entry.ino} ${entry.linkTarget ?? ''}`;
}
