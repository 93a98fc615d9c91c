import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StrataError, errnoCode, ioError } from '../errors/index.js';
import { ownerAlive, ownerTag, type ProcessOwner } from './owner.js';

interface LockRecord extends ProcessOwner {
  nonce: string;
}

export interface LockOptions {
  owner: ProcessOwner;
  /** How long to wait for a live holder before failing (default 2 minutes). */
  timeoutMs?: number | undefined;
  /** A lock whose owner cannot be judged (another host or pid namespace) is taken as stale after this long. */
  foreignStaleMs?: number | undefined;
  signal?: AbortSignal | undefined;
  now?: () => number;
}

/**
 * A lock file for short critical sections shared between processes: the record of its owner is
 * written to a temp file and hard-linked into place, so the lock appears with its content or not at all
 * (link fails when the name exists, on local file systems and on NFS alike). A holder that died leaves
 * its file behind; a waiter that finds its owner dead moves the file aside by rename, checks that what
 * it moved is the record it judged (and puts a live one back), and tries again. Node has no flock
 * without a native addon, and a lock held by pid with a start time needs no heartbeat.
 */
export async function withLock<T>(path: string, options: LockOptions, work: () => Promise<T>): Promise<T> {
  const release = await acquireLock(path, options);
  try {
    return await work();
  } finally {
    await release();
  }
}

export async function acquireLock(path: string, options: LockOptions): Promise<() => Promise<void>> {
  const now = options.now ?? Date.now;
  const record: LockRecord = { ...options.owner, nonce: randomBytes(8).toString('hex') };
  const text = JSON.stringify(record);
  // Named like every temp file, with its owner, so a sweep after a crash can remove it.
  const tmp = join(dirname(path), `.tmp-${basename(path)}-${ownerTag(record)}-${record.nonce}`);
  try {
    await writeFile(tmp, text);
  } catch (cause) {
    if (errnoCode(cause) !== 'ENOENT') throw ioError('create lock', path, cause);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(tmp, text);
  }
  const deadline = now() + (options.timeoutMs ?? 120_000);
  let delay = 1;
  try {
    for (;;) {
      try {
        await link(tmp, path);
        break;
      } catch (cause) {
        if (errnoCode(cause) !== 'EEXIST') throw ioError('take lock', path, cause);
      }
      const held = await readRecord(path);
      if (held && (await stale(path, held, options))) {
        await breakLock(path, held);
        continue;
      }
      if (now() > deadline) {
        throw new StrataError('E_LOCKED', `${path} is locked${held ? ` by process ${held.pid}` : ''} and was not released in time`, {
          hint: 'another strata process is using the store; if none is running, remove the lock file',
        });
      }
      if (options.signal?.aborted) throw new StrataError('E_ABORTED', 'operation aborted', { cause: options.signal.reason });
      await sleep(delay);
      delay = Math.min(delay * 2, 50);
    }
  } finally {
    await rm(tmp, { force: true });
  }
  return async () => {
    // Only our own record is removed: a lock broken by mistake and taken by another stays theirs.
    const held = await readRecord(path);
    if (held?.nonce === record.nonce) await unlink(path).catch(() => undefined);
  };
}

/** The owner recorded in a lock file, if it is there and readable. */
export async function readLockOwner(path: string): Promise<ProcessOwner | undefined> {
  return readRecord(path);
}

async function readRecord(path: string): Promise<LockRecord | undefined> {
  try {
    const value = JSON.parse(await readFile(path, 'utf8')) as Partial<LockRecord>;
    if (typeof value.pid !== 'number' || typeof value.nonce !== 'string' || typeof value.realm !== 'string' || typeof value.start !== 'string')
      return undefined;
    return value as LockRecord;
  } catch {
    return undefined;
  }
}

async function stale(path: string, held: LockRecord, options: LockOptions): Promise<boolean> {
  if (!ownerAlive(held, options.owner)) return true;
  if (held.realm === options.owner.realm) return false;
  const info = await stat(path).catch(() => undefined);
  return info !== undefined && (options.now ?? Date.now)() - info.mtimeMs > (options.foreignStaleMs ?? 5 * 60_000);
}

/** Removes the lock file if it still holds `held`; a live record moved aside by a race goes back. */
async function breakLock(path: string, held: LockRecord): Promise<void> {
  const aside = `${path}.${randomBytes(8).toString('hex')}.broken`;
  try {
    await rename(path, aside);
  } catch {
    return;
  }
  const moved = await readRecord(aside);
  if (moved && moved.nonce !== held.nonce) await link(aside, path).catch(() => undefined);
  await rm(aside, { force: true });
}
