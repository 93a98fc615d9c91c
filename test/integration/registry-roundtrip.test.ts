/**
 * strata's registry client against a real distribution 2.8 registry, judged by skopeo: what strata
 * pushes, skopeo reads; what skopeo pushes, strata pulls; digests equal on both sides.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MediaType } from '../../src/oci/index.js';
import { RegistryClient, copyBetweenRegistries, pullImage, pushImage, type TransferEvent } from '../../src/registry/index.js';
import { addTestImage, addTestIndex, MemoryBlobStore, sha256 } from '../helpers/memory-blobs.js';
import { writeTinyOciLayout } from '../helpers/oci-layout.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeo } from '../helpers/skopeo.js';
import { describeWithTools } from '../helpers/tools.js';

describeWithTools(['docker-registry', 'skopeo'], 'registry round trips (anonymous registry, skopeo as judge)', () => {
  let reg: TestRegistry;
  let tmp: string;
  const client = (): RegistryClient => new RegistryClient({ registry: reg.host, retry: { baseDelayMs: 10 } });

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'none' });
    tmp = await mkdtemp(join(tmpdir(), 'strata-reg-rt-'));
  });
  afterAll(async () => {
    await reg?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('pushes an OCI image that skopeo inspects and copies, digests equal', async () => {
    const store = new MemoryBlobStore();
    const img = await addTestImage(store, { label: 'oci-rt', randomLayers: [3 * 1024 * 1024] });
    const events: TransferEvent[] = [];
    const pushed = await pushImage({
      client: client(),
      repository: 'rt/oci',
      source: store,
      root: img.manifest,
      tags: ['v1', 'latest'],
      progress: (e) => events.push(e),
    });
    expect(pushed.digest).toBe(img.manifest.digest);
    expect(pushed.references).toEqual([`${reg.host}/rt/oci:v1`, `${reg.host}/rt/oci:latest`]);
    expect(events.filter((e) => e.type === 'blob-done')).toHaveLength(3);

    for (const tag of ['v1', 'latest']) {
      const raw = await skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/rt/oci:${tag}`]);
      expect(sha256(Buffer.from(raw.stdout))).toBe(img.manifest.digest);
    }
    const info = JSON.parse((await skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/rt/oci:v1`])).stdout) as { Digest: string; Layers: string[] };
    expect(info.Digest).toBe(img.manifest.digest);
    expect(info.Layers).toEqual(img.layers.map((l) => l.digest));
    const out = join(tmp, 'skopeo-copy');
    await skopeo(['copy', '--src-tls-verify=false', `docker://${reg.host}/rt/oci:v1`, `oci:${out}:v1`]);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    expect(index.manifests[0]?.digest).toBe(img.manifest.digest);
  });

  it('pushes nothing when every tag already names the manifest, and everything else when one does not', async () => {
    const store = new MemoryBlobStore();
    const img = await addTestImage(store, { label: 'again', randomLayers: [1024] });
    const other = await addTestImage(store, { label: 'other', randomLayers: [1024] });
    await pushImage({ client: client(), repository: 'rt/again', source: store, root: img.manifest, tags: ['v1'] });
    await pushImage({ client: client(), repository: 'rt/again', source: store, root: other.manifest, tags: ['moved'] });

    const events: TransferEvent[] = [];
    const again = await pushImage({
      client: client(),
      repository: 'rt/again',
      source: store,
      root: img.manifest,
      tags: ['v1'],
      progress: (e) => events.push(e),
    });
    expect(again.references).toEqual([`${reg.host}/rt/again:v1`]);
    expect(events.map((e) => e.type)).toEqual(['manifest-unchanged']);

    // One tag new (or naming another image): the full push, blob checks and all, and both tags end up here.
    const more: TransferEvent[] = [];
    await pushImage({ client: client(), repository: 'rt/again', source: store, root: img.manifest, tags: ['v1', 'moved'], progress: (e) => more.push(e) });
    expect(more.filter((e) => e.type === 'blob-skipped').length).toBe(img.layers.length + 1);
    expect(more.filter((e) => e.type === 'manifest-done')).toHaveLength(2);
    const moved = await skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/rt/again:moved`]);
    expect(sha256(Buffer.from(moved.stdout))).toBe(img.manifest.digest);
  });

  it('pushes a Docker schema 2 image with Docker media types intact', async () => {
    const store = new MemoryBlobStore();
    const img = await addTestImage(store, { label: 'docker-rt', format: 'docker' });
    await pushImage({ client: client(), repository: 'rt/docker', source: store, root: img.manifest, tags: ['v1'] });
    const raw = await skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/rt/docker:v1`]);
    expect(sha256(Buffer.from(raw.stdout))).toBe(img.manifest.digest);
    expect((JSON.parse(raw.stdout) as { mediaType: string }).mediaType).toBe(MediaType.DockerManifest);
    const pulled = await pullImage({ client: client(), repository: 'rt/docker', reference: 'v1', sink: new MemoryBlobStore() });
    expect(pulled.image?.mediaType).toBe(MediaType.DockerManifest);
    expect(pulled.image?.descriptor.digest).toBe(img.manifest.digest);
  });

  it('pulls what skopeo pushed, digests equal', async () => {
    const layout = join(tmp, 'tiny');
    const tiny = await writeTinyOciLayout(layout, { tag: 'v1', content: 'pushed by skopeo\n' });
    await skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${reg.host}/rt/from-skopeo:v1`]);
    const sink = new MemoryBlobStore();
    const pulled = await pullImage({ client: client(), repository: 'rt/from-skopeo', reference: 'v1', sink });
    expect(pulled.image?.descriptor.digest).toBe(tiny.manifestDigest);
    expect(sink.get(tiny.layerDigest).equals(tiny.layer)).toBe(true);
    expect(sink.get(tiny.configDigest).equals(tiny.config)).toBe(true);
    expect(pulled.stored.map((d) => d.digest)).toEqual([tiny.manifestDigest]);
    // By digest too.
    const byDigest = await pullImage({ client: client(), repository: 'rt/from-skopeo', reference: tiny.manifestDigest, sink: new MemoryBlobStore() });
    expect(byDigest.root.descriptor.digest).toBe(tiny.manifestDigest);
  });

  it.each(['oci', 'docker'] as const)('round-trips a multi-platform %s index and selects platforms', async (format) => {
    const store = new MemoryBlobStore();
    const { index, images } = await addTestIndex(
      store,
      [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
        { os: 'linux', architecture: 'arm', variant: 'v7' },
      ],
      { format, label: `idx-${format}`, attestation: format === 'oci' },
    );
    await pushImage({ client: client(), repository: `rt/index-${format}`, source: store, root: index, tags: ['multi'] });
    const raw = await skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/rt/index-${format}:multi`]);
    expect(sha256(Buffer.from(raw.stdout))).toBe(index.digest);
    // skopeo resolves the index to the arm64 image and reads its config.
    const arm = JSON.parse(
      (await skopeo(['inspect', '--tls-verify=false', '--override-arch', 'arm64', `docker://${reg.host}/rt/index-${format}:multi`])).stdout,
    ) as { Architecture: string; Layers: string[] };
    expect(arm.Architecture).toBe('arm64');
    expect(arm.Layers).toEqual(images[1]?.layers.map((l) => l.digest));

    const pulled = await pullImage({
      client: client(),
      repository: `rt/index-${format}`,
      reference: 'multi',
      sink: new MemoryBlobStore(),
      platform: { os: 'linux', architecture: 'arm64' },
    });
    expect(pulled.root.descriptor.digest).toBe(index.digest);
    expect(pulled.image?.descriptor.digest).toBe(images[1]?.manifest.digest);
    expect(pulled.image?.descriptor.platform).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });

    const all = new MemoryBlobStore();
    const everything = await pullImage({ client: client(), repository: `rt/index-${format}`, reference: 'multi', sink: all, platform: 'all' });
    expect(everything.stored.at(-1)?.digest).toBe(index.digest);
    expect(all.blobs.size).toBe(store.blobs.size);

    await expect(
      pullImage({
        client: client(),
        repository: `rt/index-${format}`,
        reference: 'multi',
        sink: new MemoryBlobStore(),
        platform: { os: 'linux', architecture: 's390x' },
      }),
    ).rejects.toMatchObject({ code: 'E_PLATFORM_MISMATCH' });
  });

  it('refuses a single-platform image for another requested platform', async () => {
    const store = new MemoryBlobStore();
    const img = await addTestImage(store, { label: 'single-amd64' });
    await pushImage({ client: client(), repository: 'rt/single', source: store, root: img.manifest, tags: ['v1'] });
    await expect(
      pullImage({ client: client(), repository: 'rt/single', reference: 'v1', sink: new MemoryBlobStore(), platform: { os: 'linux', architecture: 'arm64' } }),
    ).rejects.toMatchObject({ code: 'E_PLATFORM_MISMATCH', message: expect.stringContaining('linux/amd64') });
  });

  it('copies between registries by streaming, preserving digests', async () => {
    const other = await startRegistry({ auth: 'none' });
    try {
      const store = new MemoryBlobStore();
      const { index } = await addTestIndex(
        store,
        [
          { os: 'linux', architecture: 'amd64' },
          { os: 'linux', architecture: 'arm64' },
        ],
        { label: 'copy' },
      );
      await pushImage({ client: client(), repository: 'rt/copy-src', source: store, root: index, tags: ['v1'] });
      const target = new RegistryClient({ registry: other.host });
      const copied = await copyBetweenRegistries({
        source: { client: client(), repository: 'rt/copy-src', reference: 'v1' },
        target: { client: target, repository: 'copied/app', tags: ['v1'] },
      });
      expect(copied.digest).toBe(index.digest);
      const raw = await skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${other.host}/copied/app:v1`]);
      expect(sha256(Buffer.from(raw.stdout))).toBe(index.digest);
      await skopeo(['copy', '--all', '--src-tls-verify=false', `docker://${other.host}/copied/app:v1`, `oci:${join(tmp, 'copied')}:v1`]);
    } finally {
      await other.stop();
    }
  });

  it('reports missing manifests and repositories as E_REGISTRY_NOT_FOUND', async () => {
    await expect(client().getManifest('rt/nothing-here', 'v1')).rejects.toMatchObject({
      code: 'E_REGISTRY_NOT_FOUND',
      message: expect.stringContaining('rt/nothing-here'),
    });
    expect(await client().headManifest('rt/nothing-here', 'v1')).toBeUndefined();
  });
});
