import { describe, expect, it } from 'vitest';
import {
  cleanDockerignorePath,
  dockerignoreCandidates,
  DockerignoreMatcher,
  readDockerignorePatterns,
  selectDockerignore,
} from '../../../src/dockerfile/index.js';
import { StrataError } from '../../../src/errors/index.js';

describe('.dockerignore', () => {
  it('reads patterns like ignorefile.ReadAll', () => {
    expect(readDockerignorePatterns('\uFEFF# c\n node_modules \n/abs/./x/../y\n!/keep\n\n  # not a comment\r\n')).toStrictEqual([
      'node_modules',
      'abs/y',
      '!keep',
      '# not a comment',
    ]);
  });

  it('cleans paths like filepath.Clean', () => {
    expect(['', 'a//b/', './a/../..', '/../a', 'a/./b/..'].map(cleanDockerignorePath)).toStrictEqual(['.', 'a/b', '..', '/a', 'a']);
  });

  it('matches *, ?, ** and parent directories, last match winning with ! exceptions', () => {
    const m = DockerignoreMatcher.fromText('*.log\n**/tmp\ndocs\n!docs/README.md\nbuild/**\n?.txt\n');
    expect(m.ignores('a.log')).toBe(true);
    expect(m.ignores('sub/a.log')).toBe(false);
    expect(m.ignores('x/y/tmp/file')).toBe(true);
    expect(m.ignores('docs/guide.md')).toBe(true);
    expect(m.ignores('docs/README.md')).toBe(false);
    expect(m.ignores('build/out/bin')).toBe(true);
    expect(m.ignores('a.txt')).toBe(true);
    expect(m.ignores('ab.txt')).toBe(false);
    expect(m.ignores('.')).toBe(false);
    expect(m.hasExclusions).toBe(true);
  });

  it('gives the same answers through the parent-result walker', () => {
    const m = new DockerignoreMatcher(['dir', '!dir/keep']);
    const top = m.ignoresWithParent('dir');
    expect(top.ignored).toBe(true);
    expect(m.ignoresWithParent('dir/keep', top.info).ignored).toBe(false);
    expect(m.ignoresWithParent('dir/drop', top.info).ignored).toBe(true);
  });

  it('rejects invalid patterns with E_DOCKERIGNORE_PATTERN', () => {
    for (const bad of [['['], ['!'], ['a\\'], ['[a-]'], ['[]']]) {
      let err: unknown;
      try {
        const m = new DockerignoreMatcher(bad);
        m.ignores('x');
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(bad)).toBeInstanceOf(StrataError);
      expect((err as StrataError).code).toBe('E_DOCKERIGNORE_PATTERN');
    }
  });

  it('prefers <Dockerfile>.dockerignore over .dockerignore', () => {
    expect(dockerignoreCandidates('sub/Dockerfile.dev')).toStrictEqual({ dockerfileSpecific: 'sub/Dockerfile.dev.dockerignore', context: '.dockerignore' });
    expect(selectDockerignore('a', 'b')).toStrictEqual({ source: 'dockerfile', text: 'a' });
    expect(selectDockerignore(undefined, 'b')).toStrictEqual({ source: 'context', text: 'b' });
    expect(selectDockerignore(undefined, undefined)).toStrictEqual({ source: 'none', text: '' });
  });
});
