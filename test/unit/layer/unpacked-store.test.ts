import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseOverlay, parseSnapshots } from '../../../cli/options.js';
import { digestOf } from '../../../src/digest/index.js';
import { UnpackedStore, copyUnpacked, unpackedKey } from '../../../src/layer/index.js';
import { currentOwner, ownerTag, type ProcessOwner } from '../../../src/store/index.js';

const self = currentOwner();

/** The owner of a process that has ended: a child started and waited for. */
async function deadOwner(): Promise<ProcessOwner> {
  const child = spawn('true');
  await new Promise((resolve) => child.once('exit', resolve));
  return { ...self, pid: child.pid!, start: '1' };
}

/** The kept trees (not the store's own dot-names). */
async function trees(dir: string): Promise<string[]> {
  return (await readdir(join(dir, 'unpacked'))).filter((n) => !n.startsWith('.')).sort();
}

/**
 * A program of its own (node, not this test's process) that puts tree k1 in the store given as its argument,
 * says "held" and keeps it until killed: the real UnpackedStore, bundled from the source.
 */
async function holderScript(dir: string): Promise<string> {
  const repo = fileURLToPath(new URL('../../../', import.meta.url));
  const outfile = join(dir, 'holder.cjs');
  await build({
    stdin: {
      contents: `
        import { mkdir, writeFile } from 'node:fs/promises';
        import { join } from 'node:path';
        import { UnpackedStore } from './src/layer/unpacked-store.ts';
        import { currentOwner } from './src/store/owner.ts';
        void (async () => {
          const store = new UnpackedStore(process.argv[2], 5, currentOwner());
          await store.put('k1', async (root) => {
            await mkdir(join(root, 'etc'));
            await writeFile(join(root, 'etc', 'passwd'), 'held');
          });
          process.stdout.write('held\\n');
          setInterval(() => undefined, 60_000);
        })();
      `,
      resolveDir: repo,
      loader: 'ts',
      sourcefile: 'holder.ts',
    },
    outfile,
    bundle: true,
    platform: 'node',
    // CommonJS: the bundled dependencies (tar-stream's) require Node's modules.
    format: 'cjs',
    target: 'node20',
    logLevel: 'warning',
  });
  return outfile;
}

async function fill(root: string, text: string): Promise<void> {
  await mkdir(join(root, 'etc'));
  await writeFile(join(root, 'etc', 'passwd'), text);
  await mkdir(join(root, 'ro'));
  await writeFile(join(root, 'ro', 'f'), 'read-only directory\n');
  await chmod(join(root, 'ro'), 0o555);
}

describe('unpacked layer chains kept in the store', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-unpacked-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keys a chain by its diffIDs and by whether owners were applied', () => {
    const a = [digestOf('a'), digestOf('b')];
    expect(unpackedKey(a, true)).toBe(unpackedKey([...a], true));
    expect(unpackedKey(a, true)).not.toBe(unpackedKey(a, false));
    expect(unpackedKey(a, true)).not.toBe(unpackedKey([...a].reverse(), true));
  });

  it('gives back a kept tree while it matches its stat data, drops a damaged one, and keeps the most recently used', async () => {
    const store = new UnpackedStore(join(dir, 'unpacked'), 2, self);
    expect(await store.get('k1')).toBeUndefined();
    const { root, entries, release } = await store.put('k1', (r) => fill(r, 'one\n'));
    expect([...entries.keys()].sort()).toEqual(['etc', 'etc/passwd', 'ro', 'ro/f']);
    const held = [release];
    const again = await store.get('k1');
    expect(again?.root).toBe(root);
    held.push(again!.release);

    const copy = join(dir, 'copy');
    await mkdir(copy);
    await copyUnpacked(root, copy, false);
    await writeFile(join(copy, 'etc', 'passwd'), 'changed in the copy\n');
    const third = await store.get('k1');
    expect(third?.root).toBe(root);
    held.push(third!.release);
    await Promise.all(held.map((r) => r()));

    await writeFile(join(root, 'etc', 'passwd'), 'tampered\n');
    expect(await store.get('k1')).toBeUndefined();
    expect(existsSync(join(dir, 'unpacked', 'k1'))).toBe(false);

    await (await store.put('k1', (r) => fill(r, 'one\n'))).release();
    await utimes(join(dir, 'unpacked', 'k1'), new Date(1000), new Date(1000));
    await (await store.put('k2', (r) => fill(r, 'two\n'))).release();
    await (await store.put('k3', (r) => fill(r, 'three\n'))).release();
    expect(await trees(dir)).toEqual(['k2', 'k3']);
  });

  it('leaves nothing behind when unpacking fails', async () => {
    const store = new UnpackedStore(join(dir, 'unpacked'), 2, self);
    await expect(
      store.put('k', async (r) => {
        await fill(r, 'x');
        throw new Error('the layer was corrupt');
      }),
    ).rejects.toThrow('corrupt');
    expect(await readdir(join(dir, 'unpacked'))).toEqual([]);
  });

  it('never prunes a tree this process holds, and prunes it once released', async () => {
    const store = new UnpackedStore(join(dir, 'unpacked'), 0, self);
    const made = await store.put('k1', (r) => fill(r, 'one\n'));
    const again = await store.get('k1');
    await store.prune();
    expect(await trees(dir)).toEqual(['k1']);
    await made.release();
    await made.release();
    await store.prune();
    expect(await trees(dir)).toEqual(['k1']);
    await again!.release();
    await store.prune();
    expect(await trees(dir)).toEqual([]);
    // Nothing is left but the lock's directory entries: no markers, no trash, no lock.
    expect(await readdir(join(dir, 'unpacked'))).toEqual(['.users']);
    expect(await readdir(join(dir, 'unpacked', '.users'))).toEqual([]);
  });

  it("counts a dead process's use for nothing and removes what it left, but keeps another host's recent use", async () => {
    const unpacked = join(dir, 'unpacked');
    const store = new UnpackedStore(unpacked, 0, self);
    await (await store.put('k1', (r) => fill(r, 'one\n'))).release();
    await (await store.put('k2', (r) => fill(r, 'two\n'))).release();
    const dead = ownerTag(await deadOwner());
    const far = ownerTag({ ...self, realm: 'ffffffff' });
    await writeFile(join(unpacked, '.users', `k1-${dead}-aaaaaa`), '');
    await writeFile(join(unpacked, '.users', `k2-${far}-bbbbbb`), '');
    await mkdir(join(unpacked, `.tmp-${dead}-cccccc`, 'root'), { recursive: true });
    await chmod(join(unpacked, `.tmp-${dead}-cccccc`, 'root'), 0o555);
    await mkdir(join(unpacked, `.trash-${dead}-dddddd`));
    await mkdir(join(unpacked, `.tmp-${ownerTag(self)}-eeeeee`));
    await store.prune();
    expect(await trees(dir)).toEqual(['k2']);
    expect((await readdir(unpacked)).sort()).toEqual(['.tmp-' + ownerTag(self) + '-eeeeee', '.users', 'k2']);
    expect(await readdir(join(unpacked, '.users'))).toEqual([`k2-${far}-bbbbbb`]);
    // A day later the foreign use has expired.
    await utimes(join(unpacked, '.users', `k2-${far}-bbbbbb`), new Date(1000), new Date(1000));
    await store.prune();
    expect(await trees(dir)).toEqual([]);
  });

  it('takes the tree another build put in place first, and replaces one damaged under a holder', async () => {
    const unpacked = join(dir, 'unpacked');
    const store = new UnpackedStore(unpacked, 2, self);
    const first = await store.put('k1', (r) => fill(r, 'first\n'));
    const second = await store.put('k1', (r) => fill(r, 'second\n'));
    expect(second.root).toBe(first.root);
    expect(second.entries.get('etc/passwd')?.size).toBe('first\n'.length);
    await writeFile(join(first.root, 'etc', 'passwd'), 'tampered\n');
    expect(await store.get('k1')).toBeUndefined();
    expect(await trees(dir)).toEqual([]);
    const third = await store.put('k1', (r) => fill(r, 'third\n'));
    expect(third.entries.get('etc/passwd')?.size).toBe('third\n'.length);
    await Promise.all([first.release(), second.release(), third.release()]);
    expect(await readdir(join(unpacked, '.users'))).toEqual([]);
  });

  it('keeps a tree another live process holds, until that process is killed', async () => {
    const unpacked = join(dir, 'unpacked');
    const script = await holderScript(dir);
    const holder = spawn(process.execPath, [script, unpacked], { stdio: ['pipe', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => holder.once('exit', resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.on('data', (chunk: Buffer) => (chunk.toString().includes('held') ? resolve() : undefined));
        holder.once('exit', (code) => reject(new Error(`the holder exited (${code}) before holding the tree`)));
      });
      const store = new UnpackedStore(unpacked, 0, self);
      await store.prune();
      expect(await trees(dir)).toEqual(['k1']);
      holder.kill('SIGKILL');
      await exited;
      await store.prune();
      expect(await trees(dir)).toEqual([]);
      expect(await readdir(join(unpacked, '.users'))).toEqual([]);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('reads STRATA_SNAPSHOTS', () => {
    expect(parseSnapshots(undefined)).toBe(3);
    expect(parseSnapshots('0')).toBe(0);
    expect(parseSnapshots('off')).toBe(0);
    expect(parseSnapshots('5')).toBe(5);
    expect(() => parseSnapshots('many')).toThrow(/STRATA_SNAPSHOTS/);
  });

  it('reads STRATA_OVERLAY', () => {
    expect(parseOverlay(undefined)).toBe(true);
    expect(parseOverlay('auto')).toBe(true);
    expect(parseOverlay('off')).toBe(false);
    expect(parseOverlay('0')).toBe(false);
    expect(() => parseOverlay('maybe')).toThrow(/STRATA_OVERLAY/);
  });
});
