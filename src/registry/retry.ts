import { StrataError } from '../errors/index.js';

export interface RetryOptions {
  /** Attempts after the first; default 4. */
  retries?: number | undefined;
  /** First backoff delay; doubled each attempt, with jitter. Default 250 ms. */
  baseDelayMs?: number | undefined;
  /** Ceiling for one backoff delay and for a server's Retry-After. Default 30 s. */
  maxDelayMs?: number | undefined;
  /** Injected for tests; default a timer that honours the signal. */
  sleep?: ((ms: number, signal?: AbortSignal) => Promise<void>) | undefined;
  /** Injected for tests; default Math.random. */
  random?: (() => number) | undefined;
  /** Injected clock for HTTP-date Retry-After values; default Date.now. */
  now?: (() => number) | undefined;
}

export type ResolvedRetry = Required<{ [K in keyof RetryOptions]: NonNullable<RetryOptions[K]> }>;

export function resolveRetry(options: RetryOptions = {}): ResolvedRetry {
  return {
    retries: options.retries ?? 4,
    baseDelayMs: options.baseDelayMs ?? 250,
    maxDelayMs: options.maxDelayMs ?? 30_000,
    sleep: options.sleep ?? sleep,
    random: options.random ?? Math.random,
    now: options.now ?? Date.now,
  };
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function abortError(signal: AbortSignal | undefined): StrataError {
  return new StrataError('E_ABORTED', 'the operation was aborted', { cause: signal?.reason });
}

/** Statuses worth another try: rate limiting and transient server or gateway failures. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 408 || status === 500 || status === 502 || status === 503 || status === 504;
}

const RETRYABLE_ERRNO = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'ERR_STREAM_PREMATURE_CLOSE',
  // A proxy that answered CONNECT with a 5xx (see proxy.ts); its 4xx (EPROXY_REFUSED) is final.
  'EPROXY_UNAVAILABLE',
]);

/** An untrusted or invalid TLS certificate: retrying or falling back to HTTP would not help. */
export function isCertificateError(error: unknown): boolean {
  for (let e = error, depth = 0; typeof e === 'object' && e !== null && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && isCertificateCode(code)) return true;
  }
  return false;
}

/** Whether an error code is OpenSSL's or Node's for a certificate that could not be verified. */
export function isCertificateCode(code: string): boolean {
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS_CERT/.test(code);
}

/** A dropped or refused connection, a premature end of a body: the network, not the request. */
export function isRetryableError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  if (isCertificateError(error)) return false;
  const e = error as { code?: unknown; errno?: unknown; type?: unknown; name?: unknown; message?: unknown; cause?: unknown };
  if (e.name === 'AbortError' || e.code === 'E_ABORTED' || e.code === 'EPROXY_REFUSED') return false;
  if (typeof e.code === 'string' && RETRYABLE_ERRNO.has(e.code)) return true;
  if (typeof e.errno === 'string' && RETRYABLE_ERRNO.has(e.errno)) return true;
  // node-fetch wraps socket errors as FetchError type "system"; a body cut short is "Premature close".
  if (e.type === 'system') return true;
  if (typeof e.message === 'string' && /premature close|socket hang up|other side closed|terminated/i.test(e.message)) return true;
  return e.cause !== undefined && e.cause !== error && isRetryableError(e.cause);
}

/** Retry-After as seconds or an HTTP date; undefined when absent or unparseable. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** The delay before attempt `attempt` (1-based): the server's Retry-After when given, else jittered exponential backoff. */
export function backoffDelay(attempt: number, retry: ResolvedRetry, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, retry.maxDelayMs);
  const exp = retry.baseDelayMs * 2 ** (attempt - 1);
  // Full jitter in the upper half keeps parallel transfers from retrying in lockstep.
  const jittered = exp / 2 + (exp / 2) * retry.random();
  return Math.min(jittered, retry.maxDelayMs);
}
