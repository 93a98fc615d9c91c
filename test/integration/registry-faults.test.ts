/**
 * Transfer accounting and fault handling, through a loopback proxy in front of a real registry:
 * what is retried (503, 429 + Retry-After, dropped connections, a truncated body), what is refused
 * (wrong bytes), and that no partial blob reaches the sink.
 */
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { RegistryClient, copyBetweenRegistries, pullImage, pushImage, type RegistryClientOptions } from '../../src/registry/index.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { addTestImage, MemoryBlobStore, type TestImage } from '../helpers/memory-blobs.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWithTools } from '../helpers/tools.js';

describeWithTools(['docker-registry'], 'registry transfers and faults (through a fault proxy)', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let delays: number[];
  const client = (extra: Partial<RegistryClientOptions> = {}): RegistryClient =>
    new RegistryClient({
      registry: proxy.host,
      retry: { baseDelayMs: 5, sleep: async (ms) => void delays.push(ms) },
      ...extra,
    });
  const blobUploads = (): number =>
    proxy.requests.filter(
      (r) => /\/blobs\/uploads\//.test(r.path) && (r.method === 'PATCH' || r.method === 'PUT' || (r.method === 'POST' && !r.path.includes('mount='))),
    ).length;

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'none' });
    proxy = await startFaultProxy(reg.url);
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
  });
  beforeEach(() => {
    proxy.setRules([]);
    proxy.requests.length = 0;
    delays = [];
  });

  async function seed(repository: string, label: string, randomLayers: number[] = []): Promise<{ store: MemoryBlobStore; img: TestImage }> {
    const store = new MemoryBlobStore();
    const img = await addTestImage(store, { label, randomLayers });
    await pushImage({ client: client(), repository, source: store, root: img.manifest, tags: ['v1'] });
    proxy.requests.length = 0;
    return { store, img };
  }

  it('a second push of the same image uploads no blob', async () => {
    const { store, img } = await seed('faults/again', 'again', [200_000]);
    const events: string[] = [];
    await pushImage({
      client: client(),
      repository: 'faults/again',
      source: store,
      root: img.manifest,
      tags: ['v1', 'v2'],
      progress: (e) => events.push(e.type),
    });
    expect(blobUploads()).toBe(0);
    expect(proxy.requests.filter((r) => r.method === 'HEAD' && r.path.includes('/blobs/'))).toHaveLength(3);
    expect(events.filter((e) => e === 'blob-skipped')).toHaveLength(3);
    expect(proxy.requests.filter((r) => r.method === 'PUT' && r.path.includes('/manifests/'))).toHaveLength(2);
  });

  it('a push to a new repository of the same registry mounts instead of uploading', async () => {
    const { store, img } = await seed('faults/mount-src', 'mount', [300_000]);
    const events: string[] = [];
    await pushImage({
      client: client(),
      repository: 'faults/mount-dst',
      source: store,
      root: img.manifest,
      tags: ['v1'],
      mountFrom: ['faults/mount-src'],
      progress: (e) => events.push(e.type),
    });
    expect(blobUploads()).toBe(0);
    const mounts = proxy.requests.filter((r) => r.method === 'POST' && r.path.includes('mount='));
    expect(mounts).toHaveLength(3);
    expect(mounts.every((m) => m.status === 201 && m.path.includes('from=faults%2Fmount-src'))).toBe(true);
    expect(events.filter((e) => e === 'blob-mounted')).toHaveLength(3);
    const pulled = await pullImage({ client: client(), repository: 'faults/mount-dst', reference: 'v1', sink: new MemoryBlobStore() });
    expect(pulled.image?.descriptor.digest).toBe(img.manifest.digest);
  });

  it('retries 503 and honours Retry-After on 429', async () => {
    const { img } = await seed('faults/retry', 'retry');
    proxy.setRules([
      { method: 'GET', path: /\/manifests\/v1$/, nth: 1, times: 2, action: { kind: 'status', status: 503 } },
      { method: 'GET', path: /\/blobs\/sha256:/, nth: 1, action: { kind: 'status', status: 429, headers: { 'retry-after': '3' } } },
    ]);
    const pulled = await pullImage({ client: client(), repository: 'faults/retry', reference: 'v1', sink: new MemoryBlobStore() });
    expect(pulled.image?.descriptor.digest).toBe(img.manifest.digest);
    expect(proxy.requests.filter((r) => r.fault === 'status')).toHaveLength(3);
    expect(delays).toContain(3000);
  });

  it('gives up after the retries with a typed error naming the registry', async () => {
    await seed('faults/down', 'down');
    proxy.setRules([{ method: 'GET', path: /\/manifests\//, action: { kind: 'status', status: 503 } }]);
    await expect(client({ retry: { retries: 2, sleep: async () => undefined } }).getManifest('faults/down', 'v1')).rejects.toMatchObject({
      code: 'E_REGISTRY',
      message: expect.stringMatching(new RegExp(`registry ${proxy.host}.*faults/down.*503`)),
    });
  });

  it('resumes a download whose connection dropped mid-blob', async () => {
    const { img } = await seed('faults/drop-get', 'drop-get', [500_000]);
    const big = img.layers[1]!;
    proxy.setRules([{ method: 'GET', path: new RegExp(`/blobs/${big.digest}$`), nth: 1, action: { kind: 'drop-response', afterBytes: 100_000 } }]);
    const sink = new MemoryBlobStore();
    await pullImage({ client: client(), repository: 'faults/drop-get', reference: 'v1', sink });
    expect(sink.blobs.has(big.digest)).toBe(true);
    expect(proxy.requests.filter((r) => r.path.endsWith(big.digest) && r.method === 'GET')).toHaveLength(2);
  });

  it('retries a truncated blob, and refuses one that stays truncated', async () => {
    const { img } = await seed('faults/trunc', 'trunc', [100_000]);
    const big = img.layers[1]!;
    proxy.setRules([{ method: 'GET', path: new RegExp(`/blobs/${big.digest}$`), nth: 1, action: { kind: 'truncate', bytes: 1000 } }]);
    const sink = new MemoryBlobStore();
    await pullImage({ client: client(), repository: 'faults/trunc', reference: 'v1', sink });
    expect(sink.blobs.has(big.digest)).toBe(true);

    proxy.setRules([{ method: 'GET', path: new RegExp(`/blobs/${big.digest}$`), action: { kind: 'truncate', bytes: 1000 } }]);
    const sink2 = new MemoryBlobStore();
    await expect(pullImage({ client: client(), repository: 'faults/trunc', reference: 'v1', sink: sink2 })).rejects.toMatchObject({
      code: 'E_SIZE_MISMATCH',
      message: expect.stringContaining(big.digest),
    });
    expect(sink2.blobs.has(big.digest)).toBe(false);
  });

  it('refuses a blob whose bytes do not match its digest and leaves nothing in the sink', async () => {
    const { img } = await seed('faults/corrupt', 'corrupt', [50_000]);
    const big = img.layers[1]!;
    proxy.setRules([{ method: 'GET', path: new RegExp(`/blobs/${big.digest}$`), action: { kind: 'corrupt', offset: 20_000 } }]);
    const sink = new MemoryBlobStore();
    const error = await pullImage({ client: client(), repository: 'faults/corrupt', reference: 'v1', sink }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_DIGEST_MISMATCH', message: expect.stringContaining(big.digest) });
    expect((error as Error).message).toContain(`${proxy.host}/faults/corrupt`);
    expect(sink.blobs.has(big.digest)).toBe(false);
    expect(sink.blobs.has(img.manifest.digest)).toBe(false);
    // Never retried into acceptance: one GET of the corrupt blob.
    expect(proxy.requests.filter((r) => r.path.endsWith(big.digest) && r.method === 'GET')).toHaveLength(1);
  });

  it('refuses wrong bytes just the same when only the sink hashes (sinkVerifies)', async () => {
    const { img } = await seed('faults/corrupt-sink', 'corrupt-sink', [50_000]);
    const big = img.layers[1]!;
    proxy.setRules([{ method: 'GET', path: new RegExp(`/blobs/${big.digest}$`), action: { kind: 'corrupt', offset: 10 } }]);
    const sink = new MemoryBlobStore();
    const error = await pullImage({ client: client(), repository: 'faults/corrupt-sink', reference: 'v1', sink, sinkVerifies: true }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_DIGEST_MISMATCH', message: expect.stringContaining(`blob ${big.digest} of ${proxy.host}/faults/corrupt-sink`) });
    expect(sink.blobs.has(big.digest)).toBe(false);
    proxy.setRules([]);
    const ok = new MemoryBlobStore();
    await pullImage({ client: client(), repository: 'faults/corrupt-sink', reference: 'v1', sink: ok, sinkVerifies: true });
    expect(ok.blobs.has(big.digest)).toBe(true);
  });

  it('fails a copy whose source blob is corrupt, and the target never gets the blob', async () => {
    const { img } = await seed('faults/copy-src', 'copy-corrupt', [2_000_000]);
    const big = img.layers[1]!;
    proxy.setRules([{ method: 'GET', path: new RegExp(`/blobs/${big.digest}$`), action: { kind: 'corrupt', offset: 1_500_000 } }]);
    const target = new RegistryClient({ registry: reg.host, retry: { baseDelayMs: 5 } });
    const started = Date.now();
    const error = await copyBetweenRegistries({
      source: { client: client(), repository: 'faults/copy-src', reference: 'v1' },
      target: { client: target, repository: 'faults/copy-dst', tags: ['v1'] },
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_DIGEST_MISMATCH', message: expect.stringContaining(big.digest) });
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(await target.blobExists('faults/copy-dst', big.digest)).toBe(false);
    expect(await target.headManifest('faults/copy-dst', 'v1')).toBeUndefined();
  });

  it('refuses a manifest whose bytes do not match the requested digest', async () => {
    const { img } = await seed('faults/corrupt-manifest', 'corrupt-manifest');
    proxy.setRules([{ method: 'GET', path: /\/manifests\/sha256:/, action: { kind: 'corrupt', offset: 30 } }]);
    await expect(client().getManifest('faults/corrupt-manifest', img.manifest.digest)).rejects.toMatchObject({ code: 'E_DIGEST_MISMATCH' });
  });

  it('resumes an upload whose connection dropped mid-PATCH', async () => {
    const store = new MemoryBlobStore();
    const img = await addTestImage(store, { label: 'drop-put', randomLayers: [3_000_000] });
    proxy.setRules([{ method: 'PATCH', path: /\/blobs\/uploads\//, nth: 1, action: { kind: 'drop-request', afterBytes: 1_000_000 } }]);
    await pushImage({ client: client(), repository: 'faults/drop-put', source: store, root: img.manifest, tags: ['v1'] });
    const patches = proxy.requests.filter((r) => r.method === 'PATCH');
    expect(patches.length).toBeGreaterThanOrEqual(2);
    expect(patches[0]?.fault).toBe('drop-request');
    const status = proxy.requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/uploads/'));
    expect(status.length).toBeGreaterThanOrEqual(1);
    const pulled = await pullImage({ client: client(), repository: 'faults/drop-put', reference: 'v1', sink: new MemoryBlobStore() });
    expect(pulled.image?.descriptor.digest).toBe(img.manifest.digest);
  });

  it('switches to smaller chunks when the registry refuses a large request (413, then 416 "exceeds")', async () => {
    const store = new MemoryBlobStore();
    const img = await addTestImage(store, { label: 'chunks', randomLayers: [6_000_000] });
    proxy.setRules([
      { method: 'PATCH', path: /\/blobs\/uploads\//, nth: 1, action: { kind: 'status', status: 413 } },
      {
        method: 'PATCH',
        path: /\/blobs\/uploads\//,
        nth: 2,
        action: { kind: 'status', status: 416, body: '{"errors":[{"code":"UNKNOWN","message":"exceeds the maximum permissible limit of 4.00MiB"}]}' },
      },
    ]);
    await pushImage({ client: client(), repository: 'faults/chunks', source: store, root: img.manifest, tags: ['v1'] });
    const patches = proxy.requests.filter((r) => r.method === 'PATCH' && !r.fault);
    expect(patches.length).toBeGreaterThanOrEqual(3);
    expect(patches.every((p) => typeof p.headers['content-range'] === 'string')).toBe(true);
    expect(Math.max(...patches.map((p) => p.requestBytes))).toBeLessThanOrEqual(2 * 1024 * 1024);
    const pulled = await pullImage({ client: client(), repository: 'faults/chunks', reference: 'v1', sink: new MemoryBlobStore() });
    expect(pulled.image?.descriptor.digest).toBe(img.manifest.digest);
  });

  it('uploads in fixed chunks with Content-Range when told to', async () => {
    const store = new MemoryBlobStore();
    const img = await addTestImage(store, { label: 'fixed-chunks', randomLayers: [2_500_000] });
    await pushImage({ client: client({ chunkSize: 1024 * 1024 }), repository: 'faults/fixed-chunks', source: store, root: img.manifest, tags: ['v1'] });
    const patches = proxy.requests.filter((r) => r.method === 'PATCH');
    expect(patches.length).toBe(3);
    expect(patches.map((p) => p.headers['content-range'])).toEqual(['0-1048575', '1048576-2097151', expect.stringMatching(/^2097152-\d+$/)]);
  });

  it('retries a 5xx on the manifest PUT', async () => {
    const store = new MemoryBlobStore();
    const img = await addTestImage(store, { label: 'put-503' });
    proxy.setRules([{ method: 'PUT', path: /\/manifests\//, nth: 1, action: { kind: 'status', status: 503 } }]);
    await pushImage({ client: client(), repository: 'faults/put-503', source: store, root: img.manifest, tags: ['v1'] });
    expect(proxy.requests.filter((r) => r.method === 'PUT' && r.path.includes('/manifests/'))).toHaveLength(2);
  });
});
