import { describe, expect, it } from 'vitest';
import { expandShellWord, expandWord, expandWords, MAX_SHELL_EXPANSION_DEPTH } from '../../../src/dockerfile/index.js';
import { StrataError } from '../../../src/errors/index.js';

const env = { A: 'a', E: '', P: '/usr/local/bin', S: 'x y  z' };

function expansionError(fn: () => unknown): StrataError {
  try {
    fn();
  } catch (err) {
    if (err instanceof StrataError) return err;
    throw err;
  }
  throw new Error('expected an expansion error');
}

describe('expandWord', () => {
  it.each([
    ['$A', 'a'],
    ['${A}b', 'ab'],
    ['${U:-d}', 'd'],
    ['${E:-d}', 'd'],
    ['${E-d}', ''],
    ['${A:+s}', 's'],
    ['${E:+s}', ''],
    ['${E+s}', 's'],
    ['${A?m}', 'a'],
    ['${P#*/}', 'usr/local/bin'],
    ['${P##*/}', 'bin'],
    ['${P%/*}', '/usr/local'],
    ['${P%%/l*}', '/usr'],
    ['${P/l/L}', '/usr/Local/bin'],
    ['${P//l/L}', '/usr/LocaL/bin'],
    ["'$A'", '$A'],
    ['"$A b"', 'a b'],
    ['\\$A', '$A'],
    ['$', '$'],
    ['${U:-${A:-x}}', 'a'],
  ])('%s -> %s', (word, want) => {
    expect(expandWord(word, env)).toBe(want);
  });

  it('reports unset variables and the ones it found', () => {
    const r = expandShellWord('$A ${MISSING} ${OTHER:-x}', env);
    expect(r.matched).toStrictEqual(['A']);
    expect(r.unmatched).toStrictEqual(['MISSING', 'OTHER']);
  });

  it('accepts a Map as the environment', () => {
    expect(expandWord('$K', new Map([['K', 'v']]))).toBe('v');
  });

  it('honours the backtick escape token', () => {
    expect(expandWord('`$A', env, { escapeToken: '`' })).toBe('$A');
    expect(expandWord('\\$A', env, { escapeToken: '`' })).toBe('\\a');
  });

  it('can leave unset variables as written', () => {
    expect(expandWord('$U ${U:-x} ${A}', env, { skipUnsetEnv: true })).toBe('$U ${U:-x} a');
  });

  it('splits words after expansion, respecting quotes', () => {
    expect(expandWords('a $S "$S"', env)).toStrictEqual(['a', 'x', 'y', 'z', 'x y  z']);
  });

  it.each([
    ['${', "syntax error: missing '}'"],
    ['${}', 'bad substitution'],
    ['${A:=x}', 'unsupported modifier (:=) in substitution'],
    ['${U?must be set}', 'U: must be set'],
    ['${E:?}', 'E: is not allowed to be empty'],
    ["'open", 'matching single-quote'],
    ['"open', 'matching double-quote'],
    ['${A/x', "missing '/'"],
  ])('%s fails with E_EXPANSION mentioning %s', (word, fragment) => {
    const e = expansionError(() => expandWord(word, env));
    expect(e.code).toBe('E_EXPANSION');
    expect(e.message).toContain(fragment);
    expect(e.message).toContain('failed to process');
  });

  it('expands 1,000 nested defaults and refuses absurd nesting cleanly', () => {
    const nest = (n: number): string => '${v0:-'.repeat(1) + Array.from({ length: n - 1 }, (_, i) => `\${v${i + 1}:-`).join('') + 'end' + '}'.repeat(n);
    expect(expandWord(nest(1000), {})).toBe('end');
    const e = expansionError(() => expandWord(nest(100_000), {}));
    expect(e.message).toContain(`nested more than ${MAX_SHELL_EXPANSION_DEPTH} deep`);
  });
});
