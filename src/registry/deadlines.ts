import { Socket } from 'node:net';
import { Readable, Transform, pipeline, type Duplex, type TransformCallback } from 'node:stream';
import { TLSSocket } from 'node:tls';

/**
 * How long a registry request may wait at each phase. A wait that runs out is a network failure,
 * retried under the retry policy like a dropped connection.
 */
export interface RegistryDeadlines {
  /** TCP connect plus TLS handshake (Go's net/http dialer allows 30 s). */
  connectMs: number;
  /** From the request sent in full (an upload's body included) to the response headers. */
  headersMs: number;
  /** The longest silence inside a response body. */
  idleMs: number;
}

/**
 * Go's transport dials for at most 30 s; containers/image and BuildKit add no header deadline, so a
 * silent server hangs them. 30 s per phase keeps a stall with the default 4 retries under 3 minutes.
 */
export const DEFAULT_DEADLINES: RegistryDeadlines = { connectMs: 30_000, headersMs: 30_000, idleMs: 30_000 };

export type DeadlineOptions = { [K in keyof RegistryDeadlines]?: number | undefined };

export function resolveDeadlines(given: DeadlineOptions | undefined): RegistryDeadlines {
  return { ...DEFAULT_DEADLINES, ...Object.fromEntries(Object.entries(given ?? {}).filter(([, v]) => v !== undefined)) };
}

export type DeadlinePhase = 'connect' | 'headers' | 'body' | 'upload';

/** `30 s`, `1.5 s`, `250 ms`. */
export function formatWait(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Number((ms / 1000).toFixed(1))} s`;
}

/** A deadline that ran out. `code` is ETIMEDOUT, so the retry policy counts it as a network failure. */
export class DeadlineError extends Error {
  readonly code = 'ETIMEDOUT';
  /** Attempts made when the request gave up; set by whoever retried it. */
  attempts = 1;

  constructor(
    readonly phase: DeadlinePhase,
    readonly waitedMs: number,
    detail: { host?: string; bytes?: number } = {},
  ) {
    super(
      phase === 'connect'
        ? `no connection to ${detail.host ?? 'the registry'} within ${formatWait(waitedMs)}`
        : phase === 'headers'
          ? `no response within ${formatWait(waitedMs)}`
          : phase === 'upload'
            ? `the registry stopped reading the upload for ${formatWait(waitedMs)} after ${detail.bytes ?? 0} bytes`
            : `the response stalled: no data for ${formatWait(waitedMs)} after ${detail.bytes ?? 0} bytes of the body`,
    );
    this.name = 'DeadlineError';
  }
}

/** node-fetch keeps only the code of a socket error; this one names the connect deadline. */
export const CONNECT_DEADLINE = 'E_STRATA_CONNECT_DEADLINE';

/** Destroys a socket that is not connected (and, for TLS, through its handshake) within `ms`. */
export function connectDeadline(socket: Duplex | null | undefined, ms: number, host: string): void {
  if (!(socket instanceof Socket)) return;
  const event = socket instanceof TLSSocket ? 'secureConnect' : 'connect';
  if (event === 'connect' && !socket.connecting) return;
  const timer = setTimeout(() => {
    socket.destroy(Object.assign(new DeadlineError('connect', ms, { host }), { code: CONNECT_DEADLINE }));
  }, ms);
  const done = (): void => clearTimeout(timer);
  socket.once(event, done);
  socket.once('close', done);
}

/** The DeadlineError in an error's cause chain, if any. */
export function findDeadline(error: unknown): DeadlineError | undefined {
  for (let e = error, depth = 0; typeof e === 'object' && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof DeadlineError) return e;
  }
  return undefined;
}

/**
 * Fails with a DeadlineError when no chunk arrives for `ms` while the reader wants one: while the
 * reader is not asking (its buffer is full: a slow disk, a queue) the clock does not run.
 */
class IdleDeadline extends Transform {
  private timer: NodeJS.Timeout | undefined;
  private bytes = 0;
  constructor(private readonly ms: number) {
    super();
    this.arm();
  }
  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.destroy(new DeadlineError('body', this.ms, { bytes: this.bytes })), this.ms);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.byteLength;
    clearTimeout(this.timer);
    if (this.push(chunk)) this.arm();
    cb();
  }
  override _read(size: number): void {
    this.arm();
    super._read(size);
  }
  override _flush(cb: TransformCallback): void {
    clearTimeout(this.timer);
    cb();
  }
  override _destroy(error: Error | null, cb: (error: Error | null) => void): void {
    clearTimeout(this.timer);
    cb(error);
  }
}

/** The body with an idle deadline: a stall destroys the source (freeing its connection) and fails the returned stream. */
export function guardBody(body: AsyncIterable<Uint8Array>, ms: number): Readable {
  const source = body instanceof Readable ? body : Readable.from(body);
  const guard = new IdleDeadline(ms);
  pipeline(source, guard, () => undefined);
  return guard;
}

/**
 * A request body that fails with a DeadlineError when the other side stops taking it: bytes wait to be
 * sent (the connection's buffers are full) and nothing is read for `ms`. A producer that is merely slow
 * (a layer still being compressed) leaves nothing waiting, so the clock does not run for it.
 */
export class UploadDeadline extends Transform {
  private timer: NodeJS.Timeout | undefined;
  private bytes = 0;
  failure: DeadlineError | undefined;
  constructor(private readonly ms: number) {
    super();
    // The last bytes are taken without another _read.
    this.once('end', () => clearTimeout(this.timer));
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.byteLength;
    if (!this.push(chunk)) this.arm();
    cb();
  }
  override _read(size: number): void {
    clearTimeout(this.timer);
    super._read(size);
  }
  override _flush(cb: TransformCallback): void {
    cb();
  }
  override _destroy(error: Error | null, cb: (error: Error | null) => void): void {
    clearTimeout(this.timer);
    cb(error);
  }
  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.failure = new DeadlineError('upload', this.ms, { bytes: this.bytes - this.readableLength });
      this.destroy(this.failure);
    }, this.ms);
  }
}

/** The request body under an upload deadline (see UploadDeadline); errors of `body` reach the guard. */
export function guardUpload(body: Readable, ms: number): UploadDeadline {
  const guard = new UploadDeadline(ms);
  pipeline(body, guard, () => undefined);
  return guard;
}
