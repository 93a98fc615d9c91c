/**
 * The built `strata` program and its V8 code cache (cli/main.ts, cli/code-cache.ts): the first run of
 * a command leaves a cache that the next run uses, a cache that is damaged or that others could have
 * written is not used (and is replaced), and none of it changes what a command prints or its exit code.
 * Also the program without its bundle (a build by tsc alone), which imports the unbundled entry.
 */
import { execFile, spawn } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LONGEST_RUN_TO_CACHE_MS, readCodeCache, sha256 } from '../../cli/code-cache.js';
import { CLI, REPO_ROOT, strata, type CliResult } from '../helpers/cli.js';

const execFileP = promisify(execFile);
const BUNDLE = join(REPO_ROOT, 'dist', 'cli', 'strata.cjs');
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const uid = process.getuid!();

let work: string;
let cacheHome: string;
let dockerfile: string;
beforeAll(() => {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run \`make build\``);
});
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-code-cache-'));
  cacheHome = join(work, 'xdg-cache');
  dockerfile = join(work, 'Dockerfile');
  writeFileSync(dockerfile, 'FROM alpine:3.20 AS base\nRUN echo hi\nFROM base\nCOPY . /app\n');
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

const cacheDir = (): string => join(cacheHome, 'strata', 'code-cache');
const cacheFiles = (): string[] => (existsSync(cacheDir()) ? readdirSync(cacheDir()).sort() : []);
const parse = (env: Record<string, string> = {}): Promise<CliResult> => strata(['parse', '-f', dockerfile], { XDG_CACHE_HOME: cacheHome, ...env });

/** The one cache file of `command`, and what identifies its writing. */
function cacheOf(command: string): { path: string; ino: number; mtimeMs: number; mode: number } {
  const names = cacheFiles().filter((n) => n.endsWith(`-${command}.v8cache`));
  expect(names).toHaveLength(1);
  const path = join(cacheDir(), names[0]!);
  const stat = statSync(path);
  return { path, ino: stat.ino, mtimeMs: stat.mtimeMs, mode: stat.mode & 0o777 };
}

const bundleDigest = (): Buffer => sha256(readFileSync(BUNDLE));

describe('the strata program: V8 code cache', () => {
  it('the first run of a command writes its cache, which the second uses as it is', async () => {
    const first = await parse();
    expect(first.code).toBe(0);
    expect(first.stderr).toBe('');
    const written = cacheOf('parse');
    expect(written.mode).toBe(0o600);
    expect(statSync(cacheDir()).mode & 0o777).toBe(0o700);
    expect(readCodeCache(written.path, bundleDigest(), uid)).toBeDefined();

    const second = await parse();
    expect(second).toEqual(first);
    // Written only when there was none or V8 refused it: the same file means V8 took it.
    const after = cacheOf('parse');
    expect([after.ino, after.mtimeMs]).toEqual([written.ino, written.mtimeMs]);
  });

  it('each command has its own cache: --version does not decide what parse gets', async () => {
    const version = await strata(['--version'], { XDG_CACHE_HOME: cacheHome });
    expect(version).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    expect(cacheFiles()).toHaveLength(1);
    cacheOf('other');
    expect((await parse()).code).toBe(0);
    cacheOf('parse');
    expect(cacheFiles()).toHaveLength(2);
  });

  it('runs under other Node options keep a cache of their own, so alternating never rewrites either', async () => {
    expect((await parse()).code).toBe(0);
    const plain = cacheOf('parse');
    const heap = { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-old-space-size=1536`.trim() };
    expect((await parse(heap)).code).toBe(0);
    const parseCaches = (): string[] => cacheFiles().filter((n) => n.endsWith('-parse.v8cache'));
    expect(parseCaches()).toHaveLength(2);
    const flagged = parseCaches().map((n) => join(cacheDir(), n)).find((f) => f !== plain.path)!;
    const flaggedStat = statSync(flagged);
    // V8 refuses cached data made under other flags: with one shared file each switch rewrote it.
    expect((await parse()).code).toBe(0);
    expect((await parse(heap)).code).toBe(0);
    const plainAfter = statSync(plain.path);
    expect([plainAfter.ino, plainAfter.mtimeMs]).toEqual([plain.ino, plain.mtimeMs]);
    expect([statSync(flagged).ino, statSync(flagged).mtimeMs]).toEqual([flaggedStat.ino, flaggedStat.mtimeMs]);
  });

  it('a damaged cache is not used: the command works and the cache is written again', async () => {
    const first = await parse();
    const { path } = cacheOf('parse');
    const bytes = readFileSync(path);
    // Handed to V8, a payload damaged like this would crash the process.
    for (let i = 200; i < bytes.length; i += 997) bytes[i] = bytes[i]! ^ 0xff;
    writeFileSync(path, bytes);
    expect(readCodeCache(path, bundleDigest(), uid)).toBeUndefined();

    expect(await parse()).toEqual(first);
    expect(readCodeCache(path, bundleDigest(), uid)).toBeDefined();

    writeFileSync(path, 'not a cache');
    expect(await parse()).toEqual(first);
    expect(readCodeCache(path, bundleDigest(), uid)).toBeDefined();
  });

  it('a cache file others could have written is not used, and is replaced', async () => {
    const first = await parse();
    const written = cacheOf('parse');
    chmodSync(written.path, 0o666);
    expect(await parse()).toEqual(first);
    const replaced = cacheOf('parse');
    expect(replaced.ino).not.toBe(written.ino);
    expect(replaced.mode).toBe(0o600);
  });

  it.skipIf(uid !== 0)('a cache file owned by another user is not used (as root)', async () => {
    const first = await parse();
    const written = cacheOf('parse');
    chownSync(written.path, 65534, 65534);
    expect(await parse()).toEqual(first);
    const replaced = cacheOf('parse');
    expect(replaced.ino).not.toBe(written.ino);
    expect(statSync(replaced.path).uid).toBe(0);
  });

  it('STRATA_CODE_CACHE=off reads and writes nothing', async () => {
    const run = await parse({ STRATA_CODE_CACHE: 'off' });
    expect(run.code).toBe(0);
    expect(existsSync(cacheHome)).toBe(false);
  });

  it('a failed command writes no cache, and keeps its exit code', async () => {
    const run = await strata(['parse', '-f', join(work, 'absent')], { XDG_CACHE_HOME: cacheHome });
    expect(run.code).toBe(1);
    expect(cacheFiles()).toEqual([]);
    const usage = await strata(['parse', '--no-such-flag'], { XDG_CACHE_HOME: cacheHome });
    expect(usage.code).toBe(2);
    expect(cacheFiles()).toEqual([]);
  });

  it('a long run writes no cache (V8 has dropped its start-up code by then); a short one does', async () => {
    const text = readFileSync(dockerfile, 'utf8');
    // parse -f - waits for its standard input: held open past the limit, the run is a long one.
    const slow = spawn(CLI, ['parse', '-f', '-'], { env: { PATH: process.env.PATH, HOME: process.env.HOME, XDG_CACHE_HOME: cacheHome }, stdio: ['pipe', 'pipe', 'inherit'] });
    const done = new Promise<number | null>((resolve) => slow.on('close', resolve));
    await new Promise((r) => setTimeout(r, LONGEST_RUN_TO_CACHE_MS + 200));
    slow.stdin.end(text);
    expect(await done).toBe(0);
    expect(cacheFiles()).toEqual([]);
    expect((await parse()).code).toBe(0);
    cacheOf('parse');
  });

  it('a cache directory that cannot be made changes nothing', async () => {
    writeFileSync(join(work, 'file'), '');
    const withCache = await parse();
    const run = await strata(['parse', '-f', dockerfile], { XDG_CACHE_HOME: join(work, 'file') });
    expect(run).toEqual(withCache);
    const noHome = await strata(['parse', '-f', dockerfile], { HOME: 'relative', XDG_CACHE_HOME: undefined });
    expect(noHome).toEqual(withCache);
  });
});

describe('the strata program without its bundle', () => {
  /** dist/cli as tsc wrote it (no strata.cjs), beside the real dist/src, node_modules and package.json. */
  function tscOnlyCopy(): string {
    const root = join(work, 'pkg');
    mkdirSync(join(root, 'dist'), { recursive: true });
    cpSync(join(REPO_ROOT, 'dist', 'cli'), join(root, 'dist', 'cli'), { recursive: true, filter: (src) => !src.endsWith('.cjs') });
    symlinkSync(join(REPO_ROOT, 'dist', 'src'), join(root, 'dist', 'src'));
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'));
    cpSync(join(REPO_ROOT, 'package.json'), join(root, 'package.json'));
    return join(root, 'dist', 'cli', 'main.js');
  }

  async function run(main: string, args: string[]): Promise<CliResult> {
    try {
      const { stdout, stderr } = await execFileP(process.execPath, [main, ...args], { env: { PATH: process.env.PATH, XDG_CACHE_HOME: cacheHome }, cwd: work });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }

  it('imports the unbundled entry: same output, no cache', async () => {
    const main = tscOnlyCopy();
    expect(await run(main, ['--version'])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    const bundled = await strata(['parse', '-f', dockerfile], { STRATA_CODE_CACHE: 'off' });
    expect(await run(main, ['parse', '-f', dockerfile])).toEqual(bundled);
    expect((await run(main, ['parse', '--no-such-flag'])).code).toBe(2);
    expect(existsSync(cacheHome)).toBe(false);
  });

  it('does not use a bundle older than tsc output (a tsc rebuild after make build)', async () => {
    const main = tscOnlyCopy();
    const stale = join(work, 'pkg', 'dist', 'cli', 'strata.cjs');
    writeFileSync(stale, "process.stdout.write('stale bundle\\n');");
    const past = Date.now() / 1000 - 60;
    utimesSync(stale, past, past);
    expect(await run(main, ['--version'])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    // The same file, newer than entry.js, is what runs.
    utimesSync(stale, new Date(), new Date());
    expect((await run(main, ['--version'])).stdout).toBe('stale bundle\n');
  });
});
