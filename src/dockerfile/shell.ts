import { StrataError } from '../errors/index.js';
import { goQuote, isGoSpace } from './gostr.js';

/**
 * Word expansion as BuildKit's `frontend/dockerfile/shell` lexer does it: quotes, escapes, `$VAR`, `${VAR}`
 * and its modifiers, and word splitting. The engine runs it at build time against the environment so far.
 */

export type EscapeToken = '\\' | '`';

/** Variables visible to an expansion. Keys are case-sensitive (Unix semantics). */
export type ShellEnv = ReadonlyMap<string, string> | Readonly<Record<string, string>>;

export interface ShellExpandOptions {
  /** The Dockerfile's escape token (from `# escape=`); backslash by default. */
  escapeToken?: EscapeToken;
  /** Keep quote characters in the output. */
  rawQuotes?: boolean;
  /** Keep escape characters in the output. */
  rawEscapes?: boolean;
  /** Leave references to unset variables as written (`$X`, `${X:-y}`). */
  skipUnsetEnv?: boolean;
  /** Treat quotes as ordinary characters (used for heredoc bodies). */
  skipProcessQuotes?: boolean;
}

export interface ShellExpansion {
  /** The expanded word, spaces between words kept. */
  value: string;
  /** The word split into fields after expansion, quoting respected. */
  words: string[];
  /** Names looked up and found, in first-seen order. */
  matched: string[];
  /** Names looked up and not set, in first-seen order: the engine warns about these. */
  unmatched: string[];
}

/** Deeper `${a:-${b:-...}}` nesting than this is refused rather than risking the stack. */
export const MAX_EXPANSION_DEPTH = 1500;

const EOF = -1;

class ExpansionFailure extends Error {}

class Scanner {
  pos = 0;
  constructor(readonly src: string) {}
  peek(): number {
    return this.pos < this.src.length ? (this.src.codePointAt(this.pos) as number) : EOF;
  }
  next(): number {
    if (this.pos >= this.src.length) return EOF;
    const cp = this.src.codePointAt(this.pos) as number;
    this.pos += cp > 0xffff ? 2 : 1;
    return cp;
  }
}

class Words {
  word = '';
  words: string[] = [];
  inWord = false;
  addChar(cp: number): void {
    if (isGoSpace(cp)) {
      if (this.inWord && this.word.length !== 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
    } else {
      this.addRawChar(cp);
    }
  }
  addRawChar(cp: number): void {
    this.word += String.fromCodePoint(cp);
    this.inWord = true;
  }
  addString(s: string): void {
    for (const ch of s) this.addChar(ch.codePointAt(0) as number);
  }
  addRawString(s: string): void {
    this.word += s;
    this.inWord = true;
  }
  getWords(): string[] {
    if (this.word.length > 0) {
      this.words.push(this.word);
      this.word = '';
      this.inWord = false;
    }
    return this.words;
  }
}

const isLetter = (cp: number): boolean => /\p{L}/u.test(String.fromCodePoint(cp));
const isDigit = (cp: number): boolean => /\p{Nd}/u.test(String.fromCodePoint(cp));
const isAsciiLetterOrDigit = (cp: number): boolean =>
  (cp >= 0x30 && cp <= 0x39) || (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a) || cp === 0x5f;
const ch = (c: string): number => c.codePointAt(0) as number;

class ShellWord {
  private readonly scanner: Scanner;
  private readonly escape: number;
  private rawEscapes: boolean;
  private depth = 0;
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();

  constructor(
    src: string,
    private readonly env: ShellEnv,
    private readonly opts: ShellExpandOptions,
  ) {
    this.scanner = new Scanner(src);
    this.escape = ch(opts.escapeToken ?? '\\');
    this.rawEscapes = opts.rawEscapes ?? false;
  }

  run(): { value: string; words: string[] } {
    return this.processStopOn(EOF, this.rawEscapes);
  }

  // One frame per nesting level on purpose: `${a:-${b:-...}}` recurses through here and processDollar only.
  // State is restored without try/finally because any error aborts the whole expansion.
  private processStopOn(stop: number, rawEscapes: boolean): { value: string; words: string[] } {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    const sc = this.scanner;
    let result = '';
    const words = new Words();
    const quotes = !(this.opts.skipProcessQuotes ?? false);
    for (;;) {
      const c = sc.peek();
      if (c === EOF) break;
      if (stop !== EOF && c === stop) {
        sc.next();
        this.rawEscapes = saved;
        return { value: result, words: words.getWords() };
      }
      if (c === 0x24 /* $ */) {
        const tmp = this.processDollar();
        result += tmp;
        words.addString(tmp);
        continue;
      }
      if (c === 0x3c /* < */) {
        const tmp = this.processPossibleHeredoc();
        result += tmp;
        words.addRawString(tmp);
        continue;
      }
      if (quotes && c === 0x27 /* ' */) {
        const tmp = this.processSingleQuote();
        result += tmp;
        words.addRawString(tmp);
        continue;
      }
      if (quotes && c === 0x22 /* " */) {
        const tmp = this.processDoubleQuote();
        result += tmp;
        words.addRawString(tmp);
        continue;
      }
      // Fast path: copy a run of ordinary characters in one slice; a long line must stay linear and cheap.
      const src = sc.src;
      let j = sc.pos;
      while (j < src.length) {
        const cu = src.charCodeAt(j);
        if (cu === 0x24 || cu === 0x3c || cu === 0x27 || cu === 0x22 || cu === this.escape || cu === stop) break;
        if ((cu >= 0xd800 && cu <= 0xdfff) || isGoSpace(cu)) break;
        j++;
      }
      if (j > sc.pos) {
        const chunk = src.slice(sc.pos, j);
        sc.pos = j;
        result += chunk;
        words.addRawString(chunk);
        continue;
      }
      let cur = sc.next();
      if (cur === this.escape) {
        if (this.rawEscapes) {
          words.addRawChar(cur);
          result += String.fromCodePoint(cur);
        }
        cur = sc.next();
        if (cur === EOF) break;
        words.addRawChar(cur);
      } else {
        words.addChar(cur);
      }
      result += String.fromCodePoint(cur);
    }
    if (stop !== EOF) {
      throw new ExpansionFailure(`unexpected end of statement while looking for matching ${String.fromCodePoint(stop)}`);
    }
    this.rawEscapes = saved;
    return { value: result, words: words.getWords() };
  }

  private processSingleQuote(): string {
    const sc = this.scanner;
    const raw = this.opts.rawQuotes ?? false;
    let result = '';
    const open = sc.next();
    if (raw) result += String.fromCodePoint(open);
    for (;;) {
      const c = sc.next();
      if (c === EOF) throw new ExpansionFailure('unexpected end of statement while looking for matching single-quote');
      if (c === 0x27) {
        if (raw) result += "'";
        return result;
      }
      result += String.fromCodePoint(c);
    }
  }

  private processDoubleQuote(): string {
    const sc = this.scanner;
    const raw = this.opts.rawQuotes ?? false;
    let result = '';
    const open = sc.next();
    if (raw) result += String.fromCodePoint(open);
    for (;;) {
      const p = sc.peek();
      if (p === EOF) throw new ExpansionFailure('unexpected end of statement while looking for matching double-quote');
      if (p === 0x22) {
        sc.next();
        if (raw) result += '"';
        return result;
      }
      if (p === 0x24) {
        result += this.processDollar();
        continue;
      }
      let c = sc.next();
      if (c === this.escape) {
        if (this.rawEscapes) result += String.fromCodePoint(c);
        const n = sc.peek();
        if (n === EOF) continue;
        if (n === 0x22 || n === 0x24 || n === this.escape) c = sc.next();
      }
      result += String.fromCodePoint(c);
    }
  }

  private processPossibleHeredoc(): string {
    const sc = this.scanner;
    sc.next();
    if (sc.peek() !== 0x3c) return '<';
    sc.next();
    let space = '';
    if (sc.peek() === 0x2d /* - */) {
      sc.next();
      space = '-';
    }
    for (let p = sc.peek(); p === 0x20 || p === 0x09 || p === 0x0d || p === 0x0a; p = sc.peek()) {
      space += String.fromCodePoint(p);
      sc.next();
    }
    return '<<' + space;
  }

  private getEnv(name: string): string | undefined {
    const env = this.env;
    let value: string | undefined;
    if (env instanceof Map) {
      value = (env as ReadonlyMap<string, string>).get(name);
    } else {
      const rec = env as Readonly<Record<string, string>>;
      value = Object.prototype.hasOwnProperty.call(rec, name) ? rec[name] : undefined;
    }
    if (value === undefined) this.unmatched.add(name);
    else this.matched.add(name);
    return value;
  }

  private processDollar(): string {
    if (++this.depth > MAX_EXPANSION_DEPTH) {
      throw new ExpansionFailure(`variable references nested more than ${MAX_EXPANSION_DEPTH} deep`);
    }
    const value = this.dollar();
    this.depth--;
    return value;
  }

  private dollar(): string {
    const sc = this.scanner;
    const skipUnset = this.opts.skipUnsetEnv ?? false;
    sc.next();
    if (sc.peek() !== 0x7b /* { */) {
      const name = this.processName();
      if (name === '') return '$';
      const value = this.getEnv(name);
      if (value === undefined && skipUnset) return '$' + name;
      return value ?? '';
    }
    sc.next();
    const first = sc.peek();
    if (first === EOF) throw new ExpansionFailure("syntax error: missing '}'");
    if (first === 0x7b || first === 0x7d || first === 0x3a) throw new ExpansionFailure('syntax error: bad substitution');
    const name = this.processName();
    let c = sc.next();
    let chs = c === EOF ? '' : String.fromCodePoint(c);
    let nullIsUnset = false;
    if (c === 0x7d /* } */) {
      const value = this.getEnv(name);
      if (value === undefined && skipUnset) return `\${${name}}`;
      return value ?? '';
    }
    if (c === 0x3a /* : */) {
      nullIsUnset = true;
      c = sc.next();
      chs += c === EOF ? '' : String.fromCodePoint(c);
      // BuildKit accepts only :- :+ :? after a colon.
      if (c !== 0x2d && c !== 0x2b && c !== 0x3f) {
        throw new ExpansionFailure(`unsupported modifier (${chs}) in substitution`);
      }
    }
    if (c === 0x2b || c === 0x2d || c === 0x3f || c === 0x23 || c === 0x25) {
      const rawEscapes = c === 0x23 || c === 0x25;
      let word: string;
      try {
        word = this.processStopOn(0x7d, rawEscapes).value;
      } catch (err) {
        if (err instanceof ExpansionFailure && sc.peek() === EOF && !isDepthFailure(err)) {
          throw new ExpansionFailure("syntax error: missing '}'");
        }
        throw err;
      }
      const value = this.getEnv(name);
      if (skipUnset && value === undefined) return `\${${name}${chs}${word}}`;
      const empty = value === undefined || (nullIsUnset && value === '');
      switch (c) {
        case 0x2d:
          return empty ? word : (value as string);
        case 0x2b:
          return empty ? '' : word;
        case 0x3f:
          if (value === undefined) throw new ExpansionFailure(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
          if (nullIsUnset && value === '') throw new ExpansionFailure(`${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
          return value;
        default: {
          let greedy = false;
          let pattern = word;
          if (pattern.length > 0 && pattern.codePointAt(0) === c) {
            greedy = true;
            pattern = pattern.slice(1);
          }
          return c === 0x25 ? trimSuffix(pattern, value ?? '', greedy) : trimPrefix(pattern, value ?? '', greedy);
        }
      }
    }
    if (c === 0x2f /* / */) {
      const replaceAll = sc.peek() === 0x2f;
      if (replaceAll) sc.next();
      let pattern: string;
      try {
        pattern = this.processStopOn(0x2f, true).value;
      } catch (err) {
        if (err instanceof ExpansionFailure && sc.peek() === EOF && !isDepthFailure(err)) {
          throw new ExpansionFailure("syntax error: missing '/' in ${}");
        }
        throw err;
      }
      let replacement: string;
      try {
        replacement = this.processStopOn(0x7d, true).value;
      } catch (err) {
        if (err instanceof ExpansionFailure && sc.peek() === EOF && !isDepthFailure(err)) {
          throw new ExpansionFailure("syntax error: missing '}'");
        }
        throw err;
      }
      const value = this.getEnv(name);
      if (skipUnset && value === undefined) return `\${${name}/${pattern}/${replacement}}`;
      const re = shellPatternToRegex(pattern, true, false);
      return replaceAll ? goReplaceAll(value ?? '', re, replacement) : replaceFirst(value ?? '', re, replacement);
    }
    throw new ExpansionFailure(`unsupported modifier (${chs}) in substitution`);
  }

  private processName(): string {
    const sc = this.scanner;
    let name = '';
    for (let c = sc.peek(); c !== EOF; c = sc.peek()) {
      if (name.length === 0 && isDigit(c)) {
        while (sc.peek() !== EOF && isDigit(sc.peek())) name += String.fromCodePoint(sc.next());
        return name;
      }
      if (name.length === 0 && isSpecialParam(c)) return String.fromCodePoint(sc.next());
      if (!(isAsciiLetterOrDigit(c) || isLetter(c) || isDigit(c))) break;
      name += String.fromCodePoint(sc.next());
    }
    return name;
  }
}

function isDepthFailure(err: Error): boolean {
  return err.message.startsWith('variable references nested');
}

function isSpecialParam(c: number): boolean {
  return c === 0x40 || c === 0x2a || c === 0x23 || c === 0x3f || c === 0x2d || c === 0x24 || c === 0x21 || c === 0x30;
}

/**
 * A shell wildcard pattern (`*`, `?`, backslash escapes; no bracket expressions) as a regular expression.
 * `.` becomes `[^\n]` because Go's `.` excludes only newline, while JavaScript's also excludes CR and U+2028.
 */
function shellPatternToRegex(pattern: string, greedy: boolean, anchored: boolean): RegExp {
  const sc = new Scanner(pattern);
  let out = anchored ? '^' : '';
  const star = greedy ? '[^\\n]*' : '[^\\n]*?';
  for (let tok = sc.next(); tok !== EOF; tok = sc.next()) {
    if (tok === 0x2a) {
      out += star;
      continue;
    }
    if (tok === 0x3f) {
      out += '[^\\n]';
      continue;
    }
    if (tok === 0x5c) {
      const p = sc.peek();
      if (p === 0x7d || p === 0x2f) continue;
      const esc = sc.next();
      if (esc !== 0x2a && esc !== 0x3f && esc !== 0x5c) {
        throw new ExpansionFailure(
          `invalid pattern (${pattern}) in substitution: invalid escape '\\${esc === EOF ? '' : String.fromCodePoint(esc)}'`,
        );
      }
      out += '\\' + String.fromCodePoint(esc);
      continue;
    }
    const s = String.fromCodePoint(tok);
    out += '[]{}.+()|^$'.includes(s) ? '\\' + s : s === '/' ? '\\/' : s;
  }
  return new RegExp(out, 'gu');
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const re = shellPatternToRegex(pattern, greedy, true);
  re.lastIndex = 0;
  const m = re.exec(value);
  return m === null ? value : value.slice(m.index + m[0].length);
}

/** Reverses a pattern without splitting escapes apart: `a\*c` becomes `c\*a`. */
function reversePattern(pattern: string): string {
  const runes = Array.from(pattern);
  const out: string[] = new Array<string>(runes.length);
  const last = runes.length - 1;
  for (let i = 0; i <= last; ) {
    const tok = runes[i] as string;
    const at = last - i;
    if (tok === '\\' && i !== last) {
      out[at - 1] = tok;
      out[at] = runes[i + 1] as string;
      i += 2;
    } else {
      out[at] = tok;
      i++;
    }
  }
  return out.join('');
}

const reverseString = (s: string): string => Array.from(s).reverse().join('');

function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  // Regular expressions cannot find the shortest rightmost match, so search the reversed string instead.
  return reverseString(trimPrefix(reversePattern(pattern), reverseString(value), greedy));
}

function replaceFirst(value: string, re: RegExp, replacement: string): string {
  re.lastIndex = 0;
  const m = re.exec(value);
  if (m === null) return value;
  return value.slice(0, m.index) + replacement + value.slice(m.index + m[0].length);
}

/** Go's Regexp.ReplaceAllString: empty matches right after a match are skipped; `$0`/`${0}` name the match. */
function goReplaceAll(value: string, re: RegExp, template: string): string {
  let out = '';
  let last = 0;
  let pos = 0;
  let prevEnd = -1;
  while (pos <= value.length) {
    re.lastIndex = pos;
    const m = re.exec(value);
    if (m === null) break;
    const start = m.index;
    const end = start + m[0].length;
    let accept = true;
    if (end === pos) {
      if (start === prevEnd) accept = false;
      const cp = value.codePointAt(pos);
      pos += cp === undefined ? 1 : cp > 0xffff ? 2 : 1;
    } else {
      pos = end;
    }
    prevEnd = end;
    if (accept) {
      out += value.slice(last, start) + expandTemplate(template, m[0]);
      last = end;
    }
  }
  return out + value.slice(last);
}

function expandTemplate(template: string, match: string): string {
  if (!template.includes('$')) return template;
  let out = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i] as string;
    if (c !== '$') {
      out += c;
      continue;
    }
    const rest = template.slice(i + 1);
    if (rest.startsWith('$')) {
      out += '$';
      i++;
      continue;
    }
    const m = /^\{([A-Za-z0-9_]+)\}/.exec(rest) ?? /^([A-Za-z0-9_]+)/.exec(rest);
    if (m === null) {
      out += '$';
      continue;
    }
    const name = m[1] as string;
    if (/^[0-9]+$/.test(name) && Number(name) === 0) out += match;
    i += m[0].length;
  }
  return out;
}

/** The word as quoted in messages, shortened so a hostile input cannot make a megabyte-long message. */
function shown(word: string): string {
  return word.length <= 200 ? goQuote(word) : goQuote(word.slice(0, 200)) + `… (${word.length} characters)`;
}

function toStrataError(word: string, err: unknown): unknown {
  if (err instanceof ExpansionFailure) {
    return new StrataError('E_EXPANSION', `failed to process ${shown(word)}: ${err.message}`, {
      hint: 'check the ${...} syntax and quoting in this word; escape a literal $ as \\$',
    });
  }
  if (err instanceof RangeError && /call stack/i.test(err.message)) {
    return new StrataError('E_EXPANSION', `failed to process ${shown(word)}: variable references nested too deeply`, {
      hint: 'flatten the nested ${...} defaults',
    });
  }
  if (err instanceof SyntaxError) {
    return new StrataError('E_EXPANSION', `failed to process ${shown(word)}: invalid pattern: ${err.message}`, {
      hint: 'simplify the pattern in ${VAR#...}, ${VAR%...} or ${VAR/.../...}',
    });
  }
  return err;
}

/**
 * Expands one word (ProcessWordWithMatches): quotes removed, variables substituted. Throws StrataError
 * `E_EXPANSION` on a syntax error or a failed `${VAR?message}`.
 */
export function expandShellWord(word: string, env: ShellEnv, options: ShellExpandOptions = {}): ShellExpansion {
  const sw = new ShellWord(word, env, options);
  try {
    const { value, words } = sw.run();
    return { value, words, matched: [...sw.matched], unmatched: [...sw.unmatched] };
  } catch (err) {
    throw toStrataError(word, err);
  }
}

/** Expands a word and returns only the expanded string (ProcessWord). */
export function expandWord(word: string, env: ShellEnv, options: ShellExpandOptions = {}): string {
  return expandShellWord(word, env, options).value;
}

/** Expands a word and splits it into fields (ProcessWords). */
export function expandWords(word: string, env: ShellEnv, options: ShellExpandOptions = {}): string[] {
  return expandShellWord(word, env, options).words;
}
