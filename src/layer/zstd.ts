import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { Duplex } from 'node:stream';
import type { Readable, Writable } from 'node:stream';
import { StrataError, errnoCode } from '../errors/index.js';

/**
 * Where the `zstd` program is found. Node 20 has no zstd (it arrived in 22.15), so strata runs Debian's
 * `zstd`, as containerd runs `unpigz`. Tests point `program` or `env.PATH` elsewhere instead of changing
 * this process's environment.
 */
export interface ZstdProgramOptions {
  /** The program to run; a bare name is looked up on PATH. Default `zstd`. */
  program?: string | undefined;
  /** The child's environment (and so the PATH the program is looked up on). Default: this process's. */
  env?: NodeJS.ProcessEnv | undefined;
}

/** zstd's own default, and BuildKit's for `compression=zstd`. */
export const ZSTD_DEFAULT_LEVEL = 3;
export const ZSTD_MIN_LEVEL = 1;
/** Levels above 19 need `--ultra` and a lot of memory on the reading side too. */
export const ZSTD_MAX_LEVEL = 19;

const INSTALL_HINT = 'install zstd (apt-get install zstd)';
/** The tail of zstd's stderr kept for the error message; zstd says what is wrong in one short line. */
const STDERR_KEEP = 4096;

/** Decompresses a zstd stream by running `zstd -d`. `what` names the layer in errors (E_LAYER_INVALID). */
export function createZstdDecompress(what: string, options: ZstdProgramOptions = {}): Duplex {
  return new ZstdProcess(['-d', '-c', '-q'], { ...options, what, action: 'decompress', code: 'E_LAYER_INVALID' });
}

/**
 * Compresses with `zstd -T0` at `level` (1-19). zstd's multi-threaded format cuts the input into jobs whose
 * size depends on the level, not on the number of threads, so -T1, -T2 and -T4 give the same bytes, and a
 * layer is reproducible for a given zstd version whatever the machine's core count. `--single-thread` writes
 * a different stream, so it is never used. Input always comes on stdin, so no content size goes in the frame
 * header either (for a named file zstd writes one, and the bytes differ).
 */
export function createZstdCompress(level: number = ZSTD_DEFAULT_LEVEL, what = 'layer', options: ZstdProgramOptions = {}): Duplex {
  if (!Number.isInteger(level) || level < ZSTD_MIN_LEVEL || level > ZSTD_MAX_LEVEL) {
    throw new StrataError('E_USAGE', `zstd level must be a whole number from ${ZSTD_MIN_LEVEL} to ${ZSTD_MAX_LEVEL}, got ${level}`);
  }
  return new ZstdProcess(['-c', '-q', '-T0', `-${level}`], { ...options, what, action: 'compress', code: 'E_IO' });
}

interface ZstdProcessOptions extends ZstdProgramOptions {
  what: string;
  action: 'compress' | 'decompress';
  code: 'E_LAYER_INVALID' | 'E_IO';
}

/**
 * A Duplex over a zstd child: what is written goes to its stdin, its stdout is what is read. Backpressure
 * holds both ways (stdout is paused while the reader is full, a write waits for stdin to drain), so memory
 * stays bounded by the pipe buffers. The readable side ends only after zstd exits with 0; a non-zero exit,
 * a failed start or a signal destroys the stream with a StrataError naming `what`. Destroying the stream
 * kills the child.
 */
class ZstdProcess extends Duplex {
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  private stderr = '';
  private exited = false;

  constructor(
    args: string[],
    private readonly options: ZstdProcessOptions,
  ) {
    super();
    const program = options.program ?? 'zstd';
    this.child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env });
    const { child } = this;
    child.on('error', (error) => {
      this.exited = true;
      this.destroy(this.startError(program, error));
    });
    // A write into a dead child fails with EPIPE; the exit status says why, and is reported from 'close'.
    child.stdin.on('error', () => undefined);
    child.stdout.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) child.stdout.pause();
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      this.stderr = (this.stderr + text).slice(-STDERR_KEEP);
    });
    // 'close' comes after stdout has ended, so every byte zstd wrote has been pushed by then.
    child.on('close', (code, signal) => {
      this.exited = true;
      if (this.destroyed) return;
      if (code === 0) {
        this.push(null);
        return;
      }
      const how = signal !== null ? `was killed by ${signal}` : `exited with status ${String(code)}`;
      const said = this.stderr.trim().replace(/\s+/g, ' ');
      this.destroy(
        new StrataError(options.code, `cannot ${options.action} ${options.what}: zstd ${how}${said ? `: ${said}` : ''}`, {
          hint:
            options.action === 'decompress'
              ? 'the layer is corrupt, truncated, or not the compression its media type says'
              : 'check the disk and that zstd works (zstd --version)',
        }),
      );
    });
  }

  private startError(program: string, error: Error): StrataError {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'EACCES') {
      return new StrataError(this.options.code, `cannot ${this.options.action} ${this.options.what}: the zstd program (${program}) was not found`, {
        cause: error,
        hint: INSTALL_HINT,
      });
    }
    return new StrataError(this.options.code, `cannot ${this.options.action} ${this.options.what}: starting zstd failed: ${error.message}`, {
      cause: error,
      hint: INSTALL_HINT,
    });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const { stdin } = this.child;
    if (stdin.destroyed) {
      // The child is gone; 'close' or 'error' destroys this stream with the reason.
      callback();
      return;
    }
    if (stdin.write(chunk)) {
      callback();
      return;
    }
    const done = (): void => {
      stdin.off('drain', done);
      stdin.off('close', done);
      callback();
    };
    stdin.on('drain', done);
    stdin.on('close', done);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.child.stdin.end();
    callback();
  }

  override _read(): void {
    this.child.stdout.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.exited) this.child.kill('SIGKILL');
    this.child.stdin.destroy();
    this.child.stdout.destroy();
    callback(error);
  }
}
