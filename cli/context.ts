import type { Readable, Writable } from 'node:stream';

/** Everything a command may touch of the outside world; entry.ts fills it from `process`. */
export interface CliContext {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Whether stdout is a terminal (for progress bars). */
  isTty: boolean;
  /** Whether the process runs as root (unpacked filesystems then keep their owners). */
  isRoot?: boolean;
  /** strata's own program files (the directory of dist/cli), which `--executor inplace` leaves alone on /. */
  programDir?: string | undefined;
  /** Fires on SIGINT/SIGTERM (entry.ts); its reason is the error to report. */
  signal?: AbortSignal | undefined;
}
