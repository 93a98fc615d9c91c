/**
 * Issue 16: `strata index create` (buildx `imagetools create`) combines images built separately into
 * one index in a real docker-registry, with annotations and --append, mounting blobs: the registry's
 * access log shows no layer downloaded.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI, ok, strata } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeo } from '../helpers/skopeo.js';
import { describeWithTools } from '../helpers/tools.js';

interface Desc {
  digest: string;
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string };
}
interface Doc {
  manifests: Desc[];
  annotations?: Record<string, string>;
  layers?: Desc[];
}

describeWithTools(['docker-registry', 'skopeo'], 'strata index create', () => {
  let reg: TestRegistry;
  let tmp: string;
  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run make build first`);
    reg = await startRegistry({ auth: 'none' });
    tmp = await mkdtemp(join(tmpdir(), 'strata-index-create-'));
    await mkdir(join(tmp, 'ctx'));
    await writeFile(join(tmp, 'ctx', 'Dockerfile'), 'FROM scratch\nARG TARGETARCH\nCOPY f-${TARGETARCH} /f\n');
    for (const a of ['amd64', 'arm64', 's390x']) await writeFile(join(tmp, 'ctx', `f-${a}`), `${a}\n`);
  });
  afterAll(async () => {
    await reg?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const raw = async (ref: string): Promise<Doc> => JSON.parse((await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])).stdout) as Doc;

  it('combines per-platform images and their attestations; mounts, never downloads a layer; --append adds', async () => {
    const env = { STRATA_ROOT: join(tmp, 'store') };
    ok(await strata(['build', join(tmp, 'ctx'), '--platform', 'linux/amd64', '--sbom', '--push', '-t', `${reg.host}/app-amd64:1`, '--progress', 'quiet'], env));
    ok(await strata(['build', join(tmp, 'ctx'), '--platform', 'linux/arm64', '--push', '-t', `${reg.host}/app-arm64:1`, '--progress', 'quiet'], env));
    ok(await strata(['build', join(tmp, 'ctx'), '--platform', 'linux/s390x', '--push', '-t', `${reg.host}/app-s390x:1`, '--progress', 'quiet'], env));
    const amd = await raw(`${reg.host}/app-amd64:1`);
    const arm = (await skopeo(['inspect', '--format', '{{.Digest}}', '--tls-verify=false', `docker://${reg.host}/app-arm64:1`])).stdout.trim();
    const armLayers = (await raw(`${reg.host}/app-arm64:1`)).layers!.map((l) => l.digest);
    const before = reg.logs().length;

    const digest = ok(
      await strata([
        'index',
        'create',
        '-t',
        `${reg.host}/app:1`,
        `${reg.host}/app-amd64:1`,
        `docker://${reg.host}/app-arm64:1`,
        '--annotation',
        'index:org.opencontainers.image.title=app',
        '--annotation',
        'manifest-descriptor[linux/arm64]:org.example.arch=arm',
      ]),
    );
    const index = await raw(`${reg.host}/app:1`);
    expect(digest).toMatch(/^sha256:/);
    expect(index.annotations).toEqual({ 'org.opencontainers.image.title': 'app' });
    expect(index.manifests.map((m) => `${m.platform?.os}/${m.platform?.architecture}`)).toEqual(['linux/amd64', 'unknown/unknown', 'linux/arm64']);
    expect(index.manifests.slice(0, 2)).toEqual(amd.manifests);
    expect(index.manifests[2]).toMatchObject({ digest: arm, annotations: { 'org.example.arch': 'arm' } });
    const log = reg.logs().slice(before);
    for (const layer of armLayers) {
      expect(log).not.toMatch(new RegExp(`"GET /v2/[^ ]*/blobs/${layer}`));
      expect(log).toMatch(new RegExp(`"POST /v2/app/blobs/uploads/\\?mount=${layer.replace(':', '%3A')}&from=app-arm64`));
    }
    // skopeo reads each platform of the new index.
    const inspected = JSON.parse(
      (await skopeo(['inspect', '--override-arch', 'arm64', '--override-os', 'linux', '--tls-verify=false', `docker://${reg.host}/app:1`])).stdout,
    ) as { Architecture: string };
    expect(inspected.Architecture).toBe('arm64');

    ok(await strata(['index', 'create', '--append', '-t', `${reg.host}/app:1`, `${reg.host}/app-s390x:1`]));
    const appended = await raw(`${reg.host}/app:1`);
    expect(appended.manifests.map((m) => m.platform?.architecture)).toEqual(['amd64', 'unknown', 'arm64', 's390x']);
  });

  it('refuses manifest annotations and a missing -t', async () => {
    const r = await strata(['index', 'create', '-t', `${reg.host}/x:1`, `${reg.host}/app-arm64:1`, '--annotation', 'manifest:a=b']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/index and manifest-descriptor annotations only/);
    expect((await strata(['index', 'create', `${reg.host}/app-arm64:1`])).code).not.toBe(0);
  });
});
