import { chmodSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CACHED_COMMANDS, LONGEST_RUN_TO_CACHE_MS, codeCacheDir, codeCacheFile, commandOf, leavesCodeCache, readCodeCache, runtimeFlags, sha256, writeCodeCache } from '../../cli/code-cache.js';
import { buildProgram } from '../../cli/run.js';

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-code-cache-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

const uid = process.getuid!();
const bundle = sha256(Buffer.from('the bundle'));
const runtime = { version: 'v20.20.2', arch: 'x64' };
const payload = Buffer.from('cached data '.repeat(1000));

describe('the code cache: which file', () => {
  it('is keyed by the first non-option word when it is a command, else "other"', () => {
    expect(commandOf(['build', '.', '-t', 'x'])).toBe('build');
    expect(commandOf(['--debug', 'inspect', 'alpine'])).toBe('inspect');
    expect(commandOf([])).toBe('other');
    expect(commandOf(['--version'])).toBe('other');
    expect(commandOf(['frobnicate', 'build'])).toBe('other');
    // Help for a command would otherwise leave that command a cache of the option parser alone.
    expect(commandOf(['build', '--help'])).toBe('other');
  });

  it('is left by a run that succeeded within the limit, and by no other', () => {
    expect(leavesCodeCache(0, 150)).toBe(true);
    expect(leavesCodeCache(0, LONGEST_RUN_TO_CACHE_MS)).toBe(false);
    expect(leavesCodeCache(0, 1400)).toBe(false);
    expect(leavesCodeCache(1, 150)).toBe(false);
    expect(leavesCodeCache(2, 150)).toBe(false);
  });

  it('knows every command the program has', () => {
    const ctx = { stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough(), env: {}, cwd: work, isTty: false };
    const names = buildProgram(ctx).commands.map((c) => c.name());
    expect([...CACHED_COMMANDS].sort()).toEqual([...names].sort());
  });

  it('lives under XDG_CACHE_HOME, else ~/.cache; off, or with no absolute home, there is none', () => {
    expect(codeCacheDir({ XDG_CACHE_HOME: '/x', HOME: '/home/u' })).toBe('/x/strata/code-cache');
    expect(codeCacheDir({ HOME: '/home/u' })).toBe('/home/u/.cache/strata/code-cache');
    expect(codeCacheDir({ XDG_CACHE_HOME: 'relative', HOME: '/home/u' })).toBe('/home/u/.cache/strata/code-cache');
    expect(codeCacheDir({ HOME: 'relative' })).toBeUndefined();
    expect(codeCacheDir({ HOME: '' })).toBeUndefined();
    expect(codeCacheDir({ XDG_CACHE_HOME: '/x', STRATA_CODE_CACHE: 'off' })).toBeUndefined();
  });

  it('is one per bundle, Node release, architecture, set of Node options and command', () => {
    const file = codeCacheFile('/c', bundle, runtime, 'build');
    expect(file).toBe(`/c/${bundle.toString('hex').slice(0, 16)}-node20.20.2-x64-build.v8cache`);
    expect(codeCacheFile('/c', bundle, { ...runtime, flags: [] }, 'build')).toBe(file);
    const others = [
      codeCacheFile('/c', sha256(Buffer.from('another bundle')), runtime, 'build'),
      codeCacheFile('/c', bundle, { ...runtime, version: 'v20.20.3' }, 'build'),
      codeCacheFile('/c', bundle, { ...runtime, arch: 'arm64' }, 'build'),
      codeCacheFile('/c', bundle, runtime, 'other'),
      codeCacheFile('/c', bundle, { ...runtime, flags: runtimeFlags(['--max-old-space-size=4096'], undefined) }, 'build'),
      codeCacheFile('/c', bundle, { ...runtime, flags: runtimeFlags(['--cpu-prof'], '--max-old-space-size=4096') }, 'build'),
    ];
    expect(new Set([file, ...others]).size).toBe(7);
    // The same option given either way is the same run to V8.
    expect(codeCacheFile('/c', bundle, { ...runtime, flags: runtimeFlags([], '--max-old-space-size=4096') }, 'build')).toBe(others[4]);
    expect(runtimeFlags([], '  ')).toEqual([]);
  });
});

describe('the code cache: reading and writing', () => {
  const file = (): string => join(work, 'cache', 'strata', 'code-cache', 'a.v8cache');

  it('reads back what it wrote, in a private directory and file', () => {
    writeCodeCache(file(), bundle, () => payload);
    expect(readCodeCache(file(), bundle, uid)).toEqual(payload);
    expect(statSync(join(work, 'cache', 'strata', 'code-cache')).mode & 0o777).toBe(0o700);
    expect(statSync(file()).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(work, 'cache', 'strata', 'code-cache'))).toEqual(['a.v8cache']);
  });

  it('refuses a cache of another bundle, a damaged one, and one cut short', () => {
    writeCodeCache(file(), bundle, () => payload);
    expect(readCodeCache(file(), sha256(Buffer.from('another bundle')), uid)).toBeUndefined();
    const bytes = readFileSync(file());
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 100] = flipped[flipped.length - 100]! ^ 0xff;
    writeFileSync(file(), flipped);
    expect(readCodeCache(file(), bundle, uid)).toBeUndefined();
    writeFileSync(file(), bytes.subarray(0, bytes.length - 1));
    expect(readCodeCache(file(), bundle, uid)).toBeUndefined();
    writeFileSync(file(), bytes.subarray(0, 40));
    expect(readCodeCache(file(), bundle, uid)).toBeUndefined();
    writeFileSync(file(), bytes);
    expect(readCodeCache(file(), bundle, uid)).toEqual(payload);
  });

  it('refuses a file others could have written or put there: it or its directory writable by group or world or owned by another user, or a symlink', () => {
    writeCodeCache(file(), bundle, () => payload);
    chmodSync(file(), 0o620);
    expect(readCodeCache(file(), bundle, uid)).toBeUndefined();
    chmodSync(file(), 0o602);
    expect(readCodeCache(file(), bundle, uid)).toBeUndefined();
    chmodSync(file(), 0o644);
    expect(readCodeCache(file(), bundle, uid)).toEqual(payload);
    expect(readCodeCache(file(), bundle, uid + 1)).toBeUndefined();
    expect(readCodeCache(file(), bundle, undefined)).toBeUndefined();
    const link = join(work, 'cache', 'strata', 'code-cache', 'link.v8cache');
    symlinkSync(file(), link);
    expect(readCodeCache(link, bundle, uid)).toBeUndefined();
    // A directory others may write to could have had anything renamed into it.
    chmodSync(join(work, 'cache', 'strata', 'code-cache'), 0o777);
    expect(readCodeCache(file(), bundle, uid)).toBeUndefined();
    chmodSync(join(work, 'cache', 'strata', 'code-cache'), 0o700);
    expect(readCodeCache(file(), bundle, uid)).toEqual(payload);
  });

  it('never throws: a missing file reads as none, and a write that cannot happen is dropped', () => {
    expect(readCodeCache(join(work, 'absent.v8cache'), bundle, uid)).toBeUndefined();
    writeFileSync(join(work, 'not-a-dir'), '');
    expect(() => writeCodeCache(join(work, 'not-a-dir', 'x', 'a.v8cache'), bundle, () => payload)).not.toThrow();
    expect(() =>
      writeCodeCache(file(), bundle, () => {
        throw new Error('V8 said no');
      }),
    ).not.toThrow();
    expect(readdirSync(join(work, 'cache', 'strata', 'code-cache'))).toEqual([]);
  });

  it('keeps only the newest files of the directory', () => {
    const dir = join(work, 'cache');
    mkdirSync(dir);
    const old = Date.now() / 1000 - 3600;
    for (let i = 0; i < 30; i++) {
      writeFileSync(join(dir, `old-${i}.v8cache`), 'x');
      utimesSync(join(dir, `old-${i}.v8cache`), old + i, old + i);
    }
    writeFileSync(join(dir, 'unrelated.txt'), 'x');
    utimesSync(join(dir, 'unrelated.txt'), old, old);
    writeCodeCache(join(dir, 'new.v8cache'), bundle, () => payload);
    const left = readdirSync(dir).sort();
    expect(left).toContain('new.v8cache');
    expect(left).toContain('unrelated.txt');
    expect(left).toContain('old-29.v8cache');
    expect(left).not.toContain('old-6.v8cache');
    expect(left.length).toBe(24 + 1);
  });
});
