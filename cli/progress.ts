import type { Writable } from 'node:stream';
import { StrataError, formatBytes, type ProgressListener, type TransferEvent } from '../src/internals.js';

export type ProgressMode = 'auto' | 'plain' | 'tty' | 'json' | 'quiet';
const MODES: readonly ProgressMode[] = ['auto', 'plain', 'tty', 'json', 'quiet'];

export function parseProgressMode(text: string | undefined): ProgressMode {
  const mode = (text ?? 'auto') as ProgressMode;
  if (!MODES.includes(mode)) throw new StrataError('E_USAGE', `--progress must be one of ${MODES.join(', ')}, got "${text}"`);
  return mode;
}

export interface ProgressRenderer {
  listener: ProgressListener | undefined;
  /** Draws the final state (TTY); call once the transfer is over, failed or not. */
  finish(): void;
}

/** Draws transfer events on `out` (stderr): bars on a TTY, lines otherwise, JSON lines, or nothing. */
export function createProgress(mode: ProgressMode, out: Writable, isTty: boolean, now: () => number = Date.now): ProgressRenderer {
  const resolved = mode === 'auto' ? (isTty ? 'tty' : 'plain') : mode;
  if (resolved === 'quiet') return { listener: undefined, finish: () => undefined };
  if (resolved === 'json') return jsonProgress(out, now);
  if (resolved === 'plain') return plainProgress(out, now);
  return ttyProgress(out, now);
}

function short(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

function rate(bytes: number, ms: number): string {
  return ms > 0 ? `${formatBytes(Math.round((bytes * 1000) / ms))}/s` : '';
}

function otherLine(e: TransferEvent): string | undefined {
  if (e.type === 'manifest-done') return `${e.direction === 'pull' ? 'pulled' : 'pushed'} manifest ${e.reference}`;
  if (e.type === 'manifest-unchanged') return `${e.reference} already names ${short(e.digest)}: nothing to push`;
  if (e.type === 'blob-streamed') return `push ${short(e.digest)}: sent to ${e.repository} while the layer was written (${formatBytes(e.size)})`;
  if (e.type === 'mirror')
    return e.failed === undefined
      ? `pulling ${e.reference} from mirror ${e.mirror}`
      : `mirror ${e.mirror} failed for ${e.reference} (${e.failed}); trying the next`;
  if (e.type === 'retry') return `retrying ${e.path} on ${e.registry} in ${(e.delayMs / 1000).toFixed(1)} s (attempt ${e.attempt}): ${e.reason}`;
  return undefined;
}

/** One JSON object per line; byte counts at most every 250 ms per blob (and always the last). */
function jsonProgress(out: Writable, now: () => number): ProgressRenderer {
  const last = new Map<string, number>();
  return {
    listener: (e) => {
      if (e.type === 'blob-bytes' && e.bytes < e.size) {
        const t = now();
        if (t - (last.get(e.digest) ?? 0) < 250) return;
        last.set(e.digest, t);
      }
      out.write(`${JSON.stringify({ ...e, time: new Date(now()).toISOString() })}\n`);
    },
    finish: () => undefined,
  };
}

/** A line per blob event, no byte counts: logs of CI jobs stay readable. */
function plainProgress(out: Writable, now: () => number): ProgressRenderer {
  const started = new Map<string, number>();
  return {
    listener: (e) => {
      switch (e.type) {
        case 'blob-start':
          started.set(e.digest, now());
          out.write(`${e.direction} ${short(e.digest)}: ${formatBytes(e.size)}\n`);
          return;
        case 'blob-done': {
          const ms = now() - (started.get(e.digest) ?? now());
          out.write(`${e.direction} ${short(e.digest)}: done ${formatBytes(e.size)} in ${(ms / 1000).toFixed(1)} s ${rate(e.size, ms)}\n`);
          return;
        }
        case 'blob-skipped':
          out.write(`${e.direction} ${short(e.digest)}: ${e.reason === 'exists' ? 'already there' : 'foreign layer, skipped'}\n`);
          return;
        case 'blob-mounted':
          out.write(`push ${short(e.digest)}: mounted from ${e.from}\n`);
          return;
        case 'blob-streamed':
          out.write(`${otherLine(e)}\n`);
          return;
        case 'blob-bytes':
          return;
        default: {
          const line = otherLine(e);
          if (line) out.write(`${line}\n`);
        }
      }
    },
    finish: () => undefined,
  };
}

interface Row {
  digest: string;
  direction: string;
  size: number;
  bytes: number;
  start: number;
  state: 'active' | 'done' | 'exists' | 'mounted' | 'foreign';
  end?: number;
}

/** One line per blob with bytes and speed, redrawn in place with ANSI cursor movement. */
function ttyProgress(out: Writable, now: () => number): ProgressRenderer {
  const rows = new Map<string, Row>();
  let drawn = 0;
  let lastDraw = 0;
  const line = (r: Row): string => {
    const tag = `${r.direction} ${short(r.digest)}`;
    const elapsed = (r.end ?? now()) - r.start;
    switch (r.state) {
      case 'exists':
        return `${tag}  already there`;
      case 'mounted':
        return `${tag}  mounted`;
      case 'foreign':
        return `${tag}  foreign layer, skipped`;
      case 'done':
        return `${tag}  done  ${formatBytes(r.size)}  ${rate(r.size, elapsed)}`;
      case 'active': {
        const width = 24;
        const filled = r.size > 0 ? Math.min(width, Math.round((r.bytes / r.size) * width)) : 0;
        return `${tag}  [${'='.repeat(filled)}${' '.repeat(width - filled)}]  ${formatBytes(r.bytes)} / ${formatBytes(r.size)}  ${rate(r.bytes, elapsed)}`;
      }
    }
  };
  const erase = (): void => {
    if (drawn > 0) out.write(`\x1b[${drawn}A\r\x1b[J`);
    drawn = 0;
  };
  const draw = (): void => {
    erase();
    const lines = [...rows.values()].map(line);
    if (lines.length > 0) out.write(lines.map((l) => `\x1b[2K${l}\n`).join(''));
    drawn = lines.length;
    lastDraw = now();
  };
  const row = (digest: string, direction: string, size: number): Row => {
    let r = rows.get(digest);
    if (!r) rows.set(digest, (r = { digest, direction, size, bytes: 0, start: now(), state: 'active' }));
    return r;
  };
  return {
    listener: (e) => {
      switch (e.type) {
        case 'blob-start':
          row(e.digest, e.direction, e.size);
          break;
        case 'blob-bytes': {
          const r = row(e.digest, e.direction, e.size);
          r.bytes = e.bytes;
          if (now() - lastDraw < 100) return;
          break;
        }
        case 'blob-done': {
          const r = row(e.digest, e.direction, e.size);
          r.state = 'done';
          r.bytes = e.size;
          r.end = now();
          break;
        }
        case 'blob-skipped':
          row(e.digest, e.direction, e.size).state = e.reason === 'exists' ? 'exists' : 'foreign';
          break;
        case 'blob-mounted':
          row(e.digest, 'push', e.size).state = 'mounted';
          break;
        default: {
          // A permanent line goes above the bars.
          const text = otherLine(e);
          if (text) {
            erase();
            out.write(`${text}\n`);
          }
        }
      }
      draw();
    },
    finish: () => {
      if (rows.size > 0 || drawn > 0) draw();
    },
  };
}
