import { familiarName, familiarString, type ImageReference } from './parse.js';

/**
 * Go's `path.Match` for reference patterns: `*` and `?` stop at `/`, `[...]` classes with ranges
 * and `^` negation, `\` escapes. Returns false for a malformed pattern.
 */
export function referencePathMatch(pattern: string, name: string): boolean {
  let source = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else if (c === '\\') {
      const next = pattern[++i];
      if (next === undefined) return false;
      source += escapeRegExp(next);
    } else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) return false;
      let body = pattern.slice(i + 1, end);
      const negate = body.startsWith('^');
      if (negate) body = body.slice(1);
      const cls = body.replace(/[\]\\^]/g, (m) => `\\${m}`);
      source += negate ? `[^${cls}]` : `[${cls}]`;
      i = end;
    } else source += escapeRegExp(c);
  }
  try {
    return new RegExp(`${source}$`).test(name);
  } catch {
    return false;
  }
}

function escapeRegExp(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** distribution/reference `FamiliarMatch`: the pattern is tried on the familiar string, then the familiar name. */
export function familiarMatch(pattern: string, ref: ImageReference): boolean {
  return referencePathMatch(pattern, familiarString(ref)) || referencePathMatch(pattern, familiarName(ref));
}
