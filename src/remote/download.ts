import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { StrataError, ioError, isStrataError } from '../errors/index.js';
import { Hasher, type Digest } from '../digest/index.js';
import {
  backoffDelay,
  discardBody,
  isCertificateCode,
  isRetryableError,
  proxyFailure,
  resolveRetry,
  sendWithRetry,
  type FetchLike,
  type FetchResponse,
  type RetryOptions,
} from '../registry/index.js';
import { redactUrl } from './source.js';

/** Validators a server gave for a URL before, sent back so an unchanged file answers 304. */
export interface Validators {
  etag?: string | undefined;
  lastModified?: string | undefined;
}

export interface DownloadOptions {
  fetch: FetchLike;
  /** Where the download is written (a temp name in it); the caller renames or removes the file. */
  dir: string;
  /** `ADD --checksum`: the bytes must hash to it, or nothing is kept. */
  checksum?: Digest | undefined;
  /** Sent as If-None-Match / If-Modified-Since; a 304 answer then downloads nothing. */
  validators?: Validators | undefined;
  retry?: RetryOptions | undefined;
  signal?: AbortSignal | undefined;
  /** Milliseconds to wait for response headers, and for each piece of the body; default 120 s. */
  timeoutMs?: number | undefined;
  /** Called as the body arrives: bytes so far, and the Content-Length when the server sent one. */
  onProgress?: ((progress: DownloadProgress) => void) | undefined;
}

export interface DownloadProgress {
  /** `start` when the body begins, `progress` per piece of it, `done` once it is all in and checked. */
  state: 'start' | 'progress' | 'done';
  /** Bytes of this attempt so far (a body that starts again after a cut starts from 0). */
  bytes: number;
  total: number | undefined;
}

export interface DownloadedFile {
  kind: 'downloaded';
  /** The file written in `dir` (the caller owns it). */
  path: string;
  digest: Digest;
  size: number;
  /** The server's validators and date, for revalidation next time and the file's mtime. */
  etag: string | undefined;
  lastModified: string | undefined;
  /** The URL after redirects. */
  finalUrl: string;
}

export interface NotModified {
  kind: 'not-modified';
  etag: string | undefined;
  lastModified: string | undefined;
}

const MAX_REDIRECTS = 10;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * Downloads one http(s) URL to a file, hashing it as it flows (the body is never held in memory).
 * Redirects are followed (at most 10) and credentials given in the URL go to its host only. Dropped
 * connections and 429/5xx answers are retried as the registry client retries; a body cut short starts
 * again. With a checksum, a file whose bytes do not match is removed and the error names both digests.
 * Messages never show a user name or password from the URL.
 */
export async function downloadUrl(url: string, options: DownloadOptions): Promise<DownloadedFile | NotModified> {
  const retry = resolveRetry(options.retry);
  const shown = redactUrl(url);
  for (let attempt = 1; ; attempt++) {
    try {
      return await downloadOnce(url, shown, options, retry);
    } catch (error) {
      if (options.signal?.aborted === true) throw new StrataError('E_ABORTED', `download of ${shown} was aborted`, { cause: error });
      if (isStrataError(error) || attempt > retry.retries || !isRetryableError(error)) throw describe(error, shown);
      await retry.sleep(backoffDelay(attempt, retry), options.signal);
    }
  }
}

async function downloadOnce(
  url: string,
  shown: string,
  options: DownloadOptions,
  retry: ReturnType<typeof resolveRetry>,
): Promise<DownloadedFile | NotModified> {
  let current = parseHttpUrl(url, shown);
  // Credentials in the URL become Basic auth for that host alone, as curl and BuildKit send them.
  const origin = current.host;
  const auth =
    current.username !== '' || current.password !== ''
      ? `Basic ${Buffer.from(`${decodeURIComponent(current.username)}:${decodeURIComponent(current.password)}`).toString('base64')}`
      : undefined;
  current.username = '';
  current.password = '';
  let response: FetchResponse | undefined;
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = { 'user-agent': 'strata', accept: '*/*', 'accept-encoding': 'identity' };
    if (auth !== undefined && current.host === origin) headers.authorization = auth;
    if (options.validators?.etag !== undefined) headers['if-none-match'] = options.validators.etag;
    if (options.validators?.lastModified !== undefined) headers['if-modified-since'] = options.validators.lastModified;
    const target = current.href;
    try {
      response = await sendWithRetry(options.fetch, target, () => ({ method: 'GET', headers, signal: options.signal }), {
        retry,
        signal: options.signal,
        timeoutMs: options.timeoutMs,
      });
    } catch (error) {
      // sendWithRetry has retried the connection already; only a body cut short starts the download again.
      if (options.signal?.aborted === true) throw error;
      throw describe(error, shown);
    }
    if (!REDIRECTS.has(response.status)) break;
    const location = response.headers.get('location');
    await discardBody(response);
    if (location === null) throw new StrataError('E_IO', `download of ${shown} failed: HTTP ${response.status} redirect without a Location`);
    if (hop + 1 > MAX_REDIRECTS) throw new StrataError('E_IO', `download of ${shown} failed: more than ${MAX_REDIRECTS} redirects`);
    current = parseHttpUrl(new URL(location, target).href, shown);
  }
  const etag = response.headers.get('etag') ?? undefined;
  const lastModified = response.headers.get('last-modified') ?? undefined;
  if (response.status === 304 && options.validators !== undefined) {
    await discardBody(response);
    return { kind: 'not-modified', etag: etag ?? options.validators.etag, lastModified: lastModified ?? options.validators.lastModified };
  }
  if (response.status < 200 || response.status >= 300) {
    await discardBody(response);
    throw new StrataError(
      response.status === 404 || response.status === 410 ? 'E_NOT_FOUND' : 'E_IO',
      `download of ${shown} failed: HTTP ${response.status}${statusText(response.status)}`,
      {
        hint:
          response.status === 401 || response.status === 403
            ? 'the server refused access; put credentials in the URL or download the file into the context'
            : undefined,
      },
    );
  }
  const { path, digest, size } = await saveBody(response, options, shown);
  return { kind: 'downloaded', path, digest, size, etag, lastModified, finalUrl: current.href };
}

/**
 * Streams a response body to a new file in `options.dir`, hashing it and telling its progress, under an
 * idle deadline. A body shorter than its Content-Length is a retryable premature close; bytes that fail
 * the checksum are removed.
 */
async function saveBody(response: FetchResponse, options: DownloadOptions, shown: string): Promise<{ path: string; digest: Digest; size: number }> {
  const path = join(options.dir, `.download-${randomBytes(8).toString('hex')}`);
  const hasher = new Hasher('sha256');
  const body: AsyncIterable<Uint8Array> = response.body ?? emptyBody();
  // A body that stops flowing is a dropped connection (retried), not a build that hangs forever.
  const idleMs = options.timeoutMs ?? 120_000;
  const declared = response.headers.get('content-length');
  const total = declared !== null && /^\d+$/.test(declared) ? Number(declared) : undefined;
  const onProgress = options.onProgress;
  onProgress?.({ state: 'start', bytes: 0, total });
  const stalled = new AbortController();
  let idle = setTimeout(() => stalled.abort(), idleMs);
  const signal = options.signal === undefined ? stalled.signal : AbortSignal.any([options.signal, stalled.signal]);
  try {
    await pipeline(
      body,
      async function* (source: AsyncIterable<Uint8Array>) {
        for await (const chunk of source) {
          clearTimeout(idle);
          idle = setTimeout(() => stalled.abort(), idleMs);
          hasher.update(chunk);
          onProgress?.({ state: 'progress', bytes: hasher.size, total });
          yield chunk;
        }
      },
      createWriteStream(path, { flags: 'wx', mode: 0o600 }),
      { signal },
    );
  } catch (error) {
    await rm(path, { force: true });
    if (stalled.signal.aborted && options.signal?.aborted !== true) {
      throw Object.assign(new Error(`no data for ${idleMs} ms`), { code: 'ETIMEDOUT', cause: error });
    }
    if (isRetryableError(error) || options.signal?.aborted === true) throw error;
    throw ioError(`download ${shown} to`, options.dir, error);
  } finally {
    clearTimeout(idle);
  }
  if (total !== undefined && total !== hasher.size) {
    await rm(path, { force: true });
    // A body cut short at a clean boundary: retried like a dropped connection.
    throw Object.assign(new Error(`premature close: ${hasher.size} of ${total} bytes`), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
  }
  const digest = hasher.digest();
  if (options.checksum !== undefined && digest !== options.checksum) {
    await rm(path, { force: true });
    throw new StrataError('E_DIGEST_MISMATCH', `${shown} has digest ${digest}, but --checksum expects ${options.checksum}`, {
      hint: 'the file behind the URL changed or the checksum is wrong; nothing was added',
    });
  }
  onProgress?.({ state: 'done', bytes: hasher.size, total });
  return { path, digest, size: hasher.size };
}

async function* emptyBody(): AsyncGenerator<Uint8Array> {
  // A response without a body is an empty file.
}

function parseHttpUrl(text: string, shown: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch (cause) {
    throw new StrataError('E_USAGE', `${shown} is not a valid URL`, { cause });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new StrataError('E_USAGE', `download of ${shown} failed: ${url.protocol} is not http or https`);
  }
  return url;
}

function statusText(status: number): string {
  const names: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    410: 'Gone',
    429: 'Too Many Requests',
    500: 'Internal Server Error',
    502: 'Bad Gateway',
    503: 'Service Unavailable',
    504: 'Gateway Timeout',
  };
  return names[status] === undefined ? '' : ` ${names[status]}`;
}

/** A network failure in one line that names the URL (never its credentials). */
function describe(error: unknown, shown: string): StrataError {
  if (isStrataError(error)) return error;
  const proxy = proxyFailure(error);
  if (proxy !== undefined) {
    return new StrataError('E_IO', `download of ${shown} failed: ${proxy.message}`, {
      cause: error,
      hint: isCertificateCode(proxy.code) ? "pass the proxy's CA with --ca-cert FILE (or NODE_EXTRA_CA_CERTS)" : 'check HTTPS_PROXY, HTTP_PROXY and NO_PROXY',
    });
  }
  const e = error as { code?: unknown; message?: unknown; cause?: { code?: unknown } };
  const code = typeof e.code === 'string' ? e.code : typeof e.cause?.code === 'string' ? e.cause.code : undefined;
  const message = typeof e.message === 'string' ? e.message.replace(/https?:\/\/[^\s]*/g, (u) => redactUrl(u)) : String(error);
  const why =
    code === 'ECONNREFUSED'
      ? 'connection refused'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? 'host not found'
        : code === 'ETIMEDOUT'
          ? 'timed out'
          : message;
  return new StrataError('E_IO', `download of ${shown} failed: ${why}`, { cause: error });
}
