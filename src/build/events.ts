import { redactUrl, type DownloadProgress } from '../remote/index.js';
import type { CacheMiss } from './cache-explain.js';

/** What the engine reports as it goes; the CLI renders these as plain lines, a live view or JSON. */
export type BuildEvent =
  | { type: 'stage'; stage: string; base: string }
  | {
      type: 'step';
      stage: string;
      step: number;
      total: number;
      text: string;
      where: string;
      state: 'cached' | 'done' | 'metadata';
      durationMs: number;
      miss?: CacheMiss;
    }
  | { type: 'step-start'; stage: string; step: number; total: number; text: string; where: string }
  | { type: 'output'; where: string; stream: 'stdout' | 'stderr'; text: string }
  | { type: 'warning'; message: string; where?: string }
  | { type: 'executor'; name: string; refused: Array<{ name: string; reason: string }> }
  /** How RUN roots are made in this build, told once at the first RUN that runs: overlay mounts, or copies and why. */
  | { type: 'run-root'; kind: 'overlay' | 'copy'; reason?: string }
  | { type: 'pull'; image: string; state: 'resolving' | 'resolved' | 'layers' }
  /**
   * An `ADD <url>` download (`url` without credentials): `start`, then `progress` as bytes arrive (every
   * chunk; renderers throttle), then `done`. `total` is the Content-Length when the server sent one. A
   * download that starts again after a cut-short body goes back to 0 bytes.
   */
  | { type: 'download'; where: string; url: string; state: 'start' | 'progress' | 'done'; bytes: number; total?: number };

export type BuildEventSink = (event: BuildEvent) => void;

/** A download's progress as `download` events (the URL without its credentials); undefined when nobody listens. */
export function downloadEvents(sink: BuildEventSink | undefined, where: string, url: string): ((p: DownloadProgress) => void) | undefined {
  if (sink === undefined) return undefined;
  const shown = redactUrl(url);
  return ({ state, bytes, total }) => sink({ type: 'download', where, url: shown, state, bytes, ...(total === undefined ? {} : { total }) });
}
