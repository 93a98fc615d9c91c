import { StrataError } from '../errors/index.js';
import { bwrapExecutor } from './bwrap.js';
import { chrootExecutor } from './chroot.js';
import { commandExecutor, type CommandExecutorOptions } from './command.js';
import { detectExecutors } from './detect.js';
import { noneExecutor } from './none.js';
import { ociRuntimeExecutor } from './runc.js';
import type { Executor } from './types.js';

/** Executor names `--executor` takes, besides `command:PATH`. */
export const EXECUTOR_NAMES = ['none', 'chroot', 'bwrap', 'runc', 'crun'] as const;

export interface CreateExecutorOptions {
  /** Environment for `command:PATH` programs. */
  commandEnv?: CommandExecutorOptions['env'];
}

/** The executor `--executor NAME` names: none, chroot, bwrap, runc, crun or command:/abs/path. */
export function createExecutor(name: string, options: CreateExecutorOptions = {}): Executor {
  if (name.startsWith('command:')) {
    return commandExecutor(name.slice('command:'.length), options.commandEnv === undefined ? {} : { env: options.commandEnv });
  }
  switch (name) {
    case 'none':
      return noneExecutor(detectExecutors);
    case 'chroot':
      return chrootExecutor();
    case 'bwrap':
      return bwrapExecutor();
    case 'runc':
    case 'crun':
      return ociRuntimeExecutor({ runtime: name });
    default:
      throw new StrataError('E_USAGE', `unknown executor ${JSON.stringify(name)}`, {
        hint: `choose one of ${EXECUTOR_NAMES.join(', ')} or command:/path/to/program`,
      });
  }
}
