import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashSources, listSourceTree, openBuildContext, resolveCopySources, type ContextEntry, type SourceRoot } from '../../../src/context/index.js';
import { isStrataError } from '../../../src/errors/index.js';
import { makeTree, tempBase } from './tree.js';

/**
 * Sources that try to leave the context. Outside it sits a sentinel; none of these may ever yield its
 * content or a path outside the root: each is either not found or resolves to a path inside.
 */
const SENTINEL = 'SENTINEL-OUTSIDE-THE-CONTEXT';

let base: string;
let ctx: string;
let root: SourceRoot;

beforeEach(async () => {
  base = await tempBase('hostile');
  ctx = join(base, 'ctx');
  await makeTree(base, { outside: { secret: SENTINEL, passwd: SENTINEL }, secret: SENTINEL });
  await makeTree(ctx, {
    'etc-passwd': { link: '/etc/passwd' },
    'abs-sentinel': { link: join(base, 'outside', 'secret') },
    up: { link: '../../outside/secret' },
    'up-dir': { link: '../outside' },
    'abs-dir': { link: join(base, 'outside') },
    a: { b: { c: { climb: { link: '../../../../../..' } } } },
    chain1: { link: 'a/b/c/climb/outside' },
    dots: { link: '..' },
    listed: { 'to-outside': { link: '../../outside' }, 'to-secret': { link: join(base, 'secret') }, plain: 'p' },
  });
  root = await openBuildContext(ctx);
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

function inside(abs: string): void {
  expect(abs === ctx || abs.startsWith(ctx + '/')).toBe(true);
}

/** Resolves; returns the resolved relPaths, or 'not found'. Fails the test on any other outcome. */
async function outcome(source: string): Promise<string[] | 'not found'> {
  let rs: Awaited<ReturnType<typeof resolveCopySources>>;
  try {
    rs = await resolveCopySources(root, [source]);
  } catch (err) {
    if (isStrataError(err, 'E_NOT_FOUND')) return 'not found';
    throw err;
  }
  const out: string[] = [];
  for (const r of rs) {
    for (const m of r.matches) {
      inside(m.entry.absPath);
      if (m.entry.type === 'file') expect(await readFile(m.entry.absPath, 'utf8')).not.toBe(SENTINEL);
      const tree: ContextEntry[] = m.isDir ? await listSourceTree(root, m.relPath) : [];
      for (const e of tree) inside(e.absPath);
      await hashSources([m.entry, ...tree], {
        digestContent: async (e) => {
          inside(e.absPath);
          expect(await readFile(e.absPath, 'utf8')).not.toBe(SENTINEL);
          return 'sha256:0000000000000000000000000000000000000000000000000000000000000000';
        },
      });
      out.push(m.relPath);
    }
  }
  return out;
}

describe('sources that try to leave the context', () => {
  it('a top-level symlink to /etc/passwd resolves to etc/passwd inside the root', async () => {
    expect(await outcome('etc-passwd')).toBe('not found');
    await makeTree(ctx, { etc: { passwd: 'inside' } });
    expect(await outcome('etc-passwd')).toEqual(['etc/passwd']);
  });
  it('an absolute link to the sentinel is taken relative to the root', async () => {
    expect(await outcome('abs-sentinel')).toBe('not found');
    expect(await outcome('abs-dir/secret')).toBe('not found');
  });
  it('a relative link climbing out is clamped at the root', async () => {
    expect(await outcome('up')).toBe('not found');
    await makeTree(ctx, { outside: { secret: 'decoy inside' } });
    expect(await outcome('up')).toEqual(['outside/secret']);
    expect(await readFile(join(ctx, 'outside/secret'), 'utf8')).toBe('decoy inside');
  });
  it('a symlinked directory pointing outside, used as a parent component', async () => {
    expect(await outcome('up-dir/passwd')).toBe('not found');
    expect(await outcome('up-dir/secret')).toBe('not found');
    expect(await outcome('abs-dir/passwd')).toBe('not found');
  });
  it('a chain of relative links that climbs above the root', async () => {
    expect(await outcome('chain1/secret')).toBe('not found');
    expect(await outcome('a/b/c/climb/secret')).toBe('not found');
    expect(await outcome('dots/dots/dots/secret')).toBe('not found');
    expect(await outcome('dots/../../secret')).toBe('not found');
  });
  it('a climbing link to a directory resolves to the root itself', async () => {
    expect(await outcome('dots')).toEqual(['']);
    expect(await outcome('a/b/c/climb')).toEqual(['']);
  });
  it('wildcards through an outward link list only inside the root', async () => {
    expect(await outcome('up-dir/*')).toEqual([]);
    expect(await outcome('abs-dir/*')).toEqual([]);
    await makeTree(ctx, { outside: { 'inner.txt': 'inside' } });
    expect(await outcome('up-dir/*')).toEqual(['outside/inner.txt']);
  });
  it('a wildcard matching an outward link is not found, never followed out', async () => {
    expect(await outcome('etc-*')).toBe('not found');
    expect(await outcome('up')).toBe('not found');
  });
  it('links inside a listed directory stay links and are never read', async () => {
    const entries = await listSourceTree(root, 'listed');
    expect(entries.map((e) => [e.relPath, e.type, e.linkTarget ?? null])).toEqual([
      ['plain', 'file', null],
      ['to-outside', 'symlink', '../../outside'],
      ['to-secret', 'symlink', join(base, 'secret')],
    ]);
    for (const e of entries) inside(e.absPath);
    const reads: string[] = [];
    await hashSources(entries, {
      digestContent: async (e) => {
        reads.push(e.relPath);
        return 'sha256:0000000000000000000000000000000000000000000000000000000000000000';
      },
    });
    expect(reads).toEqual(['plain']);
  });
  it('listSourceTree refuses paths that leave the root or pass through a link', async () => {
    await expect(listSourceTree(root, '../outside')).rejects.toMatchObject({ code: 'E_CONTEXT_ESCAPE' });
    await expect(listSourceTree(root, '/etc')).rejects.toMatchObject({ code: 'E_CONTEXT_ESCAPE' });
    await expect(listSourceTree(root, 'up-dir/x')).rejects.toMatchObject({ code: 'E_CONTEXT_ESCAPE' });
    await expect(listSourceTree(root, 'dots/listed')).rejects.toMatchObject({ code: 'E_CONTEXT_ESCAPE' });
    // A link itself is not a directory to list: it is never followed.
    expect(await listSourceTree(root, 'up-dir')).toEqual([]);
    expect(await listSourceTree(root, 'abs-dir')).toEqual([]);
  });
});
