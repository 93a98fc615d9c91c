/**
 * Go string semantics that BuildKit's behaviour depends on: `unicode.IsSpace`, `strings.TrimSpace`, and
 * `strconv.Quote`. Kept apart so every part of the front end agrees on what "whitespace" means.
 */

/** Go's unicode.IsSpace. */
export function isGoSpace(cp: number): boolean {
  if (cp <= 0xff) {
    return cp === 0x20 || (cp >= 0x09 && cp <= 0x0d) || cp === 0x85 || cp === 0xa0;
  }
  return cp === 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp === 0x2028 || cp === 0x2029 || cp === 0x202f || cp === 0x205f || cp === 0x3000;
}

export function trimLeftGoSpace(s: string): string {
  let i = 0;
  while (i < s.length) {
    const cp = s.codePointAt(i) as number;
    if (!isGoSpace(cp)) break;
    i += cp > 0xffff ? 2 : 1;
  }
  return i === 0 ? s : s.slice(i);
}

export function trimRightGoSpace(s: string): string {
  let j = s.length;
  while (j > 0) {
    // Every Go space is in the BMP, so one code unit is enough to decide.
    const cu = s.charCodeAt(j - 1);
    if (cu >= 0xd800 && cu <= 0xdfff) break;
    if (!isGoSpace(cu)) break;
    j--;
  }
  return j === s.length ? s : s.slice(0, j);
}

export function trimGoSpace(s: string): string {
  return trimRightGoSpace(trimLeftGoSpace(s));
}

/** ASCII whitespace as BuildKit's `[\t\v\f\r ]` character class sees it. */
export function isTokenWhitespace(cu: number): boolean {
  return cu === 0x20 || cu === 0x09 || cu === 0x0b || cu === 0x0c || cu === 0x0d;
}

/** Splits on runs of `[\t\v\f\r ]+`, like Go's regexp Split(s, -1). */
export function splitTokenWhitespace(s: string): string[] {
  const out: string[] = [];
  let start = 0;
  let i = 0;
  while (i < s.length) {
    if (isTokenWhitespace(s.charCodeAt(i))) {
      out.push(s.slice(start, i));
      while (i < s.length && isTokenWhitespace(s.charCodeAt(i))) i++;
      start = i;
    } else {
      i++;
    }
  }
  out.push(s.slice(start));
  return out;
}

/** Splits at the first run of `[\t\v\f\r ]+` into at most two parts, like Go's regexp Split(s, 2). */
export function splitTokenWhitespaceOnce(s: string): [string] | [string, string] {
  for (let i = 0; i < s.length; i++) {
    if (isTokenWhitespace(s.charCodeAt(i))) {
      let j = i;
      while (j < s.length && isTokenWhitespace(s.charCodeAt(j))) j++;
      return [s.slice(0, i), s.slice(j)];
    }
  }
  return [s];
}

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}\u0020]$/u;

/** Go's strconv.Quote: the spelling BuildKit's AST dumps use. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    switch (ch) {
      case '"':
        out += '\\"';
        continue;
      case '\\':
        out += '\\\\';
        continue;
      case '\x07':
        out += '\\a';
        continue;
      case '\b':
        out += '\\b';
        continue;
      case '\f':
        out += '\\f';
        continue;
      case '\n':
        out += '\\n';
        continue;
      case '\r':
        out += '\\r';
        continue;
      case '\t':
        out += '\\t';
        continue;
      case '\v':
        out += '\\v';
        continue;
    }
    if (cp < 0x20 || cp === 0x7f) {
      out += '\\x' + cp.toString(16).padStart(2, '0');
    } else if (cp >= 0xd800 && cp <= 0xdfff) {
      // A lone surrogate cannot come from valid UTF-8; Go would show the replacement rune.
      out += '\\ufffd';
    } else if (cp < 0x80 || PRINTABLE.test(ch)) {
      out += ch;
    } else if (cp <= 0xffff) {
      out += '\\u' + cp.toString(16).padStart(4, '0');
    } else {
      out += '\\U' + cp.toString(16).padStart(8, '0');
    }
  }
  return out + '"';
}
