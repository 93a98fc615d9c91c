// The code-point scanner under BuildKit's shell lexer (shell.ts) and its patterns (shell-patterns.ts), and
// the word splitter the lexer fills.

import { StrataError } from '../errors/index.js';
import { goQuote, isGoSpace } from './gostr.js';

/** What Scanner.peek and next give at the end of the text. */
export const EOF = -1;

/** A word that cannot be expanded; toStrataError in shell.ts turns it into a StrataError. */
export class ExpansionFailure extends Error {}

/** Code points of a word, one at a time. */
export class Scanner {
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

/** The fields of an expansion, split as BuildKit's shell lexer splits them. */
export class Words {
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

/** The character classes of a variable name, as Go's unicode package draws them. */
export const isLetter = (cp: number): boolean => /\p{L}/u.test(String.fromCodePoint(cp));
export const isDigit = (cp: number): boolean => /\p{Nd}/u.test(String.fromCodePoint(cp));
export const isAsciiLetterOrDigit = (cp: number): boolean =>
  (cp >= 0x30 && cp <= 0x39) || (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a) || cp === 0x5f;

/** `$@ $* $# $? $- $$ $! $0`: one-character names. */
export function isSpecialParam(c: number): boolean {
  return c === 0x40 || c === 0x2a || c === 0x23 || c === 0x3f || c === 0x2d || c === 0x24 || c === 0x21 || c === 0x30;
}

function shown(word: string): string {
  return word.length <= 200 ? goQuote(word) : goQuote(word.slice(0, 200)) + `… (${word.length} characters)`;
}

/** An expansion failure of `word` as the StrataError users see. */
export function toStrataError(word: string, err: unknown): unknown {
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
