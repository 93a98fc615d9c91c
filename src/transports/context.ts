import type { Platform } from '../oci/index.js';

/**
 * What the public API needs from the outside world, passed in rather than read from globals: the
 * CLI fills it from the environment; tests and embedders build their own.
 */
export interface StrataContext {
  /** Root of the local image store. */
  storeRoot: string;
  /** The clock for `created` times; ignored when sourceDateEpoch is set. */
  now: () => Date;
  /** SOURCE_DATE_EPOCH in seconds: fixes `created` times and clamps file mtimes. */
  sourceDateEpoch?: number | undefined;
  /** The platform to pick from multi-platform images; the host's by default. */
  platform?: Platform | undefined;
  /** The process may chown and create devices (runs as root): unpacked filesystems keep their owners. */
  privileged?: boolean | undefined;
  /** A world-traversable scratch directory (the CLI passes $TMPDIR or /tmp) for sandbox roots. */
  scratchDir?: string | undefined;
  /** Unpacked base chains kept in the store for RUN roots (STRATA_SNAPSHOTS, default 3); 0 turns them off. */
  snapshots?: number | undefined;
  /** RUN roots on overlayfs where the mount works (default); false copies each stage's root (STRATA_OVERLAY=off). */
  overlay?: boolean | undefined;
  /** Aborts the operation (the CLI's SIGINT/SIGTERM); no name is written once it has fired. */
  signal?: AbortSignal | undefined;
}
