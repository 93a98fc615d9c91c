/**
 * Proves the fault proxy: plain forwarding (uploads included), and every fault it can inject, in
 * front of a real anonymous docker-registry.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { writeTinyOciLayout } from '../helpers/oci-layout.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { credsArgs, skopeo } from '../helpers/skopeo.js';
import { describeWithTools } from '../helpers/tools.js';

function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

async function upload(baseUrl: string, repo: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const start = await fetch(`${baseUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  expect(start.status).toBe(202);
  const location = new URL(start.headers.get('location') ?? '', baseUrl);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, {
    method: 'PUT',
    body: data,
    headers: { 'content-type': 'application/octet-stream' },
  });
  expect(put.status).toBe(201);
  return digest;
}

describeWithTools(['docker-registry'], 'fault proxy in front of docker-registry', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  const repo = 'faults/blob';
  const blob = randomBytes(256 * 1024);
  let digest = '';
  let blobPath = '';

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'none' });
    proxy = await startFaultProxy(reg.url, []);
    digest = await upload(proxy.url, repo, blob);
    blobPath = `/v2/${repo}/blobs/${digest}`;
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
  });
  afterEach(() => {
    proxy.setRules([]);
  });

  it('forwards uploads and downloads unchanged, keeping Location on the proxy', async () => {
    const start = await fetch(`${proxy.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    await start.arrayBuffer();
    expect(start.headers.get('location')).toMatch(new RegExp(`^(${proxy.url})?/v2/${repo}/blobs/uploads/`));
    const res = await fetch(`${proxy.url}${blobPath}`);
    expect(res.status).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    expect(sha256(body)).toBe(digest);
    expect(proxy.requests.at(-1)).toMatchObject({ method: 'GET', path: blobPath, status: 200, requestBytes: 0 });
    expect(proxy.requests.at(-1)?.fault).toBeUndefined();
  });

  it('streams a chunked PATCH upload with Content-Range through', async () => {
    const data = randomBytes(3 * 100_000);
    const start = await fetch(`${proxy.url}/v2/faults/chunked/blobs/uploads/`, { method: 'POST' });
    await start.arrayBuffer();
    let location = new URL(start.headers.get('location') ?? '', proxy.url);
    for (let offset = 0; offset < data.length; offset += 100_000) {
      const chunk = data.subarray(offset, offset + 100_000);
      const res = await fetch(location, {
        method: 'PATCH',
        body: chunk,
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + chunk.length - 1}` },
      });
      await res.arrayBuffer();
      expect(res.status).toBe(202);
      expect(res.headers.get('range')).toBe(`0-${offset + chunk.length - 1}`);
      location = new URL(res.headers.get('location') ?? '', proxy.url);
      expect(location.host).toBe(proxy.host);
      expect(proxy.requests.at(-1)).toMatchObject({ method: 'PATCH', requestBytes: chunk.length });
      expect(proxy.requests.at(-1)?.headers['content-range']).toBe(`${offset}-${offset + chunk.length - 1}`);
    }
    location.searchParams.set('digest', sha256(data));
    const put = await fetch(location, { method: 'PUT' });
    expect(put.status).toBe(201);
    const back = await fetch(`${proxy.url}/v2/faults/chunked/blobs/${sha256(data)}`);
    expect(sha256(Buffer.from(await back.arrayBuffer()))).toBe(sha256(data));
  });

  it('streams a large blob through without changing it', async () => {
    const big = randomBytes(24 * 1024 * 1024);
    const bigDigest = await upload(proxy.url, 'faults/big', big);
    const res = await fetch(`${proxy.url}/v2/faults/big/blobs/${bigDigest}`);
    const hash = createHash('sha256');
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) hash.update(chunk);
    expect(`sha256:${hash.digest('hex')}`).toBe(bigDigest);
  });

  it('answers 503 on the nth match only, then forwards again', async () => {
    proxy.setRules([{ method: 'GET', path: /\/blobs\/sha256:/, nth: 2, action: { kind: 'status', status: 503 } }]);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${proxy.url}${blobPath}`);
      await res.arrayBuffer();
      statuses.push(res.status);
    }
    expect(statuses).toEqual([200, 503, 200]);
    expect(proxy.requests.slice(-3).map((r) => r.fault)).toEqual([undefined, 'status', undefined]);
  });

  it('answers 429 with Retry-After, and 416 and 413 with bodies, on every match when nth is not given', async () => {
    proxy.setRules([
      { method: 'HEAD', path: /\/blobs\//, action: { kind: 'status', status: 429, headers: { 'retry-after': '1' } } },
      {
        method: 'PATCH',
        path: /\/uploads\//,
        action: { kind: 'status', status: 416, body: '{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"chunk too big"}]}' },
      },
      { method: 'POST', path: /\/uploads\/$/, times: 2, action: { kind: 'status', status: 413 } },
    ]);
    for (let i = 0; i < 2; i++) {
      const head = await fetch(`${proxy.url}${blobPath}`, { method: 'HEAD' });
      expect(head.status).toBe(429);
      expect(head.headers.get('retry-after')).toBe('1');
    }
    const patch = await fetch(`${proxy.url}/v2/${repo}/blobs/uploads/some-id`, { method: 'PATCH', body: Buffer.alloc(1000) });
    expect(patch.status).toBe(416);
    expect(await patch.text()).toContain('chunk too big');
    for (const expected of [413, 413, 202]) {
      const post = await fetch(`${proxy.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
      await post.arrayBuffer();
      expect(post.status).toBe(expected);
    }
  });

  it('drops the connection mid-download after N bytes', async () => {
    proxy.setRules([{ method: 'GET', path: /\/blobs\//, nth: 1, action: { kind: 'drop-response', afterBytes: 10_000 } }]);
    const res = await fetch(`${proxy.url}${blobPath}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(blob.length));
    let received = 0;
    await expect(
      (async () => {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) received += chunk.length;
      })(),
    ).rejects.toThrow();
    expect(received).toBeLessThanOrEqual(10_000);
    // The rule fired once; the next download is whole.
    const again = await fetch(`${proxy.url}${blobPath}`);
    expect(sha256(Buffer.from(await again.arrayBuffer()))).toBe(digest);
  });

  it('drops the connection mid-upload after N request bytes', async () => {
    proxy.setRules([{ method: 'PUT', path: /\/uploads\//, action: { kind: 'drop-request', afterBytes: 64 * 1024 } }]);
    const start = await fetch(`${proxy.url}/v2/faults/dropped/blobs/uploads/`, { method: 'POST' });
    await start.arrayBuffer();
    const location = new URL(start.headers.get('location') ?? '', proxy.url);
    location.searchParams.set('digest', digest);
    await expect(fetch(location, { method: 'PUT', body: blob })).rejects.toThrow();
    expect(proxy.requests.at(-1)).toMatchObject({ method: 'PUT', status: 0, fault: 'drop-request' });
    const head = await fetch(`${proxy.url}/v2/faults/dropped/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(404);
  });

  it('closes the connection with no response', async () => {
    proxy.setRules([{ path: /^\/v2\/$/, nth: 1, action: { kind: 'close' } }]);
    await expect(fetch(`${proxy.url}/v2/`)).rejects.toThrow();
    expect((await fetch(`${proxy.url}/v2/`)).status).toBe(200);
  });

  it('corrupts a body so its digest no longer matches, at the same length', async () => {
    proxy.setRules([{ method: 'GET', path: /\/blobs\//, action: { kind: 'corrupt', offset: 12345 } }]);
    const body = Buffer.from(await (await fetch(`${proxy.url}${blobPath}`)).arrayBuffer());
    expect(body.length).toBe(blob.length);
    expect(sha256(body)).not.toBe(digest);
    expect(body[12345]).toBe((blob[12345] ?? 0) ^ 0xff);
    expect(Buffer.compare(body.subarray(0, 12345), blob.subarray(0, 12345))).toBe(0);
  });

  it('truncates a body cleanly, with a matching Content-Length', async () => {
    proxy.setRules([{ method: 'GET', path: /\/blobs\//, action: { kind: 'truncate', bytes: 1000 } }]);
    const res = await fetch(`${proxy.url}${blobPath}`);
    expect(res.headers.get('content-length')).toBe('1000');
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.equals(blob.subarray(0, 1000))).toBe(true);
  });

  it('delays a response', async () => {
    proxy.setRules([{ path: /^\/v2\/$/, action: { kind: 'delay', ms: 300 } }]);
    const started = Date.now();
    const res = await fetch(`${proxy.url}/v2/`);
    expect(res.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('redirects to another port that serves the same bytes and records what it was sent', async () => {
    proxy.setRules([{ method: 'GET', path: /\/blobs\//, action: { kind: 'redirect' } }]);
    const res = await fetch(`${proxy.url}${blobPath}`, { redirect: 'manual', headers: { authorization: 'Bearer secret-token' } });
    expect(res.status).toBe(307);
    const location = res.headers.get('location') ?? '';
    expect(location.startsWith(proxy.redirectServer.url)).toBe(true);
    expect(new URL(location).port).not.toBe(new URL(proxy.url).port);
    const followed = await fetch(location, { headers: { 'x-test': 'followed' } });
    expect(followed.status).toBe(200);
    expect(sha256(Buffer.from(await followed.arrayBuffer()))).toBe(digest);
    const seen = proxy.redirectServer.requests.at(-1);
    expect(seen?.headers['x-test']).toBe('followed');
    expect(seen?.headers['authorization']).toBeUndefined();
  });
});

describeWithTools(['docker-registry', 'skopeo', 'openssl'], 'fault proxy in front of a token-auth registry', () => {
  it('lets skopeo push through it with credentials, the rules still applying', async () => {
    const reg = await startRegistry({ auth: 'token' });
    const proxy = await startFaultProxy(reg.url, [{ method: 'PUT', path: /\/manifests\//, nth: 1, action: { kind: 'delay', ms: 50 } }]);
    const dir = await mkdtemp(join(tmpdir(), 'strata-fault-'));
    try {
      const image = await writeTinyOciLayout(join(dir, 'layout'));
      await skopeo([
        'copy',
        '--dest-tls-verify=false',
        ...credsArgs('--dest-creds', reg),
        `oci:${image.dir}:latest`,
        `docker://${proxy.host}/faults/skopeo:v1`,
      ]);
      expect(proxy.requests.filter((r) => r.fault === 'delay')).toMatchObject([{ method: 'PUT', status: 201 }]);
      const inspect = await skopeo(['inspect', '--raw', '--tls-verify=false', ...credsArgs('--creds', reg), `docker://${reg.host}/faults/skopeo:v1`]);
      expect(Buffer.from(inspect.stdout).equals(image.manifest)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await proxy.stop();
      await reg.stop();
    }
  });
});
