import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, ioError } from '../errors/index.js';
import { ownerAlive, ownerFromName, ownerTag, withLock, type ProcessOwner } from '../store/index.js';

/** A use of another host's or pid namespace's process, whose liveness cannot be judged from here, counts for this long (as a lease). */
const FOREIGN_USE_MS = 24 * 60 * 60 * 1000;
/** Scratch names that carry no owner (written by strata versions before owners were named) are removed once this old. */
const UNOWNED_AFTER_MS = 24 * 60 * 60 * 1000;

/** One process's use of one kept tree, until `release` (called once the build that took it ends). */
export interface TreeUse {
  release(): Promise<void>;
}

/**
 * Who is using which tree of a directory of kept trees (`UnpackedStore`): one marker file per use,
 * `DIR/.users/KEY-OWNER-NONCE` (OWNER as `ownerTag`), written under `DIR/.lock` in the same critical
 * section that found the tree in place. Pruning takes the same lock, so a tree it finds with no live
 * user cannot gain one before it is moved aside. A marker of a process that died (a killed build) counts
 * for nothing and is removed; one of another host or pid namespace counts until it is a day old, as a lease
 * does. Keys hold no '-' (they are hex digests).
 */
export class TreeUsers {
  constructor(
    private readonly dir: string,
    private readonly owner: ProcessOwner,
  ) {}

  /** Runs `work` holding the directory's lock (short sections only: checks, markers, renames). */
  locked<T>(work: () => Promise<T>): Promise<T> {
    return withLock(join(this.dir, '.lock'), { owner: this.owner }, work);
  }

  /** Records a use of `key` by this process. Call under `locked`, after finding the tree in place. */
  async mark(key: string): Promise<TreeUse> {
    const users = join(this.dir, '.users');
    const path = join(users, `${key}-${ownerTag(this.owner)}-${randomBytes(6).toString('hex')}`);
    try {
      await writeFile(path, '', { flag: 'wx' });
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw ioError('record the use of', path, error);
      await mkdir(users, { recursive: true });
      await writeFile(path, '', { flag: 'wx' });
    }
    let released = false;
    return {
      async release() {
        if (released) return;
        released = true;
        await rm(path, { force: true });
      },
    };
  }

  /** The keys some live process uses; markers of dead processes are removed on the way. Call under `locked`. */
  async inUse(now = Date.now()): Promise<Set<string>> {
    const out = new Set<string>();
    const users = join(this.dir, '.users');
    for (const name of await readdir(users).catch(() => [] as string[])) {
      const dash = name.indexOf('-');
      if (dash > 0 && (await this.alive(join(users, name), name, now))) out.add(name.slice(0, dash));
      else await rm(join(users, name), { force: true });
    }
    return out;
  }

  /**
   * Whether the scratch entry `name` in the directory (a temp tree being filled, a tree moved aside to be
   * deleted, a lock's temp file) belongs to no live process, so that anyone may remove it.
   */
  async abandoned(name: string, now = Date.now()): Promise<boolean> {
    return !(await this.alive(join(this.dir, name), name, now));
  }

  private async alive(path: string, name: string, now: number): Promise<boolean> {
    const owner = ownerFromName(name);
    if (owner !== undefined && !ownerAlive(owner, this.owner)) return false;
    if (owner !== undefined && owner.realm === this.owner.realm) return true;
    const info = await lstat(path).catch(() => undefined);
    if (info === undefined) return false;
    return now - info.mtimeMs < (owner === undefined ? UNOWNED_AFTER_MS : FOREIGN_USE_MS);
  }
}
