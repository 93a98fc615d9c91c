import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { parseRegistryTimeout } from '../../../cli/registry-timeout.js';
import { DEFAULT_DEADLINES, RegistryClient, createNodeFetch } from '../../../src/registry/index.js';
import { sendWithRetry } from '../../../src/registry/send.js';
import { resolveRetry } from '../../../src/registry/retry.js';
import { startConnectProxy } from '../../helpers/connect-proxy.js';

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

describe('registry deadlines', () => {
  it('a TLS listener that never completes the handshake fails the connect deadline, retried, naming the host', async () => {
    // Accepts TCP and says nothing: the TLS handshake never ends.
    const server = createServer((socket) => void sockets.push(socket));
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const client = new RegistryClient({
      registry: `127.0.0.1:${port}`,
      scheme: 'https',
      deadlines: { connectMs: 200 },
      retry: { retries: 2, sleep: async () => undefined },
    });
    const started = Date.now();
    await expect(client.ping()).rejects.toMatchObject({
      code: 'E_REGISTRY_UNREACHABLE',
      message: `registry 127.0.0.1:${port}: GET https://127.0.0.1:${port}/v2/: no connection to 127.0.0.1:${port} within 200 ms (3 attempts)`,
    });
    expect(sockets.length).toBe(3);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('a proxy that never answers CONNECT fails the connect deadline, retried, naming the proxy and the target', async () => {
    const silent = createServer((socket) => void sockets.push(socket));
    servers.push(silent);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const proxyPort = (silent.address() as { port: number }).port;
    const client = new RegistryClient({
      registry: 'registry.strata.test:5000',
      scheme: 'https',
      deadlines: { connectMs: 200 },
      retry: { retries: 1, sleep: async () => undefined },
      fetch: createNodeFetch({ connectTimeoutMs: 200, proxy: { httpsProxy: `http://u:secret@127.0.0.1:${proxyPort}` } }),
    });
    const failure = await client.ping().then(
      () => new Error('the ping did not fail'),
      (e: unknown) => e as Error,
    );
    expect(failure).toMatchObject({ code: 'E_REGISTRY_UNREACHABLE' });
    expect(failure.message).toContain(`the proxy 127.0.0.1:${proxyPort} did not open a tunnel to registry.strata.test:5000 within 200 ms`);
    expect(failure.message).not.toContain('secret');
    expect(sockets.length).toBe(2);
  });

  it('a target that never finishes TLS inside the proxy tunnel fails the connect deadline naming the target', async () => {
    const silent = createServer((socket) => void sockets.push(socket));
    servers.push(silent);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    const proxy = await startConnectProxy();
    try {
      const client = new RegistryClient({
        registry: `registry.strata.test:${port}`,
        scheme: 'https',
        deadlines: { connectMs: 200 },
        retry: { retries: 0, sleep: async () => undefined },
        fetch: createNodeFetch({ connectTimeoutMs: 200, proxy: { httpsProxy: proxy.url } }),
      });
      await expect(client.ping()).rejects.toMatchObject({
        code: 'E_REGISTRY_UNREACHABLE',
        message: expect.stringContaining(`no connection to registry.strata.test:${port} within 200 ms`),
      });
      expect(proxy.tunnels).toEqual([`registry.strata.test:${port}`]);
    } finally {
      await proxy.stop();
    }
  });

  it('by default a request that stalls in any phase gives up, retries included, within 3 minutes', () => {
    const retry = resolveRetry();
    // Each try ends at its first stalled phase.
    const perTry = Math.max(DEFAULT_DEADLINES.connectMs, DEFAULT_DEADLINES.headersMs, DEFAULT_DEADLINES.idleMs);
    const backoff = Array.from({ length: retry.retries }, (_, i) => Math.min(retry.baseDelayMs * 2 ** i, retry.maxDelayMs)).reduce((a, b) => a + b, 0);
    expect(perTry * (retry.retries + 1) + backoff).toBeLessThan(180_000);
  });

  it('--registry-timeout takes seconds for every phase, or per phase', () => {
    expect(parseRegistryTimeout('20', 'flag')).toEqual({ connectMs: 20_000, headersMs: 20_000, idleMs: 20_000 });
    expect(parseRegistryTimeout('connect=5, idle=0.5', 'flag')).toEqual({ connectMs: 5000, idleMs: 500 });
    expect(parseRegistryTimeout(3, 'config')).toEqual({ connectMs: 3000, headersMs: 3000, idleMs: 3000 });
    expect(() => parseRegistryTimeout('0', 'flag')).toThrow(/not a positive number/);
    expect(() => parseRegistryTimeout('dial=3', 'flag')).toThrow(/unknown phase "dial"/);
  });
});

describe('upload deadline', () => {
  it('a server that stops reading a streamed upload fails it with the bytes it took, not a hang', async () => {
    // Takes the headers, then never reads the body.
    const server = createHttpServer((req) => req.pause());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const chunk = Buffer.alloc(1024 * 1024, 1);
      const body = Readable.from(
        (function* () {
          for (let i = 0; i < 64; i++) yield chunk;
        })(),
      );
      const started = Date.now();
      await expect(
        sendWithRetry(
          createNodeFetch(),
          `http://127.0.0.1:${port}/upload`,
          () => ({ method: 'PUT', headers: { 'content-length': String(64 * chunk.length) }, body }),
          {
            retry: resolveRetry({ retries: 0 }),
            retryable: false,
            idleMs: 300,
          },
        ),
      ).rejects.toMatchObject({ phase: 'upload', message: expect.stringMatching(/^the registry stopped reading the upload for 300 ms after \d+ bytes$/) });
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
