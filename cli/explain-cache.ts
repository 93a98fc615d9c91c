import type { BuildEvent } from '../src/internals.js';

/**
 * `strata build --explain-cache`: the report alone, on stdout. One line per step that would miss,
 * saying why, and warnings on stderr; nothing of the usual progress.
 */
export function explainCacheRenderer(stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream): (event: BuildEvent) => void {
  return (event) => {
    if (event.type === 'step' && event.miss) stdout.write(`#${event.step}/${event.total} ${event.miss.reason}\n`);
    else if (event.type === 'warning') stderr.write(`WARNING: ${event.where ? `${event.where}: ` : ''}${event.message}\n`);
  };
}
