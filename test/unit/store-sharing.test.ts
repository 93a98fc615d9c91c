import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ContextStatCache,
  FileBlobStore,
  Lease,
  LocalStore,
  OVERLAY_MOUNT_SOURCE,
  acquireLock,
  currentOwner,
  digestOf,
  mountOverlay,
  mountTable,
  ownerAlive,
  ownerFromName,
  ownerTag,
  parseDuration,
  parseSize,
  processStart,
  readLiveLeases,
  sweepLeftovers,
  withLock,
  type ContextEntry,
  type ProcessOwner,
} from '../../src/internals.js';
import { itAsRoot } from '../helpers/tools.js';

const execFileAsync = promisify(execFile);

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strata-sharing-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The owner of a process that has ended: a child started and waited for. */
async function deadOwner(): Promise<ProcessOwner> {
  const child = spawn('true');
  await new Promise((resolve) => child.once('exit', resolve));
  return { ...currentOwner(), pid: child.pid!, start: '1' };
}

describe('process owners', () => {
  it('tells this process, a dead one, a reused pid and a foreign realm apart', async () => {
    const self = currentOwner();
    expect(ownerAlive(self, self)).toBe(true);
    expect(ownerAlive(await deadOwner(), self)).toBe(false);
    // Same live pid, another start time: the pid was reused by a later process.
    expect(ownerAlive({ ...self, pid: process.ppid, start: '1' }, self)).toBe(false);
    // Another host or pid namespace cannot be judged from here: alive.
    expect(ownerAlive({ ...(await deadOwner()), realm: 'ffffffff' }, self)).toBe(true);
  });

  it('round-trips through file names and ignores names without one', () => {
    const self = currentOwner();
    expect(ownerFromName(`.tmp-ingest-${ownerTag(self)}-abcdef`)).toEqual(self);
    expect(ownerFromName(`strata-run-rootfs-${ownerTag(self)}-Xy12Zq`)).toEqual(self);
    expect(ownerFromName('strata-run-secrets-Ab12Cd')).toBeUndefined();
    expect(ownerFromName('.tmp-index.json-0a1b2c3d4e5f')).toBeUndefined();
  });
});

describe('lock files', () => {
  it('lets one holder at a time in, across many waiters', async () => {
    const path = join(dir, 'index.json.lock');
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 12 }, () =>
        withLock(path, { owner: currentOwner() }, async () => {
          inside++;
          most = Math.max(most, inside);
          await sleep(2);
          inside--;
        }),
      ),
    );
    expect(most).toBe(1);
    expect(await readdir(dir)).toEqual([]);
  });

  it('breaks a lock whose owner died, and waits for (then times out on) a live one', async () => {
    const path = join(dir, 'gc.lock');
    await writeFile(path, JSON.stringify({ ...(await deadOwner()), nonce: 'dead' }));
    const release = await acquireLock(path, { owner: currentOwner() });
    expect(JSON.parse(await readFile(path, 'utf8'))).toMatchObject({ pid: process.pid });

    const waited = acquireLock(path, { owner: currentOwner(), timeoutMs: 150 });
    await expect(waited).rejects.toMatchObject({ code: 'E_LOCKED', message: expect.stringContaining(`by process ${process.pid}`) });
    await release();
    await expect(readdir(dir)).resolves.toEqual([]);
  });

  it('takes a lock of another realm as stale only once it is old', async () => {
    const path = join(dir, 'x.lock');
    await writeFile(path, JSON.stringify({ ...currentOwner(), realm: 'ffffffff', nonce: 'far' }));
    await expect(acquireLock(path, { owner: currentOwner(), timeoutMs: 50 })).rejects.toMatchObject({ code: 'E_LOCKED' });
    const release = await acquireLock(path, { owner: currentOwner(), now: () => Date.now() + 10 * 60_000 });
    await release();
  });
});

describe('leases and the collector', () => {
  it('records a digest before it is looked at, and drops leases of dead processes', async () => {
    const leases = join(dir, 'leases');
    const lease = new Lease(leases, join(dir, 'gc.lock'), currentOwner());
    await lease.touch('sha256:aa');
    await lease.touch('sha256:aa');
    await lease.touch('sha256:bb');
    const dead = await deadOwner();
    await writeFile(join(leases, `${ownerTag(dead)}-123456`), 'sha256:cc\n');
    expect([...(await readLiveLeases(leases, currentOwner()))].sort()).toEqual(['sha256:aa', 'sha256:bb']);
    expect((await readdir(leases)).length).toBe(1);
    lease.release();
    expect(await readdir(leases)).toEqual([]);
  });

  it('makes a reader wait while another process collects, and keeps what a live lease names', async () => {
    const root = join(dir, 'store');
    const store = await LocalStore.open(root);
    const bytes = Buffer.from('leased blob');
    const descriptor = { mediaType: 'application/octet-stream', digest: digestOf(bytes), size: bytes.length };
    await store.blobs.putBlob(descriptor, bytes);

    // A collector of another (live) process holds the GC lock: the first look at a blob waits for it.
    await writeFile(join(root, 'gc.lock'), JSON.stringify({ ...currentOwner(), pid: process.ppid, start: processStart(process.ppid)!, nonce: 'gc' }));
    const other = await LocalStore.open(root);
    let looked = false;
    const look = other.blobs.hasBlob(descriptor).then((has) => {
      looked = true;
      return has;
    });
    await sleep(100);
    expect(looked).toBe(false);
    await rm(join(root, 'gc.lock'));
    expect(await look).toBe(true);

    // Unnamed, but leased by both handles: kept. Released: collected.
    const collector = await LocalStore.open(root);
    expect((await collector.collectGarbage()).removed).toBe(0);
    store.release();
    other.release();
    expect((await collector.collectGarbage()).removed).toBe(1);
    expect(await new FileBlobStore(store.blobs.dir).hasBlob(descriptor)).toBe(false);
  });
});

describe('sweeping leftovers', () => {
  it('removes what dead owners left, keeps what live ones hold and what carries no owner', async () => {
    const dead = ownerTag(await deadOwner());
    const live = ownerTag(currentOwner());
    await mkdir(join(dir, `strata-run-rootfs-${dead}-aaaaaa`, 'etc'), { recursive: true });
    await mkdir(join(dir, `strata-run-rootfs-${live}-bbbbbb`));
    await mkdir(join(dir, 'strata-run-secrets-cccccc'));
    await writeFile(join(dir, `.tmp-ingest-${dead}-0011`), 'half');
    const removed = await sweepLeftovers([{ dir, match: (n) => n.startsWith('strata-') || n.startsWith('.tmp-') }], currentOwner());
    expect(removed.sort()).toEqual([join(dir, `.tmp-ingest-${dead}-0011`), join(dir, `strata-run-rootfs-${dead}-aaaaaa`)].sort());
    expect((await readdir(dir)).sort()).toEqual([`strata-run-rootfs-${live}-bbbbbb`, 'strata-run-secrets-cccccc'].sort());
  });
});

describe('sweeping the mounts of dead builds', () => {
  it('reads mountinfo lines, unescaping the mount point and the source', () => {
    const table = mountTable('104 26 0:45 / /tmp/a\\040b rw,relatime - overlay strata-overlay rw,lowerdir=base\n36 25 0:33 / /proc rw - proc proc rw\n');
    expect(table).toEqual([
      { point: '/tmp/a b', fstype: 'overlay', source: OVERLAY_MOUNT_SOURCE },
      { point: '/proc', fstype: 'proc', source: 'proc' },
    ]);
  });

  itAsRoot('unmounts the overlay a killed build left in its RUN root and removes it; leaves other mounts alone', async () => {
    const dead = ownerTag(await deadOwner());
    const lower = join(dir, 'kept-lower');
    await mkdir(lower);
    await writeFile(join(lower, 'base-file'), 'kept');
    const root = join(dir, `strata-run-rootfs-${dead}-aaaaaa`);
    for (const d of ['l1', 'w', 'm']) await mkdir(join(root, d), { recursive: true });
    await mountOverlay({ cwd: root, lowers: [lower], upper: 'l1', work: 'w', target: 'm' });
    await writeFile(join(root, 'm', 'written-by-the-step'), 'x');
    const foreign = join(dir, `strata-run-rootfs-${dead}-bbbbbb`);
    await mkdir(join(foreign, 'm'), { recursive: true });
    await execFileAsync('mount', ['-t', 'tmpfs', 'tmpfs', join(foreign, 'm')]);
    try {
      const removed = await sweepLeftovers([{ dir, match: (n) => n.startsWith('strata-') }], currentOwner());
      expect(removed).toEqual([root]);
      expect(mountTable().some((m) => m.point.startsWith(root))).toBe(false);
      expect(await readdir(lower)).toEqual(['base-file']);
      expect((await readdir(dir)).sort()).toEqual(['kept-lower', `strata-run-rootfs-${dead}-bbbbbb`]);
    } finally {
      await execFileAsync('umount', [join(foreign, 'm')]).catch(() => undefined);
      await execFileAsync('umount', [join(root, 'm')]).catch(() => undefined);
    }
  });
});

describe('context stat caches saved by two builds of one context', () => {
  it('keep what both learned', async () => {
    const root = join(dir, 'ctx');
    const file = join(dir, 'stats.json');
    const entry = (name: string, ino: number): ContextEntry => ({
      relPath: name,
      absPath: join(root, name),
      type: 'file',
      mode: 0o644,
      size: 1,
      mtimeMs: 1,
      uid: 0,
      gid: 0,
      rdev: 0,
      dev: 1,
      ino,
      nlink: 1,
    });
    const a = new ContextStatCache(root);
    const b = new ContextStatCache(root);
    await a.load(file);
    await b.load(file);
    a.set(entry('a.txt', 1), digestOf('a'));
    b.set(entry('b.txt', 2), digestOf('b'));
    b.rememberSources('f'.repeat(64), digestOf('set'));
    await a.save(file, new Date());
    await b.save(file, new Date());
    const merged = new ContextStatCache(root);
    await merged.load(file);
    expect(merged.get(entry('a.txt', 1))).toBe(digestOf('a'));
    expect(merged.get(entry('b.txt', 2))).toBe(digestOf('b'));
    expect(merged.sources('f'.repeat(64))).toBe(digestOf('set'));
  });
});

describe('prune sizes and durations', () => {
  it('reads sizes as docker does (powers of 1024) and durations in ms, s, m, h, d, w', () => {
    expect(parseSize('1024')).toBe(1024);
    expect(parseSize('30KB')).toBe(30 * 1024);
    expect(parseSize('1.5GiB')).toBe(1.5 * 1024 ** 3);
    expect(parseSize('5g')).toBe(5 * 1024 ** 3);
    expect(() => parseSize('lots')).toThrow(/"lots" is not a size/);
    expect(parseDuration('90m')).toBe(90 * 60_000);
    expect(parseDuration('1h30m')).toBe(90 * 60_000);
    expect(parseDuration('7d')).toBe(7 * 86_400_000);
    expect(() => parseDuration('soon')).toThrow(/"soon" is not a duration/);
    expect(() => parseDuration('5x')).toThrow(/not a duration/);
  });
});
