import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { DockerignoreMatcher, readDockerignorePatterns, type DockerignoreMatchInfo } from '../../src/dockerfile/index.js';
import { StrataError } from '../../src/errors/index.js';
import { CaseCounter, corpusPath } from './corpus.js';

// Intended differences from moby/patternmatcher, by case id. Empty: every case is meant to pass.
const INTENDED_DIFFERENCES = new Set<string>([]);

const counter = new CaseCounter('dockerignore', INTENDED_DIFFERENCES);

type Api = 'Matches' | 'MatchesOrParentMatches' | 'MatchesUsingParentResults';

function run(api: Api, patterns: string[], file: string): boolean {
  const m = new DockerignoreMatcher(patterns);
  if (api === 'Matches') return m.ignoresLegacy(file);
  if (api === 'MatchesOrParentMatches') return m.ignores(file);
  // Walk from the top as a context walker would, handing each directory's result to its child.
  const parts = file.split('/');
  let info: DockerignoreMatchInfo | undefined;
  let ignored = false;
  for (let i = 1; i <= parts.length; i++) {
    const r = m.ignoresWithParent(parts.slice(0, i).join('/'), info);
    info = r.info;
    ignored = r.ignored;
  }
  return ignored;
}

function outcome(api: Api, patterns: string[], file: string): boolean | 'error' {
  try {
    return run(api, patterns, file);
  } catch (err) {
    if (err instanceof StrataError && err.code === 'E_DOCKERIGNORE_PATTERN') return 'error';
    throw err;
  }
}

describe('dockerignore conformance', () => {
  afterAll(() => {
    console.log(counter.summary());
    for (const f of counter.failed) console.log(`  FAIL ${f.id}: ${f.detail.slice(0, 300)}`);
  });

  it('runs every row', () => {
    const rows = fs
      .readFileSync(corpusPath('dockerignore-patterns.tsv'), 'utf8')
      .split('\n')
      .slice(1)
      .filter((l) => l !== '');
    rows.forEach((row, idx) => {
      const [test, apiField, patternsJson, file, expectedMatch, expectedError] = row.split('\t') as string[];
      const apis: Api[] =
        apiField === 'Matches'
          ? ['Matches']
          : apiField === 'MatchesOrParentMatches'
            ? ['MatchesOrParentMatches']
            : ['MatchesOrParentMatches', 'MatchesUsingParentResults'];
      counter.check(`row ${idx + 2} ${test} ${patternsJson} ${file}`, () => {
        const patterns = JSON.parse(patternsJson as string) as string[];
        for (const api of apis) {
          const got = outcome(api, patterns, file as string);
          if (expectedError !== '' && expectedError !== undefined) expect(got, api).toBe('error');
          else expect(got, api).toBe(expectedMatch === 'true');
        }
      });
    });

    const extra = JSON.parse(fs.readFileSync(corpusPath('dockerignore-extra.json'), 'utf8')) as {
      newPatterns: { patterns: string[]; expectPatternCount?: number; expectExclusions?: boolean; expectError?: boolean }[];
      ignorefileReadAll: { input: string; expected: string[]; nilReaderExpected: string[] };
    };
    for (const [i, c] of extra.newPatterns.entries()) {
      counter.check(`newPatterns[${i}]`, () => {
        if (c.expectError === true) {
          expect(() => new DockerignoreMatcher(c.patterns)).toThrow(StrataError);
          return;
        }
        const m = new DockerignoreMatcher(c.patterns);
        if (c.expectPatternCount !== undefined) expect(m.patternList.length).toBe(c.expectPatternCount);
        if (c.expectExclusions !== undefined) expect(m.hasExclusions).toBe(c.expectExclusions);
      });
    }
    counter.check('ignorefileReadAll', () => {
      expect(readDockerignorePatterns(extra.ignorefileReadAll.input)).toStrictEqual(extra.ignorefileReadAll.expected);
      expect(readDockerignorePatterns('')).toStrictEqual(extra.ignorefileReadAll.nilReaderExpected);
    });

    expect(counter.unexpected()).toStrictEqual([]);
  });
});
