import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isStrataError, type StrataError } from '../../../src/errors/index.js';
import { DEFAULT_PATH } from '../../../src/oci/index.js';
import {
  EXECUTOR_NAMES,
  MountStubs,
  RESULT_CLASS,
  chooseExecutor,
  executorResultClass,
  OutputTail,
  createExecutor,
  detectExecutors,
  isCapableRoot,
  noneExecutor,
  runCaptureExcludes,
  runFailed,
  runtimeConfig,
  secretTarget,
  shellQuote,
  type RunRequest,
} from '../../../src/exec/index.js';

let dir: string;
let rootfs: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strata-exec-unit-'));
  rootfs = join(dir, 'rootfs');
  await mkdir(join(rootfs, 'etc'), { recursive: true });
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function request(extra: Partial<RunRequest> = {}): RunRequest {
  return {
    rootfs,
    args: ['/bin/sh', '-c', 'make'],
    env: ['A=1'],
    user: { uid: 0, gid: 0 },
    workdir: '/src',
    mounts: [],
    network: 'none',
    platform: { os: 'linux', architecture: 'amd64' },
    where: 'Dockerfile:4',
    ...extra,
  };
}

describe('OutputTail', () => {
  it('keeps the last 20 lines across chunk boundaries, with an unfinished last line', () => {
    const tail = new OutputTail();
    for (let i = 0; i < 30; i++) tail.push(Buffer.from(`line ${i}\n`));
    tail.push(Buffer.from('par'));
    tail.push(Buffer.from('tial'));
    const lines = tail.last();
    expect(lines).toHaveLength(20);
    expect(lines.at(-1)).toBe('partial');
    expect(lines[0]).toBe('line 11');
  });
});

describe('runFailed', () => {
  it('names where, the command and the exit code, and quotes the last lines', () => {
    const error = runFailed(request(), 2, ['compiling', 'error: no rule']);
    expect(error.code).toBe('E_RUN_FAILED');
    expect(error.message).toBe('Dockerfile:4: RUN /bin/sh -c make exited with code 2');
    expect(error.hint).toBe('last output lines:\ncompiling\nerror: no rule');
  });
});

describe('MountStubs', () => {
  it('resolves absolute symlinks inside the rootfs, makes missing mount points and removes only those', async () => {
    const hostSide = join(dir, 'host-side');
    await mkdir(hostSide);
    await symlink(hostSide, join(rootfs, 'run'));
    const stubs = new MountStubs(rootfs, 'Dockerfile:4');
    const point = stubs.prepare('/run/secrets/token', 'file');
    expect(point.containerPath).toBe(`${hostSide}/secrets/token`);
    expect(point.hostPath).toBe(join(rootfs, hostSide, 'secrets', 'token'));
    expect(lstatSync(point.hostPath).isFile()).toBe(true);
    expect(existsSync(join(hostSide, 'secrets'))).toBe(false);
    const cache = stubs.prepare('/var/cache', 'dir');
    await writeFile(join(rootfs, 'var', 'kept-by-step'), 'x');
    stubs.remove();
    expect(existsSync(point.hostPath)).toBe(false);
    expect(existsSync(join(rootfs, hostSide))).toBe(false);
    expect(existsSync(cache.hostPath)).toBe(false);
    // The step wrote next to a mount point: that directory is its change now, and stays.
    expect(existsSync(join(rootfs, 'var', 'kept-by-step'))).toBe(true);
    expect(existsSync(join(rootfs, 'etc'))).toBe(true);
  });

  it('refuses a file mount over a directory, a path through a file and a symlink loop', async () => {
    await writeFile(join(rootfs, 'etc', 'passwd'), '');
    await symlink('/loop', join(rootfs, 'loop'));
    const stubs = new MountStubs(rootfs, 'Dockerfile:4');
    for (const [target, kind] of [
      ['/etc', 'file'],
      ['/etc/passwd/x', 'dir'],
      ['/loop/x', 'dir'],
    ] as const) {
      const error = (() => {
        try {
          stubs.prepare(target, kind);
          return undefined;
        } catch (e) {
          return e as StrataError;
        }
      })();
      expect(isStrataError(error, 'E_RUN_FAILED'), target).toBe(true);
      expect(error?.message).toContain('Dockerfile:4');
    }
  });
});

describe('runtimeConfig', () => {
  it('builds an OCI runtime spec from the step: process, user, mounts resolved in the rootfs, namespaces', async () => {
    const stubs = new MountStubs(rootfs, 'Dockerfile:4');
    const secret = join(dir, 'secret');
    await writeFile(secret, 's');
    const config = runtimeConfig(
      request({
        user: { uid: 1000, gid: 1000, additionalGids: [5] },
        mounts: [
          { type: 'secret', source: secret, target: secretTarget('tok') },
          { type: 'cache', source: dir, target: '/root/.cache' },
          { type: 'tmpfs', target: '/scratch' },
        ],
      }),
      stubs,
      { hosts: '/h', resolvConf: '/r', hostname: '/n' },
    ) as {
      process: { args: string[]; env: string[]; cwd: string; user: unknown; terminal: boolean };
      root: { path: string; readonly: boolean };
      mounts: Array<{ destination: string; type: string; source: string; options?: string[] }>;
      linux: { namespaces: Array<{ type: string }> };
    };
    stubs.remove();
    expect(config.process).toMatchObject({
      args: ['/bin/sh', '-c', 'make'],
      cwd: '/src',
      terminal: false,
      user: { uid: 1000, gid: 1000, additionalGids: [5] },
    });
    expect(config.process.env).toEqual(['A=1', `PATH=${DEFAULT_PATH}`]);
    expect(config.root).toEqual({ path: rootfs, readonly: false });
    const byDest = new Map(config.mounts.map((m) => [m.destination, m]));
    expect(byDest.get('/proc')?.type).toBe('proc');
    expect(byDest.get('/sys')?.options).toContain('ro');
    expect(byDest.get('/etc/hosts')).toMatchObject({ source: '/h', options: ['rbind', 'ro'] });
    expect(byDest.get('/run/secrets/tok')).toMatchObject({ type: 'bind', source: secret, options: ['rbind', 'ro'] });
    expect(byDest.get('/root/.cache')).toMatchObject({ type: 'bind', options: ['rbind', 'rw'] });
    expect(byDest.get('/scratch')?.type).toBe('tmpfs');
    expect(config.linux.namespaces.map((n) => n.type).sort()).toEqual(['ipc', 'mount', 'network', 'pid', 'uts']);
    const host = runtimeConfig(request({ network: 'host' }), new MountStubs(rootfs, 'x'), { hosts: '/h', resolvConf: '/r', hostname: '/n' }) as {
      linux: { namespaces: Array<{ type: string }> };
    };
    expect(host.linux.namespaces.map((n) => n.type)).not.toContain('network');
  });
});

describe('executor registry', () => {
  it('creates each named executor and refuses unknown names with the list', () => {
    for (const name of EXECUTOR_NAMES) expect(createExecutor(name).name).toBe(name);
    expect(createExecutor('command:/usr/bin/true').name).toBe('command:/usr/bin/true');
    const error = (() => {
      try {
        createExecutor('docker');
        return undefined;
      } catch (e) {
        return e as StrataError;
      }
    })();
    expect(isStrataError(error, 'E_USAGE')).toBe(true);
    expect(error?.hint).toContain('bwrap');
  });

  it('gives each executor the result class its RUN keys hold: real root for the sandboxes, its own for proot and programs', async () => {
    const cls = (name: string): Promise<string> => executorResultClass(createExecutor(name));
    for (const name of ['chroot', 'runc', 'crun']) expect(await cls(name)).toBe(RESULT_CLASS.root);
    const root = typeof process.geteuid === 'function' && process.geteuid() === 0;
    expect(await cls('bwrap')).toBe(root ? RESULT_CLASS.root : RESULT_CLASS.userNamespace);
    expect(await cls('proot')).toBe(isCapableRoot() ? RESULT_CLASS.ptraceRealIds : RESULT_CLASS.ptraceFakeIds);
    expect(await cls('inplace')).toBe(isCapableRoot() ? RESULT_CLASS.root : RESULT_CLASS.invokerIds);
    // The names earlier keys held, where the behaviour is the name: such keys stay valid.
    expect(await cls('none')).toBe('none');
    expect(await cls('command:/usr/bin/true')).toBe('command:/usr/bin/true');
    // An executor that says nothing is keyed by its name, never as one of the classes.
    expect(await executorResultClass({ name: 'root' })).toBe('named:root');
    // auto as a value is keyed by the executor it picks here (by trying), as a build that resolves it first is.
    const picked = await chooseExecutor();
    expect(await cls('auto')).toBe(await executorResultClass(picked.executor));
    expect(await cls('auto')).not.toBe('named:auto');
  });

  it('detects executors as a list of names that are available', async () => {
    const names = await detectExecutors();
    for (const name of names) expect(['bwrap', 'runc', 'crun', 'chroot', 'proot']).toContain(name);
  });

  it('none refuses RUN and names the alternatives', async () => {
    const error = (await noneExecutor(async () => ['bwrap', 'chroot'])
      .run(request())
      .catch((e: unknown) => e)) as StrataError;
    expect(isStrataError(error, 'E_RUN_UNSUPPORTED')).toBe(true);
    expect(error.message).toContain('Dockerfile:4');
    expect(error.hint).toContain('bwrap, chroot');
    const detected = (await createExecutor('none')
      .run(request())
      .catch((e: unknown) => e)) as StrataError;
    expect(isStrataError(detected, 'E_RUN_UNSUPPORTED')).toBe(true);
  });
});

describe('helpers', () => {
  it('shellQuote survives a POSIX shell', () => {
    const word = `it's "quoted" $HOME \`x\` \\ end`;
    expect(execFileSync('/bin/sh', ['-c', `printf %s ${shellQuote(word)}`]).toString()).toBe(word);
  });

  it('runCaptureExcludes adds the mount targets to what every sandbox provides', () => {
    const excludes = runCaptureExcludes({ mounts: [{ type: 'cache', source: '/c', target: '/root/.cache' }] });
    expect(excludes).toContain('/proc');
    expect(excludes).toContain('/etc/resolv.conf');
    expect(excludes).toContain('/root/.cache');
  });
});
