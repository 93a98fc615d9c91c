import type { Platform } from '../oci/index.js';

/** A mount a RUN step asks for (`RUN --mount=...`), resolved by the engine to host paths. */
export interface RunMount {
  type: 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
  /** Absolute path inside the container. */
  target: string;
  /** Host path for bind, cache, secret and ssh mounts. */
  source?: string;
  readonly?: boolean;
}

/** Everything an executor needs to run one RUN step in a root filesystem. */
export interface RunRequest {
  /** The unpacked root filesystem, which the executor may change in place. */
  rootfs: string;
  /** The command as argv (shell form already wrapped in the stage's SHELL). */
  args: readonly string[];
  /** `KEY=VALUE` entries: the image's Env plus the build args in scope. */
  env: readonly string[];
  /** uid[:gid] after name resolution, as the executor sees it. */
  user: { uid: number; gid: number; additionalGids?: number[] };
  /** Absolute working directory inside the rootfs. */
  workdir: string;
  /** Made in this order; secret targets default to `/run/secrets/<id>` (secretTarget), set by the engine. */
  mounts: readonly RunMount[];
  network: 'none' | 'host';
  platform: Platform;
  /** Where the step is, for messages: `Dockerfile:12`. */
  where: string;
  /** Receives output as it comes. */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  signal?: AbortSignal;
}

/**
 * What a finished step reports. Built-in executors resolve only when the command exited 0; a non-zero exit
 * rejects with `StrataError('E_RUN_FAILED', '<where>: RUN … exited with code N', { hint: last output lines })`,
 * because only the executor has the output to quote. `exitCode` is therefore always 0 from them.
 */
export interface RunResult {
  exitCode: number;
}

/**
 * The classes of executor behaviour a step's result can show. Two executors of one class give the same
 * layer for the same step and root; what tells classes apart is who the step's ids really are (can it
 * chown? whose are the files it makes?) and whether its system calls reach the kernel as made or are
 * translated by ptrace (proot: paths rewritten, host /proc, /dev and /sys, no private pid space).
 * Differences within a class (chroot keeps every capability of root where bwrap and runc keep docker's
 * set; inplace sees the container's mount points) show only to a step that probes its sandbox.
 */
export const RESULT_CLASS = {
  /**
   * Real ids on the kernel's own system calls: root with CAP_CHOWN and the rest, a USER step as its uid on
   * disk. chroot, runc and crun; bwrap as root; inplace as a capable root.
   */
  root: 'root',
  /** A user namespace maps the invoking user to the step's uid: files are the invoker's on disk, chown to another user fails (bwrap without root). */
  userNamespace: 'userns-mapped',
  /** proot's ptrace translation with real ids (a capable root runs it as the step's user). */
  ptraceRealIds: 'ptrace-real-ids',
  /** proot's ptrace translation with faked ids (`-0`, `-i`): a chown succeeds in the step's eyes and is not kept. */
  ptraceFakeIds: 'ptrace-fake-ids',
  /** inplace without CAP_SETUID/CAP_CHOWN: every step runs as the invoking user and cannot chown. */
  invokerIds: 'invoker-ids',
} as const;

/**
 * The value a RUN's cache key holds for the executor: its result class, else its name; for one that stands for
 * another picked on first use (`auto`), the picked one's.
 */
export async function executorResultClass(executor: Pick<Executor, 'name' | 'resultClass' | 'chosen'>): Promise<string> {
  const actual = (await executor.chosen?.()) ?? executor;
  return actual.resultClass ?? `named:${actual.name}`;
}

/**
 * Runs build steps. Executors only run commands; the engine prepares the root filesystem before and
 * turns its changes into a layer after:
 *
 *     const exclude = runCaptureExcludes(request);            // sandbox paths + mount targets
 *     const before = await snapshotRootfs(request.rootfs, { exclude });
 *     await executor.run(request);                             // rejects E_RUN_FAILED on a non-zero exit
 *     const entries = await captureChanges(request.rootfs, before, { exclude });
 *     const layer = await writeLayer(entries, { ownership: 'keep', ... }, store);
 *
 * An executor leaves nothing of its own in the rootfs: mount points it had to create are removed when
 * `run` settles, whether the step succeeded, failed or was aborted.
 */
export interface Executor {
  readonly name: string;
  /**
   * What this executor changes observably in a step's result (see RESULT_CLASS): a RUN's cache key holds it
   * in place of the name, so switching between executors of one class replays the step and switching to
   * one of another class runs it again. Without one, the executor is keyed by its name (`named:NAME`).
   */
  readonly resultClass?: string | undefined;
  /**
   * For an executor that stands for another one picked on first use (`auto` as a value): the one it runs steps
   * with, so that a RUN's key holds that one's result class (a step is never replayed from another class).
   */
  chosen?(): Promise<Executor>;
  /** Whether this executor can run here, and if not, why and what to try. */
  available(): Promise<{ ok: true } | { ok: false; reason: string }>;
  run(request: RunRequest): Promise<RunResult>;
}
