import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listSourceTree, openBuildContext, resolveCopySources, sourceRootForDirectory } from '../../../src/context/index.js';
import { isStrataError } from '../../../src/errors/index.js';
import { makeTree, tempBase } from './tree.js';

let base: string;
let ctx: string;

beforeEach(async () => {
  base = await tempBase('ignore');
  ctx = join(base, 'ctx');
  await makeTree(ctx, {
    'keep.txt': 'k',
    'secret.env': 's',
    'to-secret': { link: 'secret.env' },
    logs: { 'a.log': 'a', 'b.log': 'b' },
    src: { 'main.ts': 'm', 'main.test.ts': 't', deep: { 'x.test.ts': 'x', 'y.ts': 'y' } },
    vendor: { lib: { 'keep.me': 'k', 'drop.me': 'd' }, other: { z: 'z' } },
  });
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

async function rootWith(ignore: string) {
  await writeFile(join(ctx, '.dockerignore'), ignore);
  return openBuildContext(ctx);
}

describe('openBuildContext', () => {
  it('realpaths the directory and has no matcher without an ignore file', async () => {
    await makeTree(base, { 'ctx-link': { link: 'ctx' } });
    const root = await openBuildContext(join(base, 'ctx-link'));
    expect(root.dir).toBe(ctx);
    expect(root.matcher).toBeUndefined();
    expect(root.description).toBe('build context');
  });
  it('a missing context is E_NOT_FOUND, a file is E_USAGE', async () => {
    await expect(openBuildContext(join(base, 'nope'))).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await expect(openBuildContext(join(ctx, 'keep.txt'))).rejects.toMatchObject({ code: 'E_USAGE' });
  });
  it('reads <context>/.dockerignore', async () => {
    const root = await rootWith('*.env\n');
    expect(root.matcher?.ignores('secret.env')).toBe(true);
    expect(root.ignoreFile).toBe(join(ctx, '.dockerignore'));
  });
  it('prefers <Dockerfile>.dockerignore beside the Dockerfile', async () => {
    await makeTree(ctx, { '.dockerignore': 'keep.txt\n', build: { 'app.Dockerfile': 'FROM scratch\n', 'app.Dockerfile.dockerignore': 'logs\n' } });
    const rel = await openBuildContext(ctx, { dockerfilePath: 'build/app.Dockerfile' });
    expect(rel.matcher?.patternList).toEqual(['logs']);
    expect(rel.ignoreFile).toBe(join(ctx, 'build/app.Dockerfile.dockerignore'));
    const abs = await openBuildContext(ctx, { dockerfilePath: join(ctx, 'build/app.Dockerfile'), dockerfileInContext: true });
    expect(abs.matcher?.patternList).toEqual(['logs']);
    const other = await openBuildContext(ctx, { dockerfilePath: 'Dockerfile' });
    expect(other.matcher?.patternList).toEqual(['keep.txt']);
  });
  it('a bad pattern is an error naming the file', async () => {
    await writeFile(join(ctx, '.dockerignore'), 'ok\n[z\n');
    const err = await openBuildContext(ctx).catch((e: unknown) => e);
    expect(isStrataError(err, 'E_DOCKERIGNORE_PATTERN')).toBe(true);
    expect((err as Error).message).toContain(join(ctx, '.dockerignore'));
  });
  it('a bad regexp escape is caught when the context is opened, not at the first match', async () => {
    await writeFile(join(ctx, '.dockerignore'), 'a\\q*\n');
    await expect(openBuildContext(ctx)).rejects.toMatchObject({ code: 'E_DOCKERIGNORE_PATTERN' });
  });
  it('a .dockerignore symlinked out of the context is not read', async () => {
    await makeTree(base, { 'evil-ignore': 'keep.txt\n' });
    await makeTree(ctx, { '.dockerignore': { link: '../evil-ignore' } });
    const root = await openBuildContext(ctx);
    expect(root.matcher).toBeUndefined();
  });
  it('sourceRootForDirectory has no matcher and its own description', async () => {
    await writeFile(join(ctx, '.dockerignore'), '*\n');
    const root = await sourceRootForDirectory(ctx, 'stage builder');
    expect(root.matcher).toBeUndefined();
    const err = await resolveCopySources(root, ['missing']).catch((e: unknown) => e);
    expect((err as Error).message).toBe('"missing": not found in the stage builder');
    expect((await resolveCopySources(root, ['keep.txt']))[0]?.matches).toHaveLength(1);
  });
});

describe('.dockerignore in COPY', () => {
  it('a file named explicitly is not found, with a hint naming the ignore file', async () => {
    const root = await rootWith('*.env\n');
    const err = await resolveCopySources(root, ['secret.env']).catch((e: unknown) => e);
    expect(isStrataError(err, 'E_NOT_FOUND')).toBe(true);
    expect((err as Error).message).toBe('"secret.env": not found in the build context');
    expect((err as { hint?: string }).hint).toContain('.dockerignore');
  });
  it('a symlink to an ignored file is not found either', async () => {
    const root = await rootWith('*.env\n');
    await expect(resolveCopySources(root, ['to-secret'])).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  });
  it('wildcards skip ignored entries', async () => {
    const root = await rootWith('*.env\nlogs\nto-*\n');
    const [r] = await resolveCopySources(root, ['*']);
    expect(r?.matches.map((m) => m.matchedPath)).toEqual(['.dockerignore', 'keep.txt', 'src', 'vendor']);
  });
  it('a wildcard matching a link to an ignored file fails like BuildKit copying a dangling link', async () => {
    const root = await rootWith('*.env\n');
    const err = await resolveCopySources(root, ['to-*']).catch((e: unknown) => e);
    expect(isStrataError(err, 'E_NOT_FOUND')).toBe(true);
    expect((err as Error).message).toContain('to-secret');
  });
  it('directory contents are filtered', async () => {
    const root = await rootWith('**/*.test.ts\n');
    const entries = await listSourceTree(root, 'src');
    expect(entries.map((e) => e.relPath)).toEqual(['deep', 'deep/y.ts', 'main.ts']);
    expect(entries[0]?.type).toBe('dir');
  });
  it('listing the root filters from the top', async () => {
    const root = await rootWith('logs\nsrc/deep\n*.env\nto-secret\n.dockerignore\n');
    const entries = await listSourceTree(root, '');
    expect(entries.map((e) => e.relPath)).toEqual([
      'keep.txt',
      'src',
      'src/main.test.ts',
      'src/main.ts',
      'vendor',
      'vendor/lib',
      'vendor/lib/drop.me',
      'vendor/lib/keep.me',
      'vendor/other',
      'vendor/other/z',
    ]);
  });
  it('! re-inclusion keeps the parents of re-included files, and only them', async () => {
    const root = await rootWith('vendor\n!vendor/lib/keep.me\n');
    const [r] = await resolveCopySources(root, ['vendor']);
    expect(r?.matches[0]?.isDir).toBe(true);
    expect((await listSourceTree(root, 'vendor')).map((e) => e.relPath)).toEqual(['lib', 'lib/keep.me']);
    await expect(resolveCopySources(root, ['vendor/other'])).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await expect(resolveCopySources(root, ['vendor/lib/drop.me'])).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    expect((await resolveCopySources(root, ['vendor/*']))[0]?.matches.map((m) => m.relPath)).toEqual(['vendor/lib']);
    const all = (await listSourceTree(root, '')).map((e) => e.relPath);
    expect(all.filter((p) => p.startsWith('vendor'))).toEqual(['vendor', 'vendor/lib', 'vendor/lib/keep.me']);
  });
  it('an ignored directory with nothing re-included does not exist', async () => {
    const root = await rootWith('vendor\n!logs/a.log\n');
    await expect(resolveCopySources(root, ['vendor'])).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  });
});

describe('--exclude in listings', () => {
  it('patterns are relative to the listed directory', async () => {
    const root = await openBuildContext(ctx);
    expect((await listSourceTree(root, 'src', { excludes: ['*.test.ts'] })).map((e) => e.relPath)).toEqual(['deep', 'deep/x.test.ts', 'deep/y.ts', 'main.ts']);
    expect((await listSourceTree(root, 'src', { excludes: ['**/*.test.ts'] })).map((e) => e.relPath)).toEqual(['deep', 'deep/y.ts', 'main.ts']);
  });
  it('apply on top of .dockerignore, with ! exceptions keeping parents', async () => {
    const root = await rootWith('src/main.ts\n');
    expect((await listSourceTree(root, 'src', { excludes: ['deep', '!deep/y.ts'] })).map((e) => e.relPath)).toEqual(['deep', 'deep/y.ts', 'main.test.ts']);
  });
});
