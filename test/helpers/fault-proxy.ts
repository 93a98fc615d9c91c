/**
 * A loopback HTTP proxy in front of a real registry that injects faults, for tests only.
 *
 * Bodies stream through both ways (never buffered). The `Host` header is passed on unchanged, so
 * the registry builds its `Location` URLs for the proxy; any `Location` that still names the target
 * is rewritten to the proxy as well. The Bearer realm is left alone: token requests go straight to
 * the token server, which has its own failure hook (TokenServer.setFailure).
 *
 * A rule matches by method and path regex (the path includes the query string) and counts its own
 * matches, 1-based. It fires on matches nth .. nth+times-1: `nth` defaults to 1, and `times` to 1
 * when `nth` is given, else to every match. The first rule that fires decides; no rule: plain proxy.
 */
import { createServer, request as httpRequest, Agent, type IncomingMessage, type ServerResponse, type OutgoingHttpHeaders } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { listenLoopback } from './ports.js';

export type FaultAction =
  /** Answer this status without asking the registry, e.g. 503, 429 with `{'retry-after': '1'}`, 413, 416. */
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
  /** Forward, send the headers and the first `afterBytes` bytes of the body, then cut the connection. */
  | { kind: 'drop-response'; afterBytes: number }
  /** Forward `afterBytes` bytes of the request body (an upload), then cut both connections. */
  | { kind: 'drop-request'; afterBytes: number }
  /** Close the client's connection at once, with no response at all. */
  | { kind: 'close' }
  /** Forward, but invert the byte at `offset` (default 0) of the response body: the digest no longer matches. */
  | { kind: 'corrupt'; offset?: number }
  /** Forward only the first `bytes` bytes of the body, with Content-Length shortened to match: a clean short body. */
  | { kind: 'truncate'; bytes: number }
  /** Wait, then forward. */
  | { kind: 'delay'; ms: number }
  /** Forward, send the headers and the first `afterBytes` bytes of the body, then send nothing more, holding the connection open. */
  | { kind: 'stall-response'; afterBytes: number }
  /** Read the request and never answer, holding the connection open. */
  | { kind: 'silent' }
  /**
   * Answer a redirect (default 307) to a side server on another port, which fetches the same
   * resource from the registry with the original request's credentials and serves those bytes.
   * What the client sent to that server is in `redirectServer.requests`.
   */
  | { kind: 'redirect'; status?: 301 | 302 | 303 | 307 | 308 };

export interface FaultRule {
  method?: string;
  path: RegExp;
  nth?: number;
  times?: number;
  action: FaultAction;
}

export interface ProxiedRequest {
  method: string;
  path: string;
  /** 0 when the connection was cut before a status was sent. */
  status: number;
  fault?: FaultAction['kind'];
  /** The client's request headers, lowercase names. */
  headers: Record<string, string | string[] | undefined>;
  /** Request body bytes the proxy read from the client so far. */
  requestBytes: number;
}

export interface RedirectedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface FaultProxy {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT` */
  host: string;
  requests: ProxiedRequest[];
  redirectServer: { url: string; requests: RedirectedRequest[] };
  /** Replaces the rules and resets their match counts. */
  setRules(rules: FaultRule[]): void;
  stop(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

function endToEnd(headers: Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name.toLowerCase())) out[name] = value;
  }
  return out;
}

/** Passes bytes through, inverting one at a fixed offset. */
class Corrupter extends Transform {
  private seen = 0;
  constructor(private readonly offset: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const start = this.seen;
    this.seen += chunk.length;
    if (this.offset >= start && this.offset < this.seen) {
      const copy = Buffer.from(chunk);
      const i = this.offset - start;
      copy[i] = (copy[i] ?? 0) ^ 0xff;
      cb(null, copy);
      return;
    }
    cb(null, chunk);
  }
}

/**
 * Passes the first `limit` bytes. Then, with `endAtLimit`, ends its output cleanly and swallows the
 * rest; otherwise calls `onLimit` once.
 */
class Limiter extends Transform {
  private seen = 0;
  private fired = false;
  constructor(
    private readonly limit: number,
    private readonly onLimit: () => void,
    private readonly endAtLimit = false,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.fired) {
      cb();
      return;
    }
    const room = this.limit - this.seen;
    this.seen += chunk.length;
    if (chunk.length < room) {
      cb(null, chunk);
      return;
    }
    this.fired = true;
    if (room > 0) this.push(chunk.subarray(0, room));
    if (this.endAtLimit) this.push(null);
    cb();
    this.onLimit();
  }
}

/** Writes the first `limit` bytes of `from` to `res` (keeping backpressure), then cuts the connection. */
function sendThenCut(from: IncomingMessage, res: ServerResponse, limit: number, cut: () => void): void {
  let sent = 0;
  const finish = (): void => {
    from.destroy();
    cut();
  };
  if (limit <= 0) {
    res.flushHeaders();
    setImmediate(finish);
    return;
  }
  from.on('data', (chunk: Buffer) => {
    if (sent >= limit) return;
    const part = chunk.subarray(0, limit - sent);
    sent += part.length;
    if (sent >= limit) {
      from.pause();
      res.write(part, finish);
      return;
    }
    if (!res.write(part)) {
      from.pause();
      res.once('drain', () => from.resume());
    }
  });
  // A body shorter than the limit is sent whole: there is nothing left to cut.
  from.on('end', () => res.end());
  from.on('error', () => cut());
}

/** Counts request body bytes into the record as they pass. */
function counter(record: ProxiedRequest): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      record.requestBytes += chunk.length;
      cb(null, chunk);
    },
  });
}

/** Reads and discards a request body the registry will never see, counting it. */
function drain(req: IncomingMessage, record: ProxiedRequest): void {
  req.on('data', (chunk: Buffer) => {
    record.requestBytes += chunk.length;
  });
  req.resume();
}

interface RuleState {
  rule: FaultRule;
  count: number;
}

export async function startFaultProxy(targetUrl: string, rules: FaultRule[] = []): Promise<FaultProxy> {
  const target = new URL(targetUrl);
  const targetOrigin = target.origin;
  const agent = new Agent({ keepAlive: true });
  let states: RuleState[] = rules.map((rule) => ({ rule, count: 0 }));
  const requests: ProxiedRequest[] = [];
  const redirectRequests: RedirectedRequest[] = [];
  const pendingRedirects = new Map<string, { method: string; path: string; headers: OutgoingHttpHeaders }>();
  let redirectSeq = 0;
  let proxyOrigin = '';
  let redirectOrigin = '';

  function pick(method: string, path: string): FaultAction | undefined {
    let chosen: FaultAction | undefined;
    for (const state of states) {
      const { rule } = state;
      if (rule.method !== undefined && rule.method.toUpperCase() !== method) continue;
      if (!rule.path.test(path)) continue;
      state.count += 1;
      const nth = rule.nth ?? 1;
      const times = rule.times ?? (rule.nth !== undefined ? 1 : Infinity);
      if (chosen === undefined && state.count >= nth && state.count < nth + times) chosen = rule.action;
    }
    return chosen;
  }

  function upstream(method: string, path: string, headers: OutgoingHttpHeaders, onResponse: (res: IncomingMessage) => void) {
    return httpRequest({ host: target.hostname, port: target.port, method, path, headers, agent }, onResponse);
  }

  function rewriteLocation(headers: OutgoingHttpHeaders): void {
    const location = headers['location'];
    if (typeof location === 'string' && location.startsWith(targetOrigin)) {
      headers['location'] = proxyOrigin + location.slice(targetOrigin.length);
    }
  }

  function cut(res: ServerResponse): void {
    res.socket?.destroy();
  }

  async function forward(req: IncomingMessage, res: ServerResponse, record: ProxiedRequest, action: FaultAction | undefined) {
    const method = req.method ?? 'GET';
    const headers = endToEnd(req.headers);
    const upstreamReq = upstream(method, req.url ?? '/', headers, (ures) => {
      const outHeaders = endToEnd(ures.headers);
      rewriteLocation(outHeaders);
      const status = ures.statusCode ?? 502;
      record.status = status;
      const body: Array<NodeJS.ReadableStream | NodeJS.WritableStream> = [ures];
      if (action?.kind === 'corrupt') body.push(new Corrupter(action.offset ?? 0));
      if (action?.kind === 'truncate') {
        const length = Number(outHeaders['content-length'] ?? NaN);
        outHeaders['content-length'] = String(Number.isNaN(length) ? action.bytes : Math.min(length, action.bytes));
        body.push(new Limiter(action.bytes, () => undefined, true));
      }
      if (action?.kind === 'drop-response') {
        res.writeHead(status, outHeaders);
        sendThenCut(ures, res, action.afterBytes, () => cut(res));
        return;
      }
      if (action?.kind === 'stall-response') {
        res.writeHead(status, outHeaders);
        // The rest is never sent; the connection stays open until the client gives up or the proxy stops.
        sendThenCut(ures, res, action.afterBytes, () => undefined);
        return;
      }
      res.writeHead(status, outHeaders);
      body.push(res);
      pipeline(body as unknown as [NodeJS.ReadableStream, NodeJS.WritableStream]).catch(() => cut(res));
    });
    upstreamReq.on('error', () => {
      if (!res.headersSent) {
        record.status = 502;
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end('fault proxy: upstream failed');
      } else cut(res);
    });
    if (action?.kind === 'drop-request') {
      const limiter = new Limiter(action.afterBytes, () => {
        // Give the forwarded part a moment to reach the registry, as a real dropped upload would.
        setTimeout(() => {
          upstreamReq.destroy();
          cut(res);
        }, 20);
      });
      await pipeline(req, counter(record), limiter, upstreamReq).catch(() => undefined);
      return;
    }
    await pipeline(req, counter(record), upstreamReq).catch(() => upstreamReq.destroy());
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const path = req.url ?? '/';
    const action = pick(method, path);
    const record: ProxiedRequest = { method, path, status: 0, headers: { ...req.headers }, requestBytes: 0 };
    if (action !== undefined) record.fault = action.kind;
    requests.push(record);
    switch (action?.kind) {
      case 'status': {
        drain(req, record);
        record.status = action.status;
        const body = action.body ?? JSON.stringify({ errors: [{ code: 'UNKNOWN', message: `fault proxy: injected ${action.status}` }] });
        res.writeHead(action.status, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...(action.headers ?? {}),
        });
        res.end(method === 'HEAD' ? undefined : body);
        return;
      }
      case 'close':
        drain(req, record);
        cut(res);
        return;
      case 'silent':
        drain(req, record);
        return;
      case 'redirect': {
        drain(req, record);
        const id = String(++redirectSeq);
        pendingRedirects.set(id, { method, path, headers: endToEnd(req.headers) });
        const status = action.status ?? 307;
        record.status = status;
        res.writeHead(status, { location: `${redirectOrigin}/redirected/${id}${path}`, 'content-length': 0 });
        res.end();
        return;
      }
      case 'delay':
        await new Promise((r) => setTimeout(r, action.ms));
        await forward(req, res, record, undefined);
        return;
      default:
        await forward(req, res, record, action);
    }
  }

  /** Serves the bytes of a redirected request, fetched from the registry with the original credentials. */
  function handleRedirected(req: IncomingMessage, res: ServerResponse): void {
    redirectRequests.push({ method: req.method ?? 'GET', path: req.url ?? '/', headers: { ...req.headers } });
    const match = /^\/redirected\/(\d+)\//.exec(req.url ?? '');
    const original = match?.[1] !== undefined ? pendingRedirects.get(match[1]) : undefined;
    req.resume();
    if (original === undefined) {
      res.writeHead(404, { 'content-length': 0 });
      res.end();
      return;
    }
    const headers: OutgoingHttpHeaders = { ...original.headers, host: target.host };
    const method = req.method === 'HEAD' ? 'HEAD' : 'GET';
    const upstreamReq = upstream(method, original.path, headers, (ures) => {
      res.writeHead(ures.statusCode ?? 502, endToEnd(ures.headers));
      pipeline(ures, res).catch(() => cut(res));
    });
    upstreamReq.on('error', () => cut(res));
    upstreamReq.end();
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => cut(res));
  });
  const redirectServer = createServer(handleRedirected);
  const port = await listenLoopback(server);
  const redirectPort = await listenLoopback(redirectServer);
  proxyOrigin = `http://127.0.0.1:${port}`;
  redirectOrigin = `http://127.0.0.1:${redirectPort}`;

  return {
    url: proxyOrigin,
    host: `127.0.0.1:${port}`,
    requests,
    redirectServer: { url: redirectOrigin, requests: redirectRequests },
    setRules(next) {
      states = next.map((rule) => ({ rule, count: 0 }));
    },
    async stop() {
      agent.destroy();
      for (const s of [server, redirectServer]) {
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
    },
  };
}
