import { currentOwner, storeSweepPlaces, sweepLeftovers } from '../store/index.js';
import { secretTmpfsDirs } from '../pipeline/index.js';
import type { StrataContext } from '../transports/index.js';

/**
 * Removes what strata processes that died (kill -9, a crash, a power cut) left behind: temp blobs,
 * scratch directories and leases in the store, RUN roots in the scratch directory, secret files on
 * the tmpfs. Only names that carry a dead owner are touched (and, in the store's own scratch
 * directory, unowned ones a day old). Run at the start of every command; it costs a few readdirs.
 */
export async function removeLeftovers(ctx: StrataContext, env: Readonly<Record<string, string | undefined>>): Promise<string[]> {
  const strata = (name: string): boolean => name.startsWith('strata-');
  return sweepLeftovers(
    [
      ...storeSweepPlaces(ctx.storeRoot),
      ...(ctx.scratchDir ? [{ dir: ctx.scratchDir, match: strata }] : []),
      ...secretTmpfsDirs(env).map((dir) => ({ dir, match: (n: string) => n.startsWith('strata-secrets-') })),
    ],
    currentOwner(),
  );
}
