import { StrataError } from '../errors/index.js';
import { detectExecutors } from './detect.js';
import type { Executor, RunRequest, RunResult } from './types.js';

/**
 * The default executor: strata builds images without running anything, so RUN is an error that names the
 * executors this machine could use (detectExecutors unless `alternatives` is given).
 */
export function noneExecutor(alternatives: () => Promise<string[]> = detectExecutors): Executor {
  return {
    name: 'none',
    resultClass: 'none',
    available: async () => ({ ok: true }),
    async run(request: RunRequest): Promise<RunResult> {
      const others = await alternatives();
      throw new StrataError('E_RUN_UNSUPPORTED', `${request.where}: RUN needs an executor, and --executor is none`, {
        hint: others.length
          ? `executors available on this machine: ${others.join(', ')} (choose one with --executor)`
          : 'no executor is available on this machine; install bubblewrap or runc, or use --executor command:PATH',
      });
    },
  };
}
