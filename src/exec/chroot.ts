import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StrataError } from '../errors/index.js';
import { MountStubs, checkMount, ensureWorkdir, makeNetworkFiles, mountKind, mountReadonly, type MountPoint } from './mounts.js';
import { findBinary, isRoot, runFailed, runProcess, shellQuote, stepEnv } from './process.js';
import { RESULT_CLASS, type Executor, type RunRequest, type RunResult } from './types.js';

/** Host device nodes bound into the sandbox's private /dev, as docker's default set. */
const DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];
/** Exit status the setup script uses, so a failed mount is not mistaken for the command's own exit code. */
const SETUP_FAILED = 125;
const SETUP_MARKER = 'strata: sandbox setup failed: ';

export interface ChrootExecutorOptions {
  /** Where to look for unshare, mount, chroot and env; a standard system PATH by default. */
  path?: string;
}

/**
 * Runs a step as root with `unshare` (mount, pid, uts, ipc and, unless the step asks for the host network, net
 * namespaces) and a chroot into the rootfs. A generated shell script, run by the host's /bin/sh inside the new
 * namespaces, mounts /proc, a private /dev, a read-only /sys, /etc/hosts and /etc/resolv.conf and the step's
 * mounts, then `env -i` sets exactly the step's environment and `unshare --root --wd --setuid --setgid` (or
 * `chroot --userspec --groups` when the user has supplementary groups) enters the rootfs. Every mount dies with
 * the namespace; mount points the rootfs lacked are removed afterwards.
 */
export function chrootExecutor(options: ChrootExecutorOptions = {}): Executor {
  const tools = (): Record<'sh' | 'unshare' | 'mount' | 'chroot' | 'env', string | undefined> => ({
    sh: findBinary('sh', options.path),
    unshare: findBinary('unshare', options.path),
    mount: findBinary('mount', options.path),
    chroot: findBinary('chroot', options.path),
    env: findBinary('env', options.path),
  });
  let probed: Promise<{ ok: true } | { ok: false; reason: string }> | undefined;
  return {
    name: 'chroot',
    resultClass: RESULT_CLASS.root,
    available() {
      probed ??= (async () => {
        if (!isRoot())
          return {
            ok: false,
            reason: 'the chroot executor needs root (mount namespaces and chroot); run as root, or use --executor bwrap where user namespaces are allowed',
          };
        const found = tools();
        const missing = Object.entries(found)
          .filter(([, path]) => path === undefined)
          .map(([name]) => name);
        if (missing.length > 0)
          return { ok: false, reason: `the chroot executor needs ${missing.join(', ')} on the host (apt-get install util-linux mount coreutils)` };
        return probeChroot(found as Record<keyof typeof found, string>);
      })();
      return probed;
    },
    async run(request: RunRequest): Promise<RunResult> {
      const found = tools();
      const available = await this.available();
      if (!available.ok) throw new StrataError('E_RUN_UNSUPPORTED', `${request.where}: cannot RUN with the chroot executor: ${available.reason}`);
      const bin = found as Record<keyof typeof found, string>;
      for (const mount of request.mounts) checkMount(mount, request.where);

      const stubs = new MountStubs(request.rootfs, request.where);
      const files = await makeNetworkFiles(request.network);
      try {
        ensureWorkdir(request.rootfs, request.workdir, request.where);
        const script = setupScript(request, bin, stubs, files);
        const unshareArgs = ['--mount', '--pid', '--fork', '--kill-child', '--uts', '--ipc', '--propagation', 'private'];
        if (request.network === 'none') unshareArgs.push('--net');
        // unshare kills the namespace's first process when it dies (--kill-child); setpriv makes unshare die with
        // strata, even by SIGKILL, so nothing of the step outlives the build.
        const setpriv = findBinary('setpriv', options.path);
        const [file, ...argv] =
          setpriv === undefined
            ? [bin.unshare, ...unshareArgs, '--', bin.sh, '-c', script]
            : [setpriv, '--pdeathsig', 'KILL', '--', bin.unshare, ...unshareArgs, '--', bin.sh, '-c', script];
        const result = await runProcess(file!, argv, {
          env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
          onOutput: request.onOutput,
          signal: request.signal,
        });
        const setup = result.tail.find((line) => line.startsWith(SETUP_MARKER));
        if (result.exitCode === SETUP_FAILED && setup !== undefined) {
          throw new StrataError('E_RUN_FAILED', `${request.where}: the chroot sandbox could not be set up: ${setup.slice(SETUP_MARKER.length)}`, {
            hint: `${result.tail.filter((line) => line !== setup).join('\n')}\ncheck the mount targets and that the rootfs has no symlinks where /proc, /dev, /sys or /etc are expected`.trim(),
          });
        }
        // unshare or setpriv refusing (no CAP_SYS_ADMIN, no namespaces) is the sandbox failing, not the step.
        const refused = result.tail.find((line) => /^(unshare|setpriv): /.test(line));
        if (result.exitCode === 1 && refused !== undefined) {
          throw new StrataError('E_RUN_UNSUPPORTED', `${request.where}: the chroot sandbox could not be set up: ${refused}`, {
            hint: 'the chroot executor needs root with CAP_SYS_ADMIN; --executor auto picks one that works here',
          });
        }
        if (result.exitCode !== 0) throw runFailed(request, result.exitCode, result.tail);
        return { exitCode: 0 };
      } finally {
        stubs.remove();
        await files.dispose();
      }
    },
  };
}

/**
 * Tries what a step needs, as it will be done: namespaces, a mount (of /proc, by unshare itself) and a chroot
 * (unshare's --root, as the step enters its root). uid 0 in a job container started with docker's default
 * capabilities (no CAP_SYS_ADMIN) fails here, not in the step. One unshare and one `true`: the check runs
 * while a build goes on, and a fully cached build waits only for it.
 */
async function probeChroot(bin: Record<'sh' | 'unshare' | 'mount' | 'chroot' | 'env', string>): Promise<{ ok: true } | { ok: false; reason: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-chroot-probe-'));
  try {
    const args = ['--mount', '--pid', '--fork', '--uts', '--ipc', '--propagation', 'private', `--mount-proc=${dir}`, '--root=/', 'true'];
    const result = await runProcess(bin.unshare, args, {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    }).catch((error: unknown) => ({ exitCode: -1, tail: [error instanceof Error ? error.message : String(error)] }));
    if (result.exitCode === 0) return { ok: true };
    return {
      ok: false,
      reason: `the chroot executor cannot make namespaces or mount here: ${result.tail.join(' ').trim() || `exit code ${result.exitCode}`} (a container without CAP_SYS_ADMIN)`,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function setupScript(
  request: RunRequest,
  bin: Record<'sh' | 'unshare' | 'mount' | 'chroot' | 'env', string>,
  stubs: MountStubs,
  files: { hosts: string; resolvConf: string; hostname: string },
): string {
  const q = shellQuote;
  const mount = q(bin.mount);
  const lines: string[] = ['set -u', `fail() { echo "${SETUP_MARKER}$*" >&2; exit ${SETUP_FAILED}; }`];
  const at = (target: string, kind: 'dir' | 'file'): MountPoint => stubs.prepare(target, kind);

  const proc = at('/proc', 'dir');
  lines.push(`${mount} -t proc -o nosuid,nodev,noexec proc ${q(proc.hostPath)} || fail 'mount /proc'`);
  const dev = at('/dev', 'dir');
  lines.push(`${mount} -t tmpfs -o nosuid,noexec,mode=0755,size=65536k tmpfs ${q(dev.hostPath)} || fail 'mount /dev'`);
  for (const name of DEVICES) {
    const node = q(`${dev.hostPath}/${name}`);
    lines.push(`: > ${node} && ${mount} --bind ${q(`/dev/${name}`)} ${node} || fail 'bind /dev/${name}'`);
  }
  lines.push(
    `mkdir -p ${q(`${dev.hostPath}/pts`)} ${q(`${dev.hostPath}/shm`)} && ${mount} -t tmpfs -o nosuid,nodev,noexec,mode=1777 shm ${q(`${dev.hostPath}/shm`)} || fail 'mount /dev/shm'`,
  );
  for (const [name, target] of [
    ['fd', '/proc/self/fd'],
    ['stdin', '/proc/self/fd/0'],
    ['stdout', '/proc/self/fd/1'],
    ['stderr', '/proc/self/fd/2'],
  ] as const) {
    lines.push(`ln -s ${q(target)} ${q(`${dev.hostPath}/${name}`)} || fail 'link /dev/${name}'`);
  }
  const sys = at('/sys', 'dir');
  lines.push(`${mount} -t sysfs -o ro,nosuid,nodev,noexec sysfs ${q(sys.hostPath)} || fail 'mount /sys'`);
  for (const [target, source] of [
    ['/etc/hosts', files.hosts],
    ['/etc/resolv.conf', files.resolvConf],
    ['/etc/hostname', files.hostname],
  ] as const) {
    const point = at(target, 'file');
    lines.push(`${mount} --bind ${q(source)} ${q(point.hostPath)} || fail 'bind ${target}'`);
  }
  if (request.network === 'none') lines.push(`hostname strata 2>/dev/null; ip link set lo up 2>/dev/null; true`);
  else lines.push('hostname strata 2>/dev/null; true');

  for (const m of request.mounts) {
    const point = at(m.target, mountKind(m));
    const target = q(point.hostPath);
    if (m.type === 'tmpfs') {
      lines.push(`${mount} -t tmpfs -o nosuid,nodev,mode=1777 tmpfs ${target} || fail ${q(`tmpfs at ${m.target}`)}`);
    } else {
      lines.push(`${mount} --bind ${q(m.source ?? '')} ${target} || fail ${q(`${m.type} mount at ${m.target}`)}`);
    }
    if (mountReadonly(m)) lines.push(`${mount} -o remount,bind,ro ${target} || fail ${q(`read-only ${m.target}`)}`);
  }

  const env = stepEnv(request.env).map(q).join(' ');
  const argv = request.args.map(q).join(' ');
  const { uid, gid } = request.user;
  const groups = request.user.additionalGids ?? [];
  if (groups.length === 0) {
    // unshare enters the root, changes directory inside it and drops to the user; setgid also clears the
    // supplementary groups, which is why users that have some take the chroot path below.
    lines.push(
      `exec ${q(bin.env)} -i ${env} ${q(bin.unshare)} --root=${q(request.rootfs)} --wd=${q(request.workdir)} --setgid=${gid} --setuid=${uid} -- ${argv}`,
    );
  } else {
    // chroot sets supplementary groups but always starts in /, so the rootfs's /bin/sh changes directory.
    const all = [gid, ...groups.filter((g) => g !== gid)].join(',');
    lines.push(
      `exec ${q(bin.env)} -i ${env} ${q(bin.chroot)} --userspec=${uid}:${gid} --groups=${all} ${q(request.rootfs)} /bin/sh -c 'cd -- "$0" && exec "$@"' ${q(request.workdir)} ${argv}`,
    );
  }
  return lines.join('\n');
}
