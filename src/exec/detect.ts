import { bwrapExecutor } from './bwrap.js';
import { chrootExecutor } from './chroot.js';
import { prootExecutor } from './proot.js';
import { ociRuntimeExecutor } from './runc.js';
import type { Executor } from './types.js';

/**
 * The names of the executors that can run steps on this machine, in order of preference. Each is tried for real
 * (see each executor's `available`), so a name listed here works here.
 */
export async function detectExecutors(): Promise<string[]> {
  const candidates: Executor[] = [
    bwrapExecutor(),
    ociRuntimeExecutor({ runtime: 'runc' }),
    ociRuntimeExecutor({ runtime: 'crun' }),
    chrootExecutor(),
    prootExecutor(),
  ];
  const states = await Promise.all(candidates.map(async (e) => ({ name: e.name, ok: (await e.available().catch(() => ({ ok: false }))).ok })));
  return states.filter((s) => s.ok).map((s) => s.name);
}
