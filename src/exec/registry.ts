import { StrataError } from '../errors/index.js';
import { autoExecutor } from './auto.js';
import { bwrapExecutor } from './bwrap.js';
import { chrootExecutor } from './chroot.js';
import { commandExecutor, type CommandExecutorOptions } from './command.js';
import { detectExecutors } from './detect.js';
import { inplaceExecutor, type InplaceExecutorOptions } from './inplace.js';
import { noneExecutor } from './none.js';
import { prootExecutor } from './proot.js';
import { ociRuntimeExecutor } from './runc.js';
import type { Executor } from './types.js';

/** Executor names `--executor` takes, besides `command:PATH`. */
export const EXECUTOR_NAMES = ['auto', 'none', 'chroot', 'bwrap', 'runc', 'crun', 'proot', 'inplace'] as const;

export interface CreateExecutorOptions {
  /** Environment for `command:PATH` programs. */
  commandEnv?: CommandExecutorOptions['env'];
  /** For `inplace`: `--force`, `--ignore-path`s and strata's own paths, the environment for container detection. */
  inplace?: InplaceExecutorOptions;
}

/**
 * The executor `--executor NAME` names: none, chroot, bwrap, runc, crun, proot, inplace or command:/abs/path.
 * `auto` chooses by trying, on first use.
 */
export function createExecutor(name: string, options: CreateExecutorOptions = {}): Executor {
  if (name.startsWith('command:')) {
    return commandExecutor(name.slice('command:'.length), options.commandEnv === undefined ? {} : { env: options.commandEnv });
  }
  switch (name) {
    case 'auto':
      return autoExecutor();
    case 'none':
      return noneExecutor(detectExecutors);
    case 'chroot':
      return chrootExecutor();
    case 'bwrap':
      return bwrapExecutor();
    case 'runc':
    case 'crun':
      return ociRuntimeExecutor({ runtime: name });
    case 'proot':
      return prootExecutor({ alternatives: detectExecutors });
    case 'inplace':
      return inplaceExecutor(options.inplace ?? {});
    default:
      throw new StrataError('E_USAGE', `unknown executor ${JSON.stringify(name)}`, {
        hint: `choose one of ${EXECUTOR_NAMES.join(', ')} or command:/path/to/program`,
      });
  }
}
