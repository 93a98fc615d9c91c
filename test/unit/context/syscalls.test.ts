import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { hashSources, listSourceTree, openBuildContext, resolveCopySources, type SourceRoot } from '../../../src/context/index.js';
import { makeTree, tempBase } from './tree.js';

/** Every path the context module hands to the file system, recorded by pass-through mocks. */
const { touched, wrap } = vi.hoisted(() => {
  const touched = { paths: [] as string[], on: false };
  const wrap =
    <A extends unknown[], R>(fn: (p: string, ...rest: A) => R) =>
    (p: string, ...rest: A): R => {
      if (touched.on) touched.paths.push(String(p));
      return fn(p, ...rest);
    };
  return { touched, wrap };
});

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    lstat: wrap(real.lstat as (p: string) => ReturnType<typeof real.lstat>),
    stat: wrap(real.stat as (p: string) => ReturnType<typeof real.stat>),
    readlink: wrap(real.readlink as (p: string) => ReturnType<typeof real.readlink>),
    readdir: wrap(real.readdir as (p: string, o?: unknown) => ReturnType<typeof real.readdir>),
    readFile: wrap(real.readFile as (p: string, o?: unknown) => ReturnType<typeof real.readFile>),
    open: wrap(real.open as (p: string, f?: number) => ReturnType<typeof real.open>),
    realpath: wrap(real.realpath as (p: string) => ReturnType<typeof real.realpath>),
  };
});

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  return {
    ...real,
    lstatSync: wrap(real.lstatSync as (p: string, o?: unknown) => ReturnType<typeof real.lstatSync>),
    statSync: wrap(real.statSync as (p: string, o?: unknown) => ReturnType<typeof real.statSync>),
    openSync: wrap(real.openSync as (p: string, f?: number) => number),
    readdirSync: wrap(real.readdirSync as (p: string, o?: unknown) => ReturnType<typeof real.readdirSync>),
    readlinkSync: wrap(real.readlinkSync as (p: string) => ReturnType<typeof real.readlinkSync>),
  };
});

let base: string;
let ctx: string;
let root: SourceRoot;

beforeEach(async () => {
  base = await tempBase('syscalls');
  ctx = join(base, 'ctx');
  await makeTree(base, { outside: { secret: 'S', deeper: { x: 'S' } } });
  await makeTree(ctx, {
    'etc-passwd': { link: '/etc/passwd' },
    up: { link: '../outside/secret' },
    'up-dir': { link: '../../outside' },
    'abs-dir': { link: join(base, 'outside') },
    a: { climb: { link: '../../../..' } },
    tree: { out: { link: '../../outside' }, f: 'f' },
    '.dockerignore': 'ignored\n',
  });
  root = await openBuildContext(ctx);
  touched.paths = [];
  touched.on = true;
});
afterEach(async () => {
  touched.on = false;
  await rm(base, { recursive: true, force: true });
});

describe('file-system calls stay inside the root', () => {
  it('for every hostile source, resolved, listed and hashed', async () => {
    const sources = [
      'etc-passwd',
      'up',
      'up-dir',
      'up-dir/secret',
      'up-dir/deeper/x',
      'abs-dir/secret',
      'abs-dir/*',
      'up-dir/*/x',
      'a/climb/outside/secret',
      'a/climb/../../outside',
      '../outside/secret',
      '/outside/*',
      '*',
      'tree',
    ];
    for (const source of sources) {
      const rs = await resolveCopySources(root, [source]).catch(() => []);
      for (const r of rs) {
        for (const m of r.matches) {
          const tree = m.isDir ? await listSourceTree(root, m.relPath) : [];
          await hashSources([m.entry, ...tree]);
        }
      }
    }
    expect(touched.paths.length).toBeGreaterThan(20);
    const outside = touched.paths.filter((p) => p !== ctx && !p.startsWith(ctx + '/'));
    expect(outside).toEqual([]);
  });
});
