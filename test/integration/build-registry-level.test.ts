/**
 * A registry-level build: the base and the destination are on the same registry and no step needs the
 * base's bytes, so the build downloads no base layer at all (the push mounts them), counted at a
 * recording proxy in front of a real docker-registry.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI, strata } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeo } from '../helpers/skopeo.js';
import { describeWithTools } from '../helpers/tools.js';

describeWithTools(['docker-registry', 'skopeo'], 'a registry-level build', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let tmp: string;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json\` (make test builds first)`);
    reg = await startRegistry({ auth: 'none' });
    proxy = await startFaultProxy(reg.url, []);
    tmp = await mkdtemp(join(tmpdir(), 'strata-registry-level-'));
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('downloads no base layer: metadata steps and COPY --link, pushed with --push', async () => {
    const base = join(tmp, 'base');
    await mkdir(join(base, 'etc'), { recursive: true });
    await writeFile(join(base, 'etc', 'big.bin'), Buffer.alloc(3 * 1024 * 1024, 7));
    const env = { STRATA_ROOT: join(tmp, 'store-base') };
    expect((await strata(['append', '--layer', base, '--set-env', 'PATH=/bin', '-o', `docker://${proxy.host}/base:1`, '--progress', 'quiet'], env)).code).toBe(
      0,
    );

    const ctx = join(tmp, 'ctx');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'app.txt'), 'app\n');
    await writeFile(
      join(ctx, 'Dockerfile'),
      `FROM ${proxy.host}/base:1\nCOPY --link app.txt /app/\nENV MODE=prod\nLABEL org.opencontainers.image.title=app\nCMD ["/app/app.txt"]\n`,
    );
    const before = proxy.requests.length;
    const r = await strata(['build', ctx, '--push', '-t', `${proxy.host}/app:1`, '--progress', 'plain'], { STRATA_ROOT: join(tmp, 'store-fresh') });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('registry-level build: no base layer was downloaded');
    const during = proxy.requests.slice(before);
    const baseManifest = JSON.parse((await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/base:1`])).stdout) as {
      config: { digest: string };
      layers: Array<{ digest: string }>;
    };
    const blobGets = during.filter((q) => q.method === 'GET' && /\/v2\/base\/blobs\//.test(q.path));
    // Zero base layer GETs; the one blob read is the config (the build needs the base's Env and history).
    expect(blobGets.filter((q) => baseManifest.layers.some((l) => q.path.includes(l.digest)))).toEqual([]);
    expect(blobGets.every((q) => q.path.includes(baseManifest.config.digest))).toBe(true);
    expect(blobGets.length).toBeLessThanOrEqual(1);
    const inspected = JSON.parse((await skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/app:1`])).stdout) as { Layers: string[]; Env: string[] };
    expect(inspected.Layers).toHaveLength(2);
    expect(inspected.Env).toEqual(['PATH=/bin', 'MODE=prod']);

    // A rebuild from the same store kept the base's config: the only base request is the tag's manifest.
    const again = proxy.requests.length;
    const second = await strata(['build', ctx, '--push', '-t', `${proxy.host}/app:1`, '--progress', 'plain'], { STRATA_ROOT: join(tmp, 'store-fresh') });
    expect(second.code, second.stderr).toBe(0);
    const rebuilt = proxy.requests.slice(again);
    expect(rebuilt.filter((q) => q.path.startsWith('/v2/base/')).map((q) => `${q.method} ${q.path}`)).toEqual(['GET /v2/base/manifests/1']);
    // The same image again: app:1 already names it, so the push is one HEAD.
    expect(rebuilt.filter((q) => q.path.startsWith('/v2/app/')).map((q) => `${q.method} ${q.path}`)).toEqual(['HEAD /v2/app/manifests/1']);
    expect(second.stderr).toContain(`${proxy.host}/app:1 already names`);
  });
});
