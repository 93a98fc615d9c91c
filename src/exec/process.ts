import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, constants, readFileSync, readdirSync } from 'node:fs';
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
  /** Working directory of the program (default: this process's). */
  cwd?: string | undefined;
  stdin?: string | undefined;
  uid?: number | undefined;
  gid?: number | undefined;
  onOutput?: RunRequest['onOutput'];
  signal?: AbortSignal | undefined;
  /** Called with the program's pid once it started. */
  onSpawn?: ((pid: number) => void) | undefined;
  /**
   * For programs with no namespace to die with (proot, inplace, an OCI runtime): a watchdog kills the program's
   * process group if strata itself is killed, even by SIGKILL, then runs `cleanup`'s commands (argv each) in order.
   */
  killWithStrata?: boolean | { cleanup: ReadonlyArray<readonly string[]> } | undefined;
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
  const aborted = (): boolean => options.signal?.aborted === true;
  // Aborted while the step was being set up: the same typed error as an abort of the running program.
  if (aborted()) throw new StrataError('E_ABORTED', `${file} was aborted`);
  const tail = new OutputTail();
  const spawnOptions: SpawnOptions = { env: options.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true };
  if (options.cwd !== undefined) spawnOptions.cwd = options.cwd;
  if (options.uid !== undefined) spawnOptions.uid = options.uid;
  if (options.gid !== undefined) spawnOptions.gid = options.gid;
  const child = spawn(file, [...args], spawnOptions);
  if (child.pid !== undefined) options.onSpawn?.(child.pid);
  const dies = options.killWithStrata;
  const watchdog = dies !== undefined && dies !== false && child.pid !== undefined ? startWatchdog(child.pid, dies === true ? [] : dies.cleanup) : undefined;
  const onAbort = (): void => {
    if (child.pid !== undefined) killSession(child.pid);
    else child.kill('SIGKILL');
  };
  // When the program is done, whatever it left running in its session goes too, as docker stops a container's
  // processes when its main process exits: a leftover would hold the output pipes open (and outlive strata).
  child.once('exit', () => {
    if (child.pid !== undefined) killSession(child.pid);
  });
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
    if (aborted()) throw new StrataError('E_ABORTED', `${file} was aborted`);
    return { exitCode, tail: tail.last() };
  } catch (cause) {
    if (cause instanceof StrataError) throw cause;
    throw new StrataError('E_IO', `cannot start ${file}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    // Its group: the watchdog and the `sleep` it waits in.
    if (watchdog?.pid !== undefined) killSession(watchdog.pid);
  }
}

/**
 * A small process that outlives strata only to kill `pgid` and run `cleanup`: setpriv gives it SIGTERM when strata
 * dies (its parent death signal), and its trap kills the group. It runs in a session of its own, so the group kill
 * misses it. Without `sleep` (an image laid onto / by inplace may lack it) it ends at once rather than spin.
 */
function startWatchdog(pgid: number, cleanup: ReadonlyArray<readonly string[]>): ChildProcess | undefined {
  const setpriv = findBinary('setpriv');
  const sh = findBinary('sh');
  if (setpriv === undefined || sh === undefined) return undefined;
  // `kill -9 -PGID`: the form dash and busybox sh both read as a group (neither takes `--`).
  const steps = cleanup.map((argv) => `${argv.map(shellQuote).join(' ')} >/dev/null 2>&1; `).join('');
  const script = `cleanup() { ${steps}:; }; trap 'kill -9 "-$1" 2>/dev/null; cleanup; exit 0' TERM; while sleep 1; do :; done`;
  const dog = spawn(setpriv, ['--pdeathsig', 'TERM', '--', sh, '-c', script, 'strata-watchdog', String(pgid)], {
    stdio: 'ignore',
    detached: true,
    env: { PATH: '/usr/bin:/bin' },
  });
  dog.on('error', () => undefined);
  dog.unref();
  return dog;
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

/** Quotes a word for a POSIX shell. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The step's environment as the command sees it: docker adds a default PATH when the image has none. */
export function stepEnv(env: readonly string[]): string[] {
  return env.some((e) => e.startsWith('PATH=')) ? [...env] : [...env, `PATH=${DEFAULT_PATH}`];
}

export function isRoot(): boolean {
  return typeof process.geteuid === 'function' && process.geteuid() === 0;
}

/**
 * Kills a process started detached (its own session and process group) and everything still in that session or
 * group, found in /proc: a step's daemon that left the process group by `setpgid` is still in the session. Only
 * a process that made a session of its own escapes; the pid namespace of bwrap, runc and chroot catches that one.
 */
export function killSession(sid: number, spare: readonly number[] = []): void {
  if (spare.length === 0) {
    try {
      process.kill(-sid, 'SIGKILL');
    } catch {
      // no group left
    }
  }
  for (const pid of sessionMembers(sid)) {
    if (spare.includes(pid)) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

/** Pids whose session or process group is `sid` (from /proc/PID/stat), never this process. */
export function sessionMembers(sid: number): number[] {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const name of names) {
    if (!/^[0-9]+$/.test(name) || Number(name) === process.pid) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp session …; comm may hold spaces and parentheses, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === sid || Number(fields[3]) === sid) out.push(Number(name));
  }
  return out;
}

/** The pids whose parent is `pid` (from /proc), oldest first. */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(' ')
      .filter((s) => s !== '')
      .map(Number);
  } catch {
    return [];
  }
}
