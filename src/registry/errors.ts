import { StrataError, type ErrorCode } from '../errors/index.js';
import type { DeadlineError } from './deadlines.js';
import { isCertificateCode } from './retry.js';

/** Where a registry failure happened, for messages: registry, then repository, then the object. */
export interface RegistryErrorContext {
  registry: string;
  repository?: string | undefined;
  /** `blob sha256:…`, `manifest latest`, `upload of blob sha256:…` */
  what?: string | undefined;
}

export interface SpecError {
  code: string;
  message: string;
}

export function describeContext(ctx: RegistryErrorContext): string {
  return [`registry ${ctx.registry}`, ctx.repository ? `repository ${ctx.repository}` : undefined, ctx.what].filter((x): x is string => !!x).join(', ');
}

/** The `errors` array of a distribution-spec error body; empty when the body is not one. */
export function parseSpecErrors(body: string): SpecError[] {
  try {
    const doc = JSON.parse(body) as { errors?: unknown };
    if (!Array.isArray(doc.errors)) return [];
    return doc.errors
      .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
      .map((e) => ({ code: typeof e.code === 'string' ? e.code : 'UNKNOWN', message: typeof e.message === 'string' ? e.message : '' }));
  } catch {
    return [];
  }
}

const BY_SPEC_CODE: Record<string, ErrorCode> = {
  UNAUTHORIZED: 'E_REGISTRY_UNAUTHORIZED',
  DENIED: 'E_REGISTRY_DENIED',
  NAME_UNKNOWN: 'E_REGISTRY_NOT_FOUND',
  MANIFEST_UNKNOWN: 'E_REGISTRY_NOT_FOUND',
  BLOB_UNKNOWN: 'E_REGISTRY_NOT_FOUND',
  BLOB_UPLOAD_UNKNOWN: 'E_REGISTRY_NOT_FOUND',
  UNSUPPORTED: 'E_REGISTRY_UNSUPPORTED',
  DIGEST_INVALID: 'E_DIGEST_MISMATCH',
  SIZE_INVALID: 'E_SIZE_MISMATCH',
};

function codeForStatus(status: number): ErrorCode {
  if (status === 401) return 'E_REGISTRY_UNAUTHORIZED';
  if (status === 403) return 'E_REGISTRY_DENIED';
  if (status === 404) return 'E_REGISTRY_NOT_FOUND';
  if (status === 405 || status === 415 || status === 501) return 'E_REGISTRY_UNSUPPORTED';
  return 'E_REGISTRY';
}

function hintFor(code: ErrorCode, ctx: RegistryErrorContext, status: number): string | undefined {
  switch (code) {
    case 'E_REGISTRY_UNAUTHORIZED':
      return `log in with \`strata login ${ctx.registry}\` (or check the stored credentials)`;
    case 'E_REGISTRY_DENIED':
      return "the credentials are valid but lack permission for this repository; check the account's access";
    case 'E_REGISTRY_NOT_FOUND':
      return 'check the repository name and tag; a private repository also answers "not found" without credentials';
    case 'E_REGISTRY_UNSUPPORTED':
      return 'the registry does not support this operation or media type; try --format docker for older registries';
    default:
      return status === 429 ? 'the registry is rate limiting; wait and retry, or log in for a higher limit' : undefined;
  }
}

/** Builds the error for a failed registry response from its status and (already read) body. */
export function registryResponseError(ctx: RegistryErrorContext, status: number, body: string): StrataError {
  const specErrors = parseSpecErrors(body);
  const first = specErrors[0];
  const code = (first && BY_SPEC_CODE[first.code]) ?? codeForStatus(status);
  const detail = specErrors.length > 0 ? specErrors.map((e) => `${e.code}${e.message ? `: ${e.message}` : ''}`).join('; ') : statusText(status);
  return new StrataError(code, `${describeContext(ctx)}: ${detail} (HTTP ${status})`, { hint: hintFor(code, ctx, status) });
}

function statusText(status: number): string {
  const texts: Record<number, string> = {
    400: 'bad request',
    401: 'unauthorized',
    403: 'denied',
    404: 'not found',
    405: 'method not allowed',
    409: 'conflict',
    413: 'request too large',
    415: 'unsupported media type',
    416: 'range not satisfiable',
    429: 'too many requests',
    500: 'internal server error',
    502: 'bad gateway',
    503: 'service unavailable',
    504: 'gateway timeout',
  };
  return texts[status] ?? 'unexpected response';
}

/**
 * A request that ran out of a deadline, after its retries: one line with the registry, the request,
 * what it waited for and how long.
 */
export function stallError(ctx: RegistryErrorContext, method: string, url: string, deadline: DeadlineError): StrataError {
  const attempts = deadline.attempts > 1 ? ` (${deadline.attempts} attempts)` : '';
  return new StrataError('E_REGISTRY_UNREACHABLE', `${describeContext(ctx)}: ${method} ${redactUrl(url)}: ${deadline.message}${attempts}`, {
    hint: 'the registry (or a proxy before it) stopped answering; try again later, or allow longer waits with --registry-timeout',
    cause: deadline,
  });
}

export function unreachableError(ctx: RegistryErrorContext, url: string, cause: unknown): StrataError {
  const why = cause instanceof Error ? ((cause as { code?: string }).code ?? cause.message) : String(cause);
  return new StrataError('E_REGISTRY_UNREACHABLE', `${describeContext(ctx)}: cannot reach ${redactUrl(url)}: ${why}`, {
    hint: 'check the registry address and your network; for a plain-HTTP registry use --insecure-registry',
    cause,
  });
}

/** A URL for messages: no query string (upload state, signed storage URLs) and no user info. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '<invalid url>';
  }
}

/** A request the proxy could not carry (its TLS, its refusal): names the proxy without its credentials. */
export function proxyUnreachableError(ctx: RegistryErrorContext, url: string, proxy: { message: string; code: string }, cause: unknown): StrataError {
  const certificate = isCertificateCode(proxy.code);
  return new StrataError(
    certificate ? 'E_REGISTRY_INSECURE' : 'E_REGISTRY_UNREACHABLE',
    `${describeContext(ctx)}: cannot reach ${redactUrl(url)}: ${proxy.message}`,
    {
      hint: certificate
        ? "pass the proxy's CA with --ca-cert FILE (or NODE_EXTRA_CA_CERTS); it is trusted for registries and proxies alike"
        : 'check HTTPS_PROXY, HTTP_PROXY and NO_PROXY (and the credentials in the proxy URL)',
      cause,
    },
  );
}
