import { Readable } from 'node:stream';
import { Hasher, type Digest } from '../digest/index.js';
import { StrataError } from '../errors/index.js';
import { describeContext, type RegistryErrorContext } from './errors.js';
import { discardBody } from './http.js';
import { pushScopes } from './scopes.js';
import type { RegistryTransport } from './transport.js';

export interface StreamedBlob {
  digest: Digest;
  size: number;
}

export interface StreamBlobOptions {
  signal?: AbortSignal | undefined;
  mountFrom?: readonly string[] | undefined;
  /**
   * The bytes' digest and size, when the producer hashes them anyway (a store ingesting the same
   * bytes): awaited once the body is sent, so the bytes are not hashed twice.
   */
  digest?: Promise<StreamedBlob> | undefined;
}

/**
 * Uploads bytes whose digest and size are not known yet, as they are produced: POST for a session,
 * one PATCH with the body streamed as it comes (chunked transfer), and the closing PUT with the digest
 * hashed on the way (distribution-spec "streamed" upload). Made for layers being written: the upload
 * overlaps the write. There is no resume, since the bytes cannot be produced again; the caller
 * uploads from its store instead when this fails.
 */
export async function streamBlobUpload(
  transport: RegistryTransport,
  repoPath: string,
  repository: string,
  bytes: AsyncIterable<Uint8Array>,
  options: StreamBlobOptions = {},
): Promise<StreamedBlob> {
  const scopes = pushScopes(repository, options.mountFrom ?? []);
  const ctx: RegistryErrorContext = { registry: transport.registry, repository, what: 'streamed upload of a new layer' };
  const opened = await transport.send({
    method: 'POST',
    url: `/v2/${repoPath}/blobs/uploads/`,
    headers: { 'content-length': '0' },
    scopes,
    ctx,
    signal: options.signal,
  });
  if (opened.status !== 202) throw await transport.fail(opened, ctx);
  await discardBody(opened);
  let location = resolveLocation(opened.headers.get('location'), transport.url('/'), ctx);

  const hasher = options.digest === undefined ? new Hasher('sha256') : undefined;
  async function* hashed(): AsyncGenerator<Uint8Array> {
    for await (const chunk of bytes) {
      hasher?.update(chunk);
      yield chunk;
    }
  }
  const body = Readable.from(hasher === undefined ? bytes : hashed());
  const patched = await transport.send({
    method: 'PATCH',
    url: location,
    headers: { 'content-type': 'application/octet-stream' },
    body: () => body,
    retryable: false,
    scopes,
    ctx,
    signal: options.signal,
    followRedirects: false,
  });
  if (patched.status !== 202 && patched.status !== 204) throw await transport.fail(patched, ctx);
  await discardBody(patched);
  location = resolveLocation(patched.headers.get('location'), location, ctx);

  const { digest, size } = hasher === undefined ? await options.digest! : { digest: hasher.digest(), size: hasher.size };
  const url = `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
  const closed = await transport.send({ method: 'PUT', url, headers: { 'content-length': '0' }, scopes, ctx, signal: options.signal, followRedirects: false });
  if (closed.status !== 201 && closed.status !== 204) throw await transport.fail(closed, ctx);
  await discardBody(closed);
  return { digest, size };
}

function resolveLocation(location: string | null, base: string, ctx: RegistryErrorContext): string {
  if (!location) throw new StrataError('E_REGISTRY', `${describeContext(ctx)}: the registry answered an upload without a Location`);
  return new URL(location, base).toString();
}
