import { StrataError } from '../errors/index.js';
import { DEFAULT_PATH } from '../oci/index.js';
import { checkMount } from './mounts.js';
import { findBinary, runFailed, runProcess } from './process.js';
import type { Executor, RunRequest, RunResult } from './types.js';

/** What a `command:PATH` program reads on stdin: the request as JSON, without the callbacks. */
export type CommandRunDescription = Omit<RunRequest, 'onOutput' | 'signal'> & { version: 1 };

export interface CommandExecutorOptions {
  /** The environment the program starts with (strata passes none of its own by default besides PATH). */
  env?: NodeJS.ProcessEnv;
}

/**
 * Delegates a step to a program the user provides (a remote or VM sandbox): it is started as `PATH ROOTFS`
 * with the JSON description of the step on stdin, must run the step against ROOTFS (changing it in place),
 * stream the step's output on its stdout and stderr, and exit with the step's exit code. Mounts name host
 * paths; the program makes them. A non-zero exit is the step's failure.
 */
export function commandExecutor(program: string, options: CommandExecutorOptions = {}): Executor {
  return {
    name: `command:${program}`,
    // A program strata knows nothing of: keyed by its path, as before result classes.
    resultClass: `command:${program}`,
    async available() {
      if (!program.startsWith('/')) return { ok: false, reason: `command:${program}: give the program as an absolute path (command:/path/to/program)` };
      if (findBinary(program) === undefined) return { ok: false, reason: `command:${program}: the program does not exist or is not executable` };
      return { ok: true };
    },
    async run(request: RunRequest): Promise<RunResult> {
      const state = await this.available();
      if (!state.ok) throw new StrataError('E_RUN_UNSUPPORTED', `${request.where}: cannot RUN: ${state.reason}`);
      for (const mount of request.mounts) checkMount(mount, request.where);
      const { onOutput: _onOutput, signal: _signal, ...rest } = request;
      const description: CommandRunDescription = { version: 1, ...rest };
      const result = await runProcess(program, [request.rootfs], {
        env: options.env ?? { PATH: DEFAULT_PATH },
        stdin: `${JSON.stringify(description)}\n`,
        onOutput: request.onOutput,
        signal: request.signal,
      });
      if (result.exitCode !== 0) throw runFailed(request, result.exitCode, result.tail);
      return { exitCode: 0 };
    },
  };
}
