import { isGoSpace } from './gostr.js';
import { goReplaceAll, replaceFirst, shellPatternToRegex, trimPrefix, trimSuffix } from './shell-patterns.js';
import { EOF, ExpansionFailure, Scanner, Words, isAsciiLetterOrDigit, isDigit, isLetter, isSpecialParam, toStrataError } from './shell-scan.js';

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

  // Few frames per nesting level on purpose: `${a:-${b:-...}}` recurses through here, processDollar and
  // modified (or replaced) only.
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
      value = Object.hasOwn(rec, name) ? rec[name] : undefined;
    }
    if (value === undefined) this.unmatched.add(name);
    else this.matched.add(name);
    return value;
  }

  private processDollar(): string {
    if (++this.depth > MAX_EXPANSION_DEPTH) {
      throw new ExpansionFailure(`variable references nested more than ${MAX_EXPANSION_DEPTH} deep`);
    }
    // reference() returns before the word after a modifier is expanded, so each nesting level costs
    // this frame, modified's or replaced's, and processStopOn's, as before the split.
    const ref = this.reference();
    const value = typeof ref === 'string' ? ref : ref.op === 0x2f /* / */ ? this.replaced(ref.name) : this.modified(ref.name, ref.op, ref.chs, ref.nullIsUnset);
    this.depth--;
    return value;
  }

  /** `$name`, `${name}` as their values; for `${name` and a modifier, what modified or replaced needs. */
  private reference(): string | { name: string; op: number; chs: string; nullIsUnset: boolean } {
    const sc = this.scanner;
    sc.next();
    if (sc.peek() !== 0x7b /* { */) {
      const name = this.processName();
      if (name === '') return '$';
      const value = this.getEnv(name);
      if (value === undefined && this.skipUnset) return '$' + name;
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
      if (value === undefined && this.skipUnset) return `\${${name}}`;
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
    if (c === 0x2b || c === 0x2d || c === 0x3f || c === 0x23 || c === 0x25 || c === 0x2f) return { name, op: c, chs, nullIsUnset };
    throw new ExpansionFailure(`unsupported modifier (${chs}) in substitution`);
  }

  private get skipUnset(): boolean {
    return this.opts.skipUnsetEnv ?? false;
  }

  /** `${name-word}`, `:+`, `:?` and the prefix and suffix trims `#`, `##`, `%`, `%%`. */
  private modified(name: string, c: number, chs: string, nullIsUnset: boolean): string {
    let word: string;
    try {
      word = this.processStopOn(0x7d, c === 0x23 || c === 0x25).value;
    } catch (err) {
      throw this.endedEarly(err, "syntax error: missing '}'");
    }
    const value = this.getEnv(name);
    if (this.skipUnset && value === undefined) return `\${${name}${chs}${word}}`;
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

  /** `${name/pattern/replacement}` and `${name//pattern/replacement}`. */
  private replaced(name: string): string {
    const sc = this.scanner;
    const replaceAll = sc.peek() === 0x2f;
    if (replaceAll) sc.next();
    let pattern: string;
    let replacement: string;
    try {
      pattern = this.processStopOn(0x2f, true).value;
    } catch (err) {
      throw this.endedEarly(err, "syntax error: missing '/' in ${}");
    }
    try {
      replacement = this.processStopOn(0x7d, true).value;
    } catch (err) {
      throw this.endedEarly(err, "syntax error: missing '}'");
    }
    const value = this.getEnv(name);
    if (this.skipUnset && value === undefined) return `\${${name}/${pattern}/${replacement}}`;
    const re = shellPatternToRegex(pattern, true, false);
    return replaceAll ? goReplaceAll(value ?? '', re, replacement) : replaceFirst(value ?? '', re, replacement);
  }

  /** A failure inside `${...}` because the text ran out is reported as BuildKit words it: `missing`. */
  private endedEarly(err: unknown, missing: string): unknown {
    return err instanceof ExpansionFailure && this.scanner.peek() === EOF && !isDepthFailure(err) ? new ExpansionFailure(missing) : err;
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
