import { formatBytes, type BuildEvent } from '../src/internals.js';
import { escapeControls as esc } from './terminal-text.js';

export type ProgressMode = 'auto' | 'plain' | 'tty' | 'json' | 'quiet';

/** How often a download's byte count is shown: JSON as registry transfers are, plain lines less often (logs), tty redraws. */
const DOWNLOAD_EVERY_MS = { json: 250, plain: 1000, tty: 100 } as const;

/**
 * Renders build events on stderr: one line per finished step with its cache state and time
 * (plain), the same with the running step redrawn in place (tty), one JSON object per line (json),
 * or nothing (quiet). Download progress (ADD <url>) is throttled per download: see DOWNLOAD_EVERY_MS.
 */
export function buildEventRenderer(
  mode: ProgressMode,
  stderr: NodeJS.WritableStream,
  isTty: boolean,
  now: () => number = Date.now,
): (event: BuildEvent) => void {
  const effective = mode === 'auto' ? (isTty ? 'tty' : 'plain') : mode;
  if (effective === 'quiet') return () => undefined;
  const due = downloadThrottle(DOWNLOAD_EVERY_MS[effective], now);
  if (effective === 'json') {
    return (event) => {
      if (event.type === 'download' && !due(event)) return;
      stderr.write(`${JSON.stringify({ time: new Date(now()).toISOString(), ...event })}\n`);
    };
  }
  let running: string | undefined;
  const clear = (): void => {
    if (running !== undefined && effective === 'tty') stderr.write('\r\x1b[2K');
    running = undefined;
  };
  return (event) => {
    switch (event.type) {
      case 'download': {
        if (!due(event)) return;
        if (effective === 'plain') stderr.write(`${downloadLine(event)}\n`);
        else if (running !== undefined) stderr.write(`\r\x1b[2K${running} ${downloadLine(event)}`);
        return;
      }
      case 'stage':
        clear();
        stderr.write(`=> stage ${esc(event.stage)} FROM ${esc(event.base)}\n`);
        return;
      case 'step-start':
        if (effective === 'tty') {
          clear();
          running = `#${event.step}/${event.total} ${esc(event.text.split('\n')[0] ?? '')} ...`;
          stderr.write(running);
        }
        return;
      case 'step': {
        clear();
        const state = event.state === 'cached' ? 'CACHED' : event.state === 'metadata' ? '' : 'DONE';
        const time = `${(event.durationMs / 1000).toFixed(1)}s`;
        stderr.write(`#${event.step}/${event.total} [${esc(event.stage)}] ${esc(event.text.split('\n')[0] ?? '')}${state ? `  ${state}` : ''} ${time}\n`);
        // Why it missed, unless it never ran before (which every step of a first build would say).
        if (event.miss && !event.miss.changes.every((c) => c.kind === 'new')) stderr.write(`#${event.step} ${event.miss.reason}\n`);
        return;
      }
      case 'output':
        clear();
        stderr.write(`${event.where}: ${event.text}`);
        return;
      case 'warning':
        clear();
        stderr.write(`WARNING: ${esc(event.where ? `${event.where}: ` : '')}${esc(event.message)}\n`);
        return;
      case 'executor':
        clear();
        stderr.write(`=> executor ${event.name}${event.refused.length > 0 ? ` (${event.refused.map((r) => `${r.name} cannot run here`).join(', ')})` : ''}\n`);
        return;
      case 'run-root':
        clear();
        stderr.write(
          `=> RUN roots: ${event.kind === 'overlay' ? 'overlayfs over the unpacked layers' : `copies of the unpacked layers${event.reason ? ` (${esc(event.reason)})` : ''}`}\n`,
        );
        return;
      case 'pull':
        if (event.state === 'resolving') {
          clear();
          stderr.write(`=> resolving ${esc(event.image)}\n`);
        }
        return;
    }
  };
}

type DownloadEvent = Extract<BuildEvent, { type: 'download' }>;

/** Whether a download event is shown: its start and end always, its progress at most every `everyMs` per download. */
function downloadThrottle(everyMs: number, now: () => number): (event: DownloadEvent) => boolean {
  const shown = new Map<string, number>();
  return (event) => {
    const key = `${event.where} ${event.url}`;
    if (event.state !== 'progress') {
      if (event.state === 'done') shown.delete(key);
      else shown.set(key, now());
      return true;
    }
    const t = now();
    if (t - (shown.get(key) ?? 0) < everyMs) return false;
    shown.set(key, t);
    return true;
  };
}

/** `Dockerfile:3: https://host/file: 1.5 MiB / 4.0 MiB (37%)`, or what is known of it. */
function downloadLine(event: DownloadEvent): string {
  const of = event.total === undefined ? '' : ` / ${formatBytes(event.total)}`;
  const percent = event.total === undefined || event.total === 0 ? '' : ` (${Math.floor((event.bytes * 100) / event.total)}%)`;
  const what =
    event.state === 'start'
      ? `downloading${of === '' ? '' : ` ${formatBytes(event.total ?? 0)}`}`
      : event.state === 'done'
        ? `downloaded ${formatBytes(event.bytes)}`
        : `${formatBytes(event.bytes)}${of}${percent}`;
  return `${esc(event.where)}: ${esc(event.url)}: ${what}`;
}
