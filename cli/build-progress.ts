import type { BuildEvent } from '../src/internals.js';
import { escapeControls as esc } from './terminal-text.js';

export type ProgressMode = 'auto' | 'plain' | 'tty' | 'json' | 'quiet';

/**
 * Renders build events on stderr: one line per finished step with its cache state and time
 * (plain), the same with the running step redrawn in place (tty), one JSON object per line (json),
 * or nothing (quiet).
 */
export function buildEventRenderer(mode: ProgressMode, stderr: NodeJS.WritableStream, isTty: boolean): (event: BuildEvent) => void {
  const effective = mode === 'auto' ? (isTty ? 'tty' : 'plain') : mode;
  if (effective === 'quiet') return () => undefined;
  if (effective === 'json') return (event) => stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
  let running = false;
  const clear = (): void => {
    if (running && effective === 'tty') stderr.write('\r\x1b[2K');
    running = false;
  };
  return (event) => {
    switch (event.type) {
      case 'stage':
        clear();
        stderr.write(`=> stage ${esc(event.stage)} FROM ${esc(event.base)}\n`);
        return;
      case 'step-start':
        if (effective === 'tty') {
          clear();
          stderr.write(`#${event.step}/${event.total} ${esc(event.text.split('\n')[0] ?? '')} ...`);
          running = true;
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
