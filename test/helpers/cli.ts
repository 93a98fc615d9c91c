import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
/** The program package.json's "bin" names. */
export const CLI = join(REPO_ROOT, 'dist', 'cli', 'main.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built `strata` program (make test builds it first) as a user would. */
export async function strata(args: string[], env: Record<string, string | undefined> = {}, options: { cwd?: string; uid?: number } = {}): Promise<CliResult> {
  const argv = options.uid === undefined ? [CLI, ...args] : ['setpriv', `--reuid=${options.uid}`, `--regid=${options.uid}`, '--clear-groups', CLI, ...args];
  try {
    const { stdout, stderr } = await run(argv[0]!, argv.slice(1), {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      cwd: options.cwd ?? REPO_ROOT,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** The trimmed stdout of a run that must have succeeded; else an error with all it printed. */
export function ok(result: CliResult): string {
  if (result.code !== 0) throw new Error(`strata exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  return result.stdout.trim();
}

export async function tool(cmd: string, args: string[], options: { cwd?: string } = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(cmd, args, { maxBuffer: 64 * 1024 * 1024, ...(options.cwd ? { cwd: options.cwd } : {}) });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
