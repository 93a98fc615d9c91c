import { describe, expect, it } from 'vitest';
import { compileCopyWildcard, copySourceHasWildcard } from '../../../src/context/index.js';

/** Cases from Go's path/filepath match_test.go that apply to one path component. */
const CASES: Array<[string, string, boolean]> = [
  ['abc', 'abc', true],
  ['*', 'abc', true],
  ['*c', 'abc', true],
  ['a*', 'a', true],
  ['a*', 'abc', true],
  ['a*', 'ab/c', false],
  ['a*b*c*d*e*', 'axbxcxdxe', true],
  ['ab[c]', 'abc', true],
  ['ab[b-d]', 'abc', true],
  ['ab[e-g]', 'abc', false],
  ['ab[^c]', 'abc', false],
  ['ab[^b-d]', 'abc', false],
  ['ab[^e-g]', 'abc', true],
  ['a\\*b', 'a*b', true],
  ['a\\*b', 'ab', false],
  ['a?b', 'a☺b', true],
  ['a[^a]b', 'a☺b', true],
  ['a???b', 'a☺b', false],
  ['[a-ζ]*', 'α', true],
  ['*[a-ζ]', 'A', false],
  ['[\\]a]', ']', true],
  ['[\\-]', '-', true],
  ['[x\\-]', 'z', false],
  ['[\\-x]', 'x', true],
  ['[z-a]', 'q', false],
  ['.*', '.hidden', true],
];

const BAD = ['[', '[^', '[^bc', 'a[', '[]a]', '[-]', '[x-]', '[-x]', '\\', '[a-b-c]', 'a[\\'];

describe('Go filepath.Match for one component', () => {
  it.each(CASES)('%s vs %s', (pattern, name, want) => {
    expect(compileCopyWildcard(pattern).test(name)).toBe(want);
  });
  it.each(BAD)('rejects %s', (pattern) => {
    expect(() => compileCopyWildcard(pattern)).toThrow(/invalid wildcard/);
  });
  it('finds unescaped wildcards only', () => {
    expect(copySourceHasWildcard('a*')).toBe(true);
    expect(copySourceHasWildcard('a\\*')).toBe(false);
    expect(copySourceHasWildcard('a\\\\*')).toBe(true);
    expect(copySourceHasWildcard('plain')).toBe(false);
    expect(copySourceHasWildcard('x[1]')).toBe(true);
  });
});
