/**
 * `HTTPS_PROXY=https://user:pass@proxy:port`: TLS to the proxy itself (trusted like a registry, through
 * --ca-cert), then CONNECT, then TLS to the origin inside the tunnel, as Go's http.ProxyFromEnvironment
 * and curl do. Against a real CONNECT proxy behind TLS on loopback (test/helpers/connect-proxy.ts) and a
 * TLS registry and file server named `*.strata.test` (the proxy resolves them to 127.0.0.1; strata never
 * proxies loopback addresses): a registry pull, ADD of an https and an http URL, a proxy that refuses the
 * credentials and one whose certificate is not trusted. The proxy's password is in no output.
 */
import { readFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type CliResult, ok, strata, tool } from '../helpers/cli.js';
import { startConnectProxy, type ConnectProxy } from '../helpers/connect-proxy.js';
import { startFileServer, type FileServer } from '../helpers/file-server.js';
import { tarEntries } from '../helpers/image-read.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeCertificates, type TestCertificates } from '../helpers/tls-certs.js';
import { describeWithTools } from '../helpers/tools.js';

const PASSWORD = 'proxy-secret-7331';
const basic = (credentials: string): string => `Basic ${Buffer.from(credentials).toString('base64')}`;

describeWithTools(['docker-registry', 'openssl'], 'HTTPS_PROXY=https://… (TLS to the proxy)', () => {
  let tmp: string;
  let certs: TestCertificates;
  let registry: TestRegistry;
  let proxy: ConnectProxy;
  let files: FileServer;
  let plainFiles: FileServer;
  let proxyUrl: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'strata-https-proxy-'));
    await mkdir(join(tmp, 'certs'));
    certs = await makeCertificates(join(tmp, 'certs'), 'strata proxy test CA', ['registry.strata.test', 'files.strata.test']);
    const tls = { cert: await readFile(certs.certPath), key: await readFile(certs.keyPath) };
    registry = await startRegistry({ tls: certs });
    proxy = await startConnectProxy({ tls, auth: `pu:${PASSWORD}` });
    files = await startFileServer({ tls });
    plainFiles = await startFileServer();
    proxyUrl = proxy.url.replace('https://', `https://pu:${PASSWORD}@`);
    env = { STRATA_ROOT: join(tmp, 'store'), HOME: join(tmp, 'home'), SOURCE_DATE_EPOCH: '1700000000' };
    // The image goes in directly (loopback is never proxied).
    await mkdir(join(tmp, 'layer'));
    await writeFile(join(tmp, 'layer', 'hello.txt'), 'through the proxy\n');
    ok(await tool('tar', ['-cf', join(tmp, 'layer.tar'), '-C', join(tmp, 'layer'), '.']));
    ok(
      await strata(
        ['append', '--layer', join(tmp, 'layer.tar'), '--ca-cert', certs.caPath, '-o', `docker://${registry.host}/px/base:1`, '--progress', 'quiet'],
        env,
      ),
    );
  }, 60_000);
  afterAll(async () => {
    await proxy?.stop();
    await files?.stop();
    await plainFiles?.stop();
    await registry?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const viaProxy = (url = proxyUrl): Record<string, string> => ({ ...env, HTTPS_PROXY: url, HTTP_PROXY: url, NO_PROXY: '' });
  const noSecret = (result: CliResult): void => expect(`${result.stdout}\n${result.stderr}`).not.toContain(PASSWORD);
  const registryName = (): string => `registry.strata.test:${new URL(registry.url).port}`;

  it('pulls from a registry through the proxy: TLS to the proxy, CONNECT with its credentials, TLS to the registry inside', async () => {
    proxy.tunnels.length = 0;
    const result = await strata(['pull', '--ca-cert', certs.caPath, `${registryName()}/px/base:1`, '--progress', 'plain'], viaProxy());
    noSecret(result);
    ok(result);
    expect(proxy.tunnels.length).toBeGreaterThan(0);
    expect(new Set(proxy.tunnels)).toEqual(new Set([`${registryName()} ${basic(`pu:${PASSWORD}`)}`]));
  }, 60_000);

  it('ADD of an https and an http URL goes through the same proxy', async () => {
    files.routes.set('/tls.txt', { body: 'over https\n' });
    plainFiles.routes.set('/plain.txt', { body: 'over http\n' });
    const ctx = join(tmp, 'add-ctx');
    await mkdir(ctx, { recursive: true });
    const tlsUrl = `https://files.strata.test:${new URL(files.url).port}/tls.txt`;
    const plainUrl = `http://files.strata.test:${new URL(plainFiles.url).port}/plain.txt`;
    await writeFile(join(ctx, 'Dockerfile'), `FROM scratch\nADD ${tlsUrl} /d/\nADD ${plainUrl} /d/\n`);
    proxy.tunnels.length = 0;
    const out = join(tmp, 'add.tar');
    const result = await strata(['build', '--ca-cert', certs.caPath, '--progress', 'plain', '-o', `type=tar,dest=${out}`, ctx], viaProxy());
    noSecret(result);
    ok(result);
    const entries = await tarEntries(out);
    expect(entries.get('d/tls.txt')?.content.toString()).toBe('over https\n');
    expect(entries.get('d/plain.txt')?.content.toString()).toBe('over http\n');
    expect(proxy.tunnels.map((t) => t.split(' ')[0]).sort()).toEqual([new URL(tlsUrl).host, new URL(plainUrl).host].sort());
  }, 60_000);

  it('a refused password and an untrusted proxy certificate each fail in one line naming the proxy, not its password', async () => {
    const wrong = proxy.url.replace('https://', `https://pu:wrong-${PASSWORD}@`);
    const refused = await strata(['pull', '--ca-cert', certs.caPath, `${registryName()}/px/base:1`, '--progress', 'quiet'], viaProxy(wrong));
    noSecret(refused);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`the proxy ${new URL(proxy.url).host} refused CONNECT ${registryName()}: HTTP 407`);

    const untrusted = await strata(['pull', `${registryName()}/px/base:1`, '--progress', 'quiet'], viaProxy());
    noSecret(untrusted);
    expect(untrusted.code).not.toBe(0);
    expect(untrusted.stderr).toContain(`the proxy ${new URL(proxy.url).host} over TLS failed`);
    expect(untrusted.stderr).toContain("pass the proxy's CA with --ca-cert");
  }, 60_000);

  it('refuses a proxy scheme it does not speak, naming it without its credentials', async () => {
    const result = await strata(['pull', `${registryName()}/px/base:1`, '--progress', 'quiet'], viaProxy(`socks5://pu:${PASSWORD}@127.0.0.1:1`));
    noSecret(result);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('HTTPS_PROXY names a socks5://127.0.0.1:1 proxy');
  });
});
