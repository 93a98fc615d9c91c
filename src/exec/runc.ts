import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StrataError } from '../errors/index.js';
import { DOCKER_CAPABILITIES } from './bwrap.js';
import { MountStubs, checkMount, ensureWorkdir, makeNetworkFiles, mountKind, mountReadonly, type NetworkFiles } from './mounts.js';
import { findBinary, isRoot, runFailed, runProcess, stepEnv } from './process.js';
import { RESULT_CLASS, type Executor, type RunRequest, type RunResult } from './types.js';

export interface OciRuntimeExecutorOptions {
  /** `runc` (default) or `crun`, or a path to either; they take the same bundle and command line. */
  runtime?: string;
}

interface OciMount {
  destination: string;
  type: string;
  source: string;
  options?: string[];
}

/**
 * Runs a step with an OCI runtime (runc or crun): a bundle whose config.json is generated from the step
 * (args, env, cwd, uid/gid and supplementary groups, mounts, namespaces pid/ipc/uts/mount and net unless the
 * host network is asked for), `RUNTIME --root <private state dir> run --bundle <dir> <id>`, then the state dir
 * and any leftover container are removed. Runs as root only: rootless runtimes need id mappings and a
 * systemd cgroup setup strata does not manage; use bwrap there.
 */
export function ociRuntimeExecutor(options: OciRuntimeExecutorOptions = {}): Executor {
  const runtime = options.runtime ?? 'runc';
  const name = runtime.includes('/') ? runtime.slice(runtime.lastIndexOf('/') + 1) : runtime;
  let probed: Promise<{ ok: true } | { ok: false; reason: string }> | undefined;
  const available = (): Promise<{ ok: true } | { ok: false; reason: string }> => {
    probed ??= probe(runtime, name);
    return probed;
  };
  return {
    name,
    // Runs as root only (see above).
    resultClass: RESULT_CLASS.root,
    available,
    async run(request: RunRequest): Promise<RunResult> {
      const state = await available();
      const bin = findBinary(runtime);
      if (!state.ok || bin === undefined) {
        throw new StrataError(
          'E_RUN_UNSUPPORTED',
          `${request.where}: cannot RUN with the ${name} executor: ${state.ok ? `${runtime} is not installed` : state.reason}`,
        );
      }
      for (const mount of request.mounts) checkMount(mount, request.where);
      const stubs = new MountStubs(request.rootfs, request.where);
      const files = await makeNetworkFiles(request.network);
      const work = await mkdtemp(join(tmpdir(), `strata-${name}-`));
      const stateDir = join(work, 'state');
      const id = `strata-${randomBytes(6).toString('hex')}`;
      try {
        await mkdir(stateDir);
        ensureWorkdir(request.rootfs, request.workdir, request.where);
        await writeFile(join(work, 'config.json'), JSON.stringify(runtimeConfig(request, stubs, files)));
        // `run` without --detach: the runtime waits for the container. If strata is killed (even by SIGKILL), a
        // watchdog kills the runtime, then the container (its init is pid 1 of its own pid namespace, so every
        // process of the step goes with it), deletes its state and cgroup, and removes the bundle.
        const runtimeArgs = (...args: string[]): string[] => ['--root', stateDir, ...args];
        const result = await runProcess(bin, runtimeArgs('run', '--bundle', work, id), {
          env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
          onOutput: request.onOutput,
          signal: request.signal,
          killWithStrata: {
            cleanup: [
              [bin, ...runtimeArgs('kill', id, 'KILL')],
              [bin, ...runtimeArgs('delete', '--force', id)],
              ['rm', '-rf', work, files.dir],
            ],
          },
        });
        if (result.exitCode !== 0) {
          // The runtime failing to make the container (cgroups, namespaces) is the sandbox, not the step; a missing
          // program (`exec: "…": no such file`) is the step's own failure, as docker reports it.
          const setup = result.tail.find(
            (line) =>
              /unable to start container process: (?!exec: )/.test(line) || (/^crun: /.test(line) && !/executable file not found|No such file/.test(line)),
          );
          if (setup !== undefined) {
            const message = /msg="([^"]*)"/.exec(setup)?.[1] ?? setup;
            throw new StrataError('E_RUN_UNSUPPORTED', `${request.where}: the ${name} sandbox could not be set up: ${message}`, {
              hint: '--executor auto picks an executor that works here',
            });
          }
          throw runFailed(request, result.exitCode, result.tail);
        }
        return { exitCode: 0 };
      } finally {
        await runProcess(bin, ['--root', stateDir, 'delete', '--force', id], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } }).catch(() => undefined);
        stubs.remove();
        await files.dispose();
        await rm(work, { recursive: true, force: true });
      }
    },
  };
}

/**
 * Whether the runtime can start a container here: binary, root, and a real start of an empty bundle whose
 * process does not exist. Reaching "no such file" for it means the runtime got through namespaces and cgroups.
 */
async function probe(runtime: string, name: string): Promise<{ ok: true } | { ok: false; reason: string }> {
  const bin = findBinary(runtime);
  if (bin === undefined) return { ok: false, reason: `${name} is not installed (apt-get install ${name})` };
  if (!isRoot())
    return { ok: false, reason: `the ${name} executor needs root here (rootless runtimes need id mappings strata does not set up); use --executor bwrap` };
  const work = await mkdtemp(join(tmpdir(), `strata-${name}-probe-`));
  try {
    await mkdir(join(work, 'rootfs'));
    await mkdir(join(work, 'state'));
    const config = {
      ociVersion: '1.0.2',
      process: { terminal: false, user: { uid: 0, gid: 0 }, args: ['/strata-probe'], env: [], cwd: '/' },
      root: { path: join(work, 'rootfs') },
      mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }],
      linux: { namespaces: [{ type: 'mount' }, { type: 'pid' }] },
    };
    await writeFile(join(work, 'config.json'), JSON.stringify(config));
    const id = `strata-probe-${randomBytes(4).toString('hex')}`;
    const result = await runProcess(bin, ['--root', join(work, 'state'), 'run', '--bundle', work, id], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    await runProcess(bin, ['--root', join(work, 'state'), 'delete', '--force', id], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } }).catch(() => undefined);
    const output = result.tail.join(' ');
    // Only the exec of the missing program counts: the container id holds the same word, and a cgroup or
    // namespace failure names the id.
    if (output.includes('"/strata-probe"') || output.includes('/strata-probe: no such file')) return { ok: true };
    return { ok: false, reason: `${name} cannot start a container here: ${output.trim() || `exit code ${result.exitCode}`}; try --executor bwrap or chroot` };
  } catch (error) {
    return { ok: false, reason: `${name} cannot start a container here: ${error instanceof Error ? error.message : String(error)}` };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The runtime spec for one step (OCI runtime-spec 1.0). */
export function runtimeConfig(request: RunRequest, stubs: MountStubs, files: Pick<NetworkFiles, 'hosts' | 'resolvConf' | 'hostname'>): object {
  const mounts: OciMount[] = [];
  const point = (target: string, kind: 'dir' | 'file'): string => stubs.prepare(target, kind).containerPath;
  mounts.push({ destination: point('/proc', 'dir'), type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] });
  const dev = point('/dev', 'dir');
  mounts.push({ destination: dev, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] });
  mounts.push({ destination: `${dev}/pts`, type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] });
  mounts.push({ destination: `${dev}/shm`, type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] });
  mounts.push({ destination: point('/sys', 'dir'), type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] });
  for (const [target, source] of [
    ['/etc/hosts', files.hosts],
    ['/etc/resolv.conf', files.resolvConf],
    ['/etc/hostname', files.hostname],
  ] as const) {
    mounts.push({ destination: point(target, 'file'), type: 'bind', source, options: ['rbind', 'ro'] });
  }
  for (const m of request.mounts) {
    const destination = point(m.target, mountKind(m));
    if (m.type === 'tmpfs') mounts.push({ destination, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] });
    else mounts.push({ destination, type: 'bind', source: m.source ?? '', options: ['rbind', mountReadonly(m) ? 'ro' : 'rw'] });
  }
  const namespaces = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (request.network === 'none') namespaces.push({ type: 'network' });
  const user: { uid: number; gid: number; additionalGids?: number[] } = { uid: request.user.uid, gid: request.user.gid };
  if ((request.user.additionalGids ?? []).length > 0) user.additionalGids = [...(request.user.additionalGids ?? [])];
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user,
      args: [...request.args],
      env: stepEnv(request.env),
      cwd: request.workdir,
      capabilities: { bounding: DOCKER_CAPABILITIES, effective: DOCKER_CAPABILITIES, permitted: DOCKER_CAPABILITIES },
      noNewPrivileges: false,
    },
    root: { path: request.rootfs, readonly: false },
    hostname: 'strata',
    mounts,
    linux: {
      namespaces,
      maskedPaths: [
        '/proc/acpi',
        '/proc/asound',
        '/proc/kcore',
        '/proc/keys',
        '/proc/latency_stats',
        '/proc/timer_list',
        '/proc/timer_stats',
        '/proc/sched_debug',
        '/sys/firmware',
        '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

export function runcExecutor(): Executor {
  return ociRuntimeExecutor({ runtime: 'runc' });
}

export function crunExecutor(): Executor {
  return ociRuntimeExecutor({ runtime: 'crun' });
}
