import { appendFile, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStore, readLayer, type Descriptor, type StrataError } from '../../../src/internals.js';
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

describe('a named build context and its .dockerignore', () => {
  it('COPY --from=NAME leaves out what the named directory ignores, misses none of it in the key, and cannot name it', async () => {
    const main = await writeContext(work, { 'Dockerfile.unused': '' });
    const named = await writeContext(work, {
      '.dockerignore': '*.env\nbuild/\n',
      'app.js': 'console.log(1)\n',
      'secret.env': 'TOKEN=nope\n',
      'build/out.bin': 'x',
    });
    const store = await LocalStore.open(join(work, 'store-named'));
    const deps = { openNamedContext: async () => ({ kind: 'dir' as const, dir: named }) };
    const input = { buildContexts: { extra: named } };
    const text = 'FROM scratch\nCOPY --from=extra . /app/\n';
    const first = await testBuild(store, text, main, input, deps);
    const paths = await layerPaths(store, first.image.layers[0]!.descriptor);
    expect(paths).toContain('app/app.js');
    expect(paths).not.toContain('app/secret.env');
    expect(paths.some((p) => p.startsWith('app/build'))).toBe(false);

    await writeFile(join(named, 'secret.env'), 'TOKEN=changed\n');
    const ignoredOnly = await testBuild(store, text, main, input, deps);
    expect(ignoredOnly.steps.cached).toBe(1);

    const error = (await testBuild(store, 'FROM scratch\nCOPY --from=extra secret.env /\n', main, input, deps).catch((e: unknown) => e)) as StrataError;
    expect(error.message).toContain('"secret.env": not found in the build context extra');
    expect(error.hint).toBe(`it is excluded by ${join(await realpath(named), '.dockerignore')}; remove the pattern that matches it or add a "!" exception`);
  });
});

/** The paths of a stored layer's entries, without a trailing slash. */
async function layerPaths(store: LocalStore, descriptor: Descriptor): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of readLayer(await store.blobs.openBlob(descriptor), { compression: 'gzip' })) out.push(entry.path);
  return out;
}
