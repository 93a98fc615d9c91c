import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { expandShellWord, expandWord, expandWords } from '../../src/dockerfile/index.js';
import { StrataError } from '../../src/errors/index.js';
import { CaseCounter, corpusPath } from './corpus.js';

// Intended differences from BuildKit, by case id. Empty: every case is meant to pass.
const INTENDED_DIFFERENCES = new Set<string>([]);

const counter = new CaseCounter('buildkit-shell', INTENDED_DIFFERENCES);
const dir = corpusPath('buildkit-shell');

function expectExpansionError(fn: () => unknown, contains?: string): void {
  let threw: unknown;
  try {
    fn();
  } catch (err) {
    threw = err;
  }
  if (!(threw instanceof StrataError) || threw.code !== 'E_EXPANSION') throw new Error(`expected E_EXPANSION, got ${String(threw)}`);
  if (contains !== undefined) expect(threw.message).toContain(contains);
}

describe('buildkit-shell conformance', () => {
  afterAll(() => {
    console.log(counter.summary());
    for (const f of counter.failed) console.log(`  FAIL ${f.id}: ${f.detail.slice(0, 300)}`);
  });

  it('runs every case', () => {
    const envVarEnv = { PWD: '/home', SHELL: 'bash', KOREAN: '한국어', NULL: '' };
    fs.readFileSync(`${dir}/envVarTest`, 'utf8')
      .split('\n')
      .forEach((rawLine, idx) => {
        if (rawLine.startsWith('#')) return;
        const line = rawLine.trim();
        if (line === '') return;
        const fields = line.split('|');
        const id = `envVarTest:${idx + 1}`;
        if (fields.length !== 3) {
          counter.check(id, () => {
            throw new Error(`malformed line: ${line}`);
          });
          return;
        }
        const [platform, input, expected] = fields.map((f) => f.trim()) as [string, string, string];
        if (platform === 'W') return;
        counter.check(id, () => {
          if (expected === 'error') expectExpansionError(() => expandWord(input, envVarEnv));
          else expect(expandWord(input, envVarEnv)).toBe(expected);
        });
      });

    const env = new Map<string, string>();
    fs.readFileSync(`${dir}/wordsTest`, 'utf8')
      .split('\n')
      .forEach((rawLine, idx) => {
        if (rawLine.startsWith('#') || rawLine === '') return;
        if (rawLine.startsWith('ENV ')) {
          const entry = rawLine.slice(4).replace(/^ +/, '');
          const eq = entry.indexOf('=');
          env.set(eq < 0 ? entry : entry.slice(0, eq), eq < 0 ? '' : entry.slice(eq + 1));
          return;
        }
        const fields = rawLine.split('|');
        const id = `wordsTest:${idx + 1}`;
        counter.check(id, () => {
          if (fields.length !== 2) throw new Error(`malformed line: ${rawLine}`);
          const input = (fields[0] as string).trim();
          const expected = (fields[1] as string).replace(/^ +/, '').split(',');
          let got: string[];
          try {
            got = expandWords(input, new Map(env));
          } catch (err) {
            if (!(err instanceof StrataError)) throw err;
            got = ['error'];
          }
          expect(got).toStrictEqual(expected);
        });
      });

    const matches = JSON.parse(fs.readFileSync(`${dir}/extra/process-word-with-matches.json`, 'utf8')) as {
      cases: { input: string; envs: Record<string, string>; expected?: string; expectedErr?: boolean; matches?: string[]; unmatched?: string[] }[];
    };
    for (const [i, c] of matches.cases.entries()) {
      counter.check(`process-word-with-matches[${i}] ${c.input}`, () => {
        if (c.expectedErr === true) {
          expectExpansionError(() => expandShellWord(c.input, c.envs));
          return;
        }
        const got = expandShellWord(c.input, c.envs);
        expect(got.value).toBe(c.expected);
        expect([...got.matched].sort()).toStrictEqual([...(c.matches ?? [])].sort());
        expect([...got.unmatched].sort()).toStrictEqual([...(c.unmatched ?? [])].sort());
      });
    }

    const mp = JSON.parse(fs.readFileSync(`${dir}/extra/mandatory-and-platform.json`, 'utf8')) as {
      mandatory: { input: string; envs: string[]; expected?: string; errorContains?: string }[];
      platform: { input: string; envs: Record<string, string>; expected: string }[];
    };
    for (const [i, c] of mp.mandatory.entries()) {
      counter.check(`mandatory[${i}]`, () => {
        const envMap = new Map<string, string>();
        for (const e of c.envs) {
          const eq = e.indexOf('=');
          envMap.set(e.slice(0, eq), e.slice(eq + 1));
        }
        if (c.errorContains !== undefined) expectExpansionError(() => expandWord(c.input, envMap), c.errorContains);
        else expect(expandWord(c.input, envMap)).toBe(c.expected);
      });
    }
    for (const [i, c] of mp.platform.entries()) counter.check(`platform[${i}]`, () => expect(expandWord(c.input, c.envs)).toBe(c.expected));

    expect(counter.unexpected()).toStrictEqual([]);
  });
});
