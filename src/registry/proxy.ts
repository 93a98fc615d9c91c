import { Agent as HttpAgent, request as httpRequest, type AgentOptions as HttpAgentOptions, type ClientRequestArgs } from 'node:http';
import { Agent as HttpsAgent, type AgentOptions } from 'node:https';
import { isIP } from 'node:net';
import { PassThrough, type Duplex } from 'node:stream';
import { connect as tlsConnect, type SecureContext } from 'node:tls';
import { StrataError } from '../errors/index.js';
import { connectDeadline, formatWait } from './deadlines.js';

/** Proxies as the environment names them (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, or their lowercase forms). */
export interface ProxySettings {
  httpsProxy?: string | undefined;
  httpProxy?: string | undefined;
  noProxy?: string | undefined;
}

export function proxySettingsFromEnv(env: Readonly<Record<string, string | undefined>>): ProxySettings | undefined {
  const pick = (name: string): string | undefined => {
    const v = env[name] ?? env[name.toLowerCase()];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const settings = { httpsProxy: pick('HTTPS_PROXY'), httpProxy: pick('HTTP_PROXY'), noProxy: pick('NO_PROXY') };
  return settings.httpsProxy === undefined && settings.httpProxy === undefined ? undefined : settings;
}

/**
 * The proxy a request to `target` goes through, with Go's rules (golang.org/x/net/http/httpproxy, which
 * docker, BuildKit and skopeo use): loopback hosts never; NO_PROXY `*` for none; an entry matches the host
 * itself and its subdomains (`.example.com` only subdomains), an IP or CIDR, with an optional `:port`.
 * A proxy is reached over http:// (the default when no scheme is given) or https://; another scheme
 * (socks5://) is refused with E_USAGE, naming the proxy without its credentials.
 */
export function proxyFor(target: URL, settings: ProxySettings): URL | undefined {
  const raw = target.protocol === 'https:' ? settings.httpsProxy : settings.httpProxy;
  if (raw === undefined) return undefined;
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost') || isLoopback(host)) return undefined;
  const port = target.port || (target.protocol === 'https:' ? '443' : '80');
  for (const entry of (settings.noProxy ?? '')
    .split(',')
    .map((e) => e.trim().toLowerCase())
    .filter(Boolean)) {
    if (entry === '*') return undefined;
    if (noProxyMatches(entry, host, port)) return undefined;
  }
  let proxy: URL;
  try {
    proxy = new URL(raw.includes('://') ? raw : `http://${raw}`);
  } catch (cause) {
    throw new StrataError('E_USAGE', `${proxyVariable(target)} is not a valid proxy URL`, { cause });
  }
  if (proxy.protocol !== 'http:' && proxy.protocol !== 'https:') {
    throw new StrataError(
      'E_USAGE',
      `${proxyVariable(target)} names a ${proxy.protocol}//${proxy.host} proxy; strata speaks to http:// and https:// proxies only`,
    );
  }
  return proxy;
}

function proxyVariable(target: URL): string {
  return target.protocol === 'https:' ? 'HTTPS_PROXY' : 'HTTP_PROXY';
}

function isLoopback(host: string): boolean {
  return host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

function noProxyMatches(entry: string, host: string, port: string): boolean {
  let name = entry;
  let entryPort: string | undefined;
  const portMatch = /^(.*[^:\]]):(\d+)$/.exec(entry);
  if (portMatch && isIP(entry) !== 6) {
    name = portMatch[1]!;
    entryPort = portMatch[2];
  }
  name = name.replace(/^\[|\]$/g, '');
  if (entryPort !== undefined && entryPort !== port) return false;
  if (name.includes('/') && isIP(host) !== 0) return inCidr(host, name);
  if (isIP(name) !== 0) return name === host;
  if (name.startsWith('.')) return host.endsWith(name);
  const bare = name.startsWith('*.') ? name.slice(1) : name;
  return bare.startsWith('.') ? host.endsWith(bare) : host === bare || host.endsWith(`.${bare}`);
}

function inCidr(ip: string, cidr: string): boolean {
  const [base = '', bitsText = ''] = cidr.split('/');
  const bits = Number(bitsText);
  if (isIP(ip) !== 4 || isIP(base) !== 4 || !Number.isInteger(bits) || bits < 0 || bits > 32) return false;
  const num = (a: string): number => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const size = 2 ** (32 - bits);
  return Math.floor(num(ip) / size) === Math.floor(num(base) / size);
}

type Done = (err: Error | null, stream: Duplex) => void;

/** node-fetch keeps only a socket error's code, syscall and message; this syscall marks a proxy's failure. */
const PROXY_SYSCALL = 'proxy';

/**
 * A failure of the proxy itself: the connection or TLS to it, or its answer to CONNECT. It names the
 * proxy by host and port only (never the credentials of its URL) and keeps the cause's code, so a dropped
 * connection is retried and a certificate it cannot verify is not. A refusal is `EPROXY_REFUSED` (4xx,
 * not retried) or `EPROXY_UNAVAILABLE` (5xx, retried).
 */
export class ProxyError extends Error {
  readonly code: string;
  readonly syscall = PROXY_SYSCALL;

  constructor(proxy: string, what: string, code: string, options?: { cause?: unknown }) {
    super(`the proxy ${proxy} ${what}`, options);
    this.code = code;
  }
}

/** What went wrong with the proxy, from a ProxyError or node-fetch's error for one; undefined for any other error. */
export function proxyFailure(error: unknown): { message: string; code: string } | undefined {
  for (let e = error, depth = 0; typeof e === 'object' && e !== null && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, message, erroredSysCall } = e as { code?: unknown; message?: unknown; erroredSysCall?: unknown };
    if (!(e instanceof ProxyError) && erroredSysCall !== PROXY_SYSCALL) continue;
    const text = String(message);
    // node-fetch says "request to URL failed, reason: " before the proxy's own words.
    const reason = text.indexOf('the proxy ');
    return { message: reason < 0 ? text : text.slice(reason), code: typeof code === 'string' ? code : 'EPROXY' };
  }
  return undefined;
}

/** Trust for TLS to an https:// proxy: the same store as for the registries (--ca-cert, NODE_EXTRA_CA_CERTS). */
export interface ProxyTlsOptions {
  secureContext?: SecureContext | undefined;
  rejectUnauthorized?: boolean | undefined;
}

function bare(host: string): string {
  return host.replace(/^\[|\]$/g, '');
}

/**
 * Opens a CONNECT tunnel through the proxy to the request's host and port, with TLS inside it for https
 * targets (with the agent's secureContext, so --ca-cert applies). An https:// proxy is itself reached over
 * TLS first (as Go's http.ProxyFromEnvironment and curl do), so an https target is TLS inside TLS. Proxy
 * credentials from the proxy URL go in Proxy-Authorization. A proxy that has not answered CONNECT within `connectMs`
 * (connection, its TLS and its answer together) fails the request as a dropped connection would (ETIMEDOUT,
 * retried); the TLS handshake with the target inside the tunnel gets its own `connectMs`, as a direct one does.
 */
function openTunnel(proxy: URL, proxyTls: ProxyTlsOptions, tls: boolean, options: ClientRequestArgs, connectMs: number, done: Done): void {
  const host = bare(String(options.host ?? options.hostname ?? 'localhost'));
  const port = Number(options.port ?? (tls ? 443 : 80));
  const authority = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
  const headers: Record<string, string> = { host: authority };
  if (proxy.username !== '' || proxy.password !== '') {
    headers['proxy-authorization'] = `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}`;
  }
  const secure = proxy.protocol === 'https:';
  const proxyHost = bare(proxy.hostname);
  const proxyPort = Number(proxy.port || (secure ? 443 : 80));
  const toProxy = (): Duplex =>
    tlsConnect({ host: proxyHost, port: proxyPort, servername: isIP(proxyHost) === 0 ? proxyHost : undefined, ALPNProtocols: ['http/1.1'], ...proxyTls });
  const req = httpRequest({
    host: proxyHost,
    port: proxyPort,
    method: 'CONNECT',
    path: authority,
    headers,
    // Node calls createConnection only for a request without an agent.
    ...(secure ? { createConnection: toProxy } : { agent: false }),
  });
  let settled = false;
  const finish: Done = (err, stream) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    done(err, stream);
  };
  // On an error the agent ignores the stream argument; it only has to be a stream.
  const timer = setTimeout(() => {
    finish(new ProxyError(proxy.host, `did not open a tunnel to ${authority} within ${formatWait(connectMs)}`, 'ETIMEDOUT'), new PassThrough());
    req.destroy();
  }, connectMs);
  req.once('connect', (res, socket) => {
    if (settled) {
      socket.destroy();
      return;
    }
    if (res.statusCode !== 200) {
      socket.destroy();
      const status = res.statusCode ?? 0;
      finish(new ProxyError(proxy.host, `refused CONNECT ${authority}: HTTP ${status}`, status >= 500 ? 'EPROXY_UNAVAILABLE' : 'EPROXY_REFUSED'), socket);
      return;
    }
    if (!tls) {
      finish(null, socket);
      return;
    }
    const secured = tlsConnect({ ...(options as Record<string, unknown>), socket, host, servername: isIP(host) === 0 ? host : undefined });
    connectDeadline(secured, connectMs, authority);
    finish(null, secured);
  });
  req.on('error', (error: Error & { code?: string }) => {
    const what = `${secure ? 'over TLS ' : ''}failed: ${error.message}`;
    finish(new ProxyError(proxy.host, what, error.code ?? 'EPROXY_FAILED', { cause: error }), new PassThrough());
  });
  req.end();
}

/** https requests through a CONNECT tunnel (TLS to the target inside it). */
export class HttpsTunnelAgent extends HttpsAgent {
  constructor(
    private readonly proxy: URL,
    private readonly proxyTls: ProxyTlsOptions,
    private readonly connectMs: number,
    options: AgentOptions,
  ) {
    super(options);
  }

  override createConnection(options: ClientRequestArgs, callback?: Done): Duplex | null | undefined {
    openTunnel(this.proxy, this.proxyTls, true, options, this.connectMs, callback ?? ((): void => undefined));
    return undefined;
  }
}

/** Plain http requests through a CONNECT tunnel, which every proxy allowing CONNECT to that port accepts. */
export class HttpTunnelAgent extends HttpAgent {
  constructor(
    private readonly proxy: URL,
    private readonly proxyTls: ProxyTlsOptions,
    private readonly connectMs: number,
    options: HttpAgentOptions,
  ) {
    super(options);
  }

  override createConnection(options: ClientRequestArgs, callback?: Done): Duplex | null | undefined {
    openTunnel(this.proxy, this.proxyTls, false, options, this.connectMs, callback ?? ((): void => undefined));
    return undefined;
  }
}
