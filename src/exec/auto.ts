import { StrataError } from '../errors/index.js';
import { bwrapExecutor } from './bwrap.js';
import { chrootExecutor } from './chroot.js';
import { prootExecutor } from './proot.js';
import { ociRuntimeExecutor } from './runc.js';
import type { Executor, RunRequest, RunResult } from './types.js';

/** The order `--executor auto` tries, most isolated first. `inplace` is never picked: it must be asked for. */
export const AUTO_ORDER = ['bwrap', 'runc', 'chroot', 'proot'] as const;

export interface ExecutorRefusal {
  name: string;
  reason: string;
}

export interface AutoChoice {
  /** The first executor that worked, or one whose every RUN fails naming why none worked. */
  executor: Executor;
  /** Whether a working executor was found. */
  found: boolean;
  /** The executors tried before it, and why each could not run here. */
  refused: ExecutorRefusal[];
}

/** The executors `auto` tries, in order, each a fresh instance. */
export function autoCandidates(): Executor[] {
  const proot: Executor = prootExecutor({ alternatives: async () => [] });
  return [bwrapExecutor(), ociRuntimeExecutor({ runtime: 'runc' }), chrootExecutor(), proot];
}

/**
 * `--executor auto`: tries each candidate for real (each one's `available()` starts what a step would need: the
 * namespaces, the mounts, a ptrace), in order, and takes the first that works. Nothing here guesses from uid or
 * the presence of a binary alone.
 */
export async function chooseExecutor(candidates: readonly Executor[] = autoCandidates()): Promise<AutoChoice> {
  const refused: ExecutorRefusal[] = [];
  for (const candidate of candidates) {
    const state = await candidate
      .available()
      .catch((error: unknown) => ({ ok: false as const, reason: error instanceof Error ? error.message : String(error) }));
    if (state.ok) return { executor: candidate, found: true, refused };
    refused.push({ name: candidate.name, reason: state.reason });
  }
  return { executor: noWorkingExecutor(refused), found: false, refused };
}

/**
 * What `auto` gives when nothing works here: a RUN-free build still builds, and the first RUN fails at its line
 * naming every executor tried and why it could not run. Named `none`, so the engine fails the step before work.
 */
export function noWorkingExecutor(refused: readonly ExecutorRefusal[]): Executor {
  return {
    name: 'none',
    resultClass: 'none',
    available: async () => ({ ok: true }),
    async run(request: RunRequest): Promise<RunResult> {
      throw new StrataError('E_RUN_UNSUPPORTED', `${request.where}: RUN needs an executor, and none of ${refused.map((r) => r.name).join(', ')} can run here`, {
        hint: `${refused.map((r) => `${r.name}: ${r.reason}`).join('\n')}\ninside a throwaway container, --executor inplace runs steps with no sandbox (kaniko's mode)`,
      });
    },
  };
}

/**
 * `auto` as one executor, for callers that want a value now: the choice is made (by trying) on first use and
 * kept. A build resolves it up front instead (chooseExecutor) to print and record the executor it got.
 */
export function autoExecutor(candidates?: () => Executor[]): Executor {
  let choice: Promise<AutoChoice> | undefined;
  const choose = (): Promise<AutoChoice> => (choice ??= chooseExecutor(candidates?.() ?? autoCandidates()));
  return {
    name: 'auto',
    async available() {
      const c = await choose();
      return c.found ? { ok: true } : { ok: false, reason: `no executor can run here: ${c.refused.map((r) => `${r.name}: ${r.reason}`).join('; ')}` };
    },
    async chosen() {
      return (await choose()).executor;
    },
    async run(request) {
      return (await choose()).executor.run(request);
    },
  };
}
