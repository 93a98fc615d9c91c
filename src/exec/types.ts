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
  /** Whether this executor can run here, and if not, why and what to try. */
  available(): Promise<{ ok: true } | { ok: false; reason: string }>;
  run(request: RunRequest): Promise<RunResult>;
}
