// Shell patterns of ${var#pattern}, ${var%pattern} and ${var/pattern/replacement}, with Go's regexp
// semantics where BuildKit's shell lexer leans on them (moby/buildkit frontend/dockerfile/shell).
import { EOF, ExpansionFailure, Scanner } from './shell-scan.js';

/**
 * A shell wildcard pattern (`*`, `?`, backslash escapes; no bracket expressions) as a regular expression.
 * `.` becomes `[^\n]` because Go's `.` excludes only newline, while JavaScript's also excludes CR and U+2028.
 */
export function shellPatternToRegex(pattern: string, greedy: boolean, anchored: boolean): RegExp {
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
        throw new ExpansionFailure(`invalid pattern (${pattern}) in substitution: invalid escape '\\${esc === EOF ? '' : String.fromCodePoint(esc)}'`);
      }
      out += '\\' + String.fromCodePoint(esc);
      continue;
    }
    const s = String.fromCodePoint(tok);
    out += '[]{}.+()|^$'.includes(s) ? '\\' + s : s === '/' ? '\\/' : s;
  }
  return new RegExp(out, 'gu');
}

export function trimPrefix(pattern: string, value: string, greedy: boolean): string {
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

export function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  // Regular expressions cannot find the shortest rightmost match, so search the reversed string instead.
  return reverseString(trimPrefix(reversePattern(pattern), reverseString(value), greedy));
}

export function replaceFirst(value: string, re: RegExp, replacement: string): string {
  re.lastIndex = 0;
  const m = re.exec(value);
  if (m === null) return value;
  return value.slice(0, m.index) + replacement + value.slice(m.index + m[0].length);
}

/** Go's Regexp.ReplaceAllString: empty matches right after a match are skipped; `$0`/`${0}` name the match. */
export function goReplaceAll(value: string, re: RegExp, template: string): string {
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
