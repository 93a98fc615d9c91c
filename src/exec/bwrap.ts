import { StrataError } from '../errors/index.js';
import { MountStubs, checkMount, ensureWorkdir, makeNetworkFiles, mountKind, mountReadonly, type NetworkFiles } from './mounts.js';
import { findBinary, isRoot, runFailed, runProcess, stepEnv } from './process.js';
import { RESULT_CLASS, type Executor, type RunRequest, type RunResult } from './types.js';

/** Docker's default capabilities for a root process in a container, the set bwrap grants uid 0 here. */
export const DOCKER_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

export interface BwrapExecutorOptions {
  /** The bwrap binary; found on a standard system PATH by default. */
  binary?: string;
}

/**
 * Runs a step with bubblewrap: the rootfs bound at /, a private /proc and /dev, new pid, ipc, uts and (unless
 * the step asks for the host network) net namespaces, the step's environment only, its working directory.
 * /tmp is the rootfs's own /tmp, so what a step leaves there is captured, as docker does.
 *
 * Users: as root, a uid-0 step runs without a user namespace and with docker's default capabilities, so chown
 * and friends behave as in docker. A step with another uid runs bwrap as that uid in a user namespace mapping
 * only it (files it makes are owned by it on disk); the rootfs and mount sources must then be reachable by that
 * uid, and supplementary groups are dropped. Rootless, the invoking user is mapped to the step's uid, so files
 * are owned by the invoking user on disk and chown fails.
 */
export function bwrapExecutor(options: BwrapExecutorOptions = {}): Executor {
  const binary = (): string | undefined => (options.binary === undefined ? findBinary('bwrap') : findBinary(options.binary));
  let probed: Promise<Availability> | undefined;
  const available = (): Promise<Availability> => {
    probed ??= probeBwrap(binary());
    return probed;
  };

  return {
    name: 'bwrap',
    // As root a uid-0 step is real root; without root a user namespace maps the invoking user.
    resultClass: isRoot() ? RESULT_CLASS.root : RESULT_CLASS.userNamespace,
    available,
    async run(request: RunRequest): Promise<RunResult> {
      const state = await available();
      const bin = binary();
      if (!state.ok || bin === undefined) {
        throw new StrataError(
          'E_RUN_UNSUPPORTED',
          `${request.where}: cannot RUN with the bwrap executor: ${state.ok ? 'bwrap is not installed' : state.reason}`,
        );
      }
      for (const mount of request.mounts) checkMount(mount, request.where);
      const stubs = new MountStubs(request.rootfs, request.where);
      const files = await makeNetworkFiles(request.network);
      try {
        const { args, spawnIds } = sandboxArgs(request, stubs, files);
        const result = await runProcess(bin, args, { env: {}, ...spawnIds, onOutput: request.onOutput, signal: request.signal });
        if (result.exitCode !== 0) throw bwrapFailure(request, result, spawnIds);
        return { exitCode: 0 };
      } finally {
        stubs.remove();
        await files.dispose();
      }
    },
  };
}

type Availability = { ok: true } | { ok: false; reason: string };

/** Whether bwrap can make what a step needs here: tried, never assumed from the uid. */
async function probeBwrap(bin: string | undefined): Promise<Availability> {
  if (bin === undefined) return { ok: false, reason: 'bwrap is not installed (apt-get install bubblewrap)' };
  if (isRoot()) {
    // Tried, not assumed: uid 0 in a job container without CAP_SYS_ADMIN cannot make namespaces.
    const probe = await runProcess(
      bin,
      ['--bind', '/', '/', '--proc', '/proc', '--dev', '/dev', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--cap-add', 'CAP_CHOWN', '--', 'true'],
      { env: { PATH: '/usr/bin:/bin' } },
    ).catch(() => undefined);
    if (probe?.exitCode === 0) return { ok: true };
    return {
      ok: false,
      reason: `bwrap cannot create namespaces here as root${probe === undefined ? '' : `: ${probe.tail.join(' ').trim()}`} (a container without CAP_SYS_ADMIN)`,
    };
  }
  const probe = await runProcess(bin, ['--unshare-user', '--bind', '/', '/', 'true'], { env: { PATH: '/usr/bin:/bin' } }).catch(() => undefined);
  if (probe?.exitCode === 0) return { ok: true };
  return {
    ok: false,
    reason: `bwrap cannot create a user namespace here${probe === undefined ? '' : `: ${probe.tail.join(' ').trim()}`}; allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, or an AppArmor profile for bwrap), or run as root`,
  };
}

/** bwrap's arguments for a step, and the ids to spawn it with (a non-root step as root runs bwrap as that uid). */
function sandboxArgs(request: RunRequest, stubs: MountStubs, files: NetworkFiles): { args: string[]; spawnIds: { uid?: number; gid?: number } } {
  // bwrap would make missing mount points itself, inside the rootfs; made here they are known and removed.
  const proc = stubs.prepare('/proc', 'dir').containerPath;
  const dev = stubs.prepare('/dev', 'dir').containerPath;
  ensureWorkdir(request.rootfs, request.workdir, request.where);
  const args: string[] = ['--bind', request.rootfs, '/', '--proc', proc, '--dev', dev];
  args.push('--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try', '--die-with-parent', '--new-session');
  if (request.network === 'none') args.push('--unshare-net');
  args.push('--hostname', 'strata');
  for (const [target, source] of [
    ['/etc/hosts', files.hosts],
    ['/etc/resolv.conf', files.resolvConf],
    ['/etc/hostname', files.hostname],
  ] as const) {
    args.push('--ro-bind', source, stubs.prepare(target, 'file').containerPath);
  }
  for (const m of request.mounts) {
    // Resolved inside the rootfs first: bwrap would follow an absolute symlink in the rootfs against the host.
    const point = stubs.prepare(m.target, mountKind(m));
    if (m.type === 'tmpfs') args.push('--tmpfs', point.containerPath);
    else args.push(mountReadonly(m) ? '--ro-bind' : '--bind', m.source ?? '', point.containerPath);
  }
  const { uid, gid } = request.user;
  let spawnIds: { uid?: number; gid?: number } = {};
  if (isRoot() && uid === 0) {
    for (const cap of DOCKER_CAPABILITIES) args.push('--cap-add', cap);
    if (gid !== 0)
      throw new StrataError('E_RUN_UNSUPPORTED', `${request.where}: the bwrap executor cannot run uid 0 with gid ${gid}`, {
        hint: 'use --executor chroot or runc for this USER',
      });
  } else {
    args.push('--unshare-user', '--uid', String(uid), '--gid', String(gid));
    if (isRoot()) spawnIds = { uid, gid };
  }
  args.push('--chdir', request.workdir, '--clearenv');
  for (const entry of stepEnv(request.env)) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    args.push('--setenv', entry.slice(0, eq), entry.slice(eq + 1));
  }
  args.push('--', ...request.args);
  return { args, spawnIds };
}

/** A failed step: the program missing from the image, a sandbox bwrap could not set up, or the step's own exit. */
function bwrapFailure(request: RunRequest, result: { exitCode: number; tail: string[] }, spawnIds: { uid?: number }): StrataError {
  const setup = result.tail.find((line) => line.startsWith('bwrap: '));
  if (setup?.startsWith('bwrap: execvp ') === true && result.exitCode === 1) {
    // The sandbox was up; the image has no such program: the step's own failure, as docker reports it.
    return new StrataError(
      'E_RUN_FAILED',
      `${request.where}: RUN ${request.args.join(' ').slice(0, 200)}: cannot start ${setup.slice('bwrap: execvp '.length)}`,
      {
        hint: 'the program is not in the image (a FROM scratch stage has no shell: use the exec form with a program the image has)',
      },
    );
  }
  if (setup !== undefined && result.exitCode === 1) {
    return new StrataError('E_RUN_FAILED', `${request.where}: bwrap could not set up the sandbox: ${setup.slice(7)}`, {
      hint:
        spawnIds.uid === undefined
          ? 'check that bwrap can create namespaces here (try: bwrap --unshare-user --bind / / true)'
          : `the step runs as uid ${spawnIds.uid}, and bwrap then runs as that uid: the rootfs and mount sources must be reachable by it; or use --executor chroot or runc`,
    });
  }
  return runFailed(request, result.exitCode, result.tail);
}
