import { StrataError } from '../errors/index.js';
import { isLoopbackRegistry } from '../ref/index.js';
import { pickChallenge, parseWwwAuthenticate, type AuthChallenge } from './challenge.js';
import { redactUrl } from './errors.js';
import { readText, type FetchLike } from './http.js';
import type { ResolvedRetry } from './retry.js';
import { mergeScopes, scopesCover } from './scopes.js';
import { sendWithRetry } from './send.js';

import type { RegistryCredential } from './credentials/index.js';

export type { RegistryCredential };

/** Looks up the credential for a registry host as written in references (`docker.io`, `localhost:5000`). */
export type CredentialLookup = (registryHost: string) => Promise<RegistryCredential | undefined>;

interface Token {
  value: string;
  scopes: string[];
  expiresAt: number;
}

export interface RegistryAuthOptions {
  /** The registry as in references, for credential lookup and messages. */
  registry: string;
  fetch: FetchLike;
  retry: ResolvedRetry;
  credentials?: CredentialLookup | undefined;
  now?: (() => number) | undefined;
  /** Plain-HTTP token realms are accepted for these registries (loopback and --insecure-registry ones). */
  allowHttp: boolean;
  userAgent: string;
  timeoutMs?: number | undefined;
  idleMs?: number | undefined;
}

const DEFAULT_TOKEN_TTL_S = 60;
const CLIENT_ID = 'strata';

/**
 * Answers a registry's challenge: Bearer tokens (anonymous, Basic-authenticated GET, OAuth2
 * refresh-token POST) reused until they expire or the needed scopes grow; or Basic.
 */
export class RegistryAuth {
  private challenge: AuthChallenge | undefined;
  private token: Token | undefined;
  private readonly inflight = new Map<string, Promise<Token>>();
  private credential: Promise<RegistryCredential | undefined> | undefined;
  private refreshToken: string | undefined;
  private readonly now: () => number;

  constructor(private readonly options: RegistryAuthOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Records the challenge of a 401; returns false when it offers nothing strata can answer. */
  setChallenge(header: string | null): boolean {
    const challenge = header ? pickChallenge(parseWwwAuthenticate(header)) : undefined;
    if (challenge) this.challenge = challenge;
    return challenge !== undefined;
  }

  get scheme(): string | undefined {
    return this.challenge?.scheme;
  }

  /** Drops a token the registry refused, so the next request fetches a new one. */
  invalidate(): void {
    this.token = undefined;
  }

  async hasCredential(): Promise<boolean> {
    return (await this.lookupCredential()) !== undefined;
  }

  /** The Authorization header value for a request that needs `scopes`, or undefined (anonymous). */
  async authorization(scopes: readonly string[], signal?: AbortSignal): Promise<string | undefined> {
    const challenge = this.challenge;
    if (!challenge) return undefined;
    if (challenge.scheme === 'basic') {
      const cred = await this.lookupCredential();
      if (!cred) return undefined;
      const user = cred.username ?? '';
      const pass = 'password' in cred ? cred.password : cred.identityToken;
      return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    }
    const current = this.token;
    if (current && current.expiresAt > this.now() && scopesCover(current.scopes, scopes)) return `Bearer ${current.value}`;
    // Ask for everything the live token had too, so one token keeps serving every repository in play.
    const wanted = mergeScopes(scopes, current && current.expiresAt > this.now() ? current.scopes : []);
    const key = wanted.join(' ');
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.fetchToken(challenge, wanted, signal).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    const token = await pending;
    this.token = token;
    return `Bearer ${token.value}`;
  }

  private lookupCredential(): Promise<RegistryCredential | undefined> {
    this.credential ??= this.options.credentials ? this.options.credentials(this.options.registry) : Promise.resolve(undefined);
    return this.credential;
  }

  private realmUrl(challenge: AuthChallenge): URL {
    const realm = challenge.params.realm ?? '';
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new StrataError('E_REGISTRY', `registry ${this.options.registry} sent an invalid token realm ${JSON.stringify(realm)}`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new StrataError('E_REGISTRY', `registry ${this.options.registry} sent a token realm with scheme ${url.protocol}`);
    }
    if (url.protocol === 'http:' && !this.options.allowHttp && !isLoopbackRegistry(url.host)) {
      throw new StrataError('E_REGISTRY_INSECURE', `registry ${this.options.registry} asks for credentials over plain HTTP (${redactUrl(realm)})`, {
        hint: `only allowed for registries given with --insecure-registry ${this.options.registry}`,
      });
    }
    // A public registry must not send our credentials to a loopback or link-local address (SSRF).
    if (!this.options.allowHttp && isPrivateHost(url.hostname)) {
      throw new StrataError('E_REGISTRY', `registry ${this.options.registry} names a private address as its token realm (${redactUrl(realm)}); refused`);
    }
    return url;
  }

  /**
   * Checks the stored credential with the token server (Bearer) without any scope, as `docker
   * login` does, asking for an offline (refresh) token that can be stored instead of the
   * password. Returns that token when the server issued one. Basic registries are checked by the
   * caller with an authenticated `GET /v2/`.
   */
  async login(signal?: AbortSignal): Promise<{ identityToken?: string }> {
    const challenge = this.challenge;
    if (challenge?.scheme !== 'bearer') return {};
    this.refreshToken = undefined;
    this.token = await this.fetchToken(challenge, [], signal, true);
    return this.refreshToken !== undefined ? { identityToken: this.refreshToken } : {};
  }

  private async fetchToken(challenge: AuthChallenge, scopes: string[], signal?: AbortSignal, offline = false): Promise<Token> {
    const realm = this.realmUrl(challenge);
    const service = challenge.params.service;
    const cred = await this.lookupCredential();
    const refresh = cred && 'identityToken' in cred ? cred.identityToken : this.refreshToken;
    if (refresh !== undefined) {
      const viaPost = await this.postOAuth(realm, service, scopes, refresh, signal);
      if (viaPost) return viaPost;
    }
    const url = new URL(realm);
    if (service) url.searchParams.set('service', service);
    for (const scope of scopes) url.searchParams.append('scope', scope);
    if (cred?.username) url.searchParams.set('account', cred.username);
    if (offline && cred && 'password' in cred) {
      url.searchParams.set('offline_token', 'true');
      url.searchParams.set('client_id', CLIENT_ID);
    }
    const headers: Record<string, string> = { 'user-agent': this.options.userAgent, accept: 'application/json' };
    if (cred && 'password' in cred) headers.authorization = `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString('base64')}`;
    const response = await this.send(url.toString(), { method: 'GET', headers }, signal);
    return this.readToken(response, scopes, cred);
  }

  /** The OAuth2 form (refresh token); undefined when the server does not offer it (404/405). */
  private async postOAuth(realm: URL, service: string | undefined, scopes: string[], refreshToken: string, signal?: AbortSignal): Promise<Token | undefined> {
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: CLIENT_ID, scope: scopes.join(' ') });
    if (service) form.set('service', service);
    const response = await this.send(
      realm.toString(),
      {
        method: 'POST',
        headers: { 'user-agent': this.options.userAgent, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: Buffer.from(form.toString()),
      },
      signal,
    );
    if (response.status === 404 || response.status === 405) {
      await readText(response);
      return undefined;
    }
    return this.readToken(response, scopes, await this.lookupCredential());
  }

  private async send(url: string, init: { method: string; headers: Record<string, string>; body?: Buffer }, signal?: AbortSignal) {
    try {
      return await sendWithRetry(this.options.fetch, url, () => ({ ...init, signal }), {
        retry: this.options.retry,
        signal,
        timeoutMs: this.options.timeoutMs,
        idleMs: this.options.idleMs,
      });
    } catch (cause) {
      if (cause instanceof StrataError) throw cause;
      const why = cause instanceof Error ? ((cause as { code?: string }).code ?? cause.message) : String(cause);
      throw new StrataError('E_REGISTRY_UNREACHABLE', `registry ${this.options.registry}: cannot reach its token server ${redactUrl(url)}: ${why}`, { cause });
    }
  }

  private async readToken(response: Awaited<ReturnType<RegistryAuth['send']>>, scopes: string[], cred: RegistryCredential | undefined): Promise<Token> {
    const body = await readText(response, 1024 * 1024);
    const who = cred ? `the credentials of ${cred.username ? `user ${cred.username}` : 'the identity token'}` : 'anonymous access';
    if (response.status === 401 || response.status === 403) {
      throw new StrataError('E_REGISTRY_UNAUTHORIZED', `registry ${this.options.registry}: the token server refused ${who} (HTTP ${response.status})`, {
        hint: cred
          ? `check the username and password, then \`strata login ${this.options.registry}\``
          : `log in with \`strata login ${this.options.registry}\``,
      });
    }
    if (response.status !== 200) {
      throw new StrataError('E_REGISTRY', `registry ${this.options.registry}: the token server answered HTTP ${response.status} for ${who}`);
    }
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown; refresh_token?: unknown };
    try {
      doc = JSON.parse(body) as typeof doc;
    } catch {
      throw new StrataError('E_REGISTRY', `registry ${this.options.registry}: the token server's answer is not JSON`);
    }
    const value = typeof doc.token === 'string' && doc.token !== '' ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : '';
    if (value === '') throw new StrataError('E_REGISTRY', `registry ${this.options.registry}: the token server's answer has no token`);
    if (typeof doc.refresh_token === 'string' && doc.refresh_token !== '') this.refreshToken = doc.refresh_token;
    const ttl = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : DEFAULT_TOKEN_TTL_S;
    // Renew a little early so a request does not arrive with a token that expired on the way.
    const margin = Math.min(10, ttl / 10);
    return { value, scopes, expiresAt: this.now() + (ttl - margin) * 1000 };
  }
}

function isPrivateHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost') || h === '::1') return true;
  if (/^(127|10)\./.test(h) || /^169\.254\./.test(h) || /^192\.168\./.test(h) || /^172\.(1[6-9]|2\d|3[01])\./.test(h)) return true;
  return /^f[cd][0-9a-f]{2}:/.test(h) || /^fe80:/.test(h);
}

/** Whether a host is loopback, private or link-local: a redirect from a public registry must not go there. */
export { isPrivateHost };
