import type { MtimeOptions } from './types.js';

/**
 * The mtime (seconds) a layer records for a file: clamped to SOURCE_DATE_EPOCH when set (newer files get the
 * epoch, older ones keep theirs, as reproducible-builds.org asks), else 0 under `normalizeMtime`, else unchanged.
 */
export function clampMtime(mtime: number, options: MtimeOptions): number {
  if (options.sourceDateEpoch !== undefined) return Math.min(mtime, options.sourceDateEpoch);
  if (options.normalizeMtime === true) return 0;
  return mtime;
}
