import { Agent as HttpAgent, request as httpRequest, type AgentOptions as HttpAgentOptions, type ClientRequestArgs } from 'node:http';
import { Agent as HttpsAgent, type AgentOptions } from 'node:https';
import { isIP } from 'node:net';
import { PassThrough, type Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';

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
  return new URL(raw.includes('://') ? raw : `http://${raw}`);
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

/**
 * Opens a CONNECT tunnel through an http:// proxy to the request's host and port, with TLS inside it for
 * https targets (with the agent's secureContext, so --ca-cert applies). Proxy credentials from the proxy
 * URL go in Proxy-Authorization.
 */
function openTunnel(proxy: URL, tls: boolean, options: ClientRequestArgs, done: Done): void {
  const host = String(options.host ?? options.hostname ?? 'localhost').replace(/^\[|\]$/g, '');
  const port = Number(options.port ?? (tls ? 443 : 80));
  const authority = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
  const headers: Record<string, string> = { host: authority };
  if (proxy.username !== '' || proxy.password !== '') {
    headers['proxy-authorization'] = `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}`;
  }
  const req = httpRequest({
    host: proxy.hostname.replace(/^\[|\]$/g, ''),
    port: Number(proxy.port || 80),
    method: 'CONNECT',
    path: authority,
    headers,
    agent: false,
  });
  req.once('connect', (res, socket) => {
    if (res.statusCode !== 200) {
      socket.destroy();
      done(Object.assign(new Error(`the proxy ${proxy.host} refused CONNECT ${authority}: HTTP ${res.statusCode}`), { code: 'EPROXY' }), socket);
      return;
    }
    if (!tls) {
      done(null, socket);
      return;
    }
    done(null, tlsConnect({ ...(options as Record<string, unknown>), socket, host, servername: isIP(host) === 0 ? host : undefined }));
  });
  // On an error the agent ignores the stream argument; it only has to be a stream.
  req.once('error', (error) => done(error, new PassThrough()));
  req.end();
}

/** https requests through a CONNECT tunnel (TLS to the target inside it). */
export class HttpsTunnelAgent extends HttpsAgent {
  constructor(
    private readonly proxy: URL,
    options: AgentOptions,
  ) {
    super(options);
  }

  override createConnection(options: ClientRequestArgs, callback?: Done): Duplex | null | undefined {
    openTunnel(this.proxy, true, options, callback ?? ((): void => undefined));
    return undefined;
  }
}

/** Plain http requests through a CONNECT tunnel, which every proxy allowing CONNECT to that port accepts. */
export class HttpTunnelAgent extends HttpAgent {
  constructor(
    private readonly proxy: URL,
    options: HttpAgentOptions,
  ) {
    super(options);
  }

  override createConnection(options: ClientRequestArgs, callback?: Done): Duplex | null | undefined {
    openTunnel(this.proxy, false, options, callback ?? ((): void => undefined));
    return undefined;
  }
}
