import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCacheExport } from '../../../src/pipeline/cache-artifact.js';
import { CacheExplainer } from '../../../src/build/cache-explain.js';
import { stepCacheKey, valueDigests, type KeyComponents } from '../../../src/build/cache.js';
import type { Digest } from '../../../src/internals.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-cache-explain-unit-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const P1 = `sha256:${'1'.repeat(64)}` as Digest;
const P2 = `sha256:${'2'.repeat(64)}` as Digest;
const S1 = `sha256:${'3'.repeat(64)}` as Digest;
const S2 = `sha256:${'4'.repeat(64)}` as Digest;
const S3 = `sha256:${'5'.repeat(64)}` as Digest;

function run(parent: Digest, env: Record<string, string>, user = 'root'): KeyComponents {
  return { kind: 'RUN', parent, words: { args: ['/bin/sh', '-c', 'make'], user, epoch: null }, env: valueDigests(Object.entries(env)), args: {} };
}

describe('CacheExplainer', () => {
  it('compares with the recorded key that differs least and names each difference', async () => {
    const ex = new CacheExplainer(join(work, 'a'));
    const line = 'RUN make';
    const a = run(P1, { NODE_ENV: 'production', A: '1' });
    const b = run(P2, { NODE_ENV: 'production', A: '2' }, 'app');
    await ex.record(line, stepCacheKey(a), a);
    await ex.record(line, stepCacheKey(b), b);
    const now = run(P1, { NODE_ENV: 'development', A: '1' });
    const miss = await ex.explain('RUN', line, stepCacheKey(now), now, { parentStep: 3 });
    expect(miss.reason).toBe('RUN missed: ENV NODE_ENV changed');
    const moved = run(P2, { NODE_ENV: 'production', A: '1' }, 'app');
    expect((await ex.explain('RUN', line, stepCacheKey(moved), moved, { parentStep: 3 })).reason).toBe('RUN missed: ENV A changed');
    const other = run(P2, { NODE_ENV: 'x', A: '1' });
    expect((await ex.explain('RUN', line, stepCacheKey(other), other, { parentStep: 3 })).reason).toBe(
      'RUN missed: parent layer changed (step 3); ENV NODE_ENV changed',
    );
    const nobody = run(P1, { NODE_ENV: 'production', A: '1' }, 'nobody');
    expect((await ex.explain('RUN', line, stepCacheKey(nobody), nobody, {})).reason).toBe('RUN missed: USER changed (root → nobody)');
    const onBase = run(P2, { NODE_ENV: 'production', A: '1' });
    expect((await ex.explain('RUN', line, stepCacheKey(onBase), onBase, {})).reason).toBe('RUN missed: base image changed');
    expect((await ex.explain('RUN', 'RUN other', stepCacheKey(a), a, {})).reason).toBe('RUN missed: no cached step of this instruction');
    // The key itself is recorded: its layer must be what is missing.
    expect((await ex.explain('RUN', line, stepCacheKey(a), a, {})).changes).toEqual([{ kind: 'unavailable' }]);
  });

  it('names changed, added and removed files from the source lists; values never reach the records', async () => {
    const ex = new CacheExplainer(join(work, 'b'));
    const copy = (sources: Digest): KeyComponents => ({ kind: 'COPY', parent: P1, words: { sources: ['src/'], dest: '/app/' }, sources });
    await ex.record('COPY src/ /app/', stepCacheKey(copy(S1)), copy(S1), [
      ['src/a.ts', 'aaa'],
      ['src/b.ts', 'bbb'],
      ['src/c.ts', 'ccc'],
      ['src/gone.ts', 'ggg'],
    ]);
    const files = [
      ['src/a.ts', 'aa2'],
      ['src/b.ts', 'bb2'],
      ['src/c.ts', 'ccc'],
      ['src/new.ts', 'nnn'],
    ] as const;
    const miss = await ex.explain('COPY src/', 'COPY src/ /app/', stepCacheKey(copy(S2)), copy(S2), { files });
    expect(miss.reason).toBe('COPY src/ missed: 2 files changed (src/a.ts, src/b.ts), 1 file added (src/new.ts), 1 file removed (src/gone.ts)');
    const many = Array.from({ length: 5 }, (_, i) => [`f${i}`, 'x'] as const);
    await ex.record(
      'COPY . /',
      stepCacheKey(copy(S3)),
      copy(S3),
      many.map(([p]) => [p, 'y'] as const),
    );
    expect((await ex.explain('COPY .', 'COPY . /', stepCacheKey(copy(S2)), copy(S2), { files: many })).reason).toBe(
      'COPY . missed: 5 files changed (f0, f1, f2, …)',
    );

    const secretish = run(P1, { TOKEN: 'hunter2-value' });
    await ex.record('RUN make', stepCacheKey(secretish), secretish);
    const stored = await Promise.all((await readdir(join(work, 'b', 'lines'))).map((f) => readFile(join(work, 'b', 'lines', f), 'utf8')));
    expect(stored.join('')).not.toContain('hunter2-value');
  });
});

describe('--cache-to cache-mounts=', () => {
  it('is an opt-in boolean', () => {
    expect(parseCacheExport('type=registry,ref=127.0.0.1:5000/app:c,mode=max,cache-mounts=true')).toEqual({
      type: 'registry',
      ref: '127.0.0.1:5000/app:c',
      mode: 'max',
      cacheMounts: true,
    });
    expect(parseCacheExport('type=local,dest=/tmp/c,mode=max')).toEqual({ type: 'local', dest: '/tmp/c', mode: 'max' });
    expect(() => parseCacheExport('type=local,dest=/tmp/c,cache-mounts=yes')).toThrow(/cache-mounts must be true or false/);
  });
});
