/**
 * The built `strata` program (cli/main.ts, package.json's "bin"): it runs the esbuild bundle, and without
 * one (a build by tsc alone), or with one older than tsc's output, it imports the unbundled entry; either
 * way a command prints the same and exits the same.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REPO_ROOT, strata, type CliResult } from '../helpers/cli.js';

const execFileP = promisify(execFile);
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let work: string;
let dockerfile: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-program-'));
  dockerfile = join(work, 'Dockerfile');
  writeFileSync(dockerfile, 'FROM alpine:3.20 AS base\nRUN echo hi\nFROM base\nCOPY . /app\n');
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
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
      const { stdout, stderr } = await execFileP(process.execPath, [main, ...args], { env: { PATH: process.env.PATH }, cwd: work });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }

  it('imports the unbundled entry: same output', async () => {
    const main = tscOnlyCopy();
    expect(await run(main, ['--version'])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    const bundled = await strata(['parse', '-f', dockerfile]);
    expect(await run(main, ['parse', '-f', dockerfile])).toEqual(bundled);
    expect((await run(main, ['parse', '--no-such-flag'])).code).toBe(2);
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
