import { spawn, type SpawnOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { StrataError } from '../errors/index.js';
import { DEFAULT_PATH } from '../oci/index.js';
import type { RunRequest } from './types.js';

/** How many of the last output lines a failure repeats. */
export const TAIL_LINES = 20;

/** Keeps the last lines of a command's output (both streams, as they interleaved). */
export class OutputTail {
  private readonly lines: string[] = [];
  private partial = '';

  push(chunk: Buffer): void {
    const text = this.partial + chunk.toString('utf8');
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.add(line);
    // A runaway line without newlines must not grow without bound.
    if (this.partial.length > 4096) this.partial = this.partial.slice(-4096);
  }

  last(): string[] {
    return this.partial === '' ? [...this.lines] : [...this.lines, this.partial].slice(-TAIL_LINES);
  }

  private add(line: string): void {
    this.lines.push(line.length > 4096 ? `${line.slice(0, 4096)}…` : line);
    if (this.lines.length > TAIL_LINES) this.lines.shift();
  }
}

export interface ProcessOptions {
  env: NodeJS.ProcessEnv;
  stdin?: string | undefined;
  uid?: number | undefined;
  gid?: number | undefined;
  onOutput?: RunRequest['onOutput'];
  signal?: AbortSignal | undefined;
}

export interface ProcessResult {
  exitCode: number;
  tail: string[];
}

/**
 * Runs a program to completion, streaming its output to `onOutput` and keeping the last lines. It runs in its own
 * process group so that an abort can stop the whole tree it started.
 */
export async function runProcess(file: string, args: readonly string[], options: ProcessOptions): Promise<ProcessResult> {
  options.signal?.throwIfAborted();
  const tail = new OutputTail();
  const spawnOptions: SpawnOptions = { env: options.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true };
  if (options.uid !== undefined) spawnOptions.uid = options.uid;
  if (options.gid !== undefined) spawnOptions.gid = options.gid;
  const child = spawn(file, [...args], spawnOptions);
  const onAbort = (): void => {
    if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const forward = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
    tail.push(chunk);
    options.onOutput?.(stream, chunk);
  };
  child.stdout?.on('data', forward('stdout'));
  child.stderr?.on('data', forward('stderr'));
  child.stdin?.on('error', () => undefined);
  child.stdin?.end(options.stdin ?? '');
  try {
    const exitCode = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => resolve(code ?? (signal === null ? 1 : 128 + signalNumber(signal))));
    });
    if (options.signal?.aborted === true) throw new StrataError('E_ABORTED', `${file} was aborted`);
    return { exitCode, tail: tail.last() };
  } catch (cause) {
    if (cause instanceof StrataError) throw cause;
    throw new StrataError('E_IO', `cannot start ${file}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

function signalNumber(signal: NodeJS.Signals): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };
  return numbers[signal] ?? 0;
}

/** The error for a step whose command exited non-zero: names the code, and repeats the last lines as the hint. */
export function runFailed(request: RunRequest, exitCode: number, tail: readonly string[]): StrataError {
  const command = request.args.join(' ');
  const shown = command.length > 200 ? `${command.slice(0, 200)}…` : command;
  const lines = tail.filter((line, i) => line !== '' || i < tail.length - 1);
  return new StrataError('E_RUN_FAILED', `${request.where}: RUN ${shown} exited with code ${exitCode}`, {
    hint: lines.length > 0 ? `last output lines:\n${lines.join('\n')}` : 'the command printed nothing',
  });
}

/** Finds an executable on `PATH` (the given one, or a standard system PATH). */
export function findBinary(name: string, path = DEFAULT_PATH): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? name : undefined;
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Docker's PATH for a step whose environment has none. */

/** The step's environment as the command sees it: docker adds a default PATH when the image has none. */
export function stepEnv(env: readonly string[]): string[] {
  return env.some((e) => e.startsWith('PATH=')) ? [...env] : [...env, `PATH=${DEFAULT_PATH}`];
}

export function isRoot(): boolean {
  return typeof process.geteuid === 'function' && process.geteuid() === 0;
}
