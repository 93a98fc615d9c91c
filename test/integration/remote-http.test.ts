/**
 * ADD <url> against a real loopback HTTP(S) server: the downloader (validators, redirects across hosts
 * without credentials, retries of 5xx and dropped bodies, slow bodies, errors naming the URL) and
 * `strata build` with the built CLI (names, mode 0600, Last-Modified mtime, --chown/--chmod, no unpacking
 * unless --unpack=true, --checksum, the cache replaying an unchanged URL and rebuilding a changed one,
 * https with --ca-cert, and a password in the URL reaching no output, history or error).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeFetch, digestOf, downloadUrl, isStrataError, proxyFor, proxySettingsFromEnv } from '../../src/internals.js';
import { startConnectProxy } from '../helpers/connect-proxy.js';
import { CLI, ok, strata, tool, type CliResult } from '../helpers/cli.js';
import { storeLeftovers } from '../helpers/store-files.js';
import { startFileServer, type FileServer } from '../helpers/file-server.js';
import { layoutConfig, tarEntries } from '../helpers/image-read.js';
import { makeCertificates } from '../helpers/tls-certs.js';
import { describeAsRoot, describeWithTools } from '../helpers/tools.js';

const LAST_MODIFIED = 'Wed, 01 Mar 2023 10:00:00 GMT';
const LAST_MODIFIED_S = Date.parse(LAST_MODIFIED) / 1000;
const fast = { retries: 3, baseDelayMs: 1, maxDelayMs: 5 };

let tmp: string;
let srv: FileServer;
let other: FileServer;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'strata-remote-http-'));
  srv = await startFileServer();
  other = await startFileServer();
});
afterAll(async () => {
  await srv?.stop();
  await other?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('downloads through HTTPS_PROXY/HTTP_PROXY', () => {
  it('tunnel through the proxy with its credentials; loopback goes direct', async () => {
    const proxy = await startConnectProxy();
    try {
      srv.routes.set('/proxied.txt', { body: 'via proxy' });
      const port = new URL(srv.url).port;
      const proxyUrl = proxy.url.replace('http://', 'http://pu:pp@');
      const d = join(tmp, 'proxied');
      await mkdir(d, { recursive: true });
      const fetch = createNodeFetch({ proxy: proxySettingsFromEnv({ HTTP_PROXY: proxyUrl, HTTPS_PROXY: proxyUrl, NO_PROXY: 'other.test' }) });
      const res = await downloadUrl(`http://files.strata.test:${port}/proxied.txt`, { fetch, dir: d });
      expect(res.kind === 'downloaded' && res.digest).toBe(digestOf('via proxy'));
      expect(proxy.tunnels).toEqual([`files.strata.test:${port} Basic ${Buffer.from('pu:pp').toString('base64')}`]);
      await downloadUrl(`${srv.url}/proxied.txt`, { fetch, dir: d });
      expect(proxy.tunnels.length).toBe(1);
    } finally {
      await proxy.stop();
    }
  });

  it("follows Go's NO_PROXY rules", () => {
    const s = { httpsProxy: 'http://p:3128', noProxy: 'example.com, .corp.test,10.0.0.0/8,registry.io:5000' };
    const via = (u: string): string | undefined => proxyFor(new URL(u), s)?.host;
    expect(via('https://example.com/x')).toBeUndefined();
    expect(via('https://a.example.com/x')).toBeUndefined();
    expect(via('https://notexample.com/x')).toBe('p:3128');
    expect(via('https://x.corp.test/')).toBeUndefined();
    expect(via('https://corp.test/')).toBe('p:3128');
    expect(via('https://10.1.2.3/')).toBeUndefined();
    expect(via('https://11.1.2.3/')).toBe('p:3128');
    expect(via('https://registry.io:5000/')).toBeUndefined();
    expect(via('https://registry.io/')).toBe('p:3128');
    expect(via('https://127.0.0.1:5000/')).toBeUndefined();
    expect(via('https://localhost/')).toBeUndefined();
    expect(via('http://example.org/')).toBeUndefined();
    expect(proxyFor(new URL('https://x.org/'), { httpsProxy: 'p:1', noProxy: '*' })).toBeUndefined();
  });
});

describe('downloadUrl', () => {
  const fetch = createNodeFetch();
  let n = 0;
  const dir = async (): Promise<string> => {
    const d = join(tmp, `dl-${++n}`);
    await mkdir(d, { recursive: true });
    return d;
  };

  it('hashes as it writes, and revalidates with If-None-Match and If-Modified-Since', async () => {
    srv.routes.set('/v.txt', { body: 'version one\n', etag: '"v1"', lastModified: LAST_MODIFIED });
    const first = await downloadUrl(`${srv.url}/v.txt`, { fetch, dir: await dir() });
    expect(first.kind).toBe('downloaded');
    if (first.kind !== 'downloaded') return;
    expect(first.digest).toBe(digestOf('version one\n'));
    expect(await readFile(first.path, 'utf8')).toBe('version one\n');
    const again = await downloadUrl(`${srv.url}/v.txt`, { fetch, dir: await dir(), validators: { etag: first.etag, lastModified: first.lastModified } });
    expect(again.kind).toBe('not-modified');
    const last = srv.requests.at(-1)!;
    expect(last.headers['if-none-match']).toBe('"v1"');
    expect(last.headers['if-modified-since']).toBe(LAST_MODIFIED);
    expect(last.status).toBe(304);
  });

  it('follows redirects to another host without the Authorization the URL gave its own host', async () => {
    other.routes.set('/target.bin', { body: 'moved here' });
    srv.routes.set('/hop2', { redirect: `${other.url}/target.bin`, redirectStatus: 307 });
    srv.routes.set('/hop1', { redirect: '/hop2', redirectStatus: 301 });
    const base = new URL(srv.url);
    const res = await downloadUrl(`http://user:pa55word@${base.host}/hop1`, { fetch, dir: await dir() });
    expect(res.kind === 'downloaded' && res.digest).toBe(digestOf('moved here'));
    const hop1 = srv.requests.filter((r) => r.path === '/hop1').at(-1)!;
    expect(hop1.headers.authorization).toBe(`Basic ${Buffer.from('user:pa55word').toString('base64')}`);
    const target = other.requests.filter((r) => r.path === '/target.bin').at(-1)!;
    expect(target.headers.authorization).toBeUndefined();
  });

  it('stops after 10 redirects, naming the URL', async () => {
    for (let i = 0; i < 12; i++) srv.routes.set(`/loop${i}`, { redirect: `/loop${i + 1}` });
    const err = await downloadUrl(`${srv.url}/loop0`, { fetch, dir: await dir() }).catch((e: unknown) => e);
    expect(isStrataError(err) && err.message).toBe(`download of ${srv.url}/loop0 failed: more than 10 redirects`);
    expect(srv.requests.filter((r) => r.path.startsWith('/loop')).length).toBe(11);
  });

  it('names the URL and the status of a 4xx, without the password', async () => {
    const base = new URL(srv.url);
    const err = await downloadUrl(`http://me:topsecret@${base.host}/missing`, { fetch, dir: await dir(), retry: fast }).catch((e: unknown) => e);
    expect(isStrataError(err, 'E_NOT_FOUND')).toBe(true);
    expect((err as Error).message).toBe(`download of http://***@${base.host}/missing failed: HTTP 404 Not Found`);
  });

  it('retries 5xx and gives up naming the last status', async () => {
    srv.routes.set('/flaky', { body: 'finally', failStatus: 503, failTimes: 2 });
    const res = await downloadUrl(`${srv.url}/flaky`, { fetch, dir: await dir(), retry: fast });
    expect(res.kind === 'downloaded' && res.digest).toBe(digestOf('finally'));
    srv.routes.set('/broken', { failStatus: 500 });
    const err = await downloadUrl(`${srv.url}/broken`, { fetch, dir: await dir(), retry: fast }).catch((e: unknown) => e);
    expect((err as Error).message).toBe(`download of ${srv.url}/broken failed: HTTP 500 Internal Server Error`);
    expect(srv.requests.filter((r) => r.path === '/broken').length).toBe(4);
  });

  it('starts again after a body dropped part way, and takes a slow body whole', async () => {
    const big = Buffer.alloc(300_000, 7);
    srv.routes.set('/drop', { body: big, dropAfter: 100_000, dropTimes: 2 });
    const d = await dir();
    const res = await downloadUrl(`${srv.url}/drop`, { fetch, dir: d, retry: fast });
    expect(res.kind === 'downloaded' && res.digest).toBe(digestOf(big));
    expect((await readdir(d)).length).toBe(1);
    srv.routes.set('/slow', { body: big, slowMs: 30 });
    const slow = await downloadUrl(`${srv.url}/slow`, { fetch, dir: await dir() });
    expect(slow.kind === 'downloaded' && slow.size).toBe(big.length);
  });

  it('retries a body that stalls, and names the stall when it never flows again', async () => {
    const body = Buffer.alloc(200_000, 3);
    srv.routes.set('/stall', { body, dropAfter: 70_000, dropTimes: 1, stallMs: 2_000 });
    const res = await downloadUrl(`${srv.url}/stall`, { fetch, dir: await dir(), retry: fast, timeoutMs: 200 });
    expect(res.kind === 'downloaded' && res.digest).toBe(digestOf(body));
    srv.routes.set('/stall-always', { body, dropAfter: 70_000, dropTimes: 99, stallMs: 2_000 });
    const err = await downloadUrl(`${srv.url}/stall-always`, { fetch, dir: await dir(), retry: { ...fast, retries: 1 }, timeoutMs: 200 }).catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).toBe(`download of ${srv.url}/stall-always failed: timed out`);
  });

  it('says an unreachable host refused the connection', async () => {
    const closed = await startFileServer();
    const url = closed.url;
    await closed.stop();
    const err = await downloadUrl(`${url}/x`, { fetch, dir: await dir(), retry: { ...fast, retries: 1 } }).catch((e: unknown) => e);
    expect((err as Error).message).toBe(`download of ${url}/x failed: connection refused`);
  });

  it('keeps nothing when --checksum does not match, naming both digests', async () => {
    srv.routes.set('/sum', { body: 'the real bytes' });
    const d = await dir();
    const wrong = digestOf('other bytes');
    const err = await downloadUrl(`${srv.url}/sum`, { fetch, dir: d, checksum: wrong }).catch((e: unknown) => e);
    expect(isStrataError(err, 'E_DIGEST_MISMATCH')).toBe(true);
    expect((err as Error).message).toBe(`${srv.url}/sum has digest ${digestOf('the real bytes')}, but --checksum expects ${wrong}`);
    expect(await readdir(d)).toEqual([]);
  });
});

describeWithTools(['openssl'], 'strata build with ADD <url>', () => {
  let n = 0;
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json && node scripts/bundle-cli.mjs\``);
  });

  async function project(dockerfile: string): Promise<string> {
    const dir = join(tmp, `ctx-${++n}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'Dockerfile'), dockerfile);
    return dir;
  }
  const build = (store: string, dir: string, args: string[] = []): Promise<CliResult> =>
    strata(['build', '--progress', 'plain', '-t', 'remote-http:1', ...args, dir], { STRATA_ROOT: store, HOME: join(tmp, 'home') });
  const states = (stderr: string): string[] => stderr.split('\n').flatMap((l) => /^#\d+\/\d+ \[[^\]]*\] .* {2}(CACHED|DONE) /.exec(l)?.slice(1) ?? []);

  it('lands the file as docker does: URL name under a directory, 0600, Last-Modified mtime, --chown/--chmod, archives not unpacked', async () => {
    srv.routes.set('/files/tool.sh', { body: '#!/bin/sh\necho hi\n', lastModified: LAST_MODIFIED });
    const tgz = gzipSync(Buffer.from('not really a tar, but gzip'));
    srv.routes.set('/files/bundle.tar.gz', { body: tgz, lastModified: LAST_MODIFIED });
    srv.routes.set('/', { body: 'index' });
    const ctx = await project(
      [
        'FROM scratch',
        `ADD ${srv.url}/files/tool.sh /opt/`,
        `ADD --chown=1000:2000 --chmod=755 ${srv.url}/files/tool.sh /usr/bin/tool`,
        `ADD ${srv.url}/files/bundle.tar.gz /b/`,
        `ADD ${srv.url}/ /idx/`,
        `ADD ${srv.url}/files/tool.sh?x=1 /q/`,
        '',
      ].join('\n'),
    );
    const out = join(tmp, `rootfs-${n}.tar`);
    ok(await build(join(tmp, `store-${n}`), ctx, ['-o', `type=tar,dest=${out}`]));
    const entries = await tarEntries(out);
    const tool = entries.get('opt/tool.sh')!;
    expect([tool.mode, tool.uid, tool.gid, tool.mtime, tool.content.toString()]).toEqual([0o600, 0, 0, LAST_MODIFIED_S, '#!/bin/sh\necho hi\n']);
    const chowned = entries.get('usr/bin/tool')!;
    expect([chowned.mode, chowned.uid, chowned.gid]).toEqual([0o755, 1000, 2000]);
    expect(entries.get('b/bundle.tar.gz')!.content.equals(tgz)).toBe(true);
    expect(entries.get('idx/__unnamed__')!.content.toString()).toBe('index');
    expect(entries.has('q/tool.sh')).toBe(true);
  });

  it('ADD --unpack=true unpacks a tarball URL (told by content, not name); without it the file is kept', async () => {
    const src = join(tmp, `tarsrc-${++n}`);
    await mkdir(join(src, 'pkg'), { recursive: true });
    await writeFile(join(src, 'pkg', 'a.txt'), 'member');
    const archive = join(tmp, `pkg-${n}.bin`);
    ok(await tool('tar', ['-C', src, '-czf', archive, 'pkg']));
    srv.routes.set('/dl/pkg.bin', { body: await readFile(archive) });
    const ctx = await project(['FROM scratch', `ADD --unpack=true ${srv.url}/dl/pkg.bin /u/`, `ADD ${srv.url}/dl/pkg.bin /k/`, ''].join('\n'));
    const out = join(tmp, `rootfs-${n}.tar`);
    ok(await build(join(tmp, `store-${n}`), ctx, ['-o', `type=tar,dest=${out}`]));
    const entries = await tarEntries(out);
    expect(entries.get('u/pkg/a.txt')?.content.toString()).toBe('member');
    expect(entries.has('k/pkg.bin')).toBe(true);
    expect(entries.has('k/pkg')).toBe(false);
  });

  it('replays every step for an unchanged URL (revalidated with its ETag) and rebuilds from a changed one', async () => {
    srv.routes.set('/cache/data.txt', { body: 'one', etag: '"one"' });
    const ctx = await project(['FROM scratch', `ADD ${srv.url}/cache/data.txt /data.txt`, 'ADD <<EOF /after.txt', 'after', 'EOF', ''].join('\n'));
    const store = join(tmp, `store-${n}`);
    expect(states(ok(await build(store, ctx)) && (await build(store, ctx)).stderr)).toEqual(['CACHED', 'CACHED']);
    const last = srv.requests.filter((r) => r.path === '/cache/data.txt').at(-1)!;
    expect([last.headers['if-none-match'], last.status]).toEqual(['"one"', 304]);
    srv.routes.set('/cache/data.txt', { body: 'two', etag: '"two"' });
    expect(states((await build(store, ctx)).stderr)).toEqual(['DONE', 'DONE']);
    expect(states((await build(store, ctx)).stderr)).toEqual(['CACHED', 'CACHED']);
    // The cache keeps the URL's latest bytes only.
    expect(await readdir(join(store, 'cache', 'remote-http', 'blobs'))).toEqual([digestOf('two').slice('sha256:'.length)]);
  });

  it('--checksum: verified before anything is kept, part of the key, and a hit asks the server nothing', async () => {
    srv.routes.set('/sum/app.bin', { body: 'app bytes' });
    const good = digestOf('app bytes');
    const ctx = await project(['FROM scratch', `ADD --checksum=${good} ${srv.url}/sum/app.bin /app.bin`, ''].join('\n'));
    const store = join(tmp, `store-${n}`);
    ok(await build(store, ctx));
    const before = srv.requests.length;
    expect(states((await build(store, ctx)).stderr)).toEqual(['CACHED']);
    expect(srv.requests.length).toBe(before);

    const wrong = digestOf('something else');
    const bad = await project(['FROM scratch', `ADD --checksum=${wrong} ${srv.url}/sum/app.bin /app.bin`, ''].join('\n'));
    const badStore = join(tmp, `store-bad-${n}`);
    const res = await build(badStore, bad);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(`Dockerfile:2: ADD failed: ${srv.url}/sum/app.bin has digest ${good}, but --checksum expects ${wrong}`);
    // Nothing of the download is left: no blob, no temp file.
    expect(await readdir(join(badStore, 'cache', 'remote-http', 'blobs'))).toEqual([]);
    expect(storeLeftovers(badStore)).toEqual([]);
  });

  it('fails in one line naming the URL for a 404 and an unreachable host', async () => {
    const ctx = await project(['FROM scratch', `ADD ${srv.url}/nope.txt /x`, ''].join('\n'));
    const res = await build(join(tmp, `store-${n}`), ctx);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(`Dockerfile:2: ADD failed: download of ${srv.url}/nope.txt failed: HTTP 404 Not Found`);
    const unreachable = await project(['FROM scratch', 'ADD http://127.0.0.1:9/x.txt /x', ''].join('\n'));
    const res2 = await build(join(tmp, `store-${n}`), unreachable);
    expect(res2.code).not.toBe(0);
    expect(res2.stderr).toContain('download of http://127.0.0.1:9/x.txt failed: connection refused');
  }, 30_000);

  it('a password in the URL reaches no output, history, config or error', async () => {
    srv.routes.set('/private/file.txt', { body: 'private' });
    const base = new URL(srv.url);
    const ctx = await project(
      [
        'FROM scratch',
        `ADD http://deploy:S3cretPassw0rd@${base.host}/private/file.txt /f`,
        `ADD http://deploy:S3cretPassw0rd@${base.host}/private/absent /g`,
        '',
      ].join('\n'),
    );
    const layout = join(tmp, `layout-${n}`);
    const okCtx = await project(['FROM scratch', `ADD http://deploy:S3cretPassw0rd@${base.host}/private/file.txt /f`, ''].join('\n'));
    const good = await build(join(tmp, `store-${n}`), okCtx, ['-o', `type=oci,dest=${layout},tar=false`]);
    ok(good);
    const bad = await build(join(tmp, `store-${n}`), ctx);
    const config = await layoutConfig(layout);
    for (const text of [good.stdout, good.stderr, bad.stdout, bad.stderr, config.text]) expect(text).not.toContain('S3cretPassw0rd');
    expect(config.history.at(-1)!.created_by).toContain(`http://***@${base.host}/private/file.txt`);
    expect(bad.stderr).toContain('HTTP 404');
  });

  it('https through --ca-cert', async () => {
    const certs = await makeCertificates(await mkdtemp(join(tmp, 'certs-')));
    const tls = await startFileServer({ tls: { cert: await readFile(certs.certPath), key: await readFile(certs.keyPath) } });
    try {
      tls.routes.set('/s.txt', { body: 'over tls' });
      const ctx = await project(['FROM scratch', `ADD ${tls.url}/s.txt /s.txt`, ''].join('\n'));
      const refused = await build(join(tmp, `store-${n}`), ctx);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain(`download of ${tls.url}/s.txt failed`);
      ok(await build(join(tmp, `store-${n}`), ctx, ['--ca-cert', certs.caPath]));
    } finally {
      await tls.stop();
    }
  });
});

describeAsRoot('ADD <url> onto a full disk', () => {
  it('a 2 GiB download into a 4 MiB store fails in one line naming the URL, leaving no partial file', async () => {
    const store = await mkdtemp(join(tmp, 'full-'));
    ok(await tool('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', store]));
    try {
      const size = 2 * 1024 ** 3;
      srv.routes.set('/huge.bin', {
        size,
        body: () =>
          Readable.from(
            (function* () {
              const chunk = Buffer.alloc(1 << 20);
              for (let sent = 0; sent < size; sent += chunk.length) yield chunk;
            })(),
          ),
      });
      const ctx = join(tmp, 'ctx-full');
      await mkdir(ctx, { recursive: true });
      await writeFile(join(ctx, 'Dockerfile'), `FROM scratch\nADD ${srv.url}/huge.bin /huge.bin\n`);
      const res = await strata(['build', '--progress', 'quiet', '-t', 'full:1', ctx], { STRATA_ROOT: store, HOME: join(tmp, 'home') });
      expect(res.code).not.toBe(0);
      expect(res.stderr.split('\n')[0]).toMatch(
        new RegExp(`^strata: .*Dockerfile:2: ADD failed: cannot download ${srv.url}/huge.bin to .*: no space left on device$`),
      );
      expect(await readdir(join(store, 'cache', 'remote-http', 'blobs'))).toEqual([]);
    } finally {
      await tool('umount', [store]);
    }
  }, 60_000);
});
