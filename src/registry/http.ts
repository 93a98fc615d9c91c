import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import { createSecureContext, rootCertificates } from 'node:tls';
import nodeFetch, { type BodyInit } from 'node-fetch';

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
   * PEM text of CA certificates to trust for https besides the well-known ones: a private registry's CA,
   * or NODE_EXTRA_CA_CERTS when Node was started without it (see cli/strata).
   */
  caCert?: string | Buffer | undefined;
  maxSockets?: number | undefined;
  /**
   * Hosts (`host[:port]` of the URL) whose certificates are not verified at all (`--skip-tls-verify`); every
   * other host, a redirect target included, is verified as usual.
   */
  skipVerify?: ((host: string) => boolean) | undefined;
}

/** The default adapter: node-fetch 3 over keep-alive agents. */
export function createNodeFetch(options: NodeFetchOptions = {}): FetchLike {
  const maxSockets = options.maxSockets ?? 16;
  const httpAgent = new HttpAgent({ keepAlive: true, maxSockets });
  const { caCert } = options;
  // Made at the first https request, so a build that makes none never parses a certificate. With extra CAs,
  // one context for every connection: the `ca` option alone would parse them all again for each.
  let httpsAgent: HttpsAgent | undefined;
  let unverifiedAgent: HttpsAgent | undefined;
  const agentFor = (parsed: URL): HttpAgent | HttpsAgent => {
    if (parsed.protocol === 'http:') return httpAgent;
    if (options.skipVerify?.(parsed.host) === true) return (unverifiedAgent ??= new HttpsAgent({ keepAlive: true, maxSockets, rejectUnauthorized: false }));
    httpsAgent ??= new HttpsAgent({
      keepAlive: true,
      maxSockets,
      ...(caCert !== undefined ? { secureContext: createSecureContext({ ca: [...rootCertificates, caCert] }) } : {}),
    });
    return httpsAgent;
  };
  return async (url, init) => {
    const response = await nodeFetch(url, {
      method: init.method,
      headers: init.headers,
      // node-fetch sends any Uint8Array or Readable; its typings only name Buffer and streams.
      body: (init.body ?? null) as BodyInit | null,
      signal: init.signal ?? null,
      redirect: 'manual',
      compress: false,
      agent: agentFor,
    });
    return response as unknown as FetchResponse;
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
