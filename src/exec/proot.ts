import { existsSync, readlinkSync, realpathSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StrataError } from '../errors/index.js';
import { isCapableRoot } from './capabilities.js';
import { MountStubs, checkMount, ensureWorkdir, makeNetworkFiles, mountKind, type NetworkFiles } from './mounts.js';
import { networkIsolation, networkRefused, type NetworkIsolation } from './netns.js';
import { childrenOf, findBinary, killSession, runFailed, runProcess, sessionMembers, stepEnv, type ProcessResult } from './process.js';
import { RESULT_CLASS, type Executor, type RunMount, type RunRequest, type RunResult } from './types.js';

export interface ProotExecutorOptions {
  /** The proot binary; found on a standard system PATH by default. */
  binary?: string;
  /** Names of the other executors that work here, for the message when proot cannot trace. */
  alternatives?: () => Promise<string[]>;
}

/** What proot prints when the kernel or a seccomp profile refuses ptrace: the sandbox, not the step, failed. */
const PTRACE_REFUSED = /^proot error: ptrace\(/;

/**
 * Runs a step with PRoot: ptrace translates every path the step uses into the rootfs (`-r`), so it needs no
 * namespace, no mount and no capability; it works in a CI job container with docker's default seccomp profile
 * and user namespaces switched off. Mounts are proot binds (`-b HOST:GUEST`).
 *
 * What it cannot give, compared with bwrap, runc or chroot: no private network (a step that asks for
 * `--network=none` is refused rather than silently given the host's), no private pid space, host /dev and /proc
 * and /sys seen as they are. proot has no read-only bind: a read-only bind mount or secret is given as a private
 * copy, so what the step writes there is thrown away (BuildKit fails such a write with EROFS).
 *
 * Users: a root strata with the capabilities to change ids runs proot as the step's user (setpriv, with its
 * supplementary groups), so owners on disk are real. Otherwise proot fakes the ids (`-0` for root, `-i uid:gid`
 * for others): files belong on disk to whoever runs strata, and the build records them as the step's user; a
 * `chown` to a third user succeeds in the step's eyes but is not kept (the layer shows the step's user).
 */
export function prootExecutor(options: ProotExecutorOptions = {}): Executor {
  const binary = (): string | undefined => findBinary(options.binary ?? 'proot');
  let probed: Promise<{ ok: true } | { ok: false; reason: string }> | undefined;
  let isolation: Promise<NetworkIsolation> | undefined;
  const available = (): Promise<{ ok: true } | { ok: false; reason: string }> => {
    probed ??= (async () => {
      const bin = binary();
      if (bin === undefined) return { ok: false, reason: 'proot is not installed (apt-get install proot)' };
      const probe = await runProcess(bin, ['-r', '/', '-w', '/', 'true'], { env: { PATH: '/usr/bin:/bin' } }).catch(() => undefined);
      if (probe?.exitCode === 0) return { ok: true };
      return { ok: false, reason: `proot cannot trace processes here${probe === undefined ? '' : `: ${cause(probe)}`}` };
    })();
    return probed;
  };

  return {
    name: 'proot',
    resultClass: isCapableRoot() ? RESULT_CLASS.ptraceRealIds : RESULT_CLASS.ptraceFakeIds,
    available,
    async run(request: RunRequest): Promise<RunResult> {
      const bin = binary();
      if (bin === undefined)
        throw new StrataError('E_RUN_UNSUPPORTED', `${request.where}: cannot RUN with the proot executor: proot is not installed (apt-get install proot)`);
      // proot has no network of its own to give: a step that asks for none runs in a network namespace when this
      // process can make one (CAP_SYS_ADMIN, or a user namespace with no id mapping: proot fakes the ids anyway).
      let netns: string[] = [];
      if (request.network === 'none') {
        isolation ??= networkIsolation(isCapableRoot() ? 'none' : 'unmapped');
        const way = await isolation;
        if (!way.ok) throw networkRefused('proot', request, way.reason);
        netns = way.prefix;
      }
      for (const mount of request.mounts) checkMount(mount, request.where);
      const stubs = new MountStubs(request.rootfs, request.where);
      const files = await makeNetworkFiles(request.network);
      const scratch = await mkdtemp(join(tmpdir(), 'strata-proot-'));
      try {
        // Reachable by a step that runs as its own (non-root) uid.
        await chmod(scratch, 0o755);
        ensureWorkdir(request.rootfs, request.workdir, request.where);
        const [file, ...argv] = [...netns, ...commandLine(bin, await prootArgs(request, stubs, files, scratch), request)];
        const result = await runTraced(file!, argv, bin, request);
        if (result.exitCode === 0) return { exitCode: 0 };
        if (result.tail.some((line) => PTRACE_REFUSED.test(line))) {
          const left = (await (options.alternatives?.() ?? Promise.resolve([]))).filter((name) => name !== 'proot');
          throw new StrataError('E_RUN_UNSUPPORTED', `${request.where}: the proot executor could not start the step: ${cause(result)}`, {
            hint: `ptrace is refused here (a seccomp profile or a security module); ${left.length > 0 ? `executors left on this machine: ${left.join(', ')}` : 'no other executor works on this machine; inside a throwaway container, --executor inplace needs no ptrace'}`,
          });
        }
        throw runFailed(
          request,
          result.exitCode,
          result.tail.filter((line) => !line.startsWith('proot warning: ') && !line.startsWith('proot info: ')),
        );
      } finally {
        stubs.remove();
        await files.dispose();
        await rm(scratch, { recursive: true, force: true });
      }
    },
  };
}

/** proot's options: the root, the working directory, /proc, /dev and /sys, the network files and the step's mounts. */
async function prootArgs(request: RunRequest, stubs: MountStubs, files: NetworkFiles, scratch: string): Promise<string[]> {
  const args: string[] = ['-v', '-1', '-r', request.rootfs, '-w', request.workdir];
  for (const target of ['/proc', '/dev', '/sys']) args.push('-b', `${target}:${stubs.prepare(target, 'dir').containerPath}`);
  for (const [target, source] of [
    ['/etc/hosts', files.hosts],
    ['/etc/resolv.conf', files.resolvConf],
    ['/etc/hostname', files.hostname],
  ] as const) {
    args.push('-b', `${source}:${stubs.prepare(target, 'file').containerPath}`);
  }
  let n = 0;
  for (const m of request.mounts) {
    const point = stubs.prepare(m.target, mountKind(m));
    const source = await bindSource(m, join(scratch, String(n++)));
    args.push('-b', `${source}:${point.containerPath}`);
  }
  return args;
}

/**
 * The command line for the step's user: a capable root runs proot as that user (setpriv, with its groups), so
 * owners on disk are real; otherwise proot fakes the ids (`-0` for root, `-i uid:gid` for others).
 */
function commandLine(bin: string, args: readonly string[], request: RunRequest): string[] {
  const { uid, gid } = request.user;
  const groups = request.user.additionalGids ?? [];
  if (!isCapableRoot()) return [bin, ...args, ...(uid === 0 && gid === 0 ? ['-0'] : ['-i', `${uid}:${gid}`]), ...request.args];
  if (uid === 0 && gid === 0 && groups.length === 0) return [bin, ...args, ...request.args];
  const setpriv = findBinary('setpriv');
  if (setpriv === undefined) return [bin, ...args, '-i', `${uid}:${gid}`, ...request.args];
  const all = [gid, ...groups.filter((g) => g !== gid)];
  return [setpriv, `--reuid=${uid}`, `--regid=${gid}`, `--groups=${all.join(',')}`, '--', bin, ...args, ...request.args];
}

/**
 * Runs proot (after whatever execs into it: unshare, sh, setpriv) with the step's environment. proot waits for
 * every process it traces: a daemon the step started would hold the build forever. When the step's own process
 * is gone, what it left in the session goes, as docker stops a container's processes.
 */
async function runTraced(file: string, argv: readonly string[], bin: string, request: RunRequest): Promise<ProcessResult> {
  let watch: NodeJS.Timeout | undefined;
  const tracer = realpathSync(bin);
  const onSpawn = (pid: number): void => {
    let main: number | undefined;
    // The spawned pid becomes the tracer once it execs proot (a helper it ran before, like `ip`, is not the step).
    // The step's process is proot's child; what it started and left is reparented away from proot, but stays in
    // the session.
    watch = setInterval(() => {
      if (exeOf(pid) !== tracer) return;
      if (main === undefined) {
        main = childrenOf(pid)[0];
        if (main === undefined && sessionMembers(pid).some((p) => p !== pid)) killSession(pid, [pid]);
        return;
      }
      if (!existsSync(`/proc/${main}`)) killSession(pid, [pid]);
    }, 100);
    watch.unref();
  };
  try {
    return await runProcess(file, argv, {
      env: envRecord(stepEnv(request.env)),
      onOutput: request.onOutput,
      signal: request.signal,
      onSpawn,
      killWithStrata: true,
    });
  } finally {
    if (watch !== undefined) clearInterval(watch);
  }
}

function exeOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
}

/** The first line proot wrote about why it failed, without its prefix. */
function cause(result: ProcessResult): string {
  const line = result.tail.find((l) => l.startsWith('proot error: ')) ?? result.tail.find((l) => l.trim() !== '');
  return line === undefined ? `exit code ${result.exitCode}` : line.replace(/^proot error: /, '').trim();
}

/**
 * proot binds are always writable: a bind mount or a secret gets a private copy, whose writes are thrown away (the
 * engine's copy of a `rw` bind is copied again); caches and the ssh socket are bound as they are, tmpfs is an
 * empty private dir.
 */
async function bindSource(mount: RunMount, copyAt: string): Promise<string> {
  if (mount.type === 'tmpfs') {
    await mkdir(copyAt);
    await chmod(copyAt, 0o1777);
    return copyAt;
  }
  const source = mount.source ?? '';
  if (mount.type === 'ssh' || mount.type === 'cache') return source;
  await cp(source, copyAt, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  // BuildKit's secret mode (0400); a root step's writes go to this copy only.
  if (mount.type === 'secret') await chmod(copyAt, 0o400);
  return copyAt;
}

function envRecord(entries: readonly string[]): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    if (eq > 0) out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}
