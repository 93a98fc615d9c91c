import type { Readable } from 'node:stream';
import { verifyBytes } from '../digest/index.js';
import type { Descriptor } from '../oci/index.js';
import type { BlobReader } from '../store/types.js';
import { discardBody } from './http.js';
import { backoffDelay, isRetryableStatus } from './retry.js';
import { pushScopes } from './scopes.js';
import type { RegistryTransport } from './transport.js';
import { patchAll } from './upload-patch.js';
import { isRestartable, locationOf, restartable, type UploadRun } from './upload-session.js';

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

function withDigestParam(location: string, digest: string): string {
  return `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
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
