import { posix } from 'node:path';
import { isStrataError } from '../../errors/index.js';
import type { WorkdirInstruction } from '../../dockerfile/index.js';
import { addEmptyHistory, updateContainerConfig } from '../../image/index.js';
import type { LayerEntry } from '../../layer/index.js';
import { filesystemKey, stepCacheKey } from '../cache.js';
import { expandInStage } from '../expand.js';
import { chainAnswer } from '../chain-answers.js';
import { imageFilesystem } from '../imagefs.js';
import type { BuildSession } from '../session.js';
import type { StageState } from '../state.js';
import { resolveOwnership } from '../users.js';
import { commitLayerStep, explainMiss, layerStepWords, recordKey, replayCached } from './layer-step.js';
import { HISTORY_COMMENT } from './metadata.js';

/**
 * WORKDIR sets the working directory (relative to the previous one) and, as BuildKit does, creates
 * it in a layer when the image lacks it, owned by the current USER. An existing directory is left
 * as it is and the step only changes the config.
 */
export async function runWorkdir(state: StageState, ins: WorkdirInstruction, session: BuildSession, at: string): Promise<'cached' | 'done' | 'metadata'> {
  if (session.input.explainOnly === true && state.dryMiss !== undefined) {
    // The filesystem below is not known: whether the directory exists cannot be told. The config changes as always.
    const current = state.image.config.config?.WorkingDir || '/';
    const path = expandInStage(state, ins.path, ins.location.line, (m, w) => session.warn(m, w));
    const dir = posix.normalize(path.startsWith('/') ? path : posix.join(current, path));
    state.image = updateContainerConfig(state.image, (c) => ({ ...c, WorkingDir: dir }));
    return 'metadata';
  }
  const expanded = expandInStage(state, ins.path, ins.location.line, (m, w) => session.warn(m, w));
  const current = state.image.config.config?.WorkingDir || '/';
  const dir = posix.normalize(expanded.startsWith('/') ? expanded : posix.join(current, expanded));
  state.image = updateContainerConfig(state.image, (c) => ({ ...c, WorkingDir: dir }));
  const createdBy = `WORKDIR ${dir}`;
  const user = state.image.config.config?.User;
  // What the step does depends only on the image's layers, the directory and the USER: kept by those, so a
  // rebuild decides without building the file index.
  const plan = await chainAnswer(session, state.image, `WORKDIR\n${dir}\n${user ?? ''}`, async (): Promise<WorkdirPlan> => {
    const fs = await imageFilesystem(session, state.image, state.reader);
    const resolved = fs.resolve(dir, { followFinal: true }) ?? dir;
    if (dir === '/' || fs.get(resolved)?.type === 'dir') return { exists: true, missing: [], owner: { uid: 0, gid: 0 } };
    let owner = { uid: 0, gid: 0 };
    let warning: string | undefined;
    if (user) {
      try {
        owner = resolveOwnership(user, fs.content('/etc/passwd')?.toString('utf8'), fs.content('/etc/group')?.toString('utf8'));
      } catch (cause) {
        if (!isStrataError(cause)) throw cause;
        warning = `WORKDIR ${dir} is created as root: ${cause.message}`;
      }
    }
    const missing: string[] = [];
    const parts = resolved.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const p = `/${parts.slice(0, i).join('/')}`;
      if (!fs.has(p)) missing.push(p.slice(1));
    }
    return { exists: false, missing, owner, ...(warning === undefined ? {} : { warning }) };
  });
  if (plan.exists) {
    state.image = addEmptyHistory(state.image, { created: session.created, created_by: createdBy, comment: HISTORY_COMMENT });
    return 'metadata';
  }
  if (plan.warning !== undefined) session.warn(plan.warning, at);
  const owner = plan.owner;
  const mtime = Math.floor(new Date(session.created).getTime() / 1000);
  const entries: LayerEntry[] = plan.missing.map((path) => ({ path, type: 'dir', mode: 0o755, size: 0, mtime, ...owner }));
  // The directories it creates depend on the filesystem below, the path and the owner USER resolves to.
  const components = { kind: 'WORKDIR', parent: filesystemKey(state.image), words: { dir, owner, ...layerStepWords(session) } };
  const key = stepCacheKey(components);
  if (await replayCached(state, session, key, createdBy)) return 'cached';
  await explainMiss(state, session, ins, key, components);
  if (session.input.explainOnly === true) return 'done';
  await commitLayerStep(state, session, key, entries, createdBy);
  await recordKey(session, ins, key, components);
  return 'done';
}

interface WorkdirPlan {
  /** The directory is there already: the step only changes the config. */
  exists: boolean;
  /** Layer paths of the directories to create, parents first. */
  missing: string[];
  owner: { uid: number; gid: number };
  warning?: string;
}
