/**
 * Resumable blob downloads: the fault proxy drops a 64 MiB layer at 50% and the pull resumes with Range from
 * the byte it reached (bytes served twice under 10%); a server that answers the Range wrongly (ignores it, or
 * sends another range) is read from zero again, and the digest still holds.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI, ok, strata } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { sha256, tarOf } from '../helpers/memory-blobs.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWithTools } from '../helpers/tools.js';

const MiB = 1024 * 1024;

/** An OCI layout of one image with one uncompressed layer. */
async function writeLayout(dir: string, tar: Buffer): Promise<{ manifest: string; layer: { digest: string; size: number } }> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = async (bytes: Buffer): Promise<string> => {
    const digest = sha256(bytes);
    await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7)), bytes);
    return digest;
  };
  const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: await put(tar), size: tar.length };
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: await put(config), size: config.length },
      layers: [layer],
    }),
  );
  const digest = await put(manifest);
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': '1' } },
      ],
    }),
  );
  return { manifest: digest, layer };
}

describeWithTools(['docker-registry'], 'resumable blob downloads', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let tmp: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first`);
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
    tmp = await mkdtemp(join(tmpdir(), 'strata-resume-'));
    env = { STRATA_ROOT: join(tmp, 'store'), HOME: join(tmp, 'home'), DOCKER_CONFIG: join(tmp, 'docker') };
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('a 64 MiB layer dropped at 50% resumes from the byte reached', async () => {
    // An uncompressed layer written by hand and pushed by strata: no 64 MiB deflate in the test.
    const tar = await tarOf({ 'random.bin': randomBytes(64 * MiB) });
    const image = await writeLayout(join(tmp, 'big'), tar);
    ok(await strata(['push', `oci:${join(tmp, 'big')}:1`, `${reg.host}/res/app:1`, '--progress', 'quiet'], env));
    const big = image.layer;
    expect(big.size).toBeGreaterThan(64 * MiB);
    const half = Math.floor(big.size / 2);
    proxy.setRules([{ method: 'GET', path: new RegExp(`/blobs/${big.digest}`), nth: 1, action: { kind: 'drop-response', afterBytes: half } }]);
    const pulled = await strata(['pull', `${proxy.host}/res/app:1`, '-o', `oci:${join(tmp, 'out')}`, '--progress', 'plain'], env);
    expect(ok(pulled)).toBe(image.manifest);
    expect(pulled.stderr).toMatch(/connection dropped; resuming at byte \d+/);
    const gets = proxy.requests.filter((r) => r.method === 'GET' && r.path.includes(big.digest));
    expect(gets).toHaveLength(2);
    expect(gets[0]?.headers.range).toBeUndefined();
    const range = /^bytes=(\d+)-$/.exec(String(gets[1]?.headers.range));
    expect(range).not.toBeNull();
    const resumedAt = Number(range![1]);
    expect(gets[1]?.status).toBe(206);
    // The first answer carried `half` bytes; everything before resumedAt was not sent again.
    const servedTwice = half - resumedAt;
    expect(servedTwice).toBeGreaterThanOrEqual(0);
    expect(servedTwice / big.size).toBeLessThan(0.1);
  });

  for (const mode of ['ignores the Range (200 from zero)', 'answers another range (206 from byte 0)'] as const) {
    it(`a server that ${mode} is read from zero again, with a verified digest`, async () => {
      const tar = await tarOf({ 'blob.bin': randomBytes(4 * MiB) });
      const layer = gzipSync(tar, { level: 1 });
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(tar)] } }));
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
        }),
      );
      // A registry that serves blobs whole whatever Range asks: the first layer GET is cut halfway.
      const ranges: Array<string | undefined> = [];
      let layerGets = 0;
      const server: Server = createServer((req, res) => {
        const path = req.url ?? '/';
        if (path === '/v2/') return void res.writeHead(200).end('{}');
        if (path === '/v2/wr/app/manifests/1')
          return void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': manifest.length }).end(manifest);
        if (path === `/v2/wr/app/blobs/${sha256(config)}`) return void res.writeHead(200, { 'content-length': config.length }).end(config);
        if (path !== `/v2/wr/app/blobs/${sha256(layer)}`) return void res.writeHead(404).end();
        ranges.push(req.headers.range);
        if (++layerGets === 1) {
          res.writeHead(200, { 'content-length': layer.length });
          res.write(layer.subarray(0, layer.length >> 1), () => res.destroy());
          return;
        }
        if (mode.startsWith('ignores')) res.writeHead(200, { 'content-length': layer.length });
        else res.writeHead(206, { 'content-length': layer.length, 'content-range': `bytes 0-${layer.length - 1}/${layer.length}` });
        res.end(layer);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
        const pulled = await strata(['pull', `${host}/wr/app:1`, '-o', `oci:${join(tmp, `wrong-${layerGets}-${mode.length}`)}`, '--progress', 'plain'], env);
        expect(ok(pulled)).toBe(sha256(manifest));
        expect(ranges).toHaveLength(2);
        expect(ranges[0]).toBeUndefined();
        expect(ranges[1]).toMatch(/^bytes=\d+-$/);
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    });
  }
});
