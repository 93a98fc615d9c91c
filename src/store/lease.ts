import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCode } from '../errors/index.js';
import { ownerAlive, ownerFromName, ownerTag, type ProcessOwner } from './owner.js';
import { readLockOwner } from './lock.js';

/** A lease of a process whose liveness cannot be judged from here (another host or container) expires after this. */
const FOREIGN_LEASE_MS = 24 * 60 * 60 * 1000;

/**
 * The blobs one process is using, recorded where the garbage collector reads them (containerd's
 * leases): `<root>/leases/<owner>-<nonce>`, one digest a line, appended before the blob is first
 * looked at. The collector holds the GC lock from before it reads the leases until its last delete;
 * a process that records a digest and then finds that lock held waits for it, so whatever it sees of
 * the blob afterwards stays true until it releases the lease. A lease whose process died counts for
 * nothing and is removed by the next collection.
 */
export class Lease {
  private fd: number | undefined;
  private path: string | undefined;
  private readonly seen = new Set<string>();

  constructor(
    private readonly dir: string,
    private readonly gcLockPath: string,
    private readonly owner: ProcessOwner,
  ) {}

  /** Records `digest`; resolves once no collection that could have missed the record is running. */
  async touch(digest: string): Promise<void> {
    if (this.seen.has(digest)) return;
    if (this.fd === undefined) {
      mkdirSync(this.dir, { recursive: true });
      this.path = join(this.dir, `${ownerTag(this.owner)}-${randomBytes(6).toString('hex')}`);
      this.fd = openSync(this.path, 'a', 0o644);
    }
    writeSync(this.fd, `${digest}\n`);
    this.seen.add(digest);
    await waitForCollector(this.gcLockPath, this.owner);
  }

  /** Ends the lease: the blobs it named are collectable again unless a name reaches them. */
  release(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    try {
      unlinkSync(this.path!);
    } catch {
      // Already removed by a collector that judged this process dead (it is not): nothing to keep.
    }
    this.fd = undefined;
    this.path = undefined;
    this.seen.clear();
  }
}

async function waitForCollector(gcLockPath: string, self: ProcessOwner): Promise<void> {
  let delay = 2;
  for (;;) {
    try {
      statSync(gcLockPath);
    } catch (cause) {
      if (errnoCode(cause) === 'ENOENT') return;
      throw cause;
    }
    const holder = await readLockOwner(gcLockPath);
    // A collector that died deletes nothing more; one in this very process never waits on its reader.
    if (!holder || !ownerAlive(holder, self) || (holder.pid === self.pid && holder.start === self.start)) return;
    await sleep(delay);
    delay = Math.min(delay * 2, 50);
  }
}

/** The digests named by live leases in `dir`; leases of dead processes are removed on the way. */
export async function readLiveLeases(dir: string, self: ProcessOwner, now = Date.now()): Promise<Set<string>> {
  const out = new Set<string>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (cause) {
    if (errnoCode(cause) === 'ENOENT') return out;
    throw cause;
  }
  for (const name of names) {
    const path = join(dir, name);
    const owner = ownerFromName(name);
    let dead = owner === undefined || !ownerAlive(owner, self);
    if (!dead && owner!.realm !== self.realm) {
      const info = await stat(path).catch(() => undefined);
      dead = info !== undefined && now - info.mtimeMs > FOREIGN_LEASE_MS;
    }
    if (dead) {
      await rm(path, { force: true });
      continue;
    }
    const text = await readFile(path, 'utf8').catch(() => '');
    for (const line of text.split('\n')) if (line) out.add(line);
  }
  return out;
}
