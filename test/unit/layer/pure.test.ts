import { describe, expect, it } from 'vitest';
import { isStrataError } from '../../../src/errors/index.js';
import { classifyWhiteout, clampMtime, compareLayerPaths, safeEntryPath, sortLayerEntries } from '../../../src/layer/index.js';

describe('clampMtime', () => {
  it('clamps to SOURCE_DATE_EPOCH, never raises', () => {
    expect(clampMtime(2000, { sourceDateEpoch: 1000 })).toBe(1000);
    expect(clampMtime(500, { sourceDateEpoch: 1000 })).toBe(500);
    expect(clampMtime(2000, { sourceDateEpoch: 1000, normalizeMtime: true })).toBe(1000);
  });
  it('normalizes to 0 only when asked, else keeps', () => {
    expect(clampMtime(2000, { normalizeMtime: true })).toBe(0);
    expect(clampMtime(2000, {})).toBe(2000);
  });
});

describe('layer path order', () => {
  it('compares component by component, so a directory is followed by its contents', () => {
    expect(compareLayerPaths('a/b', 'a-b')).toBeLessThan(0);
    expect(compareLayerPaths('a', 'a/b')).toBeLessThan(0);
    expect(compareLayerPaths('a/b', 'a.b')).toBeLessThan(0);
    expect(compareLayerPaths('a/z', 'aa')).toBeLessThan(0);
  });
  it('puts whiteouts before their siblings', () => {
    const sorted = sortLayerEntries(['-x', 'a', 'a/-b', 'a/.wh.c', 'a/.wh..wh..opq', '.wh.z', 'a/b'].map((path) => ({ path })));
    expect(sorted.map((e) => e.path)).toEqual(['.wh.z', '-x', 'a', 'a/.wh..wh..opq', 'a/.wh.c', 'a/-b', 'a/b']);
  });
  it('compares UTF-8 bytes, not UTF-16 code units', () => {
    // U+FF21 (EF BC A1) sorts before U+1F600 (F0 9F 98 80) as bytes, but after it as UTF-16 (FF21 > D83D).
    expect(compareLayerPaths('\uff21', '\u{1f600}')).toBeLessThan(0);
    expect(compareLayerPaths('Z', 'a')).toBeLessThan(0);
  });
  it('sorts and refuses duplicates', () => {
    const sorted = sortLayerEntries([{ path: 'a-b' }, { path: 'a/b' }, { path: 'a' }, { path: 'a/b/c' }]);
    expect(sorted.map((e) => e.path)).toEqual(['a', 'a/b', 'a/b/c', 'a-b']);
    expect(() => sortLayerEntries([{ path: 'x' }, { path: 'y' }, { path: 'x' }])).toThrow(/"x" twice/);
  });
});

describe('safeEntryPath', () => {
  it('normalizes harmless names', () => {
    expect(safeEntryPath('./a/b/')).toBe('a/b');
    expect(safeEntryPath('a/./b/../c')).toBe('a/c');
    expect(safeEntryPath('./')).toBe('.');
    expect(safeEntryPath('..foo/bar')).toBe('..foo/bar');
  });
  it.each(['../evil', 'a/../../evil', '..', '/etc/passwd', '/', '', 'a\0b'])('refuses %j', (name) => {
    let error: unknown;
    try {
      safeEntryPath(name, 'test.tar');
    } catch (e) {
      error = e;
    }
    expect(isStrataError(error, 'E_LAYER_UNSAFE')).toBe(true);
    expect((error as Error).message).toContain('test.tar');
  });
});

describe('classifyWhiteout', () => {
  it('matches the opaque marker exactly, before the generic prefix', () => {
    expect(classifyWhiteout('dir/.wh..wh..opq')).toEqual({ kind: 'opaque', dir: 'dir' });
    expect(classifyWhiteout('.wh..wh..opq')).toEqual({ kind: 'opaque', dir: '.' });
  });
  it('reads .wh.NAME as a deletion of NAME', () => {
    expect(classifyWhiteout('a/b/.wh.gone')).toEqual({ kind: 'whiteout', target: 'a/b/gone' });
    expect(classifyWhiteout('.wh.top')).toEqual({ kind: 'whiteout', target: 'top' });
    expect(classifyWhiteout('a/.wh..wh..opqx')).toEqual({ kind: 'whiteout', target: 'a/.wh..opqx' });
  });
  it('leaves other names alone', () => {
    expect(classifyWhiteout('a/wh.x')).toEqual({ kind: 'entry' });
    expect(classifyWhiteout('a/x.wh.y')).toEqual({ kind: 'entry' });
  });
});

describe('classifyWhiteout refuses whiteouts of . and ..', () => {
  it('throws E_LAYER_UNSAFE', () => {
    expect(() => classifyWhiteout('.wh...')).toThrow(/refused/);
    expect(() => classifyWhiteout('a/.wh..')).toThrow(/refused/);
    expect(classifyWhiteout('a/.wh.b')).toEqual({ kind: 'whiteout', target: 'a/b' });
  });
});
