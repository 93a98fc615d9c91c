/**
 * The client against small node:http servers on 127.0.0.1 that play a registry's part where the
 * real one cannot misbehave on demand: digest headers, redirects across origins, auth schemes.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MediaType } from '../../../src/oci/index.js';
import { RegistryClient, MANIFEST_ACCEPT, type FetchLike, type FetchResponse } from '../../../src/registry/index.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ host: string; url: string; seen: IncomingMessage[] }> {
  const seen: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    seen.push(req);
    handler(req, res);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { host, url: `http://${host}`, seen };
}

const sha = (b: Buffer): `sha256:${string}` => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: `sha256:${'a'.repeat(64)}`, size: 2 },
    layers: [],
  }),
);
const blob = Buffer.from('hello blob');

describe('RegistryClient (loopback fakes)', () => {
  it('sends all four manifest types in Accept and digests the exact bytes', async () => {
    const reg = await serve((req, res) => {
      if (req.url === '/v2/') return void res.end('{}');
      res.writeHead(200, { 'content-type': MediaType.OciManifest });
      res.end(manifest);
    });
    const got = await new RegistryClient({ registry: reg.host }).getManifest('a/b', 'v1');
    expect(got.digest).toBe(sha(manifest));
    expect(got.bytes.equals(manifest)).toBe(true);
    const accept = String(reg.seen[1]?.headers.accept);
    for (const t of [MediaType.OciIndex, MediaType.OciManifest, MediaType.DockerManifestList, MediaType.DockerManifest]) expect(accept).toContain(t);
    expect(accept).toBe(MANIFEST_ACCEPT);
  });

  it('refuses a manifest whose Docker-Content-Digest disagrees with its bytes', async () => {
    const reg = await serve((req, res) => {
      if (req.url === '/v2/') return void res.end('{}');
      res.writeHead(200, { 'content-type': MediaType.OciManifest, 'docker-content-digest': `sha256:${'b'.repeat(64)}` });
      res.end(manifest);
    });
    await expect(new RegistryClient({ registry: reg.host }).getManifest('a/b', 'v1')).rejects.toMatchObject({ code: 'E_DIGEST_MISMATCH' });
  });

  it('refuses a manifest that is not the digest asked for', async () => {
    const reg = await serve((req, res) => {
      if (req.url === '/v2/') return void res.end('{}');
      res.end(manifest);
    });
    await expect(new RegistryClient({ registry: reg.host }).getManifest('a/b', `sha256:${'c'.repeat(64)}`)).rejects.toMatchObject({
      code: 'E_DIGEST_MISMATCH',
    });
  });

  it('drops Authorization on a redirect to another origin and keeps it on the same origin', async () => {
    const storage = await serve((_req, res) => res.end(blob));
    const reg = await serve((req, res) => {
      if (!req.headers.authorization) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"' });
        return void res.end();
      }
      if (req.url === '/v2/') return void res.end('{}');
      if (req.url?.startsWith('/v2/a/b/blobs/')) {
        res.writeHead(307, { location: '/storage/first' });
        return void res.end();
      }
      if (req.url === '/storage/first') {
        res.writeHead(302, { location: `${storage.url}/signed?sig=abc` });
        return void res.end();
      }
      res.writeHead(404);
      res.end();
    });
    const client = new RegistryClient({ registry: reg.host, credentials: async () => ({ username: 'u', password: 'p' }) });
    const got = await client.readBlob('a/b', { digest: sha(blob), size: blob.byteLength });
    expect(got.equals(blob)).toBe(true);
    expect(reg.seen.find((r) => r.url === '/storage/first')?.headers.authorization).toMatch(/^Basic /);
    expect(storage.seen).toHaveLength(1);
    expect(storage.seen[0]?.headers.authorization).toBeUndefined();
  });

  it('refuses a redirect to a non-HTTP scheme', async () => {
    const reg = await serve((req, res) => {
      if (req.url === '/v2/') return void res.end('{}');
      res.writeHead(302, { location: 'file:///etc/passwd' });
      res.end();
    });
    await expect(new RegistryClient({ registry: reg.host }).readBlob('a/b', { digest: sha(blob), size: blob.byteLength })).rejects.toMatchObject({
      code: 'E_REGISTRY',
    });
  });

  it('allows plain HTTP only for loopback and --insecure-registry hosts', () => {
    const t = (registry: string, insecureRegistries: string[] = []) => new RegistryClient({ registry, insecureRegistries }).transport;
    expect(t('docker.io').baseUrl).toBe('https://registry-1.docker.io');
    expect(t('docker.io').allowHttp).toBe(false);
    expect(t('ghcr.io').allowHttp).toBe(false);
    expect(t('localhost:5000').allowHttp).toBe(true);
    expect(t('127.0.0.1:5000').allowHttp).toBe(true);
    expect(t('[::1]:5000').allowHttp).toBe(true);
    expect(t('reg.lan:5000', ['reg.lan:5000']).allowHttp).toBe(true);
    expect(t('reg.lan:5000', ['other:5000']).allowHttp).toBe(false);
    expect(new RegistryClient({ registry: 'localhost:5000', scheme: 'https' }).transport.allowHttp).toBe(true);
  });

  it('asks a loopback registry with a port over plain HTTP first and stays there when it answers', async () => {
    const reg = await serve((_req, res) => res.end('{}'));
    const client = new RegistryClient({ registry: reg.host });
    expect(client.transport.baseUrl).toBe(`https://${reg.host}`);
    await client.ping();
    expect(client.transport.baseUrl).toBe(`http://${reg.host}`);
  });

  it('asks a registry without a port over both schemes at once: HTTPS wins when it answers, else plain HTTP', async () => {
    const answer = (status: number): FetchResponse => ({
      status,
      headers: { get: () => null },
      body: null,
      text: async () => '',
      arrayBuffer: async () => new ArrayBuffer(0),
    });
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const pingWith = async (tls: 'answers' | 'refused'): Promise<{ baseUrl: string; urls: string[] }> => {
      const urls: string[] = [];
      const fetch: FetchLike = async (url) => {
        urls.push(url);
        if (url.startsWith('https:') && tls === 'refused') throw refused;
        return answer(200);
      };
      const client = new RegistryClient({ registry: 'localhost', fetch, retry: { retries: 0 } });
      await client.ping();
      return { baseUrl: client.transport.baseUrl, urls: urls.sort() };
    };
    expect(await pingWith('answers')).toEqual({ baseUrl: 'https://localhost', urls: ['http://localhost/v2/', 'https://localhost/v2/'] });
    expect(await pingWith('refused')).toEqual({ baseUrl: 'http://localhost', urls: ['http://localhost/v2/', 'https://localhost/v2/'] });
  });

  it('says a host that is not a registry is not one', async () => {
    const web = await serve((_req, res) => {
      res.writeHead(404);
      res.end('<html>');
    });
    await expect(new RegistryClient({ registry: web.host }).ping()).rejects.toMatchObject({ code: 'E_REGISTRY_UNSUPPORTED' });
  });

  it('reports an unreachable registry as E_REGISTRY_UNREACHABLE', async () => {
    const gone = await serve(() => undefined);
    const host = gone.host;
    const s = servers.pop()!;
    await new Promise<void>((r) => s.close(() => r()));
    await expect(new RegistryClient({ registry: host, retry: { retries: 1, sleep: async () => undefined } }).ping()).rejects.toMatchObject({
      code: 'E_REGISTRY_UNREACHABLE',
      message: expect.stringContaining(host),
    });
  });

  it('fails a blob body that stalls, so the pull can retry it', async () => {
    const reg = await serve((req, res) => {
      if (req.url === '/v2/') return void res.end('{}');
      res.writeHead(200, { 'content-length': String(blob.byteLength) });
      res.write(blob.subarray(0, 3));
    });
    const client = new RegistryClient({ registry: reg.host, bodyIdleTimeoutMs: 100, retry: { retries: 2, sleep: async () => undefined } });
    const started = Date.now();
    await expect(client.readBlob('a/b', { digest: sha(blob), size: blob.byteLength })).rejects.toMatchObject({
      code: 'E_REGISTRY_UNREACHABLE',
      message: `registry ${reg.host}, repository a/b, blob ${sha(blob)}: GET http://${reg.host}/v2/a/b/blobs/${sha(blob)}: the response stalled: no data for 100 ms after 3 bytes of the body (3 attempts)`,
    });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('maps spec error codes to typed errors naming registry, repository and blob', async () => {
    const reg = await serve((req, res) => {
      if (req.url === '/v2/') return void res.end('{}');
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] }));
    });
    await expect(new RegistryClient({ registry: reg.host }).readBlob('team/app', { digest: sha(blob), size: blob.byteLength })).rejects.toMatchObject({
      code: 'E_REGISTRY_DENIED',
      message: `registry ${reg.host}, repository team/app, blob ${sha(blob)}: DENIED: requested access to the resource is denied (HTTP 403)`,
    });
  });
});
