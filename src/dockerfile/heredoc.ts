import type { DockerfileHeredoc } from './ast.js';
import { expandShellWord } from './shell.js';
import { isStrataError } from '../errors/index.js';

export type HeredocMarker = Omit<DockerfileHeredoc, 'content'>;

// Go's \s is [\t\n\f\r ], narrower than JavaScript's.
const HEREDOC_RE = /^([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)$/u;
const NO_ENV: ReadonlyMap<string, string> = new Map();

export class HeredocError extends Error {}

const countQuotes = (s: string): number => {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x27 || c === 0x22) n++;
  }
  return n;
};

function words(src: string, rawQuotes: boolean): string[] {
  try {
    return expandShellWord(src, NO_ENV, { skipUnsetEnv: true, rawQuotes }).words;
  } catch (err) {
    if (isStrataError(err)) throw new HeredocError(err.message);
    throw err;
  }
}

/**
 * Reads one word as a heredoc marker (`<<EOF`, `<<-'EOF'`, `3<<EOF`), or undefined when it is not one.
 * The body is expanded unless some part of the terminator was quoted: that is found by lexing the word
 * with and without raw quotes and comparing the quote counts, as BuildKit does.
 */
export function parseHeredocMarker(word: string): HeredocMarker | undefined {
  const m = HEREDOC_RE.exec(word);
  if (m === null) return undefined;
  const rest = m[3] as string;
  if (rest.length === 0) return undefined;
  const plain = words(rest, false);
  if (plain.length !== 1) return undefined;
  const raw = words(rest, true);
  if (raw.length !== plain.length) throw new HeredocError(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  const name = plain[0] as string;
  const fd = (m[1] as string) === '' ? 0 : Number.parseInt(m[1] as string, 10);
  return {
    name,
    fileDescriptor: Number.isSafeInteger(fd) ? fd : 0,
    expand: countQuotes(name) === countQuotes(raw[0] as string),
    chomp: m[2] === '-',
  };
}

/** The heredoc markers on an instruction line, in order. */
export function parseHeredocsFromLine(line: string): HeredocMarker[] {
  let ws: string[];
  try {
    ws = expandShellWord(line, NO_ENV, { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true }).words;
  } catch {
    // BuildKit ignores lexing errors here: such a line simply has no heredocs.
    ws = [];
  }
  const out: HeredocMarker[] = [];
  for (const w of ws) {
    const h = parseHeredocMarker(w);
    if (h !== undefined) out.push(h);
  }
  return out;
}

/** Strips leading tabs from every line of a `<<-` body (ChompHeredocContent). */
export function chompHeredocContent(content: string): string {
  // Only `\n` starts a line here (Go's (?m)^), unlike JavaScript's multiline mode.
  return content
    .split('\n')
    .map((l) => l.replace(/^\t+/, ''))
    .join('\n');
}
