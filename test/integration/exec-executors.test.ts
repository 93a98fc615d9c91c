import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isStrataError, type StrataError } from '../../src/errors/index.js';
import { createExecutor, runCaptureExcludes, type Executor, type RunMount, type RunRequest } from '../../src/exec/index.js';
import { captureChanges, extractImageToDirectory, snapshotRootfs, walkLayerTree, writeLayer, type LayerEntry } from '../../src/layer/index.js';
import { MemoryBlobStore } from '../helpers/memory-blobs.js';
import { describeAsRoot, describeWithTools, isRoot, needExecutor } from '../helpers/tools.js';
import { describeTree } from '../helpers/tree.js';

const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'ls', 'touch', 'rm', 'mkdir', 'chmod', 'chown', 'ln', 'cat', 'echo', 'id', 'mv', 'env', 'pwd', 'stat', 'ip', 'sleep'];

/** A base rootfs made from busybox-static: /bin/busybox and its links, /etc/passwd and /etc/group. */
async function makeBusyboxRoot(root: string): Promise<void> {
  await mkdir(join(root, 'bin'), { recursive: true });
  await copyFile(BUSYBOX, join(root, 'bin', 'busybox'));
  await chmod(join(root, 'bin', 'busybox'), 0o755);
  for (const applet of APPLETS) await symlink('busybox', join(root, 'bin', applet));
  await mkdir(join(root, 'etc'));
  await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n');
  await writeFile(join(root, 'etc', 'group'), 'root:x:0:\nuser:x:1000:\n');
  await writeFile(join(root, 'etc', 'motd'), 'hello 1\n');
  await mkdir(join(root, 'opt', 'd', 'sub'), { recursive: true });
  await writeFile(join(root, 'opt', 'd', 'old'), 'old\n');
  await writeFile(join(root, 'opt', 'd', 'sub', 'deep'), 'deep\n');
  await writeFile(join(root, 'opt', 'gone'), 'gone\n');
  await mkdir(join(root, 'tmp'));
  await chmod(join(root, 'tmp'), 0o1777);
  await mkdir(join(root, 'root'), { mode: 0o700 });
}

interface Case {
  name: string;
  tools: string[];
  root: boolean;
}

const CASES: Case[] = [
  { name: 'chroot', tools: ['unshare', 'chroot', 'mount'], root: true },
  { name: 'bwrap', tools: ['bwrap'], root: false },
  { name: 'runc', tools: ['runc'], root: true },
  { name: 'crun', tools: ['crun'], root: true },
  { name: 'proot', tools: ['proot'], root: false },
];

for (const c of CASES) {
  const inner = (): void => describeWithTools(c.tools, `${c.name} executor`, () => executorSuite(c.name));
  if (c.root) describeAsRoot(`${c.name} executor (as root)`, inner);
  else describe(`${c.name} executor`, inner);
}

function executorSuite(name: string): void {
  let dir: string;
  let rootfs: string;
  let executor: Executor;
  let usable: { ok: true } | { ok: false; reason: string };

  beforeEach(async (ctx) => {
    executor = createExecutor(name);
    usable = await executor.available();
    if (!usable.ok) {
      // Installed but unable to run here: a skip, except under CI (host-limited executors aside).
      needExecutor(ctx, name, usable.reason);
      return;
    }
    dir = await mkdtemp(join(tmpdir(), `strata-exec-${name}-`));
    // Reachable by a sandbox that runs as the step's uid (bwrap with USER 1000).
    await chmod(dir, 0o755);
    rootfs = join(dir, 'rootfs');
    await mkdir(rootfs, { mode: 0o755 });
    await makeBusyboxRoot(rootfs);
  });

  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  function request(args: string[], extra: Partial<RunRequest> = {}): RunRequest & { output: () => string } {
    const chunks: Buffer[] = [];
    return {
      rootfs,
      args,
      env: ['PATH=/bin', 'FOO=bar baz'],
      user: { uid: 0, gid: 0 },
      workdir: '/',
      mounts: [],
      network: 'none',
      platform: { os: 'linux', architecture: 'amd64' },
      where: 'Dockerfile:3',
      onOutput: (_stream, chunk) => chunks.push(chunk),
      ...extra,
      output: () => Buffer.concat(chunks).toString('utf8'),
    };
  }

  async function runAndCapture(req: RunRequest): Promise<{ entries: LayerEntry[]; map: Map<string, LayerEntry> }> {
    const before = await snapshotRootfs(rootfs, { exclude: runCaptureExcludes(req) });
    await run(req);
    const entries = await captureChanges(rootfs, before, { exclude: runCaptureExcludes(req) });
    return { entries, map: new Map(entries.map((e) => [e.path, e])) };
  }

  const sh = (script: string): string[] => ['/bin/sh', '-c', script];
  /** Runs a step that must succeed; a failure shows the step's last output lines. */
  async function run(req: RunRequest): Promise<void> {
    await executor.run(req).catch((error: unknown) => {
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${isStrataError(error) ? String(error.hint) : ''}`);
    });
  }

  it('captures creates, same-size same-mtime rewrites, deletes, a replaced dir, modes, owners and links; the layer round-trips', async () => {
    const store = new MemoryBlobStore();
    const base = await writeLayer(await walkLayerTree(rootfs), { compression: 'none', ownership: 'keep' }, store);
    const script = [
      'set -e',
      'mkdir -p /app && echo created > /app/new',
      'touch -r /etc/motd /tmp/ref', // remember motd's mtime
      'echo "hello 2" > /etc/motd && touch -r /tmp/ref /etc/motd && rm /tmp/ref',
      'rm /opt/gone',
      'mkdir /opt/d.new && echo fresh > /opt/d.new/fresh && rm -rf /opt/d && mv /opt/d.new /opt/d',
      'chmod 4750 /app/new',
      // Rootless (bwrap), only the invoking user is mapped: chown cannot work and files keep the host owner.
      isRoot() ? 'chown 1000:1000 /app' : 'true',
      'ln /app/new /app/hard',
      'ln -s ../etc/motd /app/soft',
      'echo scratch > /tmp/scratch',
    ].join('\n');
    const { entries, map } = await runAndCapture(request(sh(script)));
    // One inode, two paths: the first in layer order carries the bytes, the other links to it.
    expect(map.get('app/hard')).toMatchObject({ type: 'file', mode: 0o4750, size: 8 });
    expect(map.get('app/new')).toMatchObject({ type: 'hardlink', linkTarget: 'app/hard' });
    expect(map.get('app/soft')).toMatchObject({ type: 'symlink', linkTarget: '../etc/motd' });
    if (isRoot()) expect(map.get('app')).toMatchObject({ type: 'dir', uid: 1000, gid: 1000 });
    expect(map.get('etc/motd')).toMatchObject({ type: 'file', size: 8 });
    expect(map.get('opt/.wh.gone')).toBeDefined();
    expect(map.get('opt/d/.wh..wh..opq')).toBeDefined();
    expect(map.get('opt/d/fresh')).toBeDefined();
    expect(map.get('tmp/scratch')).toBeDefined();
    // Nothing of the sandbox leaks: no /proc, /dev, /sys, /etc/hosts, /etc/resolv.conf, /etc/hostname.
    const leaked = entries.map((e) => e.path).filter((p) => /^(proc|dev|sys)(\/|$)/.test(p) || /^etc\/(hosts|resolv\.conf|hostname)$/.test(p));
    expect(leaked).toEqual([]);
    for (const stub of ['proc', 'dev', 'sys', 'etc/hosts', 'etc/resolv.conf', 'etc/hostname']) expect(existsSync(join(rootfs, stub))).toBe(false);

    const layer = await writeLayer(entries, { compression: 'none', ownership: 'keep' }, store);
    const out = join(dir, 'out');
    await mkdir(out);
    await extractImageToDirectory([base.descriptor, layer.descriptor], store, out, { ownership: 'keep' });
    expect(await describeTree(out)).toEqual(await describeTree(rootfs));
    if (isRoot()) expect(lstatSync(join(out, 'app')).uid).toBe(1000);
    expect(await readFile(join(out, 'etc', 'motd'), 'utf8')).toBe('hello 2\n');
  });

  it('runs with exactly the step env, the user and the working directory (made when missing)', async () => {
    const req = request(sh('echo "FOO=$FOO"; env | sort; id -u; id -g; pwd; touch /tmp/mine'), { user: { uid: 1000, gid: 1000 }, workdir: '/work/dir' });
    const { map } = await runAndCapture(req);
    const lines = req.output().trim().split('\n');
    expect(lines[0]).toBe('FOO=bar baz');
    expect(lines).toContain('1000');
    expect(lines.at(-1)).toBe('/work/dir');
    const envNames = lines.filter((l) => /^[A-Z_]+=/.test(l)).map((l) => l.slice(0, l.indexOf('=')));
    for (const hostOnly of ['NODE_OPTIONS', 'VITEST', 'HOME_HOST', 'npm_config_cache']) expect(envNames).not.toContain(hostOnly);
    if (isRoot()) expect(map.get('tmp/mine')).toMatchObject({ uid: 1000, gid: 1000 });
    else expect(map.get('tmp/mine')).toBeDefined();
    expect(map.get('work/dir')?.type).toBe('dir');
  });

  it('fails with E_RUN_FAILED naming the exit code and the last output lines', async () => {
    const error = (await executor.run(request(sh('echo first; echo "it broke" >&2; exit 3'))).catch((e: unknown) => e)) as StrataError;
    expect(isStrataError(error, 'E_RUN_FAILED')).toBe(true);
    expect(error.message).toContain('Dockerfile:3');
    expect(error.message).toContain('exited with code 3');
    expect(error.hint).toContain('it broke');
    expect(error.hint).toContain('first');
  });

  it('has no network but loopback by default, and the host network when asked', async () => {
    const none = request(['/bin/cat', '/proc/net/dev']);
    await run(none);
    const names = none
      .output()
      .split('\n')
      .slice(2)
      .map((l) => l.trim().split(':')[0])
      .filter((n) => n !== '' && n !== undefined);
    expect(names).toEqual(['lo']);
    const hostIfaces = (await readFile('/proc/net/dev', 'utf8'))
      .split('\n')
      .slice(2)
      .filter((l) => l.trim() !== '').length;
    if (hostIfaces > 1) {
      const host = request(['/bin/cat', '/proc/net/dev'], { network: 'host' });
      await run(host);
      expect(
        host
          .output()
          .split('\n')
          .slice(2)
          .filter((l) => l.trim() !== '').length,
      ).toBe(hostIfaces);
    }
  });

  it('brings loopback up in the private network, as docker does', async () => {
    const req = request(['/bin/ip', 'link', 'show', 'lo']);
    await run(req);
    expect(req.output()).toMatch(/<[^>]*\bUP\b[^>]*>/);
  });

  it('sets supplementary groups when the user has them', async (ctx) => {
    // bwrap runs a non-root step as that uid in a one-id user namespace: no supplementary groups (documented).
    if (name === 'bwrap' || (name === 'proot' && !isRoot())) ctx.skip();
    const req = request(['/bin/id', '-G'], { user: { uid: 1000, gid: 1000, additionalGids: [5, 6] }, workdir: '/tmp' });
    await run(req);
    expect(
      req
        .output()
        .trim()
        .split(' ')
        .map(Number)
        .sort((a, b) => a - b),
    ).toEqual([5, 6, 1000]);
  });

  it('says what to do when bwrap, running as the step uid, cannot reach the rootfs', async (ctx) => {
    if (name !== 'bwrap' || !isRoot()) ctx.skip();
    await chmod(dir, 0o700);
    const error = (await executor.run(request(['/bin/true'], { user: { uid: 1000, gid: 1000 } })).catch((e: unknown) => e)) as StrataError;
    expect(isStrataError(error, 'E_RUN_FAILED')).toBe(true);
    expect(error.message).toContain('bwrap could not set up the sandbox');
    expect(error.hint).toContain('reachable by it');
  });

  it('an abort that comes while the step is set up is E_ABORTED too, and leaves no mount point', async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await executor.run(request(['/bin/true'], { signal: controller.signal })).catch((e: unknown) => e);
    expect(isStrataError(error, 'E_ABORTED')).toBe(true);
    for (const stub of ['proc', 'dev', 'etc/hosts']) expect(existsSync(join(rootfs, stub))).toBe(false);
  });

  it('stops the step on abort and cleans up its mount points', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const running = executor.run(request(['/bin/sleep', '30'], { signal: controller.signal }));
    setTimeout(() => controller.abort(), 300);
    const error = await running.catch((e: unknown) => e);
    expect(isStrataError(error, 'E_ABORTED')).toBe(true);
    expect(Date.now() - started).toBeLessThan(10_000);
    for (const stub of ['proc', 'dev', 'etc/hosts']) expect(existsSync(join(rootfs, stub))).toBe(false);
  });

  it('ends a step when its command does, killing what it left running', async () => {
    const marker = String(1000 + Math.floor(Math.random() * 8000));
    const started = Date.now();
    const req = request(sh(`sleep ${marker} & echo started`));
    await run(req);
    expect(req.output()).toContain('started');
    expect(Date.now() - started).toBeLessThan(10_000);
    await expectNoProcess(['sleep', marker]);
  });

  it('kills the whole process tree of an aborted step, background processes included', async () => {
    const marker = String(1000 + Math.floor(Math.random() * 8000));
    const controller = new AbortController();
    const running = executor.run(request(sh(`sleep ${marker} & sleep ${Number(marker) + 1}`), { signal: controller.signal }));
    setTimeout(() => controller.abort(), 500);
    expect(isStrataError(await running.catch((e: unknown) => e), 'E_ABORTED')).toBe(true);
    await expectNoProcess(['sleep', marker]);
    await expectNoProcess(['sleep', String(Number(marker) + 1)]);
  });

  it('mounts a secret read-only that never reaches the layer', async () => {
    const secret = join(dir, 'secret.txt');
    await writeFile(secret, 'TOP-SECRET-VALUE', { mode: 0o600 });
    const mounts: RunMount[] = [{ type: 'secret', source: secret, target: '/run/secrets/token' }];
    const req = request(sh('cat /run/secrets/token; echo; echo x > /run/secrets/token && echo WRITABLE || echo readonly'), { mounts });
    const { entries } = await runAndCapture(req);
    expect(req.output()).toContain('TOP-SECRET-VALUE');
    // proot has no read-only bind: the step gets a private copy, and a root step's write goes to that copy.
    if (!(name === 'proot' && isRoot())) expect(req.output()).toContain('readonly');
    expect(entries.filter((e) => e.path.startsWith('run'))).toEqual([]);
    expect(existsSync(join(rootfs, 'run'))).toBe(false);
    expect(await readFile(secret, 'utf8')).toBe('TOP-SECRET-VALUE');
  });

  it('keeps a cache mount between runs, outside the layer', async () => {
    const cache = join(dir, 'cache');
    await mkdir(cache);
    const mounts: RunMount[] = [{ type: 'cache', source: cache, target: '/var/cache/thing' }];
    const first = await runAndCapture(request(sh('echo 1 >> /var/cache/thing/count'), { mounts }));
    const second = request(sh('echo 2 >> /var/cache/thing/count; cat /var/cache/thing/count'), { mounts });
    await run(second);
    expect(second.output()).toBe('1\n2\n');
    expect(first.entries.filter((e) => e.path.startsWith('var'))).toEqual([]);
    expect(existsSync(join(rootfs, 'var'))).toBe(false);
  });

  it('HOSTILE: absolute symlinks in the rootfs cannot make the executor touch the host', async () => {
    const outside = join(dir, 'host-side');
    await mkdir(outside);
    await writeFile(join(outside, 'marker'), 'untouched');
    const hostEtc = await hashTree('/etc', ['hosts', 'resolv.conf', 'hostname', 'passwd', 'group', 'motd']);
    // /etc and /run point at a host directory: /etc/hosts, /etc/resolv.conf and the secret's target go through them.
    await rm(join(rootfs, 'etc'), { recursive: true });
    await symlink(outside, join(rootfs, 'etc'));
    await symlink(outside, join(rootfs, 'run'));
    const secret = join(dir, 'secret.txt');
    await writeFile(secret, 's');
    const req = request(sh('echo pwned > /etc/pwned; echo pwned > /run/pwned; true'), {
      mounts: [{ type: 'secret', source: secret, target: '/run/secrets/s' }],
    });
    // Refusing to set up (a mount point under a mount) is as good as running: either way the host stays as it was.
    const outcome = await executor.run(req).then(
      () => 'ran',
      (error: unknown) => {
        if (!isStrataError(error, 'E_RUN_FAILED')) throw error;
        return 'refused';
      },
    );
    expect(await readdir(outside)).toEqual(['marker']);
    expect(await readFile(join(outside, 'marker'), 'utf8')).toBe('untouched');
    expect(await hashTree('/etc', ['hosts', 'resolv.conf', 'hostname', 'passwd', 'group', 'motd'])).toEqual(hostEtc);
    expect(existsSync('/etc/pwned')).toBe(false);
    // The writes landed inside the rootfs, where the symlinks resolve for the sandboxed process.
    if (outcome === 'ran') expect(existsSync(join(rootfs, outside, 'pwned'))).toBe(true);
    expect(outcome).toBe('ran');
  });

  it('HOSTILE: /proc, /dev and /sys pointing at the host /etc, and /etc at itself, cannot touch the host', async () => {
    const hostEtc = await hashTree('/etc', ['hosts', 'resolv.conf', 'hostname', 'passwd', 'group', 'motd']);
    const hostEtcNames = (await readdir('/etc')).sort();
    for (const name of ['proc', 'dev', 'sys']) await symlink('/etc', join(rootfs, name));
    await rm(join(rootfs, 'etc'), { recursive: true });
    await symlink('/etc', join(rootfs, 'etc'));
    const outcome = await executor.run(request(sh('echo pwned > /etc/pwned; true'))).then(
      () => 'ran',
      (error: unknown) => {
        if (!isStrataError(error, 'E_RUN_FAILED')) throw error;
        return 'refused';
      },
    );
    expect(['ran', 'refused']).toContain(outcome);
    expect(await hashTree('/etc', ['hosts', 'resolv.conf', 'hostname', 'passwd', 'group', 'motd'])).toEqual(hostEtc);
    expect((await readdir('/etc')).sort()).toEqual(hostEtcNames);
    expect(existsSync('/etc/pwned')).toBe(false);
  });
}

/** No process on the machine runs exactly `argv` (read from /proc/PID/cmdline), within a second. */
async function expectNoProcess(argv: string[]): Promise<void> {
  const wanted = `${argv.join('\0')}\0`;
  const find = async (): Promise<string[]> => {
    const found: string[] = [];
    for (const pid of await readdir('/proc')) {
      if (!/^[0-9]+$/.test(pid)) continue;
      const cmdline = await readFile(join('/proc', pid, 'cmdline'), 'utf8').catch(() => '');
      if (cmdline === wanted) found.push(pid);
    }
    return found;
  };
  let left = await find();
  for (let i = 0; i < 10 && left.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    left = await find();
  }
  expect(left, `still running: ${argv.join(' ')}`).toEqual([]);
}

async function hashTree(base: string, names: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of names) {
    try {
      out[name] = createHash('sha256')
        .update(await readFile(join(base, name)))
        .digest('hex');
    } catch {
      out[name] = 'missing';
    }
  }
  return out;
}
