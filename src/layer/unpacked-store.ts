import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { digestHex, digestOf, type Digest } from '../digest/index.js';
import { StrataError, errnoCode, ioError } from '../errors/index.js';
import { ownerTag, type ProcessOwner } from '../store/index.js';
import { walkRootfs, type SnapshotEntry } from './snapshot.js';
import { TreeUsers, type TreeUse } from './unpacked-users.js';

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
  /**
   * Ends this process's use of the tree (call it when the build that asked for it ends); until then no prune
   * removes it. A process that dies without calling it holds nothing.
   */
  release(): Promise<void>;
}

/**
 * Layer chains kept unpacked between builds, so a RUN on a known base starts without decompressing it.
 * Each lives in `dir/KEY/root` beside `dir/KEY/stat.json`, the lstat data of every path taken right after
 * unpacking. A tree is used only while it still matches that list (a step never writes into it: callers copy
 * it, but a person or a crash might), and is removed and made again when it does not. At most `keep` trees
 * are kept; the least recently used go first, except a tree another live build is using (an overlay's lower
 * directory, the source of a copy): `get` and `put` record each use (`TreeUsers`) under the same lock that
 * pruning takes, and a victim is moved aside under that lock before it is deleted outside it.
 */
export class UnpackedStore {
  private readonly users: TreeUsers;

  constructor(
    private readonly dir: string,
    private readonly keep: number,
    private readonly owner: ProcessOwner,
  ) {
    this.users = new TreeUsers(dir, owner);
  }

  /** The unpacked chain `key`, checked and held for this process; undefined when there is none or it was damaged (then removed). */
  async get(key: string, signal?: AbortSignal): Promise<UnpackedTree | undefined> {
    await mkdir(this.dir, { recursive: true });
    const found = await this.users.locked(async () => {
      const ino = await this.treeIno(key);
      return ino === undefined ? undefined : { ino, use: await this.users.mark(key) };
    });
    if (found === undefined) return undefined;
    const entries = await this.check(key, signal);
    if (entries === undefined) {
      await this.removeDamaged(key, found.ino);
      await found.use.release();
      return undefined;
    }
    const time = new Date();
    await utimes(join(this.dir, key), time, time).catch(() => undefined);
    return { root: join(this.dir, key, 'root'), entries, release: found.use.release };
  }

  /**
   * Unpacks a chain with `fill` into a fresh directory and puts it in place as `key`; returns it, held for this
   * process. When another build put the same chain in place first, that one is kept and this one discarded.
   */
  async put(key: string, fill: (root: string) => Promise<void>): Promise<UnpackedTree> {
    await mkdir(this.dir, { recursive: true });
    const temp = join(this.dir, `.tmp-${ownerTag(this.owner)}-${randomBytes(6).toString('hex')}`);
    let entries: Map<string, SnapshotEntry>;
    let use: TreeUse;
    try {
      await mkdir(join(temp, 'root'), { recursive: true, mode: 0o755 });
      await fill(join(temp, 'root'));
      entries = walkRootfs(join(temp, 'root'), new Set());
      const listed: Record<string, string> = {};
      for (const [path, entry] of entries) listed[path] = describe(entry);
      await writeFile(join(temp, 'stat.json'), JSON.stringify(listed));
      const placed = await this.users.locked(() => this.place(temp, key));
      use = placed.use;
      if (!placed.ours) {
        // Another build put the same chain in place first: that tree is the one to use.
        await discard(temp);
        const kept = await this.check(key);
        if (kept === undefined) {
          await use.release();
          throw new StrataError('E_IO', `the unpacked layers another build kept in ${join(this.dir, key)} are damaged`);
        }
        entries = kept;
      }
    } catch (error) {
      await discard(temp);
      throw error;
    }
    await this.prune(key);
    // The walk's inode and device numbers are those of the same files after the rename.
    return { root: join(this.dir, key, 'root'), entries, release: use.release };
  }

  /**
   * Removes the least recently used trees beyond `keep` (never `current`, nor one a live process uses), and what
   * dead builds left (temp trees, trees moved aside and not yet deleted, dead users' markers).
   */
  async prune(current?: string): Promise<void> {
    const doomed = await this.users.locked(async () => {
      const names = await readdir(this.dir).catch(() => [] as string[]);
      const aside: string[] = [];
      const trees: Array<{ name: string; used: number }> = [];
      for (const name of names) {
        if (name.startsWith('.tmp-') || name.startsWith('.trash-')) {
          if (await this.users.abandoned(name)) aside.push(await this.moveAside(name).catch(() => ''));
          continue;
        }
        if (name.startsWith('.') || name === current) continue;
        const info = await stat(join(this.dir, name)).catch(() => undefined);
        if (info !== undefined) trees.push({ name, used: info.mtimeMs });
      }
      trees.sort((a, b) => b.used - a.used);
      const room = Math.max(0, this.keep - (current === undefined ? 0 : 1));
      const used = await this.users.inUse();
      for (const old of trees.slice(room)) if (!used.has(old.name)) aside.push(await this.moveAside(old.name).catch(() => ''));
      // A name that could not be moved (gone meanwhile) is left for the next prune.
      return aside.filter((path) => path !== '');
    });
    for (const path of doomed) await discard(path);
  }

  /** The kept trees: key, bytes of file content (from their stat data) and last use. */
  async list(): Promise<Array<{ key: string; bytes: number; usedMs: number }>> {
    const out: Array<{ key: string; bytes: number; usedMs: number }> = [];
    for (const key of await readdir(this.dir).catch(() => [] as string[])) {
      if (key.startsWith('.')) continue;
      const info = await stat(join(this.dir, key)).catch(() => undefined);
      if (info === undefined) continue;
      let bytes = 0;
      try {
        const listed = JSON.parse(await readFile(join(this.dir, key, 'stat.json'), 'utf8')) as Record<string, string>;
        for (const line of Object.values(listed)) bytes += Number(line.split(' ')[4]) || 0;
      } catch {
        // A tree without readable stat data is damaged: listed, so that prune can remove it.
      }
      out.push({ key, bytes, usedMs: info.mtimeMs });
    }
    return out;
  }

  /** Removes the tree `key` (`strata prune`) unless a live process uses it; whether it was removed. */
  async remove(key: string): Promise<boolean> {
    const aside = await this.users.locked(async () => ((await this.users.inUse()).has(key) ? undefined : this.moveAside(key).catch(() => undefined)));
    if (aside === undefined) return false;
    await discard(aside);
    return true;
  }

  /** Under the lock: `temp` renamed to `key` (ours) or, when a tree is there already, that one; held either way. */
  private async place(temp: string, key: string): Promise<{ ours: boolean; use: TreeUse }> {
    const final = join(this.dir, key);
    try {
      await rename(temp, final);
      return { ours: true, use: await this.users.mark(key) };
    } catch (error) {
      const code = errnoCode(error);
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw ioError('keep unpacked layers in', final, error);
    }
    if ((await this.treeIno(key)) !== undefined) return { ours: false, use: await this.users.mark(key) };
    // A directory without its stat data (a removal cut short by an older strata): replaced.
    await this.moveAside(key);
    await rename(temp, final);
    return { ours: true, use: await this.users.mark(key) };
  }

  /** The inode of `key`'s stat data, which names one tree put in place; undefined when there is no such tree. */
  private async treeIno(key: string): Promise<number | undefined> {
    try {
      return (await stat(join(this.dir, key, 'stat.json'))).ino;
    } catch (error) {
      return errnoCode(error) === 'ENOENT' ? undefined : -1;
    }
  }

  /** `key`'s tree checked against its stat data: the entries as they are now, or undefined when it differs or cannot be read. */
  private async check(key: string, signal?: AbortSignal): Promise<Map<string, SnapshotEntry> | undefined> {
    try {
      const listed = JSON.parse(await readFile(join(this.dir, key, 'stat.json'), 'utf8')) as Record<string, string>;
      const now = walkRootfs(join(this.dir, key, 'root'), new Set(), signal);
      if (now.size !== Object.keys(listed).length || [...now].some(([path, entry]) => listed[path] !== describe(entry))) return undefined;
      return now;
    } catch (error) {
      if (signal?.aborted) throw error;
      return undefined;
    }
  }

  /**
   * A damaged tree is removed (no build can trust it, whoever holds it), unless the tree at `key` is no longer
   * the one found damaged (`ino`): another build replaced it meanwhile.
   */
  private async removeDamaged(key: string, ino: number): Promise<void> {
    const aside = await this.users.locked(async () => ((await this.treeIno(key)) === ino ? this.moveAside(key) : undefined));
    if (aside !== undefined) await discard(aside);
  }

  /** Under the lock: `name` renamed to a trash name of this process, deleted later outside the lock. */
  private async moveAside(name: string): Promise<string> {
    const aside = join(this.dir, `.trash-${ownerTag(this.owner)}-${randomBytes(6).toString('hex')}`);
    await rename(join(this.dir, name), aside);
    return aside;
  }
}

async function discard(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch {
    // Read-only directories inside (an unprivileged unpack keeps modes): open them up, then try again.
    await run('chmod', ['-R', 'u+rwx', path]).catch(() => undefined);
    await rm(path, { recursive: true, force: true }).catch(() => undefined);
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
