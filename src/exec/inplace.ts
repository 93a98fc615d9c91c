import { accessSync, chmodSync, constants, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { StrataError } from '../errors/index.js';
import { mountTable } from '../fsname/index.js';
import { RUN_EXCLUDES, captureChanges, snapshotRootfs } from '../layer/index.js';
import { isCapableRoot } from './capabilities.js';
import { IgnoreSet, syncTree } from './inplace-sync.js';
import { MountStubs, mountKind } from './mounts.js';
import { networkIsolation, networkRefused } from './netns.js';
import { runFailed, runProcess, stepEnv } from './process.js';
import { RESULT_CLASS, type Executor, type RunMount, type RunRequest, type RunResult } from './types.js';

export interface InplaceExecutorOptions {
  /** Run even where no container is seen (kaniko's `--force`). */
  force?: boolean;
  /** More paths of `/` to leave alone (`--ignore-path`), besides mount points and strata's own. */
  ignorePaths?: readonly string[];
  /** The environment strata runs in, for the Kubernetes service variable. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** The runtime's own marks on a container's /, which stay whatever image is laid over it. */
const CONTAINER_FILES = ['/.dockerenv', '/run/.containerenv'];

/** What says a process runs in a container; each is a file or variable a runtime sets up. */
export interface ContainerEvidence {
  exists: (path: string) => boolean;
  env: Readonly<Record<string, string | undefined>>;
  /** /proc/1/cgroup's text, or undefined when unreadable. */
  cgroup: string | undefined;
}

/** The first sign that this is a container, in words, or undefined. */
export function containerSign(evidence: ContainerEvidence): string | undefined {
  if (evidence.exists('/.dockerenv')) return '/.dockerenv exists';
  if (evidence.exists('/run/.containerenv')) return '/run/.containerenv exists';
  if (evidence.env.KUBERNETES_SERVICE_HOST !== undefined && evidence.env.KUBERNETES_SERVICE_HOST !== '') return 'KUBERNETES_SERVICE_HOST is set';
  const match = /(docker|kubepods|containerd|libpod|lxc|garden|buildkit)/.exec(evidence.cgroup ?? '');
  if (match !== null) return `/proc/1/cgroup names ${match[1]}`;
  return undefined;
}

function hostEvidence(env: Readonly<Record<string, string | undefined>>): ContainerEvidence {
  let cgroup: string | undefined;
  try {
    cgroup = readFileSync('/proc/1/cgroup', 'utf8');
  } catch {
    cgroup = undefined;
  }
  return { exists: existsSync, env, cgroup };
}

/** Every mount point but `/` (from /proc/self/mountinfo): another filesystem is never part of the image. */
export function mountPoints(mountinfo?: string): string[] {
  return mountTable(mountinfo)
    .map((m) => m.point)
    .filter((point) => point !== '/');
}

/**
 * kaniko's mode: the step runs in the root of the container strata itself runs in, with no sandbox at all. Before
 * the step, `/` is made equal to the stage's root filesystem, leaving alone /proc, /sys, /dev, every mount point,
 * strata's own files, its store, the build context and `--ignore-path`s; after it, what changed on `/` is copied
 * back into the stage's root, where the engine takes the layer from as for any executor. Each RUN lays its own
 * stage down, so a stage never sees another's files.
 *
 * It needs no capability, only write access to `/`, and refuses to start unless it sees a container (or `force`):
 * outside one it would overwrite the machine. Mounts cannot be mounted: a cache, bind or secret is copied to its
 * target and taken away afterwards (a cache is copied back), an ssh socket is a symlink, tmpfs an empty directory.
 * The network is the container's; a step that asks for none gets a network namespace where one can be made
 * (runOnRoot), and is refused in one line where not.
 */
export function inplaceExecutor(options: InplaceExecutorOptions = {}): Executor {
  // Decided once, before the first step lays an image over / (which has no /.dockerenv of its own).
  let decided: Promise<{ ok: true } | { ok: false; reason: string }> | undefined;
  const available = (): Promise<{ ok: true } | { ok: false; reason: string }> => (decided ??= decide());
  const decide = async (): Promise<{ ok: true } | { ok: false; reason: string }> => {
    if (options.force !== true) {
      const sign = containerSign(hostEvidence(options.env ?? {}));
      if (sign === undefined) {
        return {
          ok: false,
          reason:
            'the inplace executor overwrites / and runs only inside a throwaway container: no container seen here (no /.dockerenv, /run/.containerenv, KUBERNETES_SERVICE_HOST or container cgroup); pass --force if this is one',
        };
      }
    }
    try {
      accessSync('/', constants.W_OK);
    } catch {
      return { ok: false, reason: 'the inplace executor needs write access to /' };
    }
    return { ok: true };
  };
  return {
    name: 'inplace',
    resultClass: isCapableRoot() ? RESULT_CLASS.root : RESULT_CLASS.invokerIds,
    available,
    async run(request: RunRequest): Promise<RunResult> {
      const state = await available();
      if (!state.ok) throw new StrataError('E_RUN_UNSUPPORTED', `${request.where}: cannot RUN with the inplace executor: ${state.reason}`);
      const owners = isCapableRoot();
      // strata's own temporary files (the stage roots among them) are `strata-*` in the temp dir.
      const prefixed = [{ dir: tmpdir(), prefix: 'strata-' }];
      const ignore = new IgnoreSet(
        [...RUN_EXCLUDES, ...CONTAINER_FILES, ...mountPoints(), process.execPath, request.rootfs, ...(options.ignorePaths ?? [])],
        prefixed,
      );
      const targets = request.mounts.map((m) => m.target);
      for (const target of targets) {
        if (ignore.ignored(target))
          throw new StrataError('E_RUN_FAILED', `${request.where}: the mount target ${target} is a path the inplace executor leaves alone`);
      }
      syncTree(request.rootfs, '/', { ignore, owners, makeHolders: true });
      let changed: Set<string>;
      try {
        changed = await runOnRoot(request, owners, [...ignore.list(), ...targets]);
      } catch (error) {
        // What the failed step wrote comes off `/` again: it is left as the stage's root, as the step found it.
        try {
          syncTree(request.rootfs, '/', { ignore, owners, makeHolders: true });
        } catch {
          // the step's own error is the one to report
        }
        throw error;
      }
      // What changed comes back into the stage's root; the engine's capture there makes the layer.
      syncTree('/', request.rootfs, { ignore: new IgnoreSet([...ignore.list(), ...targets], prefixed), owners, force: changed, makeHolders: false });
      return { exitCode: 0 };
    },
  };
}

/**
 * Runs the step on `/` (the stage's root laid down) with its mounts placed, and returns the paths it changed.
 * A step that asks for no network gets a network namespace of its own where this process can make one, with the
 * `unshare` found on `/` now (the image's, or one on an ignored path): `unshare -n` with CAP_SYS_ADMIN, else
 * `unshare -r -n` (the invoking uid is root inside) unless strata is a capable root, whose real owners a
 * one-uid mapping would hide.
 */
async function runOnRoot(request: RunRequest, owners: boolean, exclude: readonly string[]): Promise<Set<string>> {
  const targets = request.mounts.map((m) => m.target);
  const [file, ...args] = request.args;
  if (file === undefined) throw new StrataError('E_RUN_FAILED', `${request.where}: RUN has no command`);
  let argv = [file, ...args];
  const asUser = owners && (request.user.uid !== 0 || request.user.gid !== 0);
  let spawnIds = asUser ? { uid: request.user.uid, gid: request.user.gid } : {};
  if (request.network === 'none') {
    const way = await networkIsolation(owners ? 'none' : 'root');
    if (!way.ok) throw networkRefused('inplace', request, way.reason);
    // unshare -n needs root: the step's user is taken after it, with unshare's own --setgid/--setuid.
    const ids = asUser ? [way.prefix[0]!, '--setgid', String(request.user.gid), '--setuid', String(request.user.uid), '--'] : [];
    argv = [...way.prefix, ...ids, ...argv];
    spawnIds = {};
  }
  mkdirSync(request.workdir, { recursive: true });
  const stubs = new MountStubs('/', request.where);
  const placed = request.mounts.map((m) => placeMount(m, stubs));
  try {
    const before = await snapshotRootfs('/', { exclude, signal: request.signal });
    const result = await runProcess(argv[0]!, argv.slice(1), {
      env: envRecord(stepEnv(request.env)),
      cwd: request.workdir,
      ...spawnIds,
      onOutput: request.onOutput,
      signal: request.signal,
      killWithStrata: true,
    });
    if (result.exitCode !== 0) throw runFailed(request, result.exitCode, result.tail);
    const entries = await captureChanges('/', before, { exclude: targets, signal: request.signal });
    return new Set(entries.map((e) => `/${e.path}`));
  } finally {
    for (const undo of placed.reverse()) undo();
    stubs.remove();
  }
}

/** Puts a mount's content at its target on `/`; returns what takes it away and puts back what was there. */
function placeMount(mount: RunMount, stubs: MountStubs): () => void {
  const target = mount.target;
  const hidden = existsSync(target) ? `${target}.strata-hidden-${process.pid}` : undefined;
  if (hidden !== undefined) renameSync(target, hidden);
  const kind = mountKind(mount);
  const point = stubs.prepare(target, kind).hostPath;
  if (mount.type === 'tmpfs') chmodSync(point, 0o1777);
  else if (mount.type === 'ssh') {
    rmSync(point, { force: true });
    symlinkSync(mount.source ?? '', point);
  } else cpSync(mount.source ?? '', point, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  return () => {
    if (mount.type === 'cache' && mount.source !== undefined) {
      rmSync(mount.source, { recursive: true, force: true });
      cpSync(point, mount.source, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    }
    rmSync(point, { recursive: true, force: true });
    if (hidden !== undefined) renameSync(hidden, target);
  };
}

function envRecord(entries: readonly string[]): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    if (eq > 0) out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}
