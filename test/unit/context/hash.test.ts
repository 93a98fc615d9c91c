import { chmod, cp, readFile, readdir, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ContextStatCache,
  statCacheFile,
  compareContextPaths,
  hashSources,
  hashSourcesFromCache,
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

const FORMAT = 'strata-context-stat-cache/3';
/** The clock save is given: a stat cache written or used "now". */
const NOW = new Date();

/** A stat cache file as save writes it: a head line with the source sets, then the records. */
async function writeStatFile(file: string, forRoot: string, records: unknown[], sources: unknown[] = []): Promise<void> {
  await writeFile(file, `${JSON.stringify({ format: FORMAT, root: forRoot, sources })}\n${JSON.stringify(records)}`);
}

describe('listSourceTree', () => {
  it('lists component-wise bytewise, dirs before their contents, whiteout names first as in layers', async () => {
    const entries = await listSourceTree(root, 'app');
    expect(entries.map((e) => e.relPath)).toEqual(['.wh.x', 'a', 'a/b', 'a-b', 'empty', 'link', 'z.txt']);
    const sorted = [...entries].map((e) => e.relPath).sort(compareContextPaths);
    expect(sorted).toEqual(entries.map((e) => e.relPath));
  });
  it('lists in path order without sorting afterwards: names beyond U+D800, whiteouts and prefixes at every depth', async () => {
    const dir = join(ctx, 'order');
    const names = ['z', 'a-b', 'a', '.wh.a', '!x', 'a.b', '\u{1f600}', '\uff21', '\ud7ff', 'é', 'A', '.wh..wh..opq'];
    const nested = Object.fromEntries(names.map((n) => [n, 'x']));
    await makeTree(dir, { ...Object.fromEntries(names.map((n) => [n, { ...nested, [`${n}-f`]: 'y' }])), 'a-c': 'file' });
    const listed = (await listSourceTree(root, 'order')).map((e) => e.relPath);
    expect(listed).toHaveLength(names.length * (names.length + 2) + 1);
    expect(listed).toEqual([...listed].sort(compareContextPaths));
  });
  it('lists the same, sorted, when walks of more entries than one turn of the event loop run side by side', async () => {
    const files = Object.fromEntries(Array.from({ length: 700 }, (_, i) => [`d${i % 3}/f${i}`, String(i)]));
    await makeTree(join(ctx, 'many'), files);
    const [one, two] = await Promise.all([listSourceTree(root, 'many'), listSourceTree(root, 'many')]);
    const paths = one.map((e) => e.relPath);
    expect(paths).toHaveLength(703);
    expect(paths).toEqual([...paths].sort(compareContextPaths));
    expect(two.map((e) => e.relPath)).toEqual(paths);
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
    const cache = new ContextStatCache(ctx);
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
  it('hashSourcesFromCache gives what hashSources gives when every file is cached, and undefined (reading nothing) otherwise', async () => {
    const cache = new ContextStatCache(ctx);
    const entries = await sourceEntries();
    expect(hashSourcesFromCache(entries, { statCache: cache })).toBeUndefined();
    const full = await hashSources(entries, { statCache: cache });
    expect(hashSourcesFromCache(entries, { statCache: cache })).toBe(full);
    const sorted = await hashSources(entries);
    const paths = entries.map((e) => `0/app/${e.relPath}`);
    expect(hashSourcesFromCache(entries, { statCache: cache, paths })).toBe(await hashSources(entries, { paths }));
    expect(await hashSources(entries, { paths })).not.toBe(sorted);
    await writeFile(join(ctx, 'app/z.txt'), 'changed');
    expect(hashSourcesFromCache(await sourceEntries(), { statCache: cache })).toBeUndefined();
  });
  it('persists to a file atomically and loads it back', async () => {
    const file = join(base, 'cache', 'sub', 'stat-cache.json');
    const cache = new ContextStatCache(ctx);
    const h = await hashSources(await sourceEntries(), { statCache: cache });
    await cache.save(file, NOW);
    const text = await readFile(file, 'utf8');
    const [head, records] = text.split('\n');
    expect(JSON.parse(head!)).toMatchObject({ format: FORMAT, root: ctx, sources: [[expect.stringMatching(/^[0-9a-f]{64}$/), h]] });
    expect(JSON.parse(records!)).toHaveLength(4 * 7);
    expect(text).not.toContain(`${ctx}/`);
    const loaded = new ContextStatCache(ctx);
    await loaded.load(file);
    expect(loaded.size).toBe(cache.size);
    const counter = countingReader();
    expect(await hashSources(await sourceEntries(), { statCache: loaded, digestContent: counter.digestContent })).toBe(h);
    expect(counter.reads).toEqual([]);
  });
  it('loads a missing or malformed file as empty', async () => {
    const cache = new ContextStatCache(ctx);
    await cache.load(join(base, 'missing.json'));
    await writeFile(join(base, 'bad.json'), '{not json');
    await cache.load(join(base, 'bad.json'));
    await writeFile(join(base, 'foreign.json'), JSON.stringify({ format: 'other', entries: { '/x': {} } }));
    await cache.load(join(base, 'foreign.json'));
    await writeFile(
      join(base, 'older.json'),
      JSON.stringify({ format: 'strata-context-stat-cache/2', root: ctx, files: ['app/z.txt', 2, 0, 0, 0, 0, '0'.repeat(64)] }),
    );
    await cache.load(join(base, 'older.json'));
    await writeStatFile(join(base, 'partly.json'), ctx, [1, 2, 3, 4, 5, 6, 7, 'a']);
    await cache.load(join(base, 'partly.json'));
    await writeStatFile(join(base, 'elsewhere.json'), base, ['ctx/app/z.txt', 2, 0, 0, 0, 0, '0'.repeat(64)]);
    await cache.load(join(base, 'elsewhere.json'));
    await writeFile(join(base, 'broken-records.json'), `${JSON.stringify({ format: FORMAT, root: ctx, sources: [] })}\n["app/z.txt", 2, 0`);
    await cache.load(join(base, 'broken-records.json'));
    expect(cache.size).toBe(0);
  });
  it('a record whose digest is not sha256 hex is a miss, and files outside the root are never cached', async () => {
    const entries = await sourceEntries();
    const z = entries.find((e) => e.relPath === 'z.txt')!;
    const file = join(base, 'stats.json');
    await writeStatFile(file, ctx, ['app/z.txt', z.size, z.mtimeMs, z.ino, z.dev, z.mode, 'NOT-HEX']);
    const cache = new ContextStatCache(ctx);
    await cache.load(file);
    expect(cache.size).toBe(1);
    expect(cache.get(z)).toBeUndefined();
    const outside = new ContextStatCache(join(ctx, 'app', 'a'));
    outside.set(z, digestOf('zz'));
    expect(outside.size).toBe(0);
    expect(outside.get(z)).toBeUndefined();
  });
  it('keeps one file per context and prunes all but the most recently used', async () => {
    const dir = join(base, 'stats');
    expect(statCacheFile(dir, ctx)).not.toBe(statCacheFile(dir, join(base, 'other')));
    const entries = await sourceEntries();
    for (let i = 0; i < 34; i++) {
      const cache = new ContextStatCache(ctx);
      await hashSources(entries, { statCache: cache });
      await cache.save(join(dir, `${String(i).padStart(2, '0')}.json`), NOW);
      await utimes(join(dir, `${String(i).padStart(2, '0')}.json`), 1000 + i, 1000 + i);
    }
    const kept = (await readdir(dir)).sort();
    expect(kept).toHaveLength(32);
    expect(kept[0]).toBe('02.json');
  });
  it('an unchanged cache in use is kept among the recent: save moves its mtime to now, at most hourly', async () => {
    const file = join(base, 'used.json');
    const first = new ContextStatCache(ctx);
    await hashSources(await sourceEntries(), { statCache: first });
    await first.save(file, NOW);
    const written = new Date(NOW.getTime() - 2 * 60 * 60 * 1000);
    await utimes(file, written, written);
    const text = await readFile(file, 'utf8');

    const soon = new ContextStatCache(ctx);
    await soon.load(file);
    await hashSources(await sourceEntries(), { statCache: soon });
    expect(await soon.save(file, new Date(written.getTime() + 30 * 60 * 1000))).toBe(false);
    expect(Math.round((await stat(file)).mtimeMs)).toBe(written.getTime());

    const later = new ContextStatCache(ctx);
    await later.load(file);
    await hashSources(await sourceEntries(), { statCache: later });
    expect(await later.save(file, NOW)).toBe(false);
    expect(Math.round((await stat(file)).mtimeMs)).toBe(NOW.getTime());
    expect(await readFile(file, 'utf8')).toBe(text);
    // A cache never loaded from the file has nothing to say about its age.
    expect(await new ContextStatCache(ctx).save(join(base, 'never.json'), NOW)).toBe(false);
  });
});

describe('source sets remembered by listing fingerprint', () => {
  let saved = 0;
  /** A cache that knows only source sets: its records line is gone, so every answer comes from a set. */
  async function setsOnly(from: ContextStatCache): Promise<ContextStatCache> {
    const file = join(base, `sets-${++saved}.json`);
    await from.save(file, NOW);
    const [head] = (await readFile(file, 'utf8')).split('\n');
    await writeFile(file, `${head}\n[]`);
    const loaded = new ContextStatCache(ctx);
    await loaded.load(file);
    return loaded;
  }

  it('keys an unchanged listing from its set alone, as hashSources would', async () => {
    const cache = new ContextStatCache(ctx);
    const entries = await sourceEntries();
    const full = await hashSources(entries, { statCache: cache });
    const sets = await setsOnly(cache);
    expect(hashSourcesFromCache(await sourceEntries(), { statCache: sets })).toBe(full);
    expect(sets.size).toBe(0);
    const counter = countingReader();
    expect(await hashSources(await sourceEntries(), { statCache: sets, digestContent: counter.digestContent })).toBe(full);
    expect(counter.reads).toEqual([]);
  });
  it('misses when any stat a file record depends on moves, even with the content the same', async () => {
    const cache = new ContextStatCache(ctx);
    await hashSources(await sourceEntries(), { statCache: cache });
    const sets = await setsOnly(cache);
    await utimes(join(ctx, 'app/z.txt'), new Date(7000), new Date(7000));
    expect(hashSourcesFromCache(await sourceEntries(), { statCache: sets })).toBeUndefined();
  });
  it('a directory whose mtime moved keys the same', async () => {
    const cache = new ContextStatCache(ctx);
    const full = await hashSources(await sourceEntries(), { statCache: cache });
    const sets = await setsOnly(cache);
    await utimes(join(ctx, 'app/a'), new Date(9000), new Date(9000));
    expect(hashSourcesFromCache(await sourceEntries(), { statCache: sets })).toBe(full);
  });
  it('keeps apart listings that differ in key paths, ownership, modes, link targets or where the files are', async () => {
    const cache = new ContextStatCache(ctx);
    const entries = await sourceEntries();
    const asListed = await hashSources(entries, { statCache: cache });
    const other = entries.map((e) => `9/elsewhere/${e.relPath}`);
    const variants: Array<[ContextEntry[], Parameters<typeof hashSources>[1]]> = [
      [entries, { paths: other }],
      [entries, { includeOwnership: false }],
      [entries.map((e) => ({ ...e, uid: e.uid + 1 })), {}],
      [entries.map((e) => (e.type === 'file' ? { ...e, mode: e.mode ^ 0o100 } : e)), {}],
      [entries.map((e) => (e.type === 'symlink' ? { ...e, linkTarget: 'a-b' } : e)), {}],
    ];
    for (const [listed, options] of variants) {
      const fresh = await hashSources(listed, options);
      expect(fresh).not.toBe(asListed);
      expect(await hashSources(listed, { ...options, statCache: cache })).toBe(fresh);
    }
    expect(await hashSources(entries, { statCache: cache })).toBe(asListed);
    // A cache for another root remembers nothing of this listing.
    const inner = new ContextStatCache(join(ctx, 'app', 'a'));
    await hashSources(entries, { statCache: inner });
    await inner.save(join(base, 'inner.json'), NOW);
    expect(JSON.parse((await readFile(join(base, 'inner.json'), 'utf8')).split('\n')[0]!)).toMatchObject({ sources: [] });
    // The same files found at another path: other records, so another set.
    const moved = entries.map((e) => ({ ...e, absPath: e.absPath.replace('/app', '/moved') }));
    const sets = await setsOnly(cache);
    expect(hashSourcesFromCache(moved, { statCache: sets })).toBeUndefined();
  });
  it('keeps the most recent few dozen sets, and saving an unchanged cache writes nothing', async () => {
    const cache = new ContextStatCache(ctx);
    const entries = await sourceEntries();
    const first = await hashSources(entries, { statCache: cache, paths: entries.map((e) => `0/${e.relPath}`) });
    for (let i = 1; i <= 64; i++) await hashSources(entries, { statCache: cache, paths: entries.map((e) => `${i}/${e.relPath}`) });
    const file = join(base, 'sets.json');
    expect(await cache.save(file, NOW)).toBe(true);
    expect(await cache.save(file, NOW)).toBe(false);
    const head = JSON.parse((await readFile(file, 'utf8')).split('\n')[0]!) as { sources: Array<[string, string]> };
    expect(head.sources).toHaveLength(64);
    expect(head.sources.map(([, d]) => d)).not.toContain(first);
    const loaded = new ContextStatCache(ctx);
    await loaded.load(file);
    expect(await hashSources(entries, { statCache: loaded, paths: entries.map((e) => `64/${e.relPath}`) })).toBe(head.sources[63]![1]);
    expect(await loaded.save(file, NOW)).toBe(false);
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
    await expect(hashSources(entries)).rejects.toMatchObject({
      code: 'E_IO',
      message: expect.stringContaining(`${join(ctx, 'app/z.txt')} changed while the build was reading it`),
    });

    const again = await sourceEntries();
    await rm(join(ctx, 'app/a-b'));
    await symlink('/etc/passwd', join(ctx, 'app/a-b'));
    await expect(hashSources(again)).rejects.toMatchObject({ code: 'E_IO', message: expect.stringContaining(join(ctx, 'app/a-b')) });
  });
});
