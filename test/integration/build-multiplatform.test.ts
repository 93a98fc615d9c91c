/**
 * Issue 6: a multi-platform build pushes an OCI index that other tools read as one: `skopeo inspect
 * --raw` sees the index and `skopeo inspect --override-arch` each platform's image, checked against a
 * real docker-registry. The builds have no RUN, so the foreign platform needs no emulation; a RUN for
 * a platform the host cannot run must say which binfmt handler is missing.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI, strata } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeo } from '../helpers/skopeo.js';
import { describeWithTools, findOnPath } from '../helpers/tools.js';

interface RawIndex {
  schemaVersion: number;
  mediaType: string;
  manifests: { mediaType: string; digest: string; size: number; platform?: { os: string; architecture: string; variant?: string } }[];
}

interface RawManifest {
  schemaVersion: number;
  mediaType: string;
  config: { digest: string };
  layers: { digest: string }[];
}

interface Inspected {
  Architecture: string;
  Os: string;
  Layers: string[];
  Env: string[] | null;
  Labels: Record<string, string> | null;
}

const ARCHES = ['amd64', 'arm64'] as const;

/** The host's architecture under the Go name strata and skopeo use. */
function hostArch(): string {
  const names: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', s390x: 's390x', ppc64: 'ppc64le', riscv64: 'riscv64' };
  return names[process.arch] ?? process.arch;
}

const QEMU_NAMES: Record<string, string> = { amd64: 'x86_64', arm64: 'aarch64', s390x: 's390x', ppc64le: 'ppc64le', riscv64: 'riscv64' };

/**
 * Whether the kernel has any binfmt_misc entry for qemu-`arch`, enabled or not: the assertion on the
 * error is only sound when strata cannot find a handler, so any trace of one means skip.
 */
function binfmtHandlerFor(arch: string, dir = '/proc/sys/fs/binfmt_misc'): string | undefined {
  const qemu = QEMU_NAMES[arch] ?? arch;
  if (!existsSync(dir)) return undefined;
  for (const name of readdirSync(dir)) {
    if (name === 'register' || name === 'status') continue;
    if (name === `qemu-${qemu}`) return join(dir, name);
    try {
      if (readFileSync(join(dir, name), 'utf8').includes(`qemu-${qemu}`)) return join(dir, name);
    } catch {
      // unreadable entries say nothing either way
    }
  }
  return undefined;
}

/** A platform this host neither runs natively nor emulates, if there is one. */
function foreignArchWithoutEmulation(): string | undefined {
  const host = hostArch();
  return ['s390x', 'riscv64', 'ppc64le', 'arm64', 'amd64'].find((a) => a !== host && !(host === 'amd64' && a === '386') && binfmtHandlerFor(a) === undefined);
}

async function inspectArch(ref: string, arch: string): Promise<Inspected> {
  const { stdout } = await skopeo(['inspect', '--override-arch', arch, '--override-os', 'linux', '--tls-verify=false', `docker://${ref}`]);
  return JSON.parse(stdout) as Inspected;
}

async function rawIndex(ref: string): Promise<RawIndex> {
  return JSON.parse((await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])).stdout) as RawIndex;
}

/** The index's entry per architecture, after checking it is an OCI index of exactly the two platforms. */
function expectTwoPlatformIndex(index: RawIndex): Map<string, RawIndex['manifests'][number]> {
  expect(index.schemaVersion).toBe(2);
  expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
  expect(index.manifests).toHaveLength(2);
  const byArch = new Map<string, RawIndex['manifests'][number]>();
  for (const m of index.manifests) {
    expect(m.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(m.platform?.os).toBe('linux');
    byArch.set(m.platform?.architecture ?? '', m);
  }
  expect([...byArch.keys()].sort()).toEqual([...ARCHES]);
  // As BuildKit writes them (containerd/platforms normalizes arm64 v8 to no variant).
  expect(byArch.get('amd64')?.platform?.variant).toBeUndefined();
  expect(byArch.get('arm64')?.platform?.variant).toBeUndefined();
  return byArch;
}

/** Each child manifest, fetched by digest, parses as an OCI image manifest. */
async function expectChildManifests(repo: string, byArch: Map<string, RawIndex['manifests'][number]>): Promise<Map<string, RawManifest>> {
  const out = new Map<string, RawManifest>();
  for (const [arch, entry] of byArch) {
    const raw = (await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${repo}@${entry.digest}`])).stdout;
    const manifest = JSON.parse(raw) as RawManifest;
    expect(manifest.schemaVersion).toBe(2);
    expect(manifest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(manifest.config.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    out.set(arch, manifest);
  }
  return out;
}

describeWithTools(['docker-registry', 'skopeo'], 'a multi-platform build pushed to a registry', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let tmp: string;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json\` (make test builds first)`);
    reg = await startRegistry({ auth: 'none' });
    // Only to count the blob uploads of the app build; everything else talks to the registry directly.
    proxy = await startFaultProxy(reg.url, []);
    tmp = await mkdtemp(join(tmpdir(), 'strata-multiplatform-'));
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('FROM scratch: one index, one image per platform with its own file and TARGETARCH', async () => {
    const ctx = join(tmp, 'scratch-ctx');
    await mkdir(ctx, { recursive: true });
    for (const arch of ARCHES) await writeFile(join(ctx, `base-${arch}.txt`), `base for ${arch}\n`);
    await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nARG TARGETARCH\nCOPY base-${TARGETARCH}.txt /etc/arch.txt\nENV PATH=/bin BASE_ARCH=$TARGETARCH\n');
    const r = await strata(['build', ctx, '--platform', 'linux/amd64,linux/arm64', '--push', '-t', `${reg.host}/base:1`, '--progress', 'plain'], {
      STRATA_ROOT: join(tmp, 'store-base'),
    });
    expect(r.code, r.stderr).toBe(0);

    const byArch = expectTwoPlatformIndex(await rawIndex(`${reg.host}/base:1`));
    const manifests = await expectChildManifests(`${reg.host}/base`, byArch);
    const layers = new Map<string, string[]>();
    for (const arch of ARCHES) {
      const image = await inspectArch(`${reg.host}/base:1`, arch);
      expect(image.Architecture).toBe(arch);
      expect(image.Os).toBe('linux');
      expect(image.Env).toEqual(['PATH=/bin', `BASE_ARCH=${arch}`]);
      expect(image.Layers).toHaveLength(1);
      expect(image.Layers).toEqual(manifests.get(arch)?.layers.map((l) => l.digest));
      layers.set(arch, image.Layers);
    }
    // Each platform copied its own file: the layers differ.
    expect(layers.get('amd64')?.[0]).not.toBe(layers.get('arm64')?.[0]);
  });

  it('FROM a multi-platform base, no RUN: the index and each image read by skopeo, the shared COPY layer written once', async () => {
    // The base is the previous test's index; build it again if this test runs alone.
    if ((await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/base:1`]).catch(() => undefined)) === undefined) {
      const ctx = join(tmp, 'scratch-ctx-2');
      await mkdir(ctx, { recursive: true });
      for (const arch of ARCHES) await writeFile(join(ctx, `base-${arch}.txt`), `base for ${arch}\n`);
      await writeFile(
        join(ctx, 'Dockerfile'),
        'FROM scratch\nARG TARGETARCH\nCOPY base-${TARGETARCH}.txt /etc/arch.txt\nENV PATH=/bin BASE_ARCH=$TARGETARCH\n',
      );
      expect(
        (
          await strata(['build', ctx, '--platform', 'linux/amd64,linux/arm64', '--push', '-t', `${reg.host}/base:1`, '--progress', 'quiet'], {
            STRATA_ROOT: join(tmp, 'store-base-2'),
          })
        ).code,
      ).toBe(0);
    }

    const ctx = join(tmp, 'app-ctx');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'app.txt'), 'the same bytes on every platform\n');
    await writeFile(
      join(ctx, 'Dockerfile'),
      [
        `FROM ${proxy.host}/base:1`,
        'ARG TARGETARCH',
        'ARG TARGETPLATFORM',
        'ENV APP_ARCH=$TARGETARCH',
        'LABEL org.example.arch=$TARGETARCH org.example.platform=$TARGETPLATFORM',
        'COPY app.txt /app/',
        'CMD ["/app/app.txt"]',
        '',
      ].join('\n'),
    );
    // Pulled and pushed through the proxy, so the blob uploads can be counted and the base's layers can be
    // mounted (a mount needs the base on the same host as the destination).
    const before = proxy.requests.length;
    const r = await strata(['build', ctx, '--platform', 'linux/amd64,linux/arm64', '--push', '-t', `${proxy.host}/app:1`, '--progress', 'plain'], {
      STRATA_ROOT: join(tmp, 'store-app'),
    });
    expect(r.code, r.stderr).toBe(0);
    const during = proxy.requests.slice(before);

    const byArch = expectTwoPlatformIndex(await rawIndex(`${reg.host}/app:1`));
    const manifests = await expectChildManifests(`${reg.host}/app`, byArch);
    const images = new Map<string, Inspected>();
    for (const arch of ARCHES) {
      const image = await inspectArch(`${reg.host}/app:1`, arch);
      images.set(arch, image);
      expect(image.Architecture).toBe(arch);
      expect(image.Os).toBe('linux');
      expect(image.Env).toEqual(['PATH=/bin', `BASE_ARCH=${arch}`, `APP_ARCH=${arch}`]);
      expect(image.Labels?.['org.example.arch']).toBe(arch);
      expect(image.Labels?.['org.example.platform']).toBe(`linux/${arch}`);
      // The base's one layer, then the COPY.
      expect(image.Layers).toHaveLength(2);
      expect(image.Layers).toEqual(manifests.get(arch)?.layers.map((l) => l.digest));
    }
    const amd = images.get('amd64')!;
    const arm = images.get('arm64')!;
    expect(amd.Layers[0]).not.toBe(arm.Layers[0]);
    const copyLayer = amd.Layers[1]!;
    expect(arm.Layers[1]).toBe(copyLayer);
    // The configs differ (Env, labels, architecture), so the platforms have their own manifests.
    expect(byArch.get('amd64')?.digest).not.toBe(byArch.get('arm64')?.digest);
    expect(manifests.get('amd64')?.config.digest).not.toBe(manifests.get('arm64')?.config.digest);

    // An upload ends with the request that names the blob's digest (a PUT, or a monolithic POST).
    const uploadsOf = (digest: string): number =>
      during.filter(
        (q) => (q.method === 'PUT' || q.method === 'POST') && /\/blobs\/uploads\//.test(q.path) && decodeURIComponent(q.path).includes(`digest=${digest}`),
      ).length;
    expect(uploadsOf(copyLayer), during.map((q) => `${q.method} ${q.path} ${q.status}`).join('\n')).toBe(1);
    // Written once (the arm64 build took the amd64 build's write), and sent while it was written.
    const short = copyLayer.slice('sha256:'.length, 'sha256:'.length + 12);
    expect(r.stderr.split(`push ${short}: sent to ${proxy.host}/app while the layer was written`)).toHaveLength(2);
    // The base's layers are already in the registry: mounted or found, never uploaded again.
    expect(uploadsOf(amd.Layers[0]!)).toBe(0);
    expect(uploadsOf(arm.Layers[0]!)).toBe(0);

    // The whole index copies, children included.
    const dir = join(tmp, 'copied');
    await skopeo(['copy', '--all', '--src-tls-verify=false', `docker://${reg.host}/app:1`, `oci:${dir}:app`]);
    const layoutIndex = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as RawIndex;
    expect(layoutIndex.manifests).toHaveLength(1);
    expect(layoutIndex.manifests[0]?.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    for (const entry of byArch.values()) expect(existsSync(join(dir, 'blobs', 'sha256', entry.digest.slice('sha256:'.length)))).toBe(true);
    expect(existsSync(join(dir, 'blobs', 'sha256', copyLayer.slice('sha256:'.length)))).toBe(true);
  });

  it('FROM a per-platform base chosen by TARGETARCH, each made by `strata append --platform`', async () => {
    const env = { STRATA_ROOT: join(tmp, 'store-append') };
    for (const arch of ARCHES) {
      const layer = join(tmp, `layer-${arch}`);
      await mkdir(layer, { recursive: true });
      await writeFile(join(layer, `${arch}.txt`), `${arch}\n`);
      const a = await strata(
        [
          'append',
          '--platform',
          `linux/${arch}`,
          '--layer',
          `${layer}:/opt`,
          '--set-env',
          `BASE=${arch}`,
          '-o',
          `docker://${reg.host}/perarch:${arch}`,
          '--progress',
          'quiet',
        ],
        env,
      );
      expect(a.code, a.stderr).toBe(0);
      const single = await inspectArch(`${reg.host}/perarch:${arch}`, arch);
      expect(single.Architecture).toBe(arch);
    }

    const ctx = join(tmp, 'perarch-ctx');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'f.txt'), 'f\n');
    await writeFile(join(ctx, 'Dockerfile'), `FROM ${reg.host}/perarch:\${TARGETARCH}\nARG TARGETARCH\nLABEL arch=$TARGETARCH\nCOPY f.txt /f.txt\n`);
    const r = await strata(['build', ctx, '--platform', 'linux/amd64,linux/arm64', '--push', '-t', `${reg.host}/perarch-app:1`, '--progress', 'plain'], env);
    expect(r.code, r.stderr).toBe(0);

    expectTwoPlatformIndex(await rawIndex(`${reg.host}/perarch-app:1`));
    const layers = new Map<string, string[]>();
    for (const arch of ARCHES) {
      const image = await inspectArch(`${reg.host}/perarch-app:1`, arch);
      expect(image.Architecture).toBe(arch);
      expect(image.Env).toEqual([`BASE=${arch}`]);
      expect(image.Labels?.['arch']).toBe(arch);
      expect(image.Layers).toHaveLength(2);
      const base = await inspectArch(`${reg.host}/perarch:${arch}`, arch);
      expect(image.Layers[0]).toBe(base.Layers[0]);
      layers.set(arch, image.Layers);
    }
    expect(layers.get('amd64')?.[1]).toBe(layers.get('arm64')?.[1]);
  });

  it('RUN for a platform the host cannot run names the missing binfmt handler', async (ctx) => {
    const arch = foreignArchWithoutEmulation();
    if (arch === undefined) {
      process.stderr.write('[skip] foreign RUN: every candidate architecture is native or has a binfmt_misc handler here\n');
      ctx.skip();
      return;
    }
    const work = join(tmp, 'foreign-run');
    await mkdir(work, { recursive: true });
    await writeFile(join(work, 'x'), 'x\n');
    await writeFile(join(work, 'Dockerfile'), 'FROM scratch\nCOPY x /x\nRUN true\n');
    // The none executor refuses every RUN before the platform is looked at; a command executor is
    // available on any host (no root, no namespaces), and the emulation check comes before it runs.
    const trueBin = findOnPath('true');
    expect(trueBin, '`true` is not on PATH').toBeDefined();
    const r = await strata(
      ['build', work, '--platform', `linux/${arch}`, '--executor', `command:${trueBin!}`, '--push', '-t', `${reg.host}/foreign:1`, '--progress', 'plain'],
      { STRATA_ROOT: join(tmp, 'store-foreign') },
    );
    expect(r.code).not.toBe(0);
    const qemu = QEMU_NAMES[arch] ?? arch;
    expect(r.stderr).toMatch(new RegExp(`Dockerfile:3: RUN for linux/${arch}\\S* needs emulation`));
    expect(r.stderr).toContain(`no binfmt_misc handler for ${qemu}`);
    expect(r.stderr).toMatch(/qemu-user-static/);
    // Nothing was pushed for the failed build.
    await expect(skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/foreign:1`])).rejects.toThrow();
  });
});
