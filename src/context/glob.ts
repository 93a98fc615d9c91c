import { StrataError } from '../errors/index.js';

/**
 * Go's path/filepath.Match for one path component, as BuildKit matches COPY wildcards against directory
 * entries: `*` any run of characters, `?` one character, `[...]` / `[^...]` classes with ranges, `\` escapes
 * the next character. A malformed pattern is an error, never a silent non-match.
 */

/** BuildKit's containsWildcards: an unescaped `*`, `?` or `[`. */
export function hasWildcard(component: string): boolean {
  for (let i = 0; i < component.length; i++) {
    const c = component[i];
    if (c === '\\') i++;
    else if (c === '*' || c === '?' || c === '[') return true;
  }
  return false;
}

/** A component without wildcards, with its `\` escapes removed: `a\*b` names the file `a*b`. */
export function unescapeLiteral(component: string): string {
  let out = '';
  for (let i = 0; i < component.length; i++) {
    const c = component[i] as string;
    if (c === '\\' && i + 1 < component.length) {
      out += component[i + 1];
      i++;
    } else {
      out += c;
    }
  }
  return out;
}

const lit = (cp: string): string => `\\u{${(cp.codePointAt(0) as number).toString(16)}}`;

function badPattern(pattern: string, why: string): StrataError {
  return new StrataError('E_USAGE', `invalid wildcard ${JSON.stringify(pattern)} in a COPY source: ${why}`, {
    hint: 'check the brackets and backslashes; escape a literal [ as \\[',
  });
}

/** Compiles one component pattern into an anchored RegExp; throws E_USAGE when Go would say ErrBadPattern. */
export function compileComponentPattern(pattern: string): RegExp {
  const cps = Array.from(pattern);
  let re = '^';
  let i = 0;
  const n = cps.length;
  while (i < n) {
    const c = cps[i] as string;
    if (c === '*') {
      re += '[^/]*';
      i++;
    } else if (c === '?') {
      re += '[^/]';
      i++;
    } else if (c === '\\') {
      if (i + 1 >= n) throw badPattern(pattern, 'trailing backslash');
      re += lit(cps[i + 1] as string);
      i += 2;
    } else if (c === '[') {
      i++;
      let negated = false;
      if (cps[i] === '^') {
        negated = true;
        i++;
      }
      const ranges: string[] = [];
      let nrange = 0;
      // Go's getEsc: one end of a range, maybe escaped, never `-` or `]` bare, and never the pattern's end.
      const readEnd = (): number => {
        if (i >= n || cps[i] === '-' || cps[i] === ']') throw badPattern(pattern, 'malformed character class');
        if (cps[i] === '\\') {
          i++;
          if (i >= n) throw badPattern(pattern, 'malformed character class');
        }
        const cp = (cps[i] as string).codePointAt(0) as number;
        i++;
        if (i >= n) throw badPattern(pattern, 'unterminated character class');
        return cp;
      };
      for (;;) {
        if (i < n && cps[i] === ']' && nrange > 0) {
          i++;
          break;
        }
        const lo = readEnd();
        let hi = lo;
        if (cps[i] === '-') {
          i++;
          hi = readEnd();
        }
        nrange++;
        // Go tests lo <= r <= hi, so an inverted range matches nothing; JavaScript would reject it.
        if (lo <= hi) ranges.push(`\\u{${lo.toString(16)}}-\\u{${hi.toString(16)}}`);
      }
      if (ranges.length === 0) re += negated ? '[^/]' : '(?!)';
      else re += `[${negated ? '^/' : ''}${ranges.join('')}]`;
    } else {
      re += lit(c);
      i++;
    }
  }
  return new RegExp(re + '$', 'u');
}
