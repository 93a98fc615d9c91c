import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciLayout, buildImage, parseManifestOrIndex, parseImageConfig } from '../../../src/internals.js';
import { checkRunPlatform } from '../../../src/build/emulation.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-platforms-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('multi-platform builds', () => {
  it('builds one image per platform, with the platform ARGs, under one index', async () => {
    const ctx = join(work, 'ctx');
    await mkdir(ctx, { recursive: true });
    await writeFile(
      join(ctx, 'Dockerfile'),
      'FROM scratch\nARG TARGETARCH\nARG TARGETPLATFORM\nARG TARGETVARIANT\nCOPY app /app\nENV ARCH=$TARGETARCH PLATFORM=$TARGETPLATFORM VARIANT=$TARGETVARIANT\n',
    );
    await writeFile(join(ctx, 'app'), 'same bytes on every platform\n');
    const out = join(work, 'layout');
    const result = await buildImage(
      { contextDir: ctx, platform: 'linux/amd64,linux/arm64', outputs: [`type=oci,dest=${out},tar=false`], tags: ['multi:1'] },
      { storeRoot: join(work, 'store'), now: () => new Date(0), sourceDateEpoch: 0 },
    );
    expect(result.manifest.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    const layout = await OciLayout.open(out);
    const top = await layout.resolve('1');
    const index = parseManifestOrIndex(await layout.blobs.readBlob(top), 'index', top.mediaType);
    if (index.kind !== 'index') throw new Error('expected an index');
    expect(index.index.manifests.map((m) => m.platform)).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ]);
    const layers: string[] = [];
    for (const m of index.index.manifests) {
      const parsed = parseManifestOrIndex(await layout.blobs.readBlob(m), 'manifest', m.mediaType);
      if (parsed.kind !== 'manifest') throw new Error('expected a manifest');
      const config = parseImageConfig(await layout.blobs.readBlob(parsed.manifest.config), 'config');
      expect(config.architecture).toBe(m.platform!.architecture);
      expect(config.config!.Env).toContain(`ARCH=${m.platform!.architecture}`);
      // BuildKit's values: linux/arm64 with an empty TARGETVARIANT, as containerd normalizes arm64 v8.
      expect(config.config!.Env).toContain(`PLATFORM=linux/${m.platform!.architecture}`);
      expect(config.config!.Env).toContain('VARIANT=');
      expect('variant' in config).toBe(false);
      layers.push(parsed.manifest.layers[0]!.digest);
    }
    // The COPY layer is the same bytes for both platforms: one blob.
    expect(new Set(layers).size).toBe(1);
  });

  it('dates every platform alike, so a COPY that creates a directory gives one layer however long the build takes', async () => {
    const ctx = join(work, 'ctx-clock');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY app /new/dir/\n');
    await writeFile(join(ctx, 'app'), 'same bytes\n');
    // A clock that moves a minute every time it is read: each platform's build starts at another time.
    let minutes = 0;
    const out = join(work, 'layout-clock');
    await buildImage(
      { contextDir: ctx, platform: 'linux/amd64,linux/arm64', outputs: [`type=oci,dest=${out},tar=false`], tags: ['clock:1'] },
      { storeRoot: join(work, 'store-clock'), now: () => new Date(Date.UTC(2024, 0, 1, 0, minutes++)) },
    );
    const layout = await OciLayout.open(out);
    const index = parseManifestOrIndex(await layout.blobs.readBlob(await layout.resolve('1')), 'index');
    if (index.kind !== 'index') throw new Error('expected an index');
    const layers = new Set<string>();
    for (const m of index.index.manifests) {
      const parsed = parseManifestOrIndex(await layout.blobs.readBlob(m), 'manifest', m.mediaType);
      if (parsed.kind !== 'manifest') throw new Error('expected a manifest');
      layers.add(parsed.manifest.layers[0]!.digest);
    }
    expect(layers.size).toBe(1);
  });

  it('refuses type=docker for several platforms before building', async () => {
    await expect(
      buildImage(
        { contextDir: work, platform: 'linux/amd64,linux/arm64', outputs: [`type=docker,dest=${join(work, 'x.tar')}`] },
        { storeRoot: join(work, 'store'), now: () => new Date(0) },
      ),
    ).rejects.toThrow(/type=docker holds one platform/);
  });
});

describe('RUN for a foreign platform', () => {
  it('names the missing binfmt handler', async () => {
    const binfmt = join(work, 'binfmt');
    await mkdir(binfmt, { recursive: true });
    expect(() => checkRunPlatform({ os: 'linux', architecture: 'arm64' }, 'Dockerfile:3', binfmt, { os: 'linux', architecture: 'amd64' })).toThrow(
      /Dockerfile:3: RUN for linux\/arm64 needs emulation.*no binfmt_misc handler for aarch64/,
    );
    await writeFile(join(binfmt, 'qemu-aarch64'), 'enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n');
    expect(() => checkRunPlatform({ os: 'linux', architecture: 'arm64' }, 'Dockerfile:3', binfmt, { os: 'linux', architecture: 'amd64' })).not.toThrow();
    expect(() =>
      checkRunPlatform({ os: 'linux', architecture: 'amd64' }, 'Dockerfile:3', join(work, 'none'), { os: 'linux', architecture: 'amd64' }),
    ).not.toThrow();
  });
});
