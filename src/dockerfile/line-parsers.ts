import { goQuote, isGoSpace, splitTokenWhitespace, splitTokenWhitespaceOnce, trimGoSpace, trimLeftGoSpace } from './gostr.js';

/**
 * The per-instruction argument parsers of BuildKit's line_parsers.go and split_command.go. Each works on
 * the logical line after the keyword and returns the arguments as strings; ONBUILD is handled by the caller.
 */

export class LineParseError extends Error {
  /** Text of the logical line the error is about, used to point the column at it. */
  constructor(
    message: string,
    readonly at?: string,
  ) {
    super(message);
  }
}

export const NOT_STRING_ARRAY = 'when using JSON array syntax, arrays must be comprised of strings only';

/** Go's encoding/json refuses documents nested deeper than this. */
const MAX_JSON_DEPTH = 10000;

export interface ParsedArgs {
  args: string[];
  json: boolean;
}

/** Splits a logical line into keyword, flags and the rest (splitCommand + extractBuilderFlags). */
export function splitCommand(line: string): { keyword: string; flags: string[]; rest: string } {
  const parts = splitTokenWhitespaceOnce(trimGoSpace(line));
  const keyword = parts[0];
  if (parts.length === 1) return { keyword, flags: [], rest: '' };
  const { rest, flags } = extractBuilderFlags(parts[1]);
  return { keyword, flags, rest: trimGoSpace(rest) };
}

// Go checks unicode.IsSpace on single bytes here; only ASCII bytes can be spaces in valid text we see.
const isByteSpace = (cu: number): boolean => cu < 0x80 && isGoSpace(cu);

function extractBuilderFlags(line: string): { rest: string; flags: string[] } {
  const IN_SPACES = 0;
  const IN_WORD = 1;
  const IN_QUOTE = 2;
  const words: string[] = [];
  let phase = IN_SPACES;
  let word = '';
  let quote = '';
  let blankOK = false;
  let c = '';
  for (let pos = 0; pos <= line.length; pos++) {
    if (pos !== line.length) c = line[pos] as string;
    if (phase === IN_SPACES) {
      if (pos === line.length) break;
      if (isByteSpace(c.charCodeAt(0))) continue;
      if (c !== '-' || pos + 1 === line.length || line[pos + 1] !== '-') return { rest: line.slice(pos), flags: words };
      phase = IN_WORD;
    }
    if ((phase === IN_WORD || phase === IN_QUOTE) && pos === line.length) {
      if (word !== '--' && (blankOK || word.length > 0)) words.push(word);
      break;
    }
    if (phase === IN_WORD) {
      if (isByteSpace(c.charCodeAt(0))) {
        phase = IN_SPACES;
        if (word === '--') return { rest: line.slice(pos), flags: words };
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (c === "'" || c === '"') {
        quote = c;
        blankOK = true;
        phase = IN_QUOTE;
        continue;
      }
      if (c === '\\') {
        if (pos + 1 === line.length) continue;
        pos++;
        c = line[pos] as string;
      }
      word += c;
      continue;
    }
    // IN_QUOTE
    if (c === quote) {
      phase = IN_WORD;
      continue;
    }
    if (c === '\\') {
      if (pos + 1 === line.length) {
        phase = IN_WORD;
        continue;
      }
      pos++;
      c = line[pos] as string;
    }
    word += c;
  }
  return { rest: '', flags: words };
}

/** Words split on whitespace with quotes and escapes kept in them (parseWords). */
export function parseWords(rest: string, escapeToken: string): string[] {
  const IN_SPACES = 0;
  const IN_WORD = 1;
  const IN_QUOTE = 2;
  const words: string[] = [];
  let phase = IN_SPACES;
  let word = '';
  let quote = '';
  let blankOK = false;
  let c = '';
  let width = 0;
  const len = rest.length;
  const decode = (at: number): void => {
    const cp = rest.codePointAt(at) as number;
    c = String.fromCodePoint(cp);
    width = c.length;
  };
  for (let pos = 0; pos <= len; pos += width) {
    if (pos !== len) decode(pos);
    if (phase === IN_SPACES) {
      if (pos === len) break;
      if (isGoSpace(c.codePointAt(0) as number)) continue;
      phase = IN_WORD;
    }
    if ((phase === IN_WORD || phase === IN_QUOTE) && pos === len) {
      if (blankOK || word.length > 0) words.push(word);
      break;
    }
    if (phase === IN_WORD) {
      if (isGoSpace(c.codePointAt(0) as number)) {
        phase = IN_SPACES;
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (c === "'" || c === '"') {
        quote = c;
        blankOK = true;
        phase = IN_QUOTE;
      }
      if (c === escapeToken) {
        if (pos + width === len) continue;
        word += c;
        pos += width;
        decode(pos);
      }
      word += c;
      continue;
    }
    if (phase === IN_QUOTE) {
      if (c === quote) phase = IN_WORD;
      if (c === escapeToken && quote !== "'") {
        if (pos + width === len) {
          phase = IN_WORD;
          continue;
        }
        pos += width;
        word += c;
        decode(pos);
      }
      word += c;
    }
  }
  return words;
}

/** ENV and LABEL: `name value` (old form) or `name=value ...`, as name/value/separator triples. */
export function parseNameVal(rest: string, key: string, escapeToken: string): string[] {
  const words = parseWords(rest, escapeToken);
  if (words.length === 0) return [];
  if (!(words[0] as string).includes('=')) {
    const parts = splitTokenWhitespaceOnce(rest);
    if (parts.length < 2) throw new LineParseError(`${key} must have two arguments`);
    return [parts[0], parts[1] as string, ''];
  }
  const out: string[] = [];
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq < 0) {
      throw new LineParseError(`Syntax error - can't find = in ${goQuote(word)}. Must be of the form: name=value`, word);
    }
    out.push(word.slice(0, eq), word.slice(eq + 1), '=');
  }
  return out;
}

export function parseStringsWhitespaceDelimited(rest: string): string[] {
  if (rest === '') return [];
  return splitTokenWhitespace(rest);
}

export function parseString(rest: string): string[] {
  return rest === '' ? [] : [rest];
}

/**
 * Reads a JSON array the way Go's json.Decoder does: only the first value counts, anything after it is
 * ignored. Returns undefined when the text is not a JSON array (the caller falls back to shell form) and
 * throws when it is an array holding something other than strings.
 */
export function parseJsonArray(rest: string): string[] | undefined {
  const text = trimLeftGoSpace(rest);
  if (!text.startsWith('[')) return undefined;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let end = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (escaped) escaped = false;
      else if (c === 0x5c) escaped = true;
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > MAX_JSON_DEPTH) return undefined;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
      if (depth === 0) {
        end = i + 1;
        break;
      }
    }
  }
  if (end < 0) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text.slice(0, end));
  } catch {
    return undefined;
  }
  if (!Array.isArray(value)) return undefined;
  const out: string[] = [];
  for (const item of value as unknown[]) {
    if (typeof item !== 'string') throw new LineParseError(NOT_STRING_ARRAY);
    out.push(item);
  }
  return out;
}

/** RUN, CMD, ENTRYPOINT, SHELL: a JSON array, else the whole rest as one shell-form string. */
export function parseMaybeJson(rest: string): ParsedArgs {
  if (rest === '') return { args: [], json: false };
  const arr = parseJsonArray(rest);
  if (arr !== undefined) return { args: arr, json: true };
  return { args: [rest], json: false };
}

/** ADD, COPY, VOLUME: a JSON array, else whitespace-separated words. */
export function parseMaybeJsonToList(rest: string): ParsedArgs {
  const arr = parseJsonArray(rest);
  if (arr !== undefined) return { args: arr, json: true };
  return { args: parseStringsWhitespaceDelimited(rest), json: false };
}

/** HEALTHCHECK: the first word verbatim, then the rest like CMD. */
export function parseHealthConfig(rest: string): ParsedArgs {
  let sep = 0;
  while (sep < rest.length && !isByteSpace(rest.charCodeAt(sep))) sep++;
  let next = sep;
  while (next < rest.length && isByteSpace(rest.charCodeAt(next))) next++;
  if (sep === 0) return { args: [], json: false };
  const cmd = parseMaybeJson(rest.slice(next));
  return { args: [rest.slice(0, sep), ...cmd.args], json: cmd.json };
}
