import { Agent as HttpAgent, type ClientRequestArgs } from 'node:http';
import { Agent as HttpsAgent, type RequestOptions as HttpsRequestOptions } from 'node:https';
import type { Duplex, Readable } from 'node:stream';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import nodeFetch, { type BodyInit } from 'node-fetch';
import { CONNECT_DEADLINE, DEFAULT_DEADLINES, DeadlineError, connectDeadline } from './deadlines.js';
import { HttpTunnelAgent, HttpsTunnelAgent, proxyFor, type ProxySettings } from './proxy.js';

/** The response surface strata needs; node-fetch's and the global fetch's responses both fit. */
export interface FetchResponse {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  /** Node Readable (node-fetch) or web ReadableStream (global fetch); both are async-iterable. */
  readonly body: AsyncIterable<Uint8Array> | null;
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
}

export interface FetchInit {
  method: string;
  headers: Record<string, string>;
  body?: Uint8Array | Readable | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * How strata sends one HTTP request. Redirects are never followed by the adapter (the client
 * follows them itself, to drop Authorization across hosts); response bodies are never decoded.
 */
export type FetchLike = (url: string, init: FetchInit) => Promise<FetchResponse>;

export interface NodeFetchOptions {
  /**
   * PEM text of CA certificates to trust for https besides the well-known ones: a private registry's CA
   * (and NODE_EXTRA_CA_CERTS's, which a context of its own would not see otherwise).
   */
  caCert?: string | Buffer | undefined;
  maxSockets?: number | undefined;
  /** TCP connect plus TLS handshake; default 30 s. */
  connectTimeoutMs?: number | undefined;
  /** HTTPS_PROXY/HTTP_PROXY/NO_PROXY (proxySettingsFromEnv); requests they name go through a CONNECT tunnel. */
  proxy?: ProxySettings | undefined;
  /**
   * Hosts (`host[:port]` of the URL) whose certificates are not verified at all (`--skip-tls-verify`); every
   * other host, a redirect target included, is verified as usual.
   */
  skipVerify?: ((host: string) => boolean) | undefined;
}

class DeadlineHttpAgent extends HttpAgent {
  constructor(
    options: ConstructorParameters<typeof HttpAgent>[0],
    private readonly connectMs: number,
  ) {
    super(options);
  }
  override createConnection(options: ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const socket = super.createConnection(options, callback);
    connectDeadline(socket, this.connectMs, `${options.host ?? options.hostname ?? ''}:${options.port ?? ''}`);
    return socket;
  }
}

class DeadlineHttpsAgent extends HttpsAgent {
  constructor(
    options: ConstructorParameters<typeof HttpsAgent>[0],
    private readonly connectMs: number,
  ) {
    super(options);
  }
  override createConnection(options: HttpsRequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const socket = super.createConnection(options, callback);
    connectDeadline(socket, this.connectMs, `${options.host ?? options.hostname ?? ''}:${options.port ?? ''}`);
    return socket;
  }
}

/** The default adapter: node-fetch 3 over keep-alive agents. */
export function createNodeFetch(options: NodeFetchOptions = {}): FetchLike {
  const maxSockets = options.maxSockets ?? 16;
  const connectMs = options.connectTimeoutMs ?? DEFAULT_DEADLINES.connectMs;
  const httpAgent = new DeadlineHttpAgent({ keepAlive: true, maxSockets }, connectMs);
  const { caCert } = options;
  // Made at the first https request, so a build that makes none never parses a certificate. With extra CAs,
  // one context for every connection (registries and proxies alike): the `ca` option alone would parse
  // them all again for each.
  let context: SecureContext | undefined;
  const trust = (): { secureContext: SecureContext } | Record<string, never> =>
    caCert === undefined ? {} : { secureContext: (context ??= createSecureContext({ ca: [...rootCertificates, caCert] })) };
  let httpsAgent: HttpsAgent | undefined;
  let unverifiedAgent: HttpsAgent | undefined;
  const agentFor = (parsed: URL): HttpAgent | HttpsAgent => {
    if (parsed.protocol === 'http:') return httpAgent;
    if (options.skipVerify?.(parsed.host) === true) return (unverifiedAgent ??= new HttpsAgent({ keepAlive: true, maxSockets, rejectUnauthorized: false }));
    httpsAgent ??= new DeadlineHttpsAgent({ keepAlive: true, maxSockets, ...trust() }, connectMs);
    return httpsAgent;
  };
  const tunnels = new Map<string, HttpAgent | HttpsAgent>();
  const proxied = (parsed: URL): HttpAgent | HttpsAgent | undefined => {
    const proxy = options.proxy === undefined ? undefined : proxyFor(parsed, options.proxy);
    if (proxy === undefined) return undefined;
    const skip = parsed.protocol === 'https:' && options.skipVerify?.(parsed.host) === true;
    const key = `${parsed.protocol}${skip ? 'unverified:' : ''}${proxy.href}`;
    let agent = tunnels.get(key);
    if (agent === undefined) {
      // The proxy's own certificate is checked against the same trust as a registry's.
      const proxyTls = trust();
      agent =
        parsed.protocol === 'https:'
          ? new HttpsTunnelAgent(proxy, proxyTls, connectMs, { keepAlive: true, maxSockets, ...(skip ? { rejectUnauthorized: false } : trust()) })
          : new HttpTunnelAgent(proxy, proxyTls, connectMs, { keepAlive: true, maxSockets });
      tunnels.set(key, agent);
    }
    return agent;
  };
  return async (url, init) => {
    try {
      const response = await nodeFetch(url, {
        method: init.method,
        headers: init.headers,
        // node-fetch sends any Uint8Array or Readable; its typings only name Buffer and streams.
        body: (init.body ?? null) as BodyInit | null,
        signal: init.signal ?? null,
        redirect: 'manual',
        compress: false,
        agent: (parsed: URL) => proxied(parsed) ?? agentFor(parsed),
      });
      // node-fetch's typings say its body yields strings or Buffers; with no encoding set it yields Buffers only.
      const body = response.body as AsyncIterable<Uint8Array> | null;
      return { status: response.status, headers: response.headers, body, text: () => response.text(), arrayBuffer: () => response.arrayBuffer() };
    } catch (error) {
      if ((error as { code?: unknown } | null)?.code === CONNECT_DEADLINE) throw new DeadlineError('connect', connectMs, { host: new URL(url).host });
      throw error;
    }
  };
}

/** Reads and drops a response body so the keep-alive connection can be reused. */
export async function discardBody(response: FetchResponse): Promise<void> {
  const body = response.body as (AsyncIterable<Uint8Array> & { destroy?: () => void; cancel?: () => Promise<void> }) | null;
  if (!body) return;
  try {
    for await (const _ of body) {
      // draining
    }
  } catch {
    // The body of a response we do not want can fail however it likes.
  }
}

/** Reads a body as text, at most `limit` bytes (error bodies of broken proxies can be huge). */
export async function readText(response: FetchResponse, limit = 64 * 1024): Promise<string> {
  const body = response.body;
  if (!body) return '';
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      if (size < limit) chunks.push(Buffer.from(chunk));
      size += chunk.byteLength;
    }
  } catch {
    // A truncated error body still says something.
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}

/** Reads a whole small body, refusing more than `limit` bytes. */
export async function readBytes(response: FetchResponse, limit: number, what: string): Promise<Buffer> {
  const body = response.body;
  if (!body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > limit) throw new Error(`${what} is larger than ${limit} bytes`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}
