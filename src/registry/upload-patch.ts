import { Readable, Transform, pipeline, type TransformCallback } from 'node:stream';
import { StrataError } from '../errors/index.js';
import { describeContext } from './errors.js';
import { discardBody, readText, type FetchResponse } from './http.js';
import { abortError, backoffDelay, isRetryableError, isRetryableStatus, parseRetryAfter } from './retry.js';
import { locationOf, parseUploadRange, restartable, uploadStatus, type UploadRun } from './upload-session.js';

const FALLBACK_CHUNK = 4 * 1024 * 1024;
const MIN_CHUNK = 64 * 1024;
const MAX_RESUMES = 8;

/**
 * The PATCH phase of an upload: one streamed PATCH of the rest of the blob, or PATCH chunks once the
 * registry refuses a body as too large. A dropped connection or a 5xx resumes at the offset the registry
 * reports; an expired token is renewed once. Returns the location for the closing PUT.
 */
export async function patchAll(run: UploadRun, startLocation: string): Promise<string> {
  const upload = new PatchUpload(run, startLocation);
  try {
    return await upload.sendAll();
  } finally {
    await upload.close();
  }
}

/** Where a request's bytes came from, so a failing source is told apart from a failing network. */
interface SourceWatch {
  opened?: Readable | AsyncIterable<Uint8Array> | undefined;
  error?: unknown;
}

class PatchUpload {
  private location: string;
  private offset = 0;
  private chunkSize: number | undefined;
  private reader: ChunkReader | undefined;
  private resumes = 0;
  private unauthorizedOnce = false;

  constructor(
    private readonly run: UploadRun,
    startLocation: string,
  ) {
    this.location = startLocation;
    this.chunkSize = run.chunkSize;
  }

  async sendAll(): Promise<string> {
    const size = this.run.descriptor.size;
    while (this.offset < size) {
      if (this.run.signal?.aborted) throw abortError(this.run.signal);
      const watch: SourceWatch = {};
      let sent: { response: FetchResponse; bytes: number };
      try {
        sent = this.chunkSize === undefined ? await this.sendRest(watch) : await this.sendChunk(this.chunkSize);
      } catch (error) {
        if (watch.opened instanceof Readable) watch.opened.destroy();
        // The source failing (a corrupt blob being copied) is not the network failing.
        if (watch.error !== undefined) throw watch.error;
        if (!isRetryableError(error) && !(error instanceof StrataError && error.code === 'E_REGISTRY_UNREACHABLE')) throw error;
        await this.resync(undefined);
        continue;
      }
      await this.settle(sent.response, sent.bytes);
    }
    return this.location;
  }

  async close(): Promise<void> {
    await this.reader?.close();
  }

  private report(bytes: number): void {
    this.run.onBytes?.(bytes);
  }

  /** One PATCH streaming the blob from the offset to its end. */
  private async sendRest(watch: SourceWatch): Promise<{ response: FetchResponse; bytes: number }> {
    const { run, offset } = this;
    const size = run.descriptor.size;
    const opened = await run.source(offset, run.signal);
    watch.opened = opened;
    const body = new Counter(offset, (n) => this.report(n));
    // pipeline, not pipe: a failing source must fail the request body, not leave it hanging.
    pipeline(Readable.from(guardSource(opened, (e) => (watch.error = e))), body, () => undefined);
    const bytes = size - offset;
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'content-length': String(bytes) };
    if (offset > 0) headers['content-range'] = `${offset}-${size - 1}`;
    const response = await run.transport.send({
      method: 'PATCH',
      url: this.location,
      headers,
      body: () => body,
      retryable: false,
      scopes: run.scopes,
      ctx: run.ctx,
      signal: run.signal,
      followRedirects: false,
    });
    return { response, bytes };
  }

  /** One PATCH of at most `chunkSize` bytes with its Content-Range. */
  private async sendChunk(chunkSize: number): Promise<{ response: FetchResponse; bytes: number }> {
    const { run, offset } = this;
    const size = run.descriptor.size;
    if (!this.reader || this.reader.position !== offset) {
      await this.reader?.close();
      this.reader = new ChunkReader(await run.source(offset, run.signal), offset);
    }
    const chunk = await this.reader.read(Math.min(chunkSize, size - offset));
    if (chunk.byteLength === 0) {
      throw new StrataError('E_SIZE_MISMATCH', `${describeContext(run.ctx)}: the source ended at ${offset} bytes, expected ${size}`);
    }
    const bytes = chunk.byteLength;
    const response = await run.transport.send({
      method: 'PATCH',
      url: this.location,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes), 'content-range': `${offset}-${offset + bytes - 1}` },
      body: () => chunk,
      retryable: false,
      scopes: run.scopes,
      ctx: run.ctx,
      signal: run.signal,
      followRedirects: false,
    });
    if (response.status === 202 || response.status === 204) this.report(offset + bytes);
    return { response, bytes };
  }

  /** Moves on after an accepted PATCH, or decides how to go on after a refused one (or fails). */
  private async settle(response: FetchResponse, bytes: number): Promise<void> {
    const { run } = this;
    if (response.status === 202 || response.status === 204) {
      this.location = locationOf(run, response, this.location);
      this.offset = parseUploadRange(response.headers.get('range')) ?? this.offset + bytes;
      await discardBody(response);
      return;
    }
    if (response.status === 413 || response.status === 416) {
      const text = await readText(response);
      if (response.status === 413 || /exceed/i.test(text)) {
        // Too large for this registry or a proxy in front of it: smaller pieces from here on.
        this.chunkSize = this.chunkSize === undefined ? FALLBACK_CHUNK : Math.floor(this.chunkSize / 2);
        if (this.chunkSize < MIN_CHUNK) {
          throw new StrataError('E_REGISTRY', `${describeContext(run.ctx)}: the registry refuses even ${MIN_CHUNK}-byte chunks (HTTP ${response.status})`);
        }
      }
      return this.resync(undefined);
    }
    if (isRetryableStatus(response.status)) {
      await discardBody(response);
      return this.resync(response);
    }
    if (response.status === 401 && !this.unauthorizedOnce) {
      // The token expired during a long upload: a fresh one, then carry on from the registry's offset.
      this.unauthorizedOnce = true;
      await discardBody(response);
      run.transport.auth.invalidate();
      return this.resync(undefined);
    }
    throw await run.transport.fail(response, run.ctx);
  }

  /** Asks the registry where the upload is, after a pause that grows with each resume. */
  private async resync(reason: FetchResponse | undefined): Promise<void> {
    const { run } = this;
    const transport = run.transport;
    if (++this.resumes > MAX_RESUMES)
      throw restartable(new StrataError('E_REGISTRY', `${describeContext(run.ctx)}: gave up after ${MAX_RESUMES} resumed attempts`));
    const retryAfter = reason ? parseRetryAfter(reason.headers.get('retry-after'), transport.retry.now()) : undefined;
    await transport.retry.sleep(backoffDelay(this.resumes, transport.retry, retryAfter), run.signal);
    const status = await uploadStatus(run, this.location);
    this.location = status.location;
    this.offset = status.offset;
    await this.reader?.close();
    this.reader = undefined;
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

async function* guardSource(source: AsyncIterable<Uint8Array>, onError: (error: unknown) => void): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of source) yield chunk;
  } catch (error) {
    onError(error);
    throw error;
  }
}
