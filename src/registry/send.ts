import { Readable } from 'node:stream';
import { DEFAULT_DEADLINES, DeadlineError, UploadDeadline, findDeadline, guardBody, guardUpload } from './deadlines.js';
import { type FetchInit, type FetchLike, type FetchResponse, discardBody } from './http.js';
import { abortError, backoffDelay, isRetryableError, isRetryableStatus, parseRetryAfter, type ResolvedRetry } from './retry.js';

export interface RetryInfo {
  attempt: number;
  delayMs: number;
  url: string;
  reason: string;
}

export interface SendOptions {
  retry: ResolvedRetry;
  signal?: AbortSignal | undefined;
  /** Milliseconds to wait for response headers once the request body is sent; default 30 s. */
  timeoutMs?: number | undefined;
  /** The longest silence inside the response body (which the caller reads); default 30 s. */
  idleMs?: number | undefined;
  /** Attempts already spent on this request elsewhere (a probe); they count against the retries. */
  attemptsUsed?: number | undefined;
  /** False for requests whose body cannot be sent twice. */
  retryable?: boolean | undefined;
  onRetry?: ((info: RetryInfo) => void) | undefined;
}

/**
 * Sends one request, retrying dropped connections and 429/5xx answers with backoff (or the
 * server's Retry-After). The last failed response is returned, not thrown, so the caller can turn
 * its body into a typed error. `makeInit` is called once per attempt so bodies can be re-created.
 */
export async function sendWithRetry(fetch: FetchLike, url: string, makeInit: () => FetchInit, options: SendOptions): Promise<FetchResponse> {
  const { retry } = options;
  const maxAttempts = options.retryable === false ? 1 : retry.retries + 1;
  for (let attempt = 1 + (options.attemptsUsed ?? 0); ; attempt++) {
    if (options.signal?.aborted) throw abortError(options.signal);
    let response: FetchResponse;
    try {
      response = await withTimeout(
        fetch,
        url,
        makeInit(),
        options.signal,
        options.timeoutMs ?? DEFAULT_DEADLINES.headersMs,
        options.idleMs ?? DEFAULT_DEADLINES.idleMs,
      );
    } catch (error) {
      if (options.signal?.aborted) throw abortError(options.signal);
      const deadline = findDeadline(error);
      if (deadline) deadline.attempts = attempt;
      if (attempt >= maxAttempts || !isRetryableError(error)) throw error;
      const delayMs = backoffDelay(attempt, retry);
      options.onRetry?.({ attempt, delayMs, url, reason: errorReason(error) });
      await retry.sleep(delayMs, options.signal);
      continue;
    }
    if (!isRetryableStatus(response.status) || attempt >= maxAttempts) return withIdleDeadline(response, options.idleMs ?? DEFAULT_DEADLINES.idleMs);
    const delayMs = backoffDelay(attempt, retry, parseRetryAfter(response.headers.get('retry-after'), retry.now()));
    await discardBody(response);
    options.onRetry?.({ attempt, delayMs, url, reason: `HTTP ${response.status}` });
    await retry.sleep(delayMs, options.signal);
  }
}

/** The response with its body under the idle deadline (every body reader gets the guard). */
function withIdleDeadline(response: FetchResponse, idleMs: number): FetchResponse {
  if (!response.body) return response;
  const body = guardBody(response.body, idleMs);
  const read = async (): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };
  return {
    status: response.status,
    headers: response.headers,
    body,
    text: async () => (await read()).toString('utf8'),
    arrayBuffer: async () => {
      const copy = new Uint8Array(await read());
      return copy.buffer;
    },
  };
}

function errorReason(error: unknown): string {
  if (error instanceof DeadlineError) return error.message;
  if (typeof error === 'object' && error !== null) {
    const e = error as { code?: unknown; message?: unknown };
    if (typeof e.code === 'string') return e.code;
    if (typeof e.message === 'string') return e.message;
  }
  return String(error);
}

/**
 * The timer starts once a streamed body has been sent in full: an upload that takes longer than the
 * timeout to stream (a large layer, a slow link, bytes still being produced) is not "no response".
 */
async function withTimeout(
  fetch: FetchLike,
  url: string,
  init: FetchInit,
  signal: AbortSignal | undefined,
  timeoutMs: number,
  idleMs: number,
): Promise<FetchResponse> {
  const timeout = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const start = (): void => {
    timer = setTimeout(() => timeout.abort(new DeadlineError('headers', timeoutMs)), timeoutMs);
  };
  const body = init.body instanceof Readable && !init.body.readableEnded ? guardUpload(init.body, idleMs) : init.body;
  if (body instanceof Readable) body.once('end', start);
  else start();
  const combined = signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal;
  try {
    return await fetch(url, { ...init, body, signal: combined });
  } catch (error) {
    if (timeout.signal.aborted && !signal?.aborted) throw new DeadlineError('headers', timeoutMs);
    if (body instanceof UploadDeadline && body.failure !== undefined) throw body.failure;
    throw error;
  } finally {
    if (body instanceof Readable) body.off('end', start);
    clearTimeout(timer);
  }
}
