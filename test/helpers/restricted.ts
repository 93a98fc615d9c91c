/**
 * The restricted sandboxes of a CI job container, made on any Linux machine where the tests run as root: no user
 * namespaces, no mount, no capabilities. strata runs inside them as a user would run it in such a job.
 *
 * - `bwrap-uid0`: bubblewrap with `--unshare-user --disable-userns --cap-drop ALL`, as uid 0 (a Kubernetes pod
 *   whose securityContext drops every capability, user namespaces off).
 * - `bwrap-uid1000`: the same started as uid 1000 (a job image with `USER 1000`).
 * - `setpriv-uid0`: root with an empty bounding set (`setpriv --bounding-set -all`): no capability survives exec.
 *
 * The host's filesystem is seen as it is (`--bind / /`), and the network is the host's, so a loopback registry
 * is reachable. Everything a sandbox writes must be writable by its uid.
 */
import { execFile } from 'node:child_process';
import { chmod, chown, lstat, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll } from 'vitest';
import { BUILDAH_RUN_LEAKS, Buildah, describeOwnedTree, pushBusyboxBase, umociUnpack, type OwnedEntry } from './busybox-base.js';
import { CLI, REPO_ROOT, type CliResult } from './cli.js';
import { startRegistry, type TestRegistry } from './registry.js';
import { isCI } from './tools.js';

const execFileP = promisify(execFile);

export interface RestrictedSandbox {
  name: string;
  uid: number;
  /** The command line that runs `argv` inside the sandbox. */
  wrap(argv: readonly string[]): string[];
}

/** bwrap options of a CI job's sandbox: no user namespace inside, no capability, as `uid`. */
const NO_USERNS_NO_CAPS = (uid: number): string[] => ['--unshare-user', '--uid', String(uid), '--gid', String(uid), '--disable-userns', '--cap-drop', 'ALL'];

/** Its own /dev, /proc and pid namespace, gone with the test process. */
const OWN_PROCESSES = ['--dev', '/dev', '--proc', '/proc', '--unshare-pid', '--die-with-parent'];

const BWRAP = (uid: number): string[] => ['bwrap', ...NO_USERNS_NO_CAPS(uid), '--bind', '/', '/', ...OWN_PROCESSES, '--'];

export const RESTRICTED_SANDBOXES: readonly RestrictedSandbox[] = [
  { name: 'bwrap-uid0', uid: 0, wrap: (argv) => [...BWRAP(0), ...argv] },
  { name: 'bwrap-uid1000', uid: 1000, wrap: (argv) => ['setpriv', '--reuid=1000', '--regid=1000', '--clear-groups', ...BWRAP(1000), ...argv] },
  { name: 'setpriv-uid0', uid: 0, wrap: (argv) => ['setpriv', '--bounding-set', '-all', '--inh-caps', '-all', '--', ...argv] },
];

/** Runs a program inside a sandbox; never throws for a non-zero exit. */
export async function runRestricted(
  sandbox: RestrictedSandbox,
  argv: readonly string[],
  env: Record<string, string | undefined>,
  cwd = REPO_ROOT,
): Promise<CliResult> {
  const [file, ...args] = sandbox.wrap(argv);
  try {
    const { stdout, stderr } = await execFileP(file!, args, { env, cwd, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** `strata ARGS` inside a sandbox, with a minimal environment (PATH, HOME) plus `env`. */
export function strataRestricted(sandbox: RestrictedSandbox, args: readonly string[], env: Record<string, string | undefined>): Promise<CliResult> {
  return runRestricted(sandbox, [CLI, ...args], { PATH: process.env.PATH, ...env });
}

/**
 * Why these sandboxes cannot be made here, or undefined when they can: it takes root (to start one as uid 1000),
 * bwrap 0.8 or later (`--disable-userns`), setpriv and proot.
 */
export async function restrictedUnavailable(): Promise<string | undefined> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'the restricted sandboxes are started by root';
  for (const tool of ['bwrap', 'setpriv', 'proot']) {
    try {
      await execFileP(tool, ['--version']);
    } catch {
      return `${tool} is not installed (apt-get install ${tool === 'bwrap' ? 'bubblewrap' : tool === 'setpriv' ? 'util-linux' : 'proot'})`;
    }
  }
  const probe = await runRestricted(RESTRICTED_SANDBOXES[0]!, ['true'], { PATH: process.env.PATH });
  if (probe.code !== 0) return `bwrap cannot make the restricted sandbox here (it needs 0.8 for --disable-userns): ${probe.stderr.trim()}`;
  return undefined;
}

/** Docker's default capabilities a job container's root has (no CAP_SYS_ADMIN). */
const DOCKER_CAPS = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_SETUID', 'CAP_SETGID', 'CAP_KILL'];

export interface ScratchRootOptions {
  /** A `/.dockerenv` in the sandbox's root, as docker makes one. */
  dockerenv?: boolean;
  /** `docker`: root with docker's default capabilities; `none`: `--cap-drop ALL`. */
  caps?: 'docker' | 'none';
  /** With `caps: 'none'`: the uid (and gid) the sandbox runs as; `scratch` and `state` must be its own. */
  uid?: number;
  /** With `caps: 'none'`: whether user namespaces stay allowed inside (no `--unshare-user --disable-userns`). */
  userns?: boolean;
}

/**
 * A sandbox whose `/` is `scratch`, as a throwaway job container's root: the host's /usr and the repository
 * read-only, `state` at /strata (HOME, STRATA_ROOT=/strata/store, TMPDIR=/strata/tmp), its own /proc, /dev and
 * pid namespace. For the inplace executor, which lays images onto `/`.
 */
export function scratchRootSandbox(scratch: string, state: string, options: ScratchRootOptions = {}): RestrictedSandbox {
  const uid = options.caps === 'none' ? (options.uid ?? 0) : 0;
  const isolation =
    options.caps === 'none' ? (options.userns === true ? ['--cap-drop', 'ALL'] : NO_USERNS_NO_CAPS(uid)) : DOCKER_CAPS.flatMap((c) => ['--cap-add', c]);
  const links = ['lib', 'lib64', 'bin', 'sbin'].flatMap((dir) => ['--symlink', `usr/${dir}`, `/${dir}`]);
  const env = { PATH: '/usr/bin:/bin', HOME: '/strata', STRATA_ROOT: '/strata/store', TMPDIR: '/strata/tmp' };
  const args = [
    'bwrap',
    ...['--bind', scratch, '/', '--ro-bind', '/usr', '/usr', ...links, '--ro-bind', REPO_ROOT, REPO_ROOT, '--bind', state, '/strata'],
    ...OWN_PROCESSES,
    ...isolation,
    '--clearenv',
    ...Object.entries(env).flatMap(([k, v]) => ['--setenv', k, v]),
    ...(options.dockerenv === true ? ['--file', '9', '/.dockerenv'] : []),
    '--',
  ];
  const asUser = uid === 0 ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--'];
  return {
    name: `scratch-root-uid${uid}${options.caps === 'none' ? '-nocaps' : ''}`,
    uid,
    wrap: (argv) => (options.dockerenv === true ? ['sh', '-c', 'exec "$@" 9</dev/null', 'sh', ...asUser, ...args, ...argv] : [...asUser, ...args, ...argv]),
  };
}

/** What testdata/run/chown-unprivileged's image records of its chowns (rootfs unpacked with owners). */
export interface ChownOutcome {
  /** Exit status of `chown bob:bob /home/bob` and `chown app:app /home/app/by-root`, as the step saw them. */
  chownBob: number;
  chownApp: number;
  /** `stat -c %u:%g /home/bob` inside the step, after its chown. */
  seenBob: string;
  /** Owners (`uid:gid`) the layers record. */
  bob: string;
  byRoot: string;
  byApp: string;
}

export async function chownOutcome(rootfs: string): Promise<ChownOutcome> {
  const text = async (name: string): Promise<string> => (await readFile(join(rootfs, name), 'utf8')).trim();
  const owner = async (path: string): Promise<string> => {
    const s = await lstat(join(rootfs, path));
    return `${s.uid}:${s.gid}`;
  };
  return {
    chownBob: Number(await text('chown-bob')),
    chownApp: Number(await text('chown-app')),
    seenBob: await text('seen-bob'),
    bob: await owner('home/bob'),
    byRoot: await owner('home/app/by-root'),
    byApp: await owner('home/app/by-app'),
  };
}

/** A scratch root `<work>/<name>-root` and its /strata `<work>/<name>-state` (with tmp), all owned by `uid`. */
export async function scratchRootDirs(work: string, name: string, uid: number): Promise<{ scratch: string; state: string }> {
  const scratch = join(work, `${name}-root`);
  const state = join(work, `${name}-state`);
  for (const dir of [scratch, state, join(state, 'tmp')]) {
    await mkdir(dir, { recursive: true });
    await chown(dir, uid, uid);
  }
  return { scratch, state };
}

/**
 * Skips (or, under CI=true, fails) a test when the restricted sandboxes cannot be made here, saying why.
 * `label` names the suite in the skip line.
 */
export function restrictedGate(unavailable: () => string | undefined, label: string): (skip: () => void) => void {
  return (skip) => {
    const why = unavailable();
    if (why === undefined) return;
    if (isCI()) throw new Error(`CI=true and the restricted sandboxes cannot be made: ${why}`);
    process.stderr.write(`[skip] ${label}: ${why}\n`);
    skip();
  };
}

/** What a suite of restricted-sandbox tests shares, set by its beforeAll unless the sandboxes cannot be made here. */
export interface RestrictedSuite {
  /** A work directory every sandbox uid can enter. */
  work: string;
  /** The busybox base in a loopback registry. */
  base: string;
  /** Why the sandboxes cannot be made here, when they cannot. */
  unavailable: string | undefined;
  /** Skips (or, under CI=true, fails) a test when the sandboxes cannot be made, naming the suite. */
  gate: (skip: () => void) => void;
}

/**
 * Registers the shared beforeAll/afterAll of a restricted-sandbox suite: the check that the sandboxes can be made,
 * a work directory (`prefix`), a registry with the busybox base, all removed after. A suite's own beforeAll
 * registered after this one sees them set.
 */
export function restrictedSuite(prefix: string, label: string): RestrictedSuite {
  let registry: TestRegistry | undefined;
  const suite: RestrictedSuite = { work: '', base: '', unavailable: undefined, gate: restrictedGate(() => suite.unavailable, label) };
  beforeAll(async () => {
    suite.unavailable = await restrictedUnavailable();
    if (suite.unavailable !== undefined) return;
    suite.work = await mkdtemp(join(tmpdir(), prefix));
    await chmod(suite.work, 0o755);
    registry = await startRegistry();
    suite.base = (await pushBusyboxBase(registry.host)).ref;
  }, 120_000);
  afterAll(async () => {
    await registry?.stop();
    if (suite.work) await rm(suite.work, { recursive: true, force: true });
  });
  return suite;
}

/**
 * buildah's image of `context` (bud, pushed to an OCI layout, unpacked by umoci) as owned-tree entries, less the
 * paths buildah leaves behind a RUN (`leaks`): the reference a restricted strata build is compared with.
 */
export async function buildahReference(
  work: string,
  context: string,
  name: string,
  options: { buildArgs: Record<string, string>; extra?: string[]; leaks?: readonly string[] },
): Promise<{ buildah: Buildah; reference: Record<string, OwnedEntry> }> {
  const buildah = new Buildah(join(work, 'buildah'));
  const res = await buildah.bud(context, name, { buildArgs: options.buildArgs, ...(options.extra ? { extra: options.extra } : {}) });
  if (res.code !== 0) throw new Error(`buildah bud failed (${res.code}):\n${res.stderr}\n${res.stdout}`);
  await buildah.pushOci(name, join(work, 'buildah-layout'));
  const reference = await describeOwnedTree(await umociUnpack(join(work, 'buildah-layout'), 'latest', join(work, 'buildah-bundle')));
  for (const leak of options.leaks ?? BUILDAH_RUN_LEAKS) delete reference[leak];
  return { buildah, reference };
}
