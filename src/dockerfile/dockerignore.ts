import { StrataError } from '../errors/index.js';
import { trimGoSpace } from './gostr.js';

/**
 * .dockerignore with moby/patternmatcher semantics: patterns cleaned like Go's filepath.Clean, `*` and `?`
 * within one path element, `**` across elements, `!` exceptions, the last matching pattern wins, and a
 * path is ignored when one of its parent directories is.
 */

/** Go's path/filepath.Clean for slash-separated paths. */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  if (rooted) return '/' + joined;
  return joined === '' ? '.' : joined;
}

function dirOf(p: string): string {
  const i = p.lastIndexOf('/');
  return cleanPath(i < 0 ? '' : p.slice(0, i + 1));
}

/**
 * The patterns of a .dockerignore file, as moby's ignorefile.ReadAll returns them: `#` lines (at column 0)
 * are comments, blank lines are skipped, each pattern is trimmed and cleaned, and a leading `/` is dropped.
 */
export function readDockerignorePatterns(text: string): string[] {
  const out: string[] = [];
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  lines.forEach((rawLine, i) => {
    let line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (i === 0 && line.startsWith('\uFEFF')) line = line.slice(1);
    if (line.startsWith('#')) return;
    let pattern = trimGoSpace(line);
    if (pattern === '') return;
    const invert = pattern.startsWith('!');
    if (invert) pattern = trimGoSpace(pattern.slice(1));
    if (pattern.length > 0) {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    out.push(invert ? '!' + pattern : pattern);
  });
  return out;
}

const badPattern = (pattern: string, why: string): StrataError =>
  new StrataError('E_DOCKERIGNORE_PATTERN', `invalid .dockerignore pattern ${JSON.stringify(pattern)}: ${why}`, {
    hint: 'check the brackets and backslashes in this pattern; escape a literal [ as \\[',
  });

/** Whether Go's filepath.Match would accept the pattern (only its syntax is checked). */
function validateGlob(p: string): string | undefined {
  const cps = Array.from(p);
  let i = 0;
  const n = cps.length;
  while (i < n) {
    const c = cps[i] as string;
    if (c === '\\') {
      if (i + 1 >= n) return 'trailing backslash';
      i += 2;
      continue;
    }
    if (c !== '[') {
      i++;
      continue;
    }
    i++;
    if (i < n && cps[i] === '^') i++;
    let nrange = 0;
    for (;;) {
      if (i < n && cps[i] === ']' && nrange > 0) {
        i++;
        break;
      }
      // One end of a range: not empty, not `-` or `]`, maybe escaped, and something must follow it.
      const readEnd = (): boolean => {
        if (i >= n || cps[i] === '-' || cps[i] === ']') return false;
        if (cps[i] === '\\') {
          i++;
          if (i >= n) return false;
        }
        i++;
        return i < n;
      };
      if (!readEnd()) return 'malformed character class';
      if (cps[i] === '-') {
        i++;
        if (!readEnd()) return 'malformed character class';
      }
      nrange++;
    }
  }
  return undefined;
}

type Compiled = { kind: 'exact' } | { kind: 'prefix'; prefix: string } | { kind: 'suffix'; suffix: string } | { kind: 'regexp'; re: RegExp } | { kind: 'bad' };

const GO_REGEX_ESCAPES: Record<string, string> = {
  d: '\\d',
  D: '\\D',
  s: '[\\t\\n\\f\\r ]',
  S: '[^\\t\\n\\f\\r ]',
  w: '\\w',
  W: '\\W',
  t: '\\t',
  n: '\\n',
  r: '\\r',
  f: '\\f',
  v: '\\v',
  a: '\\x07',
  b: '\\b',
  B: '\\B',
  A: '^',
  z: '$',
};

/** patternmatcher's compile: a pattern to a match strategy, the regexp spelled for JavaScript. */
function compile(pattern: string): Compiled {
  const cps = Array.from(pattern);
  let re = '^';
  let type: 'exact' | 'prefix' | 'suffix' | 'regexp' = 'exact';
  let inClass = false;
  let classStart = 0;
  // Go's `.` does not match a newline; JavaScript's also skips CR and U+2028, so spell it out.
  const ANY = '[^\\n]';
  for (let i = 0, k = 0; k < cps.length; i++) {
    const c = cps[k++] as string;
    if (c === '*') {
      if (cps[k] === '*') {
        k++;
        if (cps[k] === '/') k++;
        if (k >= cps.length) {
          if (type === 'exact') type = 'prefix';
          else {
            re += ANY + '*';
            type = 'regexp';
          }
        } else {
          re += `(${ANY}*/)?`;
          type = 'regexp';
        }
        if (i === 0) type = 'suffix';
      } else {
        re += '[^/]*';
        type = 'regexp';
      }
    } else if (c === '?') {
      re += '[^/]';
      type = 'regexp';
    } else if ('.+()|{}$'.includes(c)) {
      re += '\\' + c;
    } else if (c === '\\') {
      if (k < cps.length) {
        const e = cps[k++] as string;
        if (/^[A-Za-z0-9]$/.test(e)) {
          const mapped = GO_REGEX_ESCAPES[e];
          if (mapped === undefined) return { kind: 'bad' };
          re += mapped;
        } else {
          re += `\\u{${(e.codePointAt(0) as number).toString(16)}}`;
        }
        type = 'regexp';
      } else {
        re += '\\\\';
      }
    } else if (c === '[') {
      if (inClass) re += '\\[';
      else {
        re += '[';
        inClass = true;
        classStart = re.length;
      }
      type = 'regexp';
    } else if (c === ']') {
      const first = re.length === classStart || (re.length === classStart + 1 && re.endsWith('^'));
      if (inClass && !first) {
        re += ']';
        inClass = false;
      } else {
        re += '\\]';
      }
      type = 'regexp';
    } else if (c === '^' && !inClass) {
      re += '^';
    } else {
      re += c === '/' ? '\\/' : c === '-' && !inClass ? '-' : c;
    }
  }
  if (type === 'exact') return { kind: 'exact' };
  if (type === 'prefix') return { kind: 'prefix', prefix: pattern.slice(0, -2) };
  if (type === 'suffix') return { kind: 'suffix', suffix: pattern.slice(2) };
  try {
    return { kind: 'regexp', re: new RegExp(re + '$', 'u') };
  } catch {
    return { kind: 'bad' };
  }
}

class Pattern {
  private compiled: Compiled | undefined;
  readonly dirs: number;
  constructor(
    readonly cleaned: string,
    readonly exclusion: boolean,
    readonly source: string,
  ) {
    this.dirs = cleaned.split('/').length;
  }
  match(path: string): boolean {
    this.compiled ??= compile(this.cleaned);
    const c = this.compiled;
    switch (c.kind) {
      case 'exact':
        return path === this.cleaned;
      case 'prefix':
        return path.startsWith(c.prefix);
      case 'suffix':
        return path.endsWith(c.suffix) || (c.suffix.startsWith('/') && path === c.suffix.slice(1));
      case 'regexp':
        return c.re.test(path);
      case 'bad':
        throw badPattern(this.source, 'not a valid pattern');
    }
  }
}

/** Per-pattern results for a directory, handed to its children (patternmatcher's MatchInfo). */
export interface DockerignoreMatchInfo {
  readonly parentMatched: readonly boolean[];
}

export class DockerignoreMatcher {
  private readonly patterns: Pattern[] = [];
  /** Whether any pattern is an exception (`!`): a walker cannot then skip an ignored directory whole. */
  readonly hasExclusions: boolean;

  /** Compiles patterns (as from readDockerignorePatterns); throws `E_DOCKERIGNORE_PATTERN` on a bad one. */
  constructor(patterns: readonly string[]) {
    let exclusions = false;
    for (const source of patterns) {
      let p = trimGoSpace(source);
      if (p === '') continue;
      p = cleanPath(p);
      let exclusion = false;
      if (p.startsWith('!')) {
        if (p.length === 1) throw badPattern(source, 'illegal exclusion pattern: "!"');
        exclusion = true;
        exclusions = true;
        p = p.slice(1);
      }
      const why = validateGlob(p);
      if (why !== undefined) throw badPattern(source, why);
      this.patterns.push(new Pattern(p, exclusion, source));
    }
    this.hasExclusions = exclusions;
  }

  /** Parses .dockerignore text and compiles it. */
  static fromText(text: string): DockerignoreMatcher {
    return new DockerignoreMatcher(readDockerignorePatterns(text));
  }

  /** The cleaned patterns, `!` kept, in order. */
  get patternList(): string[] {
    return this.patterns.map((p) => (p.exclusion ? '!' : '') + p.cleaned);
  }

  /**
   * Whether a slash-separated path relative to the context root is ignored, checking its parent
   * directories too (MatchesOrParentMatches). The root itself is never ignored.
   */
  ignores(path: string): boolean {
    const file = cleanPath(path);
    if (file === '.') return false;
    const parent = dirOf(file);
    const parentDirs = parent === '.' ? [] : parent.split('/');
    let matched = false;
    for (const pattern of this.patterns) {
      if (pattern.exclusion !== matched) continue;
      let match = pattern.match(file);
      for (let i = 0; !match && i < parentDirs.length; i++) {
        match = pattern.match(parentDirs.slice(0, i + 1).join('/'));
      }
      if (match) matched = !pattern.exclusion;
    }
    return matched;
  }

  /** The deprecated `Matches`: only the parent prefix as long as the pattern is checked. */
  ignoresLegacy(path: string): boolean {
    const file = cleanPath(path);
    if (file === '.') return false;
    const parent = dirOf(file);
    const parentDirs = parent.split('/');
    let matched = false;
    for (const pattern of this.patterns) {
      if (pattern.exclusion !== matched) continue;
      let match = pattern.match(file);
      if (!match && parent !== '.' && pattern.dirs <= parentDirs.length) {
        match = pattern.match(parentDirs.slice(0, pattern.dirs).join('/'));
      }
      if (match) matched = !pattern.exclusion;
    }
    return matched;
  }

  /**
   * For a walker: matches `path` reusing the result computed for its parent directory
   * (MatchesUsingParentResults). Pass no parent info for a top-level entry.
   */
  ignoresWithParent(path: string, parentInfo?: DockerignoreMatchInfo): { ignored: boolean; info: DockerignoreMatchInfo } {
    const file = cleanPath(path);
    const parentMatched = parentInfo?.parentMatched ?? [];
    if (parentMatched.length !== 0 && parentMatched.length !== this.patterns.length) {
      throw new StrataError('E_INTERNAL', 'wrong number of values in parent match info');
    }
    const result: boolean[] = new Array<boolean>(this.patterns.length).fill(false);
    let matched = false;
    this.patterns.forEach((pattern, i) => {
      let match = parentMatched.length !== 0 ? (parentMatched[i] as boolean) : false;
      if (!match) {
        if (pattern.exclusion !== matched) return;
        match = pattern.match(file);
        if (!match && parentMatched.length === 0) {
          const parent = dirOf(file);
          if (parent !== '.') {
            const dirs = parent.split('/');
            for (let k = 0; !match && k < dirs.length; k++) match = pattern.match(dirs.slice(0, k + 1).join('/'));
          }
        }
      }
      result[i] = match;
      if (match) matched = !pattern.exclusion;
    });
    return { ignored: matched, info: { parentMatched: result } };
  }
}

export type DockerignoreSource = 'dockerfile' | 'context' | 'none';

/**
 * The file names to read for a Dockerfile at `dockerfilePath` (slash-separated, relative to the context
 * or absolute): `<Dockerfile>.dockerignore` beside it first, then `.dockerignore` at the context root.
 */
export function dockerignoreCandidates(dockerfilePath: string): { dockerfileSpecific: string; context: string } {
  return { dockerfileSpecific: `${dockerfilePath}.dockerignore`, context: '.dockerignore' };
}

/**
 * Picks the ignore file as BuildKit does: the Dockerfile-specific one wins over the context's
 * `.dockerignore` when it exists. Pass `undefined` for a file that does not exist.
 */
export function selectDockerignore(dockerfileSpecificText: string | undefined, contextText: string | undefined): { source: DockerignoreSource; text: string } {
  if (dockerfileSpecificText !== undefined) return { source: 'dockerfile', text: dockerfileSpecificText };
  if (contextText !== undefined) return { source: 'context', text: contextText };
  return { source: 'none', text: '' };
}
