import type { Readable } from 'node:stream';
import { StrataError } from '../errors/index.js';
import { isLoopbackRegistry, registryApiHost, splitRegistryHost } from '../ref/index.js';
import { RegistryAuth, isPrivateHost, type CredentialLookup } from './auth.js';
import { parseWwwAuthenticate } from './challenge.js';
import { findDeadline, resolveDeadlines, type DeadlineOptions, type RegistryDeadlines } from './deadlines.js';
import { describeContext, proxyUnreachableError, redactUrl, registryResponseError, stallError, unreachableError, type RegistryErrorContext } from './errors.js';
import { createNodeFetch, discardBody, readText, type FetchInit, type FetchLike, type FetchResponse } from './http.js';
import type { ProgressListener } from './progress.js';
import { proxyFailure } from './proxy.js';
import { isCertificateError, isRetryableStatus, resolveRetry, type ResolvedRetry, type RetryOptions } from './retry.js';
import { mergeScopes } from './scopes.js';
import { sendWithRetry } from './send.js';

export interface RegistryConnectionOptions {
  /** The registry as written in references: `docker.io`, `ghcr.io`, `localhost:5000`. */
  registry: string;
  /** Injected HTTP; default node-fetch with keep-alive agents (and `caCert`). */
  fetch?: FetchLike | undefined;
  credentials?: CredentialLookup | undefined;
  /** Registries (host[:port]) reachable over plain HTTP besides loopback ones. */
  insecureRegistries?: readonly string[] | undefined;
  /** PEM CA certificate(s) to trust besides the well-known ones, for registries with a private CA (default fetch only). */
  caCert?: string | Buffer | undefined;
  retry?: RetryOptions | undefined;
  now?: (() => number) | undefined;
  userAgent?: string | undefined;
  /** Connect, time-to-first-byte and body idle deadlines (see deadlines.ts); 30 s each by default. */
  deadlines?: DeadlineOptions | undefined;
  /** The same as `deadlines.headersMs`. */
  timeoutMs?: number | undefined;
  /** The same as `deadlines.idleMs`. */
  bodyIdleTimeoutMs?: number | undefined;
  /**
   * Force a scheme. Default: https; loopback and insecure registries use plain http when their listener
   * does not speak TLS at all (as docker does; see pingEitherScheme).
   */
  scheme?: 'https' | 'http' | undefined;
  progress?: ProgressListener | undefined;
}

export type HttpMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

export interface RequestSpec {
  method: HttpMethod;
  /** Absolute URL, or a path under the registry's base URL. */
  url: string;
  headers?: Record<string, string> | undefined;
  /** Called once per attempt, so the body can be re-created for a retry. */
  body?: (() => Uint8Array | Readable) | undefined;
  scopes: readonly string[];
  ctx: RegistryErrorContext;
  signal?: AbortSignal | undefined;
  /** False when the body can be sent only once; default true. */
  retryable?: boolean | undefined;
  /** Default: for GET and HEAD. */
  followRedirects?: boolean | undefined;
}

const MAX_REDIRECTS = 5;

/**
 * One registry endpoint: base URL and scheme policy, auth, retries, redirects. Everything the
 * client and uploads send goes through `send`.
 */
export class RegistryTransport {
  readonly registry: string;
  /** `https://host[:port]` or, once the ping found no TLS there, `http://…`. */
  baseUrl: string;
  readonly allowHttp: boolean;
  private readonly probeTls: boolean;
  private readonly apiHost: string;
  readonly auth: RegistryAuth;
  readonly retry: ResolvedRetry;
  readonly progress: ProgressListener | undefined;
  readonly deadlines: RegistryDeadlines;
  private readonly fetch: FetchLike;
  private readonly userAgent: string;
  private pinged: Promise<void> | undefined;

  constructor(options: RegistryConnectionOptions) {
    this.registry = options.registry;
    const apiHost = registryApiHost(options.registry);
    const insecure = (options.insecureRegistries ?? []).some((h) => h === options.registry || h === apiHost);
    this.apiHost = apiHost;
    this.allowHttp = insecure || isLoopbackRegistry(apiHost) || options.scheme === 'http';
    this.probeTls = this.allowHttp && options.scheme === undefined;
    this.baseUrl = `${options.scheme ?? 'https'}://${apiHost}`;
    this.deadlines = resolveDeadlines({
      ...options.deadlines,
      headersMs: options.timeoutMs ?? options.deadlines?.headersMs,
      idleMs: options.bodyIdleTimeoutMs ?? options.deadlines?.idleMs,
    });
    this.fetch = options.fetch ?? createNodeFetch({ caCert: options.caCert, connectTimeoutMs: this.deadlines.connectMs });
    this.retry = resolveRetry({ ...options.retry, now: options.retry?.now ?? options.now });
    this.userAgent = options.userAgent ?? 'strata/0.1';
    this.progress = options.progress;
    this.auth = new RegistryAuth({
      registry: options.registry,
      fetch: this.fetch,
      retry: this.retry,
      credentials: options.credentials,
      now: options.now,
      allowHttp: this.allowHttp,
      userAgent: this.userAgent,
      timeoutMs: this.deadlines.headersMs,
      idleMs: this.deadlines.idleMs,
    });
  }

  url(path: string): string {
    return `${this.baseUrl}${path}`;
  }

  /** `GET /v2/`: learns how the registry wants to be authenticated. Done once, lazily. */
  ping(signal?: AbortSignal): Promise<void> {
    this.pinged ??= this.doPing(signal).catch((error: unknown) => {
      this.pinged = undefined;
      throw error;
    });
    return this.pinged;
  }

  private async doPing(signal?: AbortSignal): Promise<void> {
    const ctx = { registry: this.registry };
    const response = this.probeTls ? await this.pingEitherScheme(signal) : await this.pingWithRetries(this.url('/v2/'), signal);
    const url = this.url('/v2/');
    if (response.status === 200) {
      await discardBody(response);
      return;
    }
    if (response.status === 401) {
      const header = response.headers.get('www-authenticate');
      await discardBody(response);
      if (!this.auth.setChallenge(header)) {
        throw new StrataError(
          'E_REGISTRY_UNSUPPORTED',
          `${describeContext(ctx)}: asks for an authentication scheme strata cannot answer (${header ?? 'no WWW-Authenticate header'})`,
        );
      }
      return;
    }
    const body = await readText(response);
    if (response.status === 404) {
      throw new StrataError('E_REGISTRY_UNSUPPORTED', `${describeContext(ctx)}: ${redactUrl(url)} answered 404; not an OCI distribution registry`, {
        hint: 'check the registry address',
      });
    }
    throw registryResponseError(ctx, response.status, body);
  }

  private pingInit(): FetchInit {
    return { method: 'GET', headers: { 'user-agent': this.userAgent } };
  }

  /**
   * A registry that may speak plain HTTP (loopback, --insecure-registry). With a port in its name both
   * schemes reach one listener, which speaks one of them: plain `/v2/` is asked first, and HTTPS only when
   * the listener refuses it (a TLS listener answers 400 or drops the connection). So a plain registry never
   * costs a TLS context, whose trust store takes ~20 ms of CPU to build. Without a port, :443 and :80 may
   * be two servers: both are asked at once, as go-containerregistry does, so a plain one costs no failed
   * handshake first, and HTTPS wins when it answers. The ping carries no credentials.
   */
  private async pingEitherScheme(signal: AbortSignal | undefined): Promise<FetchResponse> {
    const plainUrl = `http://${this.apiHost}/v2/`;
    if (splitRegistryHost(this.apiHost).port !== undefined) {
      const plain = await this.askPlainOnce(plainUrl, signal);
      if (plain !== undefined) return plain;
      return this.overTlsElsePlain(
        signal,
        () => this.pingWithRetries(plainUrl, signal),
        () => undefined,
      );
    }
    const plainAbort = new AbortController();
    const plain = sendWithRetry(
      this.fetch,
      plainUrl,
      () => this.pingInit(),
      this.sendOptions(signal ? AbortSignal.any([signal, plainAbort.signal]) : plainAbort.signal, true),
    );
    plain.catch(() => undefined);
    return this.overTlsElsePlain(
      signal,
      () => plain.catch((cause: unknown) => Promise.reject(this.networkError({ registry: this.registry }, plainUrl, cause))),
      () => {
        plainAbort.abort();
        plain.then(discardBody, () => undefined);
      },
    );
  }

  /**
   * Plain `/v2/`, one try. Any answer but 400 means the listener speaks plain HTTP, and the base URL
   * switches to it (a busy answer is asked again with retries). Undefined when it refused plain HTTP.
   */
  private async askPlainOnce(plainUrl: string, signal: AbortSignal | undefined): Promise<FetchResponse | undefined> {
    let response: FetchResponse;
    try {
      response = await sendWithRetry(this.fetch, plainUrl, () => this.pingInit(), this.sendOptions(signal, false));
    } catch (cause) {
      if (signal?.aborted) throw this.networkError({ registry: this.registry }, plainUrl, cause);
      // Connected and then silent: no TLS listener (it would refuse the plain request), so a stalled
      // plain one; the other attempts go to it, counting this one.
      if (findDeadline(cause)?.phase === 'headers') {
        this.baseUrl = `http://${this.apiHost}`;
        return this.pingWithRetries(plainUrl, signal, 1);
      }
      return undefined;
    }
    if (response.status === 400) {
      await discardBody(response);
      return undefined;
    }
    this.baseUrl = `http://${this.apiHost}`;
    if (!isRetryableStatus(response.status)) return response;
    await discardBody(response);
    return this.pingWithRetries(plainUrl, signal);
  }

  /**
   * `/v2/` over HTTPS, one try: its answer wins (a busy one is asked again with retries) and `dropPlain`
   * is called; a certificate problem is reported; any other failure means plain HTTP, and the base URL
   * switches to it for `plain()` to answer.
   */
  private async overTlsElsePlain(signal: AbortSignal | undefined, plain: () => Promise<FetchResponse>, dropPlain: () => void): Promise<FetchResponse> {
    const tlsUrl = this.url('/v2/');
    let overTls: FetchResponse;
    try {
      overTls = await sendWithRetry(this.fetch, tlsUrl, () => this.pingInit(), this.sendOptions(signal, false));
    } catch (cause) {
      if (isCertificateError(cause) || signal?.aborted) {
        dropPlain();
        throw this.networkError({ registry: this.registry }, tlsUrl, cause);
      }
      this.baseUrl = `http://${this.apiHost}`;
      return plain();
    }
    dropPlain();
    if (!isRetryableStatus(overTls.status)) return overTls;
    await discardBody(overTls);
    return this.pingWithRetries(tlsUrl, signal);
  }

  /** `GET /v2/` at `url` with the usual retries; a failure to reach it becomes the typed network error. */
  private async pingWithRetries(url: string, signal: AbortSignal | undefined, attemptsUsed = 0): Promise<FetchResponse> {
    try {
      return await sendWithRetry(this.fetch, url, () => this.pingInit(), { ...this.sendOptions(signal, true), attemptsUsed });
    } catch (cause) {
      throw this.networkError({ registry: this.registry }, url, cause);
    }
  }

  private sendOptions(signal: AbortSignal | undefined, retryable: boolean) {
    return {
      retry: this.retry,
      signal,
      timeoutMs: this.deadlines.headersMs,
      idleMs: this.deadlines.idleMs,
      retryable,
      onRetry: (info: { attempt: number; delayMs: number; url: string; reason: string }) =>
        this.progress?.({
          type: 'retry',
          registry: this.registry,
          attempt: info.attempt,
          delayMs: info.delayMs,
          reason: info.reason,
          path: redactUrl(info.url),
        }),
    };
  }

  /** A progress note for a retry made outside `send` (a body that failed after its headers). */
  noteRetry(info: { attempt: number; delayMs: number; url: string; reason: string }): void {
    this.progress?.({ type: 'retry', registry: this.registry, attempt: info.attempt, delayMs: info.delayMs, reason: info.reason, path: redactUrl(info.url) });
  }

  private networkError(ctx: RegistryErrorContext, url: string, cause: unknown, method = 'GET'): StrataError {
    if (cause instanceof StrataError) return cause;
    const deadline = findDeadline(cause);
    if (deadline) return stallError(ctx, method, url, deadline);
    const proxy = proxyFailure(cause);
    if (proxy !== undefined) return proxyUnreachableError(ctx, url, proxy, cause);
    if (isCertificateError(cause)) {
      return new StrataError(
        'E_REGISTRY_INSECURE',
        `${describeContext(ctx)}: TLS certificate of ${new URL(url).host} not trusted (${(cause as { code?: string }).code ?? 'certificate error'})`,
        {
          hint: `pass the registry's CA with --ca-cert FILE, or --skip-tls-verify=${new URL(url).host} to accept any certificate from it (insecure)`,
          cause,
        },
      );
    }
    if (typeof cause === 'object' && cause !== null && (cause as { name?: string }).name === 'AbortError') {
      return new StrataError('E_ABORTED', `${describeContext(ctx)}: aborted`, { cause });
    }
    return unreachableError(ctx, url, cause);
  }

  /**
   * Sends a request with the Authorization the scopes need, answering one 401 challenge, retrying
   * transient failures and following redirects. Authorization goes only to the registry's own
   * origin, never to a redirect target elsewhere (storage URLs are pre-signed).
   */
  async send(spec: RequestSpec): Promise<FetchResponse> {
    await this.ping(spec.signal);
    const registryOrigin = new URL(this.baseUrl).origin;
    let url = spec.url.startsWith('/') ? this.url(spec.url) : spec.url;
    let method = spec.method;
    let body = spec.body;
    let scopes = [...spec.scopes];
    let answeredChallenge = false;
    const follow = spec.followRedirects ?? (method === 'GET' || method === 'HEAD');
    for (let hops = 0; ; ) {
      const sameOrigin = new URL(url).origin === registryOrigin;
      const headers: Record<string, string> = { 'user-agent': this.userAgent, ...spec.headers };
      if (sameOrigin) {
        const authorization = await this.auth.authorization(scopes, spec.signal);
        if (authorization) headers.authorization = authorization;
      }
      let response: FetchResponse;
      try {
        const b = body;
        response = await sendWithRetry(this.fetch, url, () => ({ method, headers, body: b?.() }), this.sendOptions(spec.signal, spec.retryable !== false));
      } catch (cause) {
        throw this.networkError(spec.ctx, url, cause, method);
      }
      // A one-shot body has been consumed: the caller (the upload) decides how to go on after a 401.
      const canResend = spec.retryable !== false || spec.body === undefined;
      if (response.status === 401 && sameOrigin && !answeredChallenge && canResend) {
        answeredChallenge = true;
        const header = response.headers.get('www-authenticate');
        await discardBody(response);
        if (headers.authorization) this.auth.invalidate();
        if (!this.auth.setChallenge(header)) throw registryResponseError(spec.ctx, 401, '');
        const asked = header ? parseWwwAuthenticate(header).find((c) => c.scheme === 'bearer')?.params.scope : undefined;
        if (asked) scopes = mergeScopes(scopes, asked.split(' '));
        continue;
      }
      if (follow && [301, 302, 303, 307, 308].includes(response.status)) {
        const location = response.headers.get('location');
        await discardBody(response);
        if (!location) throw new StrataError('E_REGISTRY', `${describeContext(spec.ctx)}: redirect without a Location`);
        if (++hops > MAX_REDIRECTS) throw new StrataError('E_REGISTRY', `${describeContext(spec.ctx)}: more than ${MAX_REDIRECTS} redirects`);
        url = this.checkRedirect(spec.ctx, url, location);
        if (response.status === 303) {
          method = 'GET';
          body = undefined;
        }
        continue;
      }
      return response;
    }
  }

  private checkRedirect(ctx: RegistryErrorContext, from: string, location: string): string {
    let target: URL;
    try {
      target = new URL(location, from);
    } catch {
      throw new StrataError('E_REGISTRY', `${describeContext(ctx)}: redirect to an invalid location`);
    }
    if (target.protocol !== 'https:' && target.protocol !== 'http:') {
      throw new StrataError('E_REGISTRY', `${describeContext(ctx)}: redirect to a ${target.protocol} URL refused`);
    }
    if (target.protocol === 'http:' && !this.allowHttp && !isLoopbackRegistry(target.host)) {
      throw new StrataError('E_REGISTRY_INSECURE', `${describeContext(ctx)}: redirect from HTTPS to plain HTTP (${redactUrl(target.toString())}) refused`);
    }
    // A public registry may not bounce us to loopback, private or link-local addresses (SSRF).
    if (!this.allowHttp && isPrivateHost(target.hostname)) {
      throw new StrataError('E_REGISTRY', `${describeContext(ctx)}: redirect to a private address (${redactUrl(target.toString())}) refused`);
    }
    return target.toString();
  }

  /** Turns a failed response into a typed error, reading its body for the spec's error codes. */
  async fail(response: FetchResponse, ctx: RegistryErrorContext): Promise<StrataError> {
    const body = await readText(response);
    const error = registryResponseError(ctx, response.status, body);
    if (response.status === 401) {
      const challenge = parseWwwAuthenticate(response.headers.get('www-authenticate') ?? '').find((c) => c.scheme === 'bearer');
      if (await this.auth.hasCredential()) {
        const scope = challenge?.params.scope;
        return new StrataError(
          challenge?.params.error === 'insufficient_scope' ? 'E_REGISTRY_DENIED' : 'E_REGISTRY_UNAUTHORIZED',
          `${describeContext(ctx)}: the registry refused the credentials${scope ? ` for ${scope}` : ''} (HTTP 401)`,
          { hint: `check that the account may access this repository, or log in again with \`strata login ${this.registry}\`` },
        );
      }
      return new StrataError('E_REGISTRY_UNAUTHORIZED', `${describeContext(ctx)}: authentication required and no credentials are stored for ${this.registry}`, {
        hint: `log in with \`strata login ${this.registry}\``,
      });
    }
    return error;
  }
}
