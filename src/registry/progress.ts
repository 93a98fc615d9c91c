import type { Digest } from '../digest/index.js';

/** What a transfer reports, so a CLI can draw one bar per blob. src/ never prints. */
export type TransferEvent =
  | { type: 'blob-start'; direction: 'pull' | 'push'; digest: Digest; size: number; mediaType: string }
  | { type: 'blob-bytes'; direction: 'pull' | 'push'; digest: Digest; bytes: number; size: number }
  | { type: 'blob-done'; direction: 'pull' | 'push'; digest: Digest; size: number }
  | { type: 'blob-skipped'; direction: 'pull' | 'push'; digest: Digest; size: number; reason: 'exists' | 'foreign' }
  | { type: 'blob-mounted'; digest: Digest; size: number; from: string }
  /** A new layer sent to the registry while it was being written (a build that pushes). */
  | { type: 'blob-streamed'; digest: Digest; size: number; repository: string }
  | { type: 'manifest-done'; direction: 'pull' | 'push'; digest: Digest; mediaType: string; reference: string }
  /** A push that found the reference already naming the manifest: nothing was sent. */
  | { type: 'manifest-unchanged'; digest: Digest; reference: string }
  /** A pull served by a registry mirror, or a mirror that failed and was passed over (`failed` says why). */
  | { type: 'mirror'; registry: string; mirror: string; reference: string; failed?: string }
  | { type: 'retry'; registry: string; attempt: number; delayMs: number; reason: string; path: string };

export type ProgressListener = (event: TransferEvent) => void;
