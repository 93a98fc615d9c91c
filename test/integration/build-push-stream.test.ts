/**
 * A build that pushes uploads each new layer while writing it: the layer reaches the registry in one
 * streamed PATCH during the build, and the push afterwards finds it there. An upload that fails is
 * dropped and the push sends the layer from the store. A real docker-registry behind a recording proxy.
 */
import { createCipheriv } from 'node:crypto';
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

describeWithTools(['docker-registry', 'skopeo'], 'a build that pushes', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let tmp: string;
  let ctx: string;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`make build\` (make test builds first)`);
    reg = await startRegistry({ auth: 'none' });
    proxy = await startFaultProxy(reg.url, []);
    tmp = await mkdtemp(join(tmpdir(), 'strata-push-stream-'));
    ctx = join(tmp, 'ctx');
    await mkdir(join(ctx, 'data'), { recursive: true });
    // Deterministic, barely compressible bytes, so the layer is several MiB and several gzip members.
    const big = createCipheriv('aes-128-ctr', Buffer.alloc(16, 1), Buffer.alloc(16)).update(Buffer.alloc(6 * 1024 * 1024));
    await writeFile(join(ctx, 'data', 'big.bin'), big);
    await writeFile(join(ctx, 'data', 'small.txt'), 'small\n');
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const layersOf = async (ref: string): Promise<string[]> =>
    (JSON.parse((await skopeo(['inspect', '--tls-verify=false', `docker://${ref}`])).stdout) as { Layers: string[] }).Layers;

  it('streams the new layer to the registry while writing it; the push finds it there', async () => {
    await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY data /data/\nENV A=1\n');
    const before = proxy.requests.length;
    const r = await strata(['build', ctx, '--push', '-t', `${proxy.host}/app:1`, '--progress', 'plain'], { STRATA_ROOT: join(tmp, 'store-1') });
    expect(r.code, r.stderr).toBe(0);
    const during = proxy.requests.slice(before);
    const [layer] = await layersOf(`${reg.host}/app:1`);
    // One streamed PATCH (no Content-Length) carried the layer, closed by a PUT with its digest.
    const patches = during.filter((q) => q.method === 'PATCH');
    expect(patches).toHaveLength(1);
    expect(patches[0]!.headers['content-length']).toBeUndefined();
    expect(patches[0]!.requestBytes).toBeGreaterThan(6 * 1024 * 1024);
    expect(during.filter((q) => q.method === 'PUT' && q.path.includes(`digest=${encodeURIComponent(layer!)}`))).toHaveLength(1);
    expect(r.stderr).toContain(`push ${layer!.slice('sha256:'.length, 'sha256:'.length + 12)}: sent to ${proxy.host}/app while the layer was written`);
    expect(r.stderr).toMatch(/push [0-9a-f]{12}: already there/);
  });

  it('an upload that fails during the build leaves the push to send the layer', async () => {
    await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY data /data/\nENV A=2\nLABEL x=y\nCOPY data/small.txt /again.txt\n');
    proxy.setRules([{ method: 'PATCH', path: /\/blobs\/uploads\//, nth: 1, times: 1, action: { kind: 'status', status: 500 } }]);
    const before = proxy.requests.length;
    try {
      const r = await strata(['build', ctx, '--push', '-t', `${proxy.host}/app:2`, '--progress', 'plain'], { STRATA_ROOT: join(tmp, 'store-2') });
      expect(r.code, r.stderr).toBe(0);
    } finally {
      proxy.setRules([]);
    }
    const patches = proxy.requests.slice(before).filter((q) => q.method === 'PATCH');
    expect(patches[0]?.status).toBe(500);
    expect(patches.length).toBeGreaterThan(1);
    // skopeo reads every layer back from the registry, digests checked.
    const dir = join(tmp, 'copied');
    await skopeo(['copy', '--src-tls-verify=false', `docker://${reg.host}/app:2`, `oci:${dir}:app`]);
    expect(await layersOf(`${reg.host}/app:2`)).toHaveLength(2);
  });
});
