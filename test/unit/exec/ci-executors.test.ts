import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile, link, stat, lstat, readlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chooseExecutor, containerSign, effectiveCapabilities, isCapableRoot, mountPoints, type Executor } from '../../../src/exec/index.js';
import { IgnoreSet, syncTree } from '../../../src/exec/inplace-sync.js';

const fake = (name: string, ok: boolean): Executor => ({
  name,
  available: async () => (ok ? { ok: true } : { ok: false, reason: `${name} refused` }),
  run: async () => ({ exitCode: 0 }),
});

describe('auto', () => {
  it('takes the first candidate that works and says why the ones before it could not', async () => {
    const choice = await chooseExecutor([fake('bwrap', false), fake('runc', false), fake('chroot', true), fake('proot', true)]);
    expect(choice.found).toBe(true);
    expect(choice.executor.name).toBe('chroot');
    expect(choice.refused).toEqual([
      { name: 'bwrap', reason: 'bwrap refused' },
      { name: 'runc', reason: 'runc refused' },
    ]);
  });

  it('with nothing working, gives an executor whose RUN names every refusal at the line', async () => {
    const choice = await chooseExecutor([fake('bwrap', false), fake('proot', false)]);
    expect(choice.found).toBe(false);
    expect(choice.executor.name).toBe('none');
    const error = await choice.executor
      .run({
        rootfs: '/x',
        args: ['true'],
        env: [],
        user: { uid: 0, gid: 0 },
        workdir: '/',
        mounts: [],
        network: 'host',
        platform: { os: 'linux', architecture: 'amd64' },
        where: 'Dockerfile:2',
      })
      .catch((e: unknown) => e as Error & { hint?: string });
    expect(error).toMatchObject({ code: 'E_RUN_UNSUPPORTED' });
    expect((error as Error).message).toBe('Dockerfile:2: RUN needs an executor, and none of bwrap, proot can run here');
    expect((error as { hint?: string }).hint).toContain('bwrap: bwrap refused\nproot: proot refused');
  });
});

describe('capabilities', () => {
  it('reads CapEff; a root without CAP_CHOWN and friends is not a capable root', () => {
    expect(effectiveCapabilities('Name:\tx\nCapEff:\t00000000a80425fb\n')).toBe(0xa80425fbn);
    expect(effectiveCapabilities('Name:\tx\n')).toBeUndefined();
    if (process.geteuid?.() === 0) {
      expect(isCapableRoot('CapEff:\t0000000000000000\n')).toBe(false);
      expect(isCapableRoot('CapEff:\t00000000a80425fb\n')).toBe(true); // docker's default set
    } else {
      expect(isCapableRoot('CapEff:\t000001ffffffffff\n')).toBe(false);
    }
  });
});

describe('inplace: container detection and the paths it leaves alone', () => {
  const none = { exists: () => false, env: {}, cgroup: '0::/\n' };
  it('names the first sign of a container, or none', () => {
    expect(containerSign(none)).toBeUndefined();
    expect(containerSign({ ...none, exists: (p) => p === '/.dockerenv' })).toBe('/.dockerenv exists');
    expect(containerSign({ ...none, exists: (p) => p === '/run/.containerenv' })).toBe('/run/.containerenv exists');
    expect(containerSign({ ...none, env: { KUBERNETES_SERVICE_HOST: '10.0.0.1' } })).toBe('KUBERNETES_SERVICE_HOST is set');
    expect(containerSign({ ...none, cgroup: '0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-ab.scope\n' })).toBe('/proc/1/cgroup names kubepods');
    expect(containerSign({ ...none, cgroup: '12:memory:/user.slice\n' })).toBeUndefined();
  });

  it('lists every mount point but /, with mountinfo escapes undone', () => {
    const info = [
      '22 1 0:21 / / rw - overlay overlay rw',
      '23 22 0:22 / /proc rw - proc proc rw',
      '24 22 0:23 /x /etc/resolv.conf rw - ext4 /dev/vda rw',
      '25 22 0:24 / /mnt/with\\040space rw - tmpfs tmpfs rw',
    ].join('\n');
    expect(mountPoints(info)).toEqual(['/proc', '/etc/resolv.conf', '/mnt/with space']);
  });

  it('ignores paths, what is below them, and prefixed names; keeps the directories above them', () => {
    const set = new IgnoreSet(['/work/ctx', '/proc'], [{ dir: '/tmp', prefix: 'strata-' }]);
    expect(set.ignored('/work/ctx')).toBe(true);
    expect(set.ignored('/work/ctx/a/b')).toBe(true);
    expect(set.ignored('/work')).toBe(false);
    expect(set.holdsIgnored('/work')).toBe(true);
    expect(set.ignored('/tmp/strata-run-1/x')).toBe(true);
    expect(set.ignored('/tmp/other')).toBe(false);
    expect(set.holdsIgnored('/tmp')).toBe(true);
  });
});

describe('inplace: syncTree', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-sync-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('makes the target equal to the source: removes extras, keeps ignored paths, links, modes and mtimes', async () => {
    const from = join(dir, 'from');
    const to = join(dir, 'to');
    await mkdir(join(from, 'etc'), { recursive: true });
    await mkdir(join(from, 'opt', 'd'), { recursive: true });
    await writeFile(join(from, 'etc', 'passwd'), 'root\n', { mode: 0o640 });
    await writeFile(join(from, 'opt', 'd', 'a'), 'a\n');
    await link(join(from, 'opt', 'd', 'a'), join(from, 'opt', 'd', 'hard'));
    await symlink('../etc/passwd', join(from, 'opt', 'rel'));
    await mkdir(join(to, 'keep', 'me'), { recursive: true });
    await writeFile(join(to, 'keep', 'me', 'x'), 'kept');
    await mkdir(join(to, 'gone'), { recursive: true });
    await writeFile(join(to, 'etc'), 'a file where a dir belongs');
    await mkdir(join(to, 'etc-holder'), { recursive: true });

    syncTree(from, to, { ignore: new IgnoreSet(['/keep/me', '/etc/hosts']), owners: false, makeHolders: true });
    expect(await readFile(join(to, 'etc', 'passwd'), 'utf8')).toBe('root\n');
    expect((await stat(join(to, 'etc', 'passwd'))).mode & 0o777).toBe(0o640);
    expect(Math.abs((await stat(join(to, 'etc', 'passwd'))).mtimeMs - (await stat(join(from, 'etc', 'passwd'))).mtimeMs)).toBeLessThan(1);
    expect((await stat(join(to, 'opt', 'd', 'a'))).ino).toBe((await stat(join(to, 'opt', 'd', 'hard'))).ino);
    expect(await readlink(join(to, 'opt', 'rel'))).toBe('../etc/passwd');
    expect(await readFile(join(to, 'keep', 'me', 'x'), 'utf8')).toBe('kept');
    await expect(lstat(join(to, 'gone'))).rejects.toThrow();
    await expect(lstat(join(to, 'etc-holder'))).rejects.toThrow();

    // Copying back does not make the directories above ignored paths that the source lacks.
    const back = join(dir, 'back');
    await mkdir(back);
    syncTree(to, back, { ignore: new IgnoreSet(['/keep/me']), owners: false, makeHolders: false });
    await expect(lstat(join(back, 'keep'))).rejects.toThrow();
    expect(await readFile(join(back, 'opt', 'd', 'hard'), 'utf8')).toBe('a\n');
  });

  it('copies names that are not UTF-8 as their bytes, and removes the extras among them', async () => {
    const name = (root: string, latin1: string): Buffer => Buffer.concat([Buffer.from(`${root}/`), Buffer.from(latin1, 'latin1')]);
    const from = join(dir, 'from');
    const to = join(dir, 'to');
    await mkdir(name(from, 'd\xff'), { recursive: true });
    await writeFile(name(from, 'd\xff/bad\xfe'), 'bad\n');
    await link(name(from, 'd\xff/bad\xfe'), name(from, 'd\xff/hard\xfd'));
    await symlink(Buffer.from('bad\xfe', 'latin1'), name(from, 'd\xff/l\xff'));
    await mkdir(to);
    await writeFile(name(to, 'extra\xff'), 'x');

    syncTree(from, to, { ignore: new IgnoreSet([]), owners: false, makeHolders: true });
    const listed = async (path: Buffer): Promise<string[]> => (await readdir(path, { encoding: 'buffer' })).map((n) => n.toString('latin1')).sort();
    expect(await listed(Buffer.from(to))).toEqual(['d\xff']);
    expect(await listed(name(to, 'd\xff'))).toEqual(['bad\xfe', 'hard\xfd', 'l\xff']);
    expect(await readFile(name(to, 'd\xff/hard\xfd'), 'utf8')).toBe('bad\n');
    expect(await readlink(name(to, 'd\xff/l\xff'), { encoding: 'buffer' })).toEqual(Buffer.from('bad\xfe', 'latin1'));
  });
});
