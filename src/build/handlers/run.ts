import type { RunInstruction } from '../../dockerfile/index.js';
import type { BuildSession } from '../session.js';
import type { StageState } from '../state.js';
import type { CopyContext } from './copy.js';
import { commandLine } from './metadata.js';

/**
 * RUN hands the command to the executor. With the `none` executor (the default) the build stops
 * here with an error naming the line; the executors that run commands and capture their changes
 * as a layer come with the executor work (issue 7), and until then every other name is refused
 * when the build starts.
 */
export async function runRun(state: StageState, ins: RunInstruction, session: BuildSession, cc: CopyContext): Promise<'cached' | 'done'> {
  const args = commandLine(state, ins.args, ins.prependShell);
  await session.deps.executor.run({
    rootfs: '',
    args,
    env: state.image.config.config?.Env ?? [],
    user: { uid: 0, gid: 0 },
    workdir: state.image.config.config?.WorkingDir || '/',
    mounts: [],
    network: 'none',
    platform: { os: state.image.config.os, architecture: state.image.config.architecture },
    where: cc.at,
  });
  return 'done';
}
