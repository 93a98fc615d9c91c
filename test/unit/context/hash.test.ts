import { chmod, cp, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ContextStatCache,
  compareContextPaths,
  hashSources,
  listSourceTree,
  openBuildContext,
  resolveCopySources,
  statSource,
  type ContextEntry,
  type SourceRoot,
} from '../../../src/context/index.js';
import { digestOf, type Digest } from '../../../src/digest/index.js';
import { makeTree, tempBase } from './tree.js';

let base: string;
let ctx: string;
let root: SourceRoot;

beforeEach(async () => {
  base = await tempBase('hash');
  ctx = join(base, 'ctx');
  await makeTree(ctx, {
    app: { 'a-b': 'dash', a: { b: 'slash' }, 'z.txt': 'zz', link: { link: 'z.txt' }, '.wh.x': 'w', empty: {} },
  });
  root = await openBuildContext(ctx);
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

async function sourceEntries(r: SourceRoot = root, rel = 'app'): Promise<ContextEntry[]> {
  const [m] = (await resolveCopySources(r, [rel]))[0]?.matches ?? [];
  if (m === undefined) throw new Error('no match');
  return [m.entry, ...(await listSourceTree(r, m.relPath))];
}

/** Reads through a counter so tests see how often content was read. */
function countingReader(): { reads: string[]; digestContent: (e: ContextEntry) => Promise<Digest> } {
  const reads: string[] = [];
  return {
    reads,
    digestContent: async (e) => {
      reads.push(e.relPath);
      return digestOf(await readFile(e.absPath));
    },
  };
}

describe('listSourceTree', () => {
  it('lists component-wise bytewise, dirs before their contents, whiteout names first as in layers', async () => {
    const entries = await listSourceTree(root, 'app');
    expect(entries.map((e) => e.relPath)).toEqual(['.wh.x', 'a', 'a/b', 'a-b', 'empty', 'link', 'z.txt']);
    const sorted = [...entries].map((e) => e.relPath).sort(compareContextPaths);
    expect(sorted).toEqual(entries.map((e) => e.relPath));
  });
  it('records types, modes, sizes and link targets', async () => {
    await chmod(join(ctx, 'app/z.txt'), 0o4755);
    const byPath = new Map((await listSourceTree(root, 'app')).map((e) => [e.relPath, e]));
    expect(byPath.get('z.txt')).toMatchObject({ type: 'file', mode: 0o4755, size: 2, absPath: join(ctx, 'app/z.txt') });
    expect(byPath.get('link')).toMatchObject({ type: 'symlink', linkTarget: 'z.txt', size: 0 });
    expect(byPath.get('empty')).toMatchObject({ type: 'dir', size: 0 });
  });
  it('a file source lists as nothing; statSource gives its entry', async () => {
    expect(await listSourceTree(root, 'app/z.txt')).toEqual([]);
    expect(await statSource(root, 'app/z.txt')).toMatchObject({ relPath: '', type: 'file', size: 2 });
    expect(await statSource(root, 'app/link')).toMatchObject({ type: 'symlink', linkTarget: 'z.txt' });
    await expect(statSource(root, 'app/nope')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  });
});

describe('hashSources', () => {
  it('is stable across mtime changes', async () => {
    const before = await hashSources(await sourceEntries());
    await utimes(join(ctx, 'app/z.txt'), new Date(1000), new Date(1000));
    await utimes(join(ctx, 'app/a'), new Date(5000), new Date(5000));
    expect(await hashSources(await sourceEntries())).toBe(before);
  });
  it('is the same for a copy of the tree at another absolute path', async () => {
    const other = join(base, 'elsewhere', 'deeper');
    await cp(ctx, other, { recursive: true, verbatimSymlinks: true });
    const otherRoot = await openBuildContext(other);
    expect(await hashSources(await sourceEntries(otherRoot))).toBe(await hashSources(await sourceEntries()));
  });
  it('does not depend on the order entries are given in', async () => {
    const entries = await sourceEntries();
    expect(await hashSources([...entries].reverse())).toBe(await hashSources(entries));
  });
  it('changes with content, mode, a link target, a new file, and ownership unless left out', async () => {
    const h0 = await hashSources(await sourceEntries());
    await writeFile(join(ctx, 'app/z.txt'), 'zZ');
    const h1 = await hashSources(await sourceEntries());
    expect(h1).not.toBe(h0);
    await chmod(join(ctx, 'app/z.txt'), 0o600);
    const h2 = await hashSources(await sourceEntries());
    expect(h2).not.toBe(h1);
    await rm(join(ctx, 'app/link'));
    await makeTree(ctx, { app: { link: { link: 'a-b' } } });
    const h3 = await hashSources(await sourceEntries());
    expect(h3).not.toBe(h2);
    await writeFile(join(ctx, 'app/empty/new'), '');
    const h4 = await hashSources(await sourceEntries());
    expect(h4).not.toBe(h3);
    const entries = await sourceEntries();
    const chowned = entries.map((e) => ({ ...e, uid: e.uid + 1 }));
    expect(await hashSources(chowned)).not.toBe(h4);
    expect(await hashSources(chowned, { includeOwnership: false })).toBe(await hashSources(entries, { includeOwnership: false }));
  });
  it('hashes a single file source the same whatever its name', async () => {
    await makeTree(ctx, { copy: { 'renamed.txt': 'zz' } });
    const a = (await resolveCopySources(root, ['app/z.txt']))[0]?.matches[0]?.entry as ContextEntry;
    const b = (await resolveCopySources(root, ['copy/renamed.txt']))[0]?.matches[0]?.entry as ContextEntry;
    expect(await hashSources([a], { includeOwnership: false })).toBe(await hashSources([b], { includeOwnership: false }));
  });
  it('refuses a file that changed since it was listed', async () => {
    const entries = await sourceEntries();
    await writeFile(join(ctx, 'app/z.txt'), 'longer now');
    await expect(hashSources(entries)).rejects.toMatchObject({ code: 'E_IO' });
  });
});

describe('ContextStatCache', () => {
  it('avoids rereading unchanged files and rereads changed ones', async () => {
    const cache = new ContextStatCache();
    const counter = countingReader();
    const first = await hashSources(await sourceEntries(), { statCache: cache, digestContent: counter.digestContent });
    expect(counter.reads.sort()).toEqual(['.wh.x', 'a-b', 'a/b', 'z.txt']);
    counter.reads.length = 0;
    expect(await hashSources(await sourceEntries(), { statCache: cache, digestContent: counter.digestContent })).toBe(first);
    expect(counter.reads).toEqual([]);
    await writeFile(join(ctx, 'app/z.txt'), 'changed');
    const third = await hashSources(await sourceEntries(), { statCache: cache, digestContent: counter.digestContent });
    expect(counter.reads).toEqual(['z.txt']);
    expect(third).not.toBe(first);
    expect(third).toBe(await hashSources(await sourceEntries()));
  });
  it('persists to a file atomically and loads it back', async () => {
    const file = join(base, 'cache', 'sub', 'stat-cache.json');
    const cache = new ContextStatCache();
    const h = await hashSources(await sourceEntries(), { statCache: cache });
    await cache.save(file);
    const text = await readFile(file, 'utf8');
    expect(JSON.parse(text)).toMatchObject({ format: 'strata-context-stat-cache/1' });
    const loaded = new ContextStatCache();
    await loaded.load(file);
    expect(loaded.size).toBe(cache.size);
    const counter = countingReader();
    expect(await hashSources(await sourceEntries(), { statCache: loaded, digestContent: counter.digestContent })).toBe(h);
    expect(counter.reads).toEqual([]);
  });
  it('loads a missing or malformed file as empty', async () => {
    const cache = new ContextStatCache();
    await cache.load(join(base, 'missing.json'));
    await writeFile(join(base, 'bad.json'), '{not json');
    await cache.load(join(base, 'bad.json'));
    await writeFile(join(base, 'foreign.json'), JSON.stringify({ format: 'other', entries: { '/x': {} } }));
    await cache.load(join(base, 'foreign.json'));
    await writeFile(join(base, 'partly.json'), JSON.stringify({ format: 'strata-context-stat-cache/1', entries: { '/x': { size: 1 } } }));
    await cache.load(join(base, 'partly.json'));
    expect(cache.size).toBe(0);
  });
});

describe('context path order', () => {
  it('compares UTF-8 bytes, not UTF-16 code units, and agrees with plain order for the rest', () => {
    // U+FF21 (EF BC A1) sorts before U+1F600 (F0 9F 98 80) as bytes, but after it as UTF-16 (FF21 > D83D).
    expect(compareContextPaths('d/\uff21', 'd/\u{1f600}')).toBeLessThan(0);
    expect(compareContextPaths('\u{1f600}/a', '\u{1f600}/b')).toBeLessThan(0);
    expect(compareContextPaths('é', 'z')).toBeGreaterThan(0);
    expect(compareContextPaths('a/b', 'a-b')).toBeLessThan(0);
    expect(compareContextPaths('same', 'same')).toBe(0);
  });
});

describe('hashing a file that changed after it was listed', () => {
  it('fails naming the file, for a rewrite and for a file swapped for a symlink', async () => {
    const entries = await sourceEntries();
    await writeFile(join(ctx, 'app/z.txt'), 'rewritten, and longer');
    await expect(hashSources(entries)).rejects.toMatchObject({ code: 'E_IO', message: expect.stringContaining(`${join(ctx, 'app/z.txt')} changed while the build was reading it`) });

    const again = await sourceEntries();
    await rm(join(ctx, 'app/a-b'));
    await symlink('/etc/passwd', join(ctx, 'app/a-b'));
    await expect(hashSources(again)).rejects.toMatchObject({ code: 'E_IO', message: expect.stringContaining(join(ctx, 'app/a-b')) });
  });
});
