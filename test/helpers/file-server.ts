/**
 * A loopback HTTP(S) file server for `ADD <url>` and URL contexts: per-path routes with ETag and
 * Last-Modified (answering If-None-Match/If-Modified-Since with 304), redirects, error statuses for the
 * first N requests, slow bodies and bodies dropped part way. Every request is recorded with its headers.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Readable } from 'node:stream';
import { listenLoopback } from './ports.js';

export interface FileRoute {
  /** The body, or a stream factory for large bodies. */
  body?: Buffer | string | (() => Readable);
  /** Content-Length for a streamed body. */
  size?: number;
  etag?: string;
  lastModified?: string;
  headers?: Record<string, string>;
  /** Answer 3xx with this Location (absolute or relative). */
  redirect?: string;
  redirectStatus?: number;
  /** Answer this status (with a short body) for the first `failTimes` requests (default: always). */
  failStatus?: number;
  failTimes?: number;
  /** Cut the connection after this many body bytes, for the first `dropTimes` requests (default 1). */
  dropAfter?: number;
  dropTimes?: number;
  /** Pause this long between 64 KiB pieces of the body. */
  slowMs?: number;
  /** With dropAfter: stall this long (sending nothing) before cutting the connection. */
  stallMs?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  status: number;
}

export interface FileServer {
  url: string;
  routes: Map<string, FileRoute>;
  requests: RecordedRequest[];
  stop(): Promise<void>;
}

export async function startFileServer(options: { tls?: { cert: Buffer; key: Buffer } } = {}): Promise<FileServer> {
  const routes = new Map<string, FileRoute>();
  const requests: RecordedRequest[] = [];
  const counts = new Map<string, number>();
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0]!;
    const n = (counts.get(path) ?? 0) + 1;
    counts.set(path, n);
    const record: RecordedRequest = { method: req.method ?? 'GET', path, headers: req.headers, status: 0 };
    requests.push(record);
    const route = routes.get(path);
    const answer = (status: number, headers: Record<string, string> = {}, body = ''): void => {
      record.status = status;
      res.writeHead(status, { 'content-length': String(Buffer.byteLength(body)), ...headers });
      res.end(body);
    };
    if (route === undefined) {
      answer(404, {}, 'not found\n');
      return;
    }
    if (route.failStatus !== undefined && n <= (route.failTimes ?? Infinity)) {
      answer(route.failStatus, {}, `failing ${route.failStatus}\n`);
      return;
    }
    if (route.redirect !== undefined) {
      answer(route.redirectStatus ?? 302, { location: route.redirect });
      return;
    }
    const validators: Record<string, string> = {};
    if (route.etag !== undefined) validators.etag = route.etag;
    if (route.lastModified !== undefined) validators['last-modified'] = route.lastModified;
    const inm = req.headers['if-none-match'];
    const ims = req.headers['if-modified-since'];
    if (
      (route.etag !== undefined && inm === route.etag) ||
      (inm === undefined && route.lastModified !== undefined && ims !== undefined && Date.parse(ims) >= Date.parse(route.lastModified))
    ) {
      answer(304, validators);
      return;
    }
    const body = route.body ?? '';
    const size = typeof body === 'function' ? route.size : Buffer.byteLength(body);
    record.status = 200;
    res.writeHead(200, {
      ...(size !== undefined ? { 'content-length': String(size) } : {}),
      'content-type': 'application/octet-stream',
      ...validators,
      ...(route.headers ?? {}),
    });
    const drop = route.dropAfter !== undefined && n <= (route.dropTimes ?? 1) ? route.dropAfter : undefined;
    void send(res, typeof body === 'function' ? body() : [Buffer.from(body)], drop, route.slowMs, route.stallMs);
  };
  const server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler) : createHttpServer(handler);
  const port = await listenLoopback(server);
  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    routes,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function send(
  res: ServerResponse,
  source: AsyncIterable<Buffer> | Iterable<Buffer>,
  dropAfter: number | undefined,
  slowMs: number | undefined,
  stallMs = 20,
): Promise<void> {
  let sent = 0;
  try {
    for await (const chunk of source) {
      for (let off = 0; off < chunk.length; off += 65536) {
        let piece = chunk.subarray(off, off + 65536);
        if (dropAfter !== undefined && sent + piece.length > dropAfter) {
          piece = piece.subarray(0, dropAfter - sent);
          if (piece.length > 0) res.write(piece);
          await new Promise((r) => setTimeout(r, stallMs));
          res.socket?.destroy();
          return;
        }
        if (!res.write(piece)) await new Promise((r) => res.once('drain', r));
        sent += piece.length;
        if (slowMs !== undefined) await new Promise((r) => setTimeout(r, slowMs));
      }
    }
    res.end();
  } catch {
    res.socket?.destroy();
  }
}
