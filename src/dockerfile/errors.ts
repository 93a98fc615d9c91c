import { StrataError, type ErrorCode, type StrataErrorOptions } from '../errors/index.js';

/** Where in a Dockerfile something went wrong. Lines and columns are 1-based. */
export interface DockerfileLocation {
  file: string;
  line: number;
  column: number;
  /** Last physical line of the instruction, when the problem spans a continuation. */
  endLine?: number;
}

/**
 * A StrataError that knows where in the Dockerfile it happened. `message` is `FILE:LINE:COL: reason`, so a
 * caller that only prints messages still names the place; `reason` is the bare text.
 */
export class DockerfileError extends StrataError {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly endLine: number;
  readonly reason: string;

  constructor(code: ErrorCode, reason: string, location: DockerfileLocation, options: StrataErrorOptions = {}) {
    super(code, `${location.file}:${location.line}:${location.column}: ${reason}`, options);
    this.name = 'DockerfileError';
    this.file = location.file;
    this.line = location.line;
    this.column = location.column;
    this.endLine = location.endLine ?? location.line;
    this.reason = reason;
  }
}

/**
 * Renders `FILE:LINE:COL: message`, the offending source line, and a caret under the column. `text` is the
 * Dockerfile the error came from; the line is looked up without splitting the whole file.
 */
export function formatDiagnostic(text: string, error: DockerfileError): string {
  const head = `${error.file}:${error.line}:${error.column}: ${error.reason}`;
  const source = nthLine(text, error.line);
  const lines = [head];
  if (source !== undefined) {
    const shown = source.replace(/\r$/, '').replace(/^\uFEFF/, '');
    const clipped = shown.length > 200 ? shown.slice(0, 200) + '…' : shown;
    lines.push(`  ${clipped}`);
    const col = Math.max(1, Math.min(error.column, clipped.length + 1));
    // Keep tabs so the caret lines up with the echoed line in a terminal.
    const pad = clipped.slice(0, col - 1).replace(/[^\t]/g, ' ');
    lines.push(`  ${pad}^`);
  }
  return lines.join('\n');
}

function nthLine(text: string, line: number): string | undefined {
  if (line < 1) return undefined;
  let start = 0;
  for (let n = 1; n < line; n++) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) return undefined;
    start = nl + 1;
  }
  if (start > text.length) return undefined;
  const end = text.indexOf('\n', start);
  return end < 0 ? text.slice(start) : text.slice(start, end);
}
