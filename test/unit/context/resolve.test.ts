import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openBuildContext, resolveCopySources, scopeSourcePath, type SourceRoot } from '../../../src/context/index.js';
import { isStrataError } from '../../../src/errors/index.js';
import { makeTree, tempBase } from './tree.js';

let base: string;
let ctx: string;
let root: SourceRoot;

beforeEach(async () => {
  base = await tempBase('resolve');
  ctx = join(base, 'ctx');
  await makeTree(ctx, {
    'a.txt': 'a',
    'b.txt': 'b',
    'c.md': 'c',
    apple: 'apple',
    banana: 'banana',
    cherry: 'cherry',
    '*': 'literal star',
    'x*y': 'x star y',
    x1y: 'x1y',
    dir: { one: { file: '1' }, two: { file: '2', other: 'o' }, three: {}, 'top.txt': 't' },
    'link-file': { link: 'a.txt' },
    'link-dir': { link: 'dir' },
    'abs-link': { link: '/dir/one' },
  });
  root = await openBuildContext(ctx);
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

const paths = async (src: string, opts = {}): Promise<string[]> => {
  const [r] = await resolveCopySources(root, [src], opts);
  return (r?.matches ?? []).map((m) => m.relPath);
};
const matched = async (src: string, opts = {}): Promise<string[]> => {
  const [r] = await resolveCopySources(root, [src], opts);
  return (r?.matches ?? []).map((m) => m.matchedPath);
};

async function notFound(src: string): Promise<string> {
  try {
    await resolveCopySources(root, [src]);
  } catch (err) {
    expect(isStrataError(err, 'E_NOT_FOUND')).toBe(true);
    return (err as Error).message;
  }
  throw new Error(`expected ${src} to be not found`);
}

describe('scoping', () => {
  it('cleans sources as if joined onto /', () => {
    expect(scopeSourcePath('../x')).toBe('x');
    expect(scopeSourcePath('/abs/y')).toBe('abs/y');
    expect(scopeSourcePath('./x/')).toBe('x');
    expect(scopeSourcePath('.')).toBe('');
    expect(scopeSourcePath('../../..')).toBe('');
    expect(scopeSourcePath('a/../../b')).toBe('b');
  });
  it('resolves ../x, /x and ./x/ inside the context', async () => {
    expect(await paths('../a.txt')).toEqual(['a.txt']);
    expect(await paths('/a.txt')).toEqual(['a.txt']);
    expect(await paths('./dir/')).toEqual(['dir']);
    expect(await paths('/../../dir/one/file')).toEqual(['dir/one/file']);
  });
  it('resolves . and .. to the root itself', async () => {
    const [r] = await resolveCopySources(root, ['..']);
    expect(r?.matches).toHaveLength(1);
    expect(r?.matches[0]?.relPath).toBe('');
    expect(r?.matches[0]?.isDir).toBe(true);
    expect(r?.matches[0]?.entry.absPath).toBe(ctx);
  });
  it('keeps the source as written and several sources in order', async () => {
    const rs = await resolveCopySources(root, ['./a.txt', 'b.txt']);
    expect(rs.map((r) => r.source)).toEqual(['./a.txt', 'b.txt']);
    expect(rs.map((r) => r.wildcard)).toEqual([false, false]);
  });
});

describe('wildcards', () => {
  it('matches *.txt at the top level only', async () => {
    expect(await paths('*.txt')).toEqual(['a.txt', 'b.txt']);
  });
  it('matches dir/*/file, walking only as deep as the pattern', async () => {
    expect(await paths('dir/*/file')).toEqual(['dir/one/file', 'dir/two/file']);
  });
  it('matches classes and ?', async () => {
    expect(await matched('[ab]*')).toEqual(['a.txt', 'abs-link', 'apple', 'b.txt', 'banana']);
    expect(await paths('[^ab]?????')).toEqual(['cherry']);
    expect(await paths('?.md')).toEqual(['c.md']);
  });
  it('treats an escaped \\* as a literal star', async () => {
    const [r] = await resolveCopySources(root, ['\\*']);
    expect(r?.wildcard).toBe(false);
    expect(r?.matches.map((m) => m.relPath)).toEqual(['*']);
    expect(await paths('x\\*?')).toEqual(['x*y']);
  });
  it('yields no matches for a wildcard that matches nothing, even under a missing directory', async () => {
    const [r] = await resolveCopySources(root, ['*.none']);
    expect(r?.wildcard).toBe(true);
    expect(r?.matches).toEqual([]);
    expect(await paths('missing/*.txt')).toEqual([]);
    expect(await paths('a.txt/*')).toEqual([]);
  });
  it('rejects a malformed pattern', async () => {
    await expect(resolveCopySources(root, ['[a'])).rejects.toMatchObject({ code: 'E_USAGE' });
    await expect(resolveCopySources(root, ['[]a]'])).rejects.toMatchObject({ code: 'E_USAGE' });
  });
  it('follows a symlinked directory in the literal prefix, inside the root', async () => {
    expect(await paths('link-dir/*/file')).toEqual(['dir/one/file', 'dir/two/file']);
  });
  it('does not descend into a symlinked directory below the first wildcard (filepath.Walk)', async () => {
    await makeTree(ctx, { tree: { real: { f: 'r' }, viaLink: { link: 'real' } } });
    expect(await paths('tree/*/f')).toEqual(['tree/real/f']);
    expect(await matched('tree/*')).toEqual(['tree/real', 'tree/viaLink']);
    expect(await paths('tree/*')).toEqual(['tree/real', 'tree/real']);
  });
  it('reports the matched name separately from the resolved path', async () => {
    const [r] = await resolveCopySources(root, ['link-*']);
    expect(r?.matches.map((m) => [m.matchedPath, m.relPath, m.isDir])).toEqual([
      ['link-dir', 'dir', true],
      ['link-file', 'a.txt', false],
    ]);
  });
});

describe('literals', () => {
  it('a missing literal is E_NOT_FOUND naming the source and the root', async () => {
    expect(await notFound('nope.txt')).toBe('"nope.txt": not found in the build context');
    expect(await notFound('dir/one/file/extra')).toMatch(/not found/);
  });
  it('follows a top-level symlink to a file and to a directory', async () => {
    const [f, d] = await resolveCopySources(root, ['link-file', 'link-dir']);
    expect(f?.matches[0]).toMatchObject({ relPath: 'a.txt', matchedPath: 'link-file', isDir: false });
    expect(f?.matches[0]?.entry.type).toBe('file');
    expect(d?.matches[0]).toMatchObject({ relPath: 'dir', matchedPath: 'link-dir', isDir: true });
  });
  it('takes absolute link targets relative to the root', async () => {
    expect(await paths('abs-link')).toEqual(['dir/one']);
  });
  it('keeps the link itself when asked not to follow', async () => {
    const [r] = await resolveCopySources(root, ['link-dir'], { followSymlinks: false });
    expect(r?.matches[0]).toMatchObject({ relPath: 'link-dir', isDir: false });
    expect(r?.matches[0]?.entry).toMatchObject({ type: 'symlink', linkTarget: 'dir' });
  });
  it('fails on a symlink loop instead of hanging', async () => {
    await makeTree(ctx, { loop1: { link: 'loop2' }, loop2: { link: 'loop1' } });
    await expect(resolveCopySources(root, ['loop1'])).rejects.toMatchObject({ code: 'E_IO' });
  });
  it('reads the content the match points at', async () => {
    const [r] = await resolveCopySources(root, ['link-file']);
    expect(await readFile(r?.matches[0]?.entry.absPath ?? '', 'utf8')).toBe('a');
  });
});

describe('--exclude on wildcard matches', () => {
  it('drops matches the patterns match, never a literal', async () => {
    expect(await paths('*.txt', { excludes: ['b.txt'] })).toEqual(['a.txt']);
    expect(await matched('[ab]*', { excludes: ['*.txt', '!b.txt'] })).toEqual(['abs-link', 'apple', 'b.txt', 'banana']);
    expect(await paths('a.txt', { excludes: ['*.txt'] })).toEqual(['a.txt']);
  });
  it('rejects a bad pattern naming --exclude', async () => {
    await expect(resolveCopySources(root, ['*'], { excludes: ['[z'] })).rejects.toThrow(/--exclude/);
  });
});

describe('abort', () => {
  it('stops with E_ABORTED when the signal has fired', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(resolveCopySources(root, ['a.txt'], { signal: ac.signal })).rejects.toMatchObject({ code: 'E_ABORTED' });
  });
});
