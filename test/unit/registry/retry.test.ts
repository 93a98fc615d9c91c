import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createNodeFetch } from '../../../src/registry/index.js';
import { mapLimit } from '../../../src/store/pool.js';
import { backoffDelay, isRetryableError, isRetryableStatus, parseRetryAfter, resolveRetry } from '../../../src/registry/retry.js';
import { sendWithRetry, type RetryInfo } from '../../../src/registry/send.js';

describe('backoff arithmetic', () => {
  const retry = resolveRetry({ baseDelayMs: 100, maxDelayMs: 1000, random: () => 1 });

  it('doubles per attempt, capped, with jitter in the upper half', () => {
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(a, retry))).toEqual([100, 200, 400, 800, 1000]);
    const low = resolveRetry({ baseDelayMs: 100, random: () => 0 });
    expect(backoffDelay(3, low)).toBe(200);
  });

  it('uses Retry-After when given, capped', () => {
    expect(backoffDelay(1, retry, 500)).toBe(500);
    expect(backoffDelay(1, retry, 60_000)).toBe(1000);
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2024-01-01T00:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter('Mon, 01 Jan 2024 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Sun, 31 Dec 2023 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });

  it('classifies statuses and errors', () => {
    expect([429, 500, 502, 503, 504, 408].every(isRetryableStatus)).toBe(true);
    expect([400, 401, 403, 404, 409, 413, 416, 501].some(isRetryableStatus)).toBe(false);
    expect(isRetryableError(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isRetryableError(Object.assign(new Error('x'), { type: 'system', code: 'EPIPE' }))).toBe(true);
    expect(isRetryableError(new Error('Premature close'))).toBe(true);
    expect(isRetryableError(Object.assign(new Error('x'), { name: 'AbortError' }))).toBe(false);
    expect(isRetryableError(Object.assign(new Error('bad digest'), { code: 'E_DIGEST_MISMATCH' }))).toBe(false);
    expect(isRetryableError(new Error('x', { cause: Object.assign(new Error('y'), { code: 'ECONNRESET' }) }))).toBe(true);
  });
});

describe('sendWithRetry against a real loopback server', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  async function serve(handler: (req: IncomingMessage, res: ServerResponse, n: number) => void): Promise<string> {
    let n = 0;
    server = createServer((req, res) => handler(req, res, ++n));
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  const fetch = createNodeFetch();
  const opts = (delays: number[], extra: Partial<Parameters<typeof resolveRetry>[0]> = {}) => ({
    retry: resolveRetry({ baseDelayMs: 10, random: () => 0.5, sleep: async (ms: number) => void delays.push(ms), ...extra }),
    onRetry: (_: RetryInfo) => undefined,
  });

  it('retries 503 and then returns the success', async () => {
    const url = await serve((_req, res, n) => {
      res.writeHead(n < 3 ? 503 : 200, { 'content-type': 'text/plain' });
      res.end(n < 3 ? 'busy' : 'ok');
    });
    const delays: number[] = [];
    const res = await sendWithRetry(fetch, `${url}/x`, () => ({ method: 'GET', headers: {} }), opts(delays));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
    expect(delays).toEqual([7.5, 15]);
  });

  it('waits Retry-After on 429', async () => {
    const url = await serve((_req, res, n) => {
      res.writeHead(n === 1 ? 429 : 200, n === 1 ? { 'retry-after': '2' } : {});
      res.end();
    });
    const delays: number[] = [];
    const res = await sendWithRetry(fetch, url, () => ({ method: 'GET', headers: {} }), opts(delays));
    expect(res.status).toBe(200);
    expect(delays).toEqual([2000]);
  });

  it('retries a dropped connection', async () => {
    const url = await serve((req, res, n) => {
      if (n === 1) {
        req.socket.destroy();
        return;
      }
      res.end('fine');
    });
    const delays: number[] = [];
    const res = await sendWithRetry(fetch, url, () => ({ method: 'GET', headers: {} }), opts(delays));
    expect(await res.text()).toBe('fine');
    expect(delays).toHaveLength(1);
  });

  it('returns the last failed response when retries run out, and does not retry a one-shot body', async () => {
    let hits = 0;
    const url = await serve((_req, res) => {
      hits++;
      res.writeHead(503);
      res.end();
    });
    const delays: number[] = [];
    const res = await sendWithRetry(fetch, url, () => ({ method: 'GET', headers: {} }), opts(delays, { retries: 2 }));
    expect(res.status).toBe(503);
    expect(hits).toBe(3);
    hits = 0;
    const once = await sendWithRetry(fetch, url, () => ({ method: 'PATCH', headers: {}, body: Buffer.from('x') }), { ...opts(delays), retryable: false });
    expect(once.status).toBe(503);
    expect(hits).toBe(1);
  });

  it('does not retry a 404 and does not follow redirects itself', async () => {
    const url = await serve((req, res) => {
      if (req.url === '/moved') {
        res.writeHead(307, { location: '/elsewhere' });
        res.end();
        return;
      }
      res.writeHead(404);
      res.end();
    });
    const delays: number[] = [];
    expect((await sendWithRetry(fetch, `${url}/nope`, () => ({ method: 'GET', headers: {} }), opts(delays))).status).toBe(404);
    const moved = await sendWithRetry(fetch, `${url}/moved`, () => ({ method: 'GET', headers: {} }), opts(delays));
    expect(moved.status).toBe(307);
    expect(moved.headers.get('location')).toBe('/elsewhere');
    expect(delays).toEqual([]);
  });

  it('times out a request that never answers, as a retryable failure', async () => {
    const url = await serve(() => undefined);
    const delays: number[] = [];
    await expect(sendWithRetry(fetch, url, () => ({ method: 'GET', headers: {} }), { ...opts(delays, { retries: 1 }), timeoutMs: 100 })).rejects.toMatchObject({
      code: 'ETIMEDOUT',
    });
    expect(delays).toHaveLength(1);
  });

  it('stops at once when the caller aborts', async () => {
    const url = await serve(() => undefined);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await expect(sendWithRetry(fetch, url, () => ({ method: 'GET', headers: {} }), { ...opts([]), signal: controller.signal })).rejects.toMatchObject({
      code: 'E_ABORTED',
    });
  });
});

describe('mapLimit', () => {
  it('bounds concurrency and keeps order', async () => {
    let active = 0;
    let peak = 0;
    const out = await mapLimit([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, 5));
      active--;
      return n * 2;
    });
    expect(out).toEqual([2, 4, 6, 8, 10, 12, 14]);
    expect(peak).toBe(3);
  });

  it('aborts the others on the first failure and waits for them to settle', async () => {
    const settled: number[] = [];
    await expect(
      mapLimit([1, 2, 3, 4], 2, async (n, signal) => {
        if (n === 1) throw new Error('boom');
        await new Promise((r) => setTimeout(r, 20));
        settled.push(n);
        expect(signal.aborted).toBe(true);
      }),
    ).rejects.toThrow('boom');
    expect(settled).toEqual([2]);
  });
});
