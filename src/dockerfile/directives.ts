/**
 * Parser directives (`# syntax=`, `# escape=`, `# check=`): recognised only in the leading comment block,
 * as BuildKit's DirectiveParser does.
 */

export type DirectiveName = 'syntax' | 'escape' | 'check';

export interface Directive {
  name: DirectiveName;
  value: string;
  /** 1-based line of the directive. */
  line: number;
}

const DIRECTIVE_RE = /^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*$/su;
const VALID = new Set<string>(['syntax', 'escape', 'check']);

export class DirectiveDuplicateError extends Error {}

/** Stateful scanner over the first lines of a file; it stops for good at the first non-directive line. */
export class DirectiveScanner {
  private done = false;
  private readonly seen = new Set<string>();
  private lineNo: number;

  constructor(
    private readonly prefix: string = '#',
    startLine = 0,
  ) {
    this.lineNo = startLine;
  }

  get finished(): boolean {
    return this.done;
  }

  /** Returns the directive on this line, or undefined (and ends the block) when there is none. */
  parseLine(line: string): Directive | undefined {
    this.lineNo++;
    if (this.done) return undefined;
    if (!line.startsWith(this.prefix)) {
      this.done = true;
      return undefined;
    }
    const body = line.slice(this.prefix.length).replace(/^[\s\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u, '');
    // Go's `.` does not match a newline; a directive never spans lines anyway.
    const m = DIRECTIVE_RE.exec(body);
    if (m === null || (m[2] as string).includes('\n')) {
      this.done = true;
      return undefined;
    }
    const key = (m[1] as string).toLowerCase();
    if (!VALID.has(key)) {
      this.done = true;
      return undefined;
    }
    if (this.seen.has(key)) throw new DirectiveDuplicateError(`only one ${key} parser directive can be used`);
    this.seen.add(key);
    return { name: key as DirectiveName, value: m[2] as string, line: this.lineNo };
  }
}

/** All directives at the top of a Dockerfile (ParseAll). Duplicates end the scan, as in BuildKit. */
export function parseDockerfileDirectives(text: string): Directive[] {
  const scanner = new DirectiveScanner('#');
  const out: Directive[] = [];
  for (const raw of splitLinesNoEol(text)) {
    if (scanner.finished) break;
    try {
      const d = scanner.parseLine(raw);
      if (d !== undefined) out.push(d);
    } catch {
      break;
    }
  }
  return out;
}

export interface DetectedDirective {
  /** The value up to the first space (the frontend image for `syntax`). */
  ref: string;
  /** The whole value. */
  cmdline: string;
  line: number;
}

/**
 * Finds a directive the way BuildKit's DetectSyntax / ParseDirective do: a BOM and a `#!` line are skipped;
 * for `syntax` only, `//` comments and a JSON object `{"syntax": "..."}` are accepted too.
 */
export function detectDockerfileDirective(text: string, key: DirectiveName): DetectedDirective | undefined {
  let dt = text.startsWith('\uFEFF') ? text.slice(1) : text;
  let line = 0;
  const nl = dt.indexOf('\n');
  const first = nl < 0 ? dt : dt.slice(0, nl);
  if (first.startsWith('#!')) {
    dt = nl < 0 ? '' : dt.slice(nl + 1);
    line = 1;
  }
  const prefixes = key === 'syntax' ? ['#', '//'] : ['#'];
  for (const prefix of prefixes) {
    const scanner = new DirectiveScanner(prefix, line);
    for (const raw of splitLinesNoEol(dt)) {
      if (scanner.finished) break;
      let d: Directive | undefined;
      try {
        d = scanner.parseLine(raw);
      } catch {
        break;
      }
      if (d !== undefined && d.name === key) {
        const sp = d.value.indexOf(' ');
        return { ref: sp < 0 ? d.value : d.value.slice(0, sp), cmdline: d.value, line: d.line };
      }
    }
  }
  if (key === 'syntax') {
    try {
      const parsed: unknown = JSON.parse(dt);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
        const v = (parsed as Record<string, unknown>)[key];
        if (typeof v === 'string') return { ref: v, cmdline: v, line };
      }
    } catch {
      // not JSON: no directive
    }
  }
  return undefined;
}

/** Lines as bufio.ScanLines yields them: without `\n`, one trailing `\r` dropped, no empty last line. */
function* splitLinesNoEol(text: string): Generator<string> {
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf('\n', start);
    const end = nl < 0 ? text.length : nl;
    let line = text.slice(start, end);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    yield line;
    start = end + 1;
  }
}
