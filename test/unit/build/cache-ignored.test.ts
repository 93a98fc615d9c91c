import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStore } from '../../../src/internals.js';
import { testBuild, writeContext } from './harness.js';

// TRAPS: ignored files must not affect cache keys (kaniko #594). A COPY's key comes from what it
// would copy, and a path .dockerignore drops does not exist for it.
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-cache-ignored-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('cache keys and .dockerignore', () => {
  it('a change to an ignored file, or a new one, keeps COPY . cached; a change to a copied file does not', async () => {
    const ctx = await writeContext(work, {
      '.dockerignore': '*.log\nbuild/\n!build/keep.txt\n',
      'app.js': 'console.log(1)\n',
      'debug.log': 'first\n',
      'build/out.bin': 'x',
      'build/keep.txt': 'kept\n',
    });
    const store = await LocalStore.open(join(work, 'store'));
    const text = 'FROM scratch\nCOPY . /app/\n';
    const first = await testBuild(store, text, ctx);
    expect(first.steps.cached).toBe(0);

    await appendFile(join(ctx, 'debug.log'), 'more\n');
    await writeFile(join(ctx, 'new.log'), 'new\n');
    await writeFile(join(ctx, 'build/out.bin'), 'changed');
    const ignoredOnly = await testBuild(store, text, ctx);
    expect(ignoredOnly.steps.cached).toBe(1);
    expect(ignoredOnly.image.layers.map((l) => l.diffId)).toEqual(first.image.layers.map((l) => l.diffId));

    await appendFile(join(ctx, 'build/keep.txt'), 'changed\n');
    const reincluded = await testBuild(store, text, ctx);
    expect(reincluded.steps.cached).toBe(0);
    expect(reincluded.image.layers[0]!.diffId).not.toBe(first.image.layers[0]!.diffId);
  });
});
