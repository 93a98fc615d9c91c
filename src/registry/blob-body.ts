import { PassThrough, Transform, pipeline, type Readable, type TransformCallback } from 'node:stream';
import { StrataError } from '../errors/index.js';
import { sizeMismatch, VerifyingStream, type Digest } from '../digest/index.js';
import type { Descriptor } from '../oci/index.js';
import { findDeadline } from './deadlines.js';
import { stallError, type RegistryErrorContext } from './errors.js';
import { discardBody, type FetchResponse } from './http.js';
import { backoffDelay, isRetryableError } from './retry.js';
import { pullScopes } from './scopes.js';
import type { RegistryTransport } from './transport.js';

/** Reading a response body from a registry: resumed after a dropped connection, size-checked and verified, retried when cut short. */

/** The first byte of `Content-Range: bytes START-END/SIZE`. */
function rangeStart(header: string | null): number | undefined {
  const match = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header?.trim() ?? '');
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/** Counts bytes as they pass, for progress events. */
class ByteCounter extends Transform {
  private count = 0;
  constructor(private readonly onBytes: (total: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.count += chunk.byteLength;
    this.onBytes(this.count);
    cb(null, chunk);
  }
}

/** A failure while reading a response body, after its headers arrived: worth asking again. */
export class BodyFailure extends Error {
  constructor(readonly error: unknown) {
    super('response body failed', { cause: error });
  }
}

/** Enforces a descriptor's size (early on overrun, at the end on a short body) without hashing. */
class SizeLimit extends Transform {
  private count = 0;
  constructor(private readonly expected: { digest: Digest; size: number; what: string }) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.count += chunk.byteLength;
    cb(this.count > this.expected.size ? sizeMismatch(this.expected, this.count) : null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    cb(this.count !== this.expected.size ? sizeMismatch(this.expected, this.count) : null);
  }
}

/**
 * A blob's body that resumes where a dropped connection left it: `Range: bytes=N-` from the byte reached.
 * A 206 from N (or earlier: the overlap is skipped) continues; a server that ignores the Range (200), or
 * answers another one, is read from zero again with the bytes already passed on skipped. The digest is
 * checked over the whole stream by the caller's verifier, as without a resume.
 */
export async function* resumingBody(
  transport: RegistryTransport,
  first: FetchResponse,
  url: string,
  repository: string,
  descriptor: Pick<Descriptor, 'digest' | 'size'>,
  ctx: RegistryErrorContext,
  signal: AbortSignal | undefined,
): AsyncGenerator<Buffer> {
  let response = first;
  let offset = 0;
  let skip = 0;
  for (let resumes = 1; ; resumes++) {
    try {
      for await (const chunk of response.body ?? []) {
        let bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
        if (skip > 0) {
          if (bytes.byteLength <= skip) {
            skip -= bytes.byteLength;
            continue;
          }
          bytes = bytes.subarray(skip);
          skip = 0;
        }
        offset += bytes.byteLength;
        yield bytes;
      }
      return;
    } catch (error) {
      if (signal?.aborted === true || resumes > transport.retry.retries || !isRetryableError(error)) throw error;
      // Every byte arrived and only the end was lost: the verifier decides.
      if (offset >= descriptor.size) return;
    }
    transport.progress?.({
      type: 'retry',
      registry: transport.registry,
      attempt: resumes,
      delayMs: 0,
      reason: `connection dropped; resuming at byte ${offset}`,
      path: url,
    });
    const get = (headers: Record<string, string>) => transport.send({ method: 'GET', url, headers, scopes: pullScopes(repository), ctx, signal });
    response = await get({ range: `bytes=${offset}-` });
    const start = response.status === 206 ? rangeStart(response.headers.get('content-range')) : undefined;
    if (start !== undefined && start <= offset) {
      skip = offset - start;
      continue;
    }
    if (response.status === 206) {
      // A range that starts past the byte reached cannot be used: everything again, from zero.
      await discardBody(response);
      response = await get({});
    }
    if (response.status !== 200) throw await transport.fail(response, ctx);
    skip = offset;
  }
}

export function verifiedBody(
  source: Readable,
  descriptor: Pick<Descriptor, 'digest' | 'size'>,
  ctx: RegistryErrorContext,
  url: string,
  onBytes: ((total: number) => void) | undefined,
  hash: boolean,
): Readable {
  const expected = { digest: descriptor.digest, size: descriptor.size, what: `blob ${descriptor.digest} of ${ctx.registry}/${ctx.repository ?? ''}` };
  const verifier = hash ? new VerifyingStream(expected) : new SizeLimit(expected);
  const stages: NodeJS.ReadWriteStream[] = [];
  if (onBytes) stages.push(new ByteCounter(onBytes));
  // `out` stays outside the pipeline, which would destroy it with the bare error: a stalled body (the
  // transport's idle deadline) reaches the reader named with its request, as a stalled header does.
  const out = new PassThrough();
  // A blob opened but not yet read (it waits for a slot in the pool) can fail first, on abort: `out` keeps
  // the error (`errored`) for the reader that comes, and the process does not die of an unhandled event.
  out.on('error', () => undefined);
  pipeline([source, ...stages, verifier], (error) => {
    const deadline = findDeadline(error);
    if (error && !out.destroyed) out.destroy(deadline ? stallError(ctx, 'GET', url, deadline) : error);
  });
  verifier.pipe(out);
  out.once('close', () => {
    if (!out.readableEnded) verifier.destroy();
  });
  return out;
}

/**
 * Runs a request whose body is read whole, again when the body fails after the headers (a dropped
 * connection, a stall, a short body: `work` throws those as BodyFailure). They count against the
 * same retries as failures before the headers, which `send` has already spent on its own.
 */
export async function withBodyRetries<T>(transport: RegistryTransport, path: string, signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
  const retry = transport.retry;
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (failure) {
      if (!(failure instanceof BodyFailure)) throw failure;
      const error = failure.error;
      const deadline = findDeadline(error);
      const transient = deadline !== undefined || isRetryableError(error) || (error instanceof StrataError && error.code === 'E_SIZE_MISMATCH');
      if (attempt > retry.retries || !transient || signal?.aborted) {
        if (deadline && error instanceof StrataError && attempt > 1)
          throw new StrataError(error.code, `${error.message} (${attempt} attempts)`, { hint: error.hint, cause: error });
        throw error;
      }
      const delayMs = backoffDelay(attempt, retry);
      transport.noteRetry({ attempt, delayMs, url: transport.url(path), reason: deadline?.message ?? (error as Error).message });
      await retry.sleep(delayMs, signal);
    }
  }
}
