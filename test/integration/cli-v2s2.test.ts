/**
 * Docker media types on request: `push --format v2s2`, `copy --format v2s2` and a build's
 * `-o type=registry,oci-mediatypes=false` write Docker schema 2 manifests (lists) over the same blobs, which
 * skopeo reads and turns into a docker-archive with the same layers; a registry answering 415 to an OCI
 * manifest gets one error naming the option.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RegistryClient, pushImage } from '../../src/registry/index.js';
import { CLI, ok, strata } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { addTestIndex, MemoryBlobStore, sha256 } from '../helpers/memory-blobs.js';
import { writeTinyOciLayout, type TinyImage } from '../helpers/oci-layout.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeo } from '../helpers/skopeo.js';
import { describeWithTools } from '../helpers/tools.js';

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

interface RawManifest {
  mediaType: string;
  config?: { mediaType: string; digest: string };
  layers?: Array<{ mediaType: string; digest: string }>;
  manifests?: Array<{ mediaType: string; digest: string }>;
}

async function raw(ref: string): Promise<{ digest: string; doc: RawManifest }> {
  const out = await skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${ref}`]);
  return { digest: sha256(Buffer.from(out.stdout)), doc: JSON.parse(out.stdout) as RawManifest };
}

describeWithTools(['docker-registry', 'skopeo'], 'Docker schema 2 output', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let tmp: string;
  let env: Record<string, string>;
  let tiny: TinyImage;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first`);
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
    tmp = await mkdtemp(join(tmpdir(), 'strata-v2s2-'));
    env = { STRATA_ROOT: join(tmp, 'store'), HOME: join(tmp, 'home'), DOCKER_CONFIG: join(tmp, 'docker') };
    tiny = await writeTinyOciLayout(join(tmp, 'tiny'), { tag: 'v1', content: 'docker media types\n' });
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('push --format v2s2: skopeo reads a schema 2 manifest over the same blobs; a docker-archive of it has the same layers', async () => {
    const digest = ok(await strata(['push', `oci:${tiny.dir}:v1`, `${reg.host}/v2s2/app:1`, '--format', 'v2s2', '--progress', 'quiet'], env));
    const { digest: rawDigest, doc } = await raw(`${reg.host}/v2s2/app:1`);
    expect(rawDigest).toBe(digest);
    expect(digest).not.toBe(tiny.manifestDigest);
    expect(doc.mediaType).toBe(DOCKER_MANIFEST);
    expect(doc.config).toEqual(expect.objectContaining({ mediaType: 'application/vnd.docker.container.image.v1+json', digest: tiny.configDigest }));
    expect(doc.layers).toEqual([expect.objectContaining({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: tiny.layerDigest })]);
    const archive = join(tmp, 'app.tar');
    await skopeo(['copy', '--src-tls-verify=false', `docker://${reg.host}/v2s2/app:1`, `docker-archive:${archive}:app:1`]);
    const loaded = JSON.parse((await skopeo(['inspect', `docker-archive:${archive}`])).stdout) as { Layers: string[] };
    expect(loaded.Layers).toEqual([tiny.diffId]);
  });

  it('copy --format v2s2 turns an index into a manifest list of schema 2 manifests', async () => {
    const store = new MemoryBlobStore();
    const { index, images } = await addTestIndex(
      store,
      [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
      { label: 'v2s2', attestation: true },
    );
    await pushImage({ client: new RegistryClient({ registry: reg.host }), repository: 'v2s2/multi', source: store, root: index, tags: ['1'] });
    const digest = ok(
      await strata(
        ['copy', '--all-platforms', '--format', 'v2s2', `docker://${reg.host}/v2s2/multi:1`, `docker://${reg.host}/v2s2/multi-docker:1`, '--progress', 'quiet'],
        env,
      ),
    );
    const { digest: rawDigest, doc } = await raw(`${reg.host}/v2s2/multi-docker:1`);
    expect(rawDigest).toBe(digest);
    expect(doc.mediaType).toBe(DOCKER_LIST);
    expect(doc.manifests).toHaveLength(2);
    for (const [i, child] of (doc.manifests ?? []).entries()) {
      expect(child.mediaType).toBe(DOCKER_MANIFEST);
      const manifest = await raw(`${reg.host}/v2s2/multi-docker@${child.digest}`);
      expect(manifest.doc.config?.digest).toBe(images[i]?.config.digest);
    }
  });

  it('a registry answering 415 to an OCI manifest gets one error naming --format v2s2', async () => {
    proxy.setRules([
      {
        method: 'PUT',
        path: /\/manifests\//,
        nth: 1,
        times: 1,
        action: { kind: 'status', status: 415, body: '{"errors":[{"code":"MANIFEST_INVALID","message":"unsupported media type"}]}' },
      },
    ]);
    const refused = await strata(['push', `oci:${tiny.dir}:v1`, `${proxy.host}/v2s2/strict:1`, '--progress', 'quiet'], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('the registry refuses OCI media types (HTTP 415');
    expect(refused.stderr).toContain('--format v2s2');
    expect(refused.stderr.trim().split('\n')).toHaveLength(2);
  });

  it('build -o type=registry,oci-mediatypes=false pushes schema 2', async () => {
    const dir = join(tmp, 'ctx');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY a.txt /a.txt\n');
    await writeFile(join(dir, 'a.txt'), 'built for docker media types\n');
    ok(
      await strata(
        [
          'build',
          '--progress',
          'quiet',
          '--source-date-epoch',
          '1700000000',
          '-t',
          `${reg.host}/v2s2/built:1`,
          '-o',
          'type=registry,oci-mediatypes=false',
          dir,
        ],
        env,
      ),
    );
    const { doc } = await raw(`${reg.host}/v2s2/built:1`);
    expect(doc.mediaType).toBe(DOCKER_MANIFEST);
    expect(doc.layers?.[0]?.mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip');
  });
});
