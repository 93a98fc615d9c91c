import { Readable, Transform, pipeline, type TransformCallback } from 'node:stream';
import { StrataError } from '../errors/index.js';
import { verifyBytes } from '../digest/index.js';
import type { Descriptor } from '../oci/index.js';
import type { BlobReader } from '../store/types.js';
import { describeContext, type RegistryErrorContext } from './errors.js';
import { discardBody, readText, type FetchResponse } from './http.js';
import { abortError, backoffDelay, isRetryableError, isRetryableStatus, parseRetryAfter } from './retry.js';
import { pushScopes } from './scopes.js';
import type { RegistryTransport } from './transport.js';

export interface UploadOptions {
  /** Blobs up to this size go in a single PUT after the POST; default 1 MiB. */
  monolithicMaxBytes?: number | undefined;
  /**
   * When set, larger blobs go in PATCH chunks of this size with Content-Range from the start.
   * Default: one streamed PATCH, switching to 4 MiB chunks (then halving) only when the registry
   * refuses a request as too large (413, or 416 "exceeds the maximum").
   */
  chunkSize?: number | undefined;
}

export interface BlobUploadCallOptions {
  signal?: AbortSignal | undefined;
  /** An upload session already open (a mount answered 202). */
  location?: string | undefined;
  /** Repositories named in the token scope for pull (mount sources). */
  mountFrom?: readonly string[] | undefined;
  /** Bytes the registry has accepted so far. */
  onBytes?: ((sent: number) => void) | undefined;
}

/** Where the bytes of an upload come from; called again with an offset to resume or restart. */
export type BlobSource = (offset: number, signal?: AbortSignal) => Promise<Readable | AsyncIterable<Uint8Array>>;

const DEFAULT_MONOLITHIC_MAX = 1024 * 1024;
const FALLBACK_CHUNK = 4 * 1024 * 1024;
const MIN_CHUNK = 64 * 1024;
const MAX_RESUMES = 8;
const MAX_RESTARTS = 2;

/** A BlobSource over any BlobReader: reopens the blob and skips to the offset. */
export function blobSourceFromReader(reader: BlobReader, descriptor: Descriptor): BlobSource {
  return async (offset, signal) => {
    const stream = await reader.openBlob(descriptor, { signal });
    return offset === 0 ? stream : skipBytes(stream, offset);
  };
}

async function* skipBytes(source: AsyncIterable<Uint8Array>, count: number): AsyncGenerator<Uint8Array> {
  let left = count;
  for await (const chunk of source) {
    if (left >= chunk.byteLength) {
      left -= chunk.byteLength;
      continue;
    }
    yield left > 0 ? chunk.subarray(left) : chunk;
    left = 0;
  }
}

/** Reads a stream in pieces of a requested size. */
class ChunkReader {
  private readonly iterator: AsyncIterator<Uint8Array>;
  private pending: Buffer = Buffer.alloc(0);
  private done = false;

  constructor(
    source: AsyncIterable<Uint8Array>,
    public position: number,
  ) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  async read(n: number): Promise<Buffer> {
    while (this.pending.byteLength < n && !this.done) {
      const next = await this.iterator.next();
      if (next.done) this.done = true;
      else this.pending = this.pending.byteLength === 0 ? Buffer.from(next.value) : Buffer.concat([this.pending, next.value]);
    }
    const out = this.pending.subarray(0, n);
    this.pending = this.pending.subarray(out.byteLength);
    this.position += out.byteLength;
    return out;
  }

  async close(): Promise<void> {
    await this.iterator.return?.();
  }
}

class Counter extends Transform {
  private count: number;
  constructor(
    start: number,
    private readonly onBytes: (n: number) => void,
  ) {
    super();
    this.count = start;
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.count += chunk.byteLength;
    this.onBytes(this.count);
    cb(null, chunk);
  }
}

/**
 * `Range: 0-<last>` from an upload status; returns the next offset. distribution 2.8 answers
 * `0-0` for an empty upload (it cannot say "nothing"), so `0-0` is read as 0. If one byte had in
 * fact arrived, the registry refuses the resumed range and the upload restarts: slower, never corrupt.
 */
export function parseUploadRange(value: string | null): number | undefined {
  const m = /^(?:bytes=)?0-(-?\d+)$/.exec(value?.trim() ?? '');
  if (m?.[1] === undefined) return undefined;
  const last = Number(m[1]);
  return last <= 0 ? 0 : last + 1;
}

function withDigestParam(location: string, digest: string): string {
  return `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

interface UploadRun {
  transport: RegistryTransport;
  repoPath: string;
  repository: string;
  descriptor: Descriptor;
  source: BlobSource;
  scopes: string[];
  ctx: RegistryErrorContext;
  signal: AbortSignal | undefined;
  monolithicMax: number;
  chunkSize: number | undefined;
  onBytes: ((sent: number) => void) | undefined;
}

/**
 * Uploads one blob: POST for a session, then one PUT (small blobs) or PATCHes and a closing PUT.
 * A dropped connection or a 5xx resumes at the offset the registry reports; a lost session
 * restarts the upload from the beginning.
 */
export async function uploadBlob(
  transport: RegistryTransport,
  repoPath: string,
  repository: string,
  descriptor: Descriptor,
  source: BlobSource,
  options: UploadOptions & BlobUploadCallOptions,
): Promise<void> {
  const run: UploadRun = {
    transport,
    repoPath,
    repository,
    descriptor,
    source,
    scopes: pushScopes(repository, options.mountFrom ?? []),
    ctx: { registry: transport.registry, repository, what: `upload of blob ${descriptor.digest}` },
    signal: options.signal,
    monolithicMax: options.monolithicMaxBytes ?? DEFAULT_MONOLITHIC_MAX,
    chunkSize: options.chunkSize,
    onBytes: options.onBytes,
  };
  let location = options.location;
  for (let restarts = 0; ; restarts++) {
    try {
      location ??= await startUpload(run);
      const final = descriptor.size <= run.monolithicMax ? location : await patchAll(run, location);
      await finish(run, final, descriptor.size <= run.monolithicMax);
      return;
    } catch (error) {
      location = undefined;
      if (restarts >= MAX_RESTARTS || !isRestartable(error) || run.signal?.aborted) throw error;
      await transport.retry.sleep(backoffDelay(restarts + 1, transport.retry), run.signal);
    }
  }
}

function isRestartable(error: unknown): boolean {
  if (error instanceof StrataError) return error.code === 'E_REGISTRY_UNREACHABLE' || (error as { restartable?: boolean }).restartable === true;
  return isRetryableError(error);
}

function restartable(error: StrataError): StrataError {
  return Object.assign(error, { restartable: true });
}

async function startUpload(run: UploadRun): Promise<string> {
  const response = await run.transport.send({
    method: 'POST',
    url: `/v2/${run.repoPath}/blobs/uploads/`,
    headers: { 'content-length': '0' },
    scopes: run.scopes,
    ctx: run.ctx,
    signal: run.signal,
  });
  if (response.status !== 202) throw await run.transport.fail(response, run.ctx);
  await discardBody(response);
  return locationOf(run, response, undefined);
}

function locationOf(run: UploadRun, response: FetchResponse, previous: string | undefined): string {
  const location = response.headers.get('location');
  if (!location) {
    if (previous) return previous;
    throw new StrataError('E_REGISTRY', `${describeContext(run.ctx)}: the registry opened an upload without a Location`);
  }
  // Relative Locations are common; resolve against where we are.
  return new URL(location, previous ?? run.transport.url('/')).toString();
}

/** Where the registry thinks the upload is; a lost session makes the whole upload restart. */
async function uploadStatus(run: UploadRun, location: string): Promise<{ location: string; offset: number }> {
  const response = await run.transport.send({ method: 'GET', url: location, scopes: run.scopes, ctx: run.ctx, signal: run.signal, followRedirects: false });
  if (response.status !== 204 && response.status !== 200) {
    const error = await run.transport.fail(response, run.ctx);
    throw response.status === 404 || isRetryableStatus(response.status) ? restartable(error) : error;
  }
  await discardBody(response);
  return { location: locationOf(run, response, location), offset: parseUploadRange(response.headers.get('range')) ?? 0 };
}

async function patchAll(run: UploadRun, startLocation: string): Promise<string> {
  const { descriptor, transport } = run;
  const size = descriptor.size;
  let location = startLocation;
  let offset = 0;
  let chunkSize = run.chunkSize;
  let reader: ChunkReader | undefined;
  let resumes = 0;
  let unauthorizedOnce = false;
  const report = (bytes: number): void => run.onBytes?.(bytes);

  const resync = async (reason: FetchResponse | undefined): Promise<void> => {
    if (++resumes > MAX_RESUMES) throw restartable(new StrataError('E_REGISTRY', `${describeContext(run.ctx)}: gave up after ${MAX_RESUMES} resumed attempts`));
    const retryAfter = reason ? parseRetryAfter(reason.headers.get('retry-after'), transport.retry.now()) : undefined;
    await transport.retry.sleep(backoffDelay(resumes, transport.retry, retryAfter), run.signal);
    const status = await uploadStatus(run, location);
    location = status.location;
    offset = status.offset;
    await reader?.close();
    reader = undefined;
  };

  try {
    while (offset < size) {
      if (run.signal?.aborted) throw abortError(run.signal);
      let response: FetchResponse;
      let sent: number;
      let sourceError: unknown;
      let openedSource: Readable | AsyncIterable<Uint8Array> | undefined;
      try {
        if (chunkSize === undefined) {
          const opened = await run.source(offset, run.signal);
          openedSource = opened;
          const body = new Counter(offset, report);
          // pipeline, not pipe: a failing source must fail the request body, not leave it hanging.
          pipeline(Readable.from(guardSource(opened, (e) => (sourceError = e))), body, () => undefined);
          sent = size - offset;
          const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'content-length': String(sent) };
          if (offset > 0) headers['content-range'] = `${offset}-${size - 1}`;
          response = await transport.send({
            method: 'PATCH',
            url: location,
            headers,
            body: () => body,
            retryable: false,
            scopes: run.scopes,
            ctx: run.ctx,
            signal: run.signal,
            followRedirects: false,
          });
        } else {
          if (!reader || reader.position !== offset) {
            await reader?.close();
            reader = new ChunkReader(toIterable(await run.source(offset, run.signal)), offset);
          }
          const chunk = await reader.read(Math.min(chunkSize, size - offset));
          if (chunk.byteLength === 0) {
            throw new StrataError('E_SIZE_MISMATCH', `${describeContext(run.ctx)}: the source ended at ${offset} bytes, expected ${size}`);
          }
          sent = chunk.byteLength;
          response = await transport.send({
            method: 'PATCH',
            url: location,
            headers: { 'content-type': 'application/octet-stream', 'content-length': String(sent), 'content-range': `${offset}-${offset + sent - 1}` },
            body: () => chunk,
            retryable: false,
            scopes: run.scopes,
            ctx: run.ctx,
            signal: run.signal,
            followRedirects: false,
          });
          if (response.status === 202 || response.status === 204) report(offset + sent);
        }
      } catch (error) {
        if (openedSource instanceof Readable) openedSource.destroy();
        // The source failing (a corrupt blob being copied) is not the network failing.
        if (sourceError !== undefined) throw sourceError;
        if (!isRetryableError(error) && !(error instanceof StrataError && error.code === 'E_REGISTRY_UNREACHABLE')) throw error;
        await resync(undefined);
        continue;
      }
      if (response.status === 202 || response.status === 204) {
        location = locationOf(run, response, location);
        offset = parseUploadRange(response.headers.get('range')) ?? offset + sent;
        await discardBody(response);
        continue;
      }
      if (response.status === 413 || response.status === 416) {
        const text = await readText(response);
        if (response.status === 413 || /exceed/i.test(text)) {
          // Too large for this registry or a proxy in front of it: smaller pieces from here on.
          chunkSize = chunkSize === undefined ? FALLBACK_CHUNK : Math.floor(chunkSize / 2);
          if (chunkSize < MIN_CHUNK) {
            throw new StrataError('E_REGISTRY', `${describeContext(run.ctx)}: the registry refuses even ${MIN_CHUNK}-byte chunks (HTTP ${response.status})`);
          }
        }
        await resync(undefined);
        continue;
      }
      if (isRetryableStatus(response.status)) {
        await discardBody(response);
        await resync(response);
        continue;
      }
      if (response.status === 401 && !unauthorizedOnce) {
        // The token expired during a long upload: a fresh one, then carry on from the registry's offset.
        unauthorizedOnce = true;
        await discardBody(response);
        transport.auth.invalidate();
        await resync(undefined);
        continue;
      }
      throw await transport.fail(response, run.ctx);
    }
  } finally {
    await reader?.close();
  }
  return location;
}

async function* guardSource(source: AsyncIterable<Uint8Array>, onError: (error: unknown) => void): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of source) yield chunk;
  } catch (error) {
    onError(error);
    throw error;
  }
}

function toIterable(source: Readable | AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  return source;
}

async function readAll(source: Readable | AsyncIterable<Uint8Array>, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of source) {
    size += chunk.byteLength;
    if (size > limit) break;
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

/** The closing PUT (with the whole body for monolithic uploads). */
async function finish(run: UploadRun, location: string, monolithic: boolean): Promise<void> {
  const { descriptor, transport } = run;
  let body: Buffer | undefined;
  if (monolithic) {
    body = await readAll(await run.source(0, run.signal), descriptor.size + 1);
    // Refuse a corrupt source here rather than after sending it.
    verifyBytes(body, { digest: descriptor.digest, size: descriptor.size, what: `blob ${descriptor.digest} to upload` });
  }
  const payload = body;
  const response = await transport.send({
    method: 'PUT',
    url: withDigestParam(location, descriptor.digest),
    headers: payload ? { 'content-type': 'application/octet-stream', 'content-length': String(payload.byteLength) } : { 'content-length': '0' },
    body: payload ? () => payload : undefined,
    scopes: run.scopes,
    ctx: run.ctx,
    signal: run.signal,
    followRedirects: false,
  });
  if (response.status === 201 || response.status === 204) {
    await discardBody(response);
    if (payload) run.onBytes?.(payload.byteLength);
    return;
  }
  const error = await transport.fail(response, run.ctx);
  // A retried PUT whose first attempt did commit finds no session: the blob is there, all is well.
  if (response.status === 404) {
    const head = await transport.send({
      method: 'HEAD',
      url: `/v2/${run.repoPath}/blobs/${descriptor.digest}`,
      scopes: run.scopes,
      ctx: run.ctx,
      signal: run.signal,
    });
    await discardBody(head);
    if (head.status === 200) return;
    throw restartable(error);
  }
  throw isRetryableStatus(response.status) ? restartable(error) : error;
}
