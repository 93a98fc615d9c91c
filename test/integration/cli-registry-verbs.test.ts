/**
 * The everyday registry verbs of the built CLI against a real docker-registry: `ls` (following Link
 * pages), `digest` (skopeo as the judge) and `delete` (and the 405 of a registry that refuses it).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI, ok, strata } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { writeTinyOciLayout, type TinyImage } from '../helpers/oci-layout.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { sha256 } from '../helpers/memory-blobs.js';
import { skopeo } from '../helpers/skopeo.js';
import { describeWithTools } from '../helpers/tools.js';

const run = promisify(execFile);

describeWithTools(['docker-registry', 'skopeo'], 'strata ls, digest and delete against a registry', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let tmp: string;
  let env: Record<string, string>;
  let tiny: TinyImage;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first`);
    reg = await startRegistry({ auth: 'none' });
    proxy = await startFaultProxy(reg.url);
    tmp = await mkdtemp(join(tmpdir(), 'strata-verbs-'));
    env = { STRATA_ROOT: join(tmp, 'store'), HOME: join(tmp, 'home'), DOCKER_CONFIG: join(tmp, 'docker') };
    tiny = await writeTinyOciLayout(join(tmp, 'tiny'), { tag: 'v1', content: 'verbs\n' });
    for (const tag of ['a', 'b', 'c', 'd', 'e']) ok(await strata(['push', `oci:${tiny.dir}:v1`, `${reg.host}/verbs/app:${tag}`, '--progress', 'quiet'], env));
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('ls lists every tag of the registry', async () => {
    expect(
      ok(await strata(['ls', `docker://${reg.host}/verbs/app`], env))
        .split('\n')
        .sort(),
    ).toEqual(['a', 'b', 'c', 'd', 'e']);
    const tagged = await strata(['ls', `${reg.host}/verbs/app:a`], env);
    expect(tagged.code).toBe(2);
    expect(tagged.stderr).toContain('without a tag');
  });

  it("ls follows Link pages (distribution 3 pages tag lists; Debian's 2.8 answers in one)", async () => {
    // A loopback server speaking the tag-list part of the spec as distribution 3 does: pages of `n`, a
    // relative Link to the next page, the last page without one.
    const all = Array.from({ length: 7 }, (_, i) => `t${i}`);
    const asked: string[] = [];
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      asked.push(url.pathname + url.search);
      if (url.pathname === '/v2/') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      if (url.pathname !== '/v2/paged/app/tags/list') return void res.writeHead(404).end();
      const n = Number(url.searchParams.get('n') ?? '100');
      const last = url.searchParams.get('last');
      const start = last === null ? 0 : all.indexOf(last) + 1;
      const page = all.slice(start, start + n);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (start + n < all.length) headers.link = `</v2/paged/app/tags/list?last=${page[page.length - 1]}&n=${n}>; rel="next"`;
      res.writeHead(200, headers).end(JSON.stringify({ name: 'paged/app', tags: page }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const listed = ok(await strata(['ls', `127.0.0.1:${port}/paged/app`, '--page-size', '3'], env)).split('\n');
      expect(listed).toEqual(all);
      expect(asked.filter((p) => p.includes('/tags/list'))).toEqual([
        '/v2/paged/app/tags/list?n=3',
        '/v2/paged/app/tags/list?last=t2&n=3',
        '/v2/paged/app/tags/list?last=t5&n=3',
      ]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('digest prints the manifest digest skopeo sees, for registries and layouts', async () => {
    const raw = await skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/verbs/app:a`]);
    expect(ok(await strata(['digest', `${reg.host}/verbs/app:a`], env))).toBe(sha256(Buffer.from(raw.stdout)));
    expect(ok(await strata(['digest', `oci:${tiny.dir}:v1`], env))).toBe(tiny.manifestDigest);
    const missing = await strata(['digest', `${reg.host}/verbs/app:nope`], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/manifest nope.*not found|MANIFEST_UNKNOWN/);
  });

  it('diff and export read a registry image as they read a layout', async () => {
    const same = JSON.parse(ok(await strata(['diff', `docker://${reg.host}/verbs/app:c`, `oci:${tiny.dir}:v1`, '--format', 'json'], env))) as {
      identical: boolean;
    };
    expect(same.identical).toBe(true);
    const other = await writeTinyOciLayout(join(tmp, 'other'), { tag: 'v1', content: 'verbs, changed\n' });
    const text = ok(await strata(['diff', `docker://${reg.host}/verbs/app:c`, `oci:${other.dir}:v1`], env));
    expect(text).toContain('~ /hello.txt: content (6 -> 15 bytes)');
    expect(text).toContain('files differ: 1 changed (content): /hello.txt (from layer 1)');
    const out = join(tmp, 'rootfs.tar');
    ok(await strata(['export', `docker://${reg.host}/verbs/app:c`, '-o', out, '--progress', 'quiet'], env));
    const listed = await run('tar', ['-xOf', out, 'hello.txt']);
    expect(listed.stdout).toBe('verbs\n');
  });

  it('delete removes the manifest (and every tag naming it); a 405 says deletes are off', async () => {
    const host = new URL(proxy.url).host;
    proxy.setRules([
      {
        method: 'DELETE',
        path: /\/manifests\//,
        action: { kind: 'status', status: 405, body: '{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}' },
      },
    ]);
    const refused = await strata(['delete', `${host}/verbs/app:a`], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('does not allow deleting manifests (HTTP 405)');
    expect(refused.stderr).toContain('REGISTRY_STORAGE_DELETE_ENABLED');
    proxy.setRules([]);

    const deleted = ok(await strata(['delete', `${reg.host}/verbs/app:a`], env));
    expect(deleted).toBe(`deleted ${reg.host}/verbs/app@${tiny.manifestDigest}`);
    const gone = await skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/verbs/app:b`]).then(
      () => false,
      () => true,
    );
    expect(gone).toBe(true);
  });
});
