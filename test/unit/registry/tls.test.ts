/** HTTPS with a private CA (--ca-cert), against a TLS server on 127.0.0.1 with a throwaway CA. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:https';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RegistryClient, createNodeFetch, type FetchLike } from '../../../src/registry/index.js';
import { makeCertificates } from '../../helpers/tls-certs.js';
import { describeWithTools } from '../../helpers/tools.js';

/** The default fetch, recording each URL it is asked for. */
function recordingFetch(options: Parameters<typeof createNodeFetch>[0] = {}): { fetch: FetchLike; urls: string[] } {
  const inner = createNodeFetch(options);
  const urls: string[] = [];
  return {
    urls,
    fetch: (url, init) => {
      urls.push(url);
      return inner(url, init);
    },
  };
}

describeWithTools(['openssl'], 'registry over TLS with a private CA', () => {
  let dir: string;
  let server: Server;
  let host: string;
  let ca: string;
  let tlsOptions: { key: Buffer; cert: Buffer };
  let requests = 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-tls-'));
    const certs = await makeCertificates(dir);
    ca = await readFile(certs.caPath, 'utf8');
    tlsOptions = { key: await readFile(certs.keyPath), cert: await readFile(certs.certPath) };
    server = createServer(tlsOptions, (_req, res) => {
      requests++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('trusts the registry with caCert and stays on https, asking /v2/ once', async () => {
    const before = requests;
    const { fetch, urls } = recordingFetch({ caCert: ca });
    const client = new RegistryClient({ registry: host, fetch });
    await client.ping();
    expect(client.transport.baseUrl).toBe(`https://${host}`);
    // Loopback may speak plain HTTP, so that was asked first (and refused by the TLS port): one /v2/ answered.
    expect(urls).toEqual([`http://${host}/v2/`, `https://${host}/v2/`]);
    expect(requests - before).toBe(1);
  });

  it('a loopback registry with a port that speaks plain HTTP is asked over plain HTTP alone, with no TLS handshake', async () => {
    let plainRequests = 0;
    const plain = createHttpServer((_req, res) => {
      plainRequests++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', () => r()));
    try {
      const plainHost = `127.0.0.1:${(plain.address() as AddressInfo).port}`;
      const { fetch, urls } = recordingFetch();
      const client = new RegistryClient({ registry: plainHost, fetch, retry: { retries: 0 } });
      await client.ping();
      expect(client.transport.baseUrl).toBe(`http://${plainHost}`);
      expect(urls).toEqual([`http://${plainHost}/v2/`]);
      expect(plainRequests).toBe(1);
    } finally {
      plain.closeAllConnections();
      await new Promise<void>((r) => plain.close(() => r()));
    }
  });

  it('a TLS port that answers plain HTTP with 400 (as Go servers do) is then asked over HTTPS', async () => {
    const https = createServer(tlsOptions, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    // What crypto/tls does with a plain request: a 400 in clear text, then close. A TLS hello goes on to HTTPS.
    const tls400 = createNetServer((socket) => {
      socket.once('data', (first: Buffer) => {
        if (first[0] !== 0x16) return void socket.end('HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n');
        socket.pause();
        socket.unshift(first);
        https.emit('connection', socket);
        process.nextTick(() => socket.resume());
      });
    });
    await new Promise<void>((r) => tls400.listen(0, '127.0.0.1', () => r()));
    try {
      const tlsHost = `127.0.0.1:${(tls400.address() as AddressInfo).port}`;
      const { fetch, urls } = recordingFetch({ caCert: ca });
      const client = new RegistryClient({ registry: tlsHost, fetch, retry: { retries: 0 } });
      await client.ping();
      expect(client.transport.baseUrl).toBe(`https://${tlsHost}`);
      expect(urls).toEqual([`http://${tlsHost}/v2/`, `https://${tlsHost}/v2/`]);
    } finally {
      https.closeAllConnections();
      await new Promise<void>((r) => tls400.close(() => r()));
    }
  });

  it('reports an untrusted certificate, with a --ca-cert hint, instead of falling back to http', async () => {
    await expect(new RegistryClient({ registry: host, retry: { retries: 0 } }).ping()).rejects.toMatchObject({
      code: 'E_REGISTRY_INSECURE',
      hint: expect.stringContaining('--ca-cert'),
    });
  });
});
