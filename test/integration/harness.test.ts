/**
 * Proves the registry test harness itself: each auth variant starts, refuses anonymous access where
 * it should, accepts the credentials it was given, and an independent client (skopeo) can push to it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyOciLayout, type TinyImage } from '../helpers/oci-layout.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { credsArgs, skopeo } from '../helpers/skopeo.js';
import { describeWithTools } from '../helpers/tools.js';

function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

/** Minimal challenge parsing, enough for the harness: `Bearer realm="..",service="..",scope=".."`. */
function parseBearer(header: string | null): Record<string, string> {
  expect(header).toMatch(/^Bearer /);
  const params: Record<string, string> = {};
  for (const m of (header ?? '').slice('Bearer '.length).matchAll(/(\w+)="([^"]*)"/g)) {
    if (m[1] !== undefined && m[2] !== undefined) params[m[1]] = m[2];
  }
  return params;
}

async function getToken(reg: TestRegistry, scopes: string[], creds?: { user: string; pass: string }): Promise<string> {
  const ping = await fetch(`${reg.url}/v2/`);
  await ping.arrayBuffer();
  const challenge = parseBearer(ping.headers.get('www-authenticate'));
  const url = new URL(challenge['realm'] ?? '');
  url.searchParams.set('service', challenge['service'] ?? '');
  for (const s of scopes) url.searchParams.append('scope', s);
  const res = await fetch(url, creds ? { headers: { authorization: basic(creds.user, creds.pass) } } : {});
  expect(res.status).toBe(200);
  const body = (await res.json()) as { token: string };
  return body.token;
}

let workDir: string;
let image: TinyImage;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'strata-harness-'));
  image = await writeTinyOciLayout(join(workDir, 'layout'), { tag: 'v1' });
});
afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

describeWithTools(['docker-registry', 'skopeo'], 'harness: anonymous registry', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'none' });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('answers GET /v2/ with 200 on 127.0.0.1', async () => {
    expect(reg.host).toMatch(/^127\.0\.0\.1:\d+$/);
    const res = await fetch(`${reg.url}/v2/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
  });

  it('takes a skopeo push and serves the same manifest and blob back', async () => {
    await skopeo(['copy', '--dest-tls-verify=false', `oci:${image.dir}:v1`, `docker://${reg.host}/harness/anon:v1`]);
    const manifest = await fetch(`${reg.url}/v2/harness/anon/manifests/v1`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(manifest.status).toBe(200);
    expect(manifest.headers.get('docker-content-digest')).toBe(image.manifestDigest);
    const blob = await fetch(`${reg.url}/v2/harness/anon/blobs/${image.layerDigest}`, { method: 'HEAD' });
    expect(blob.status).toBe(200);
    expect(Number(blob.headers.get('content-length'))).toBe(image.layerSize);
    const inspect = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/harness/anon:v1`]);
    expect(Buffer.from(inspect.stdout).equals(image.manifest)).toBe(true);
  });

  it('logs requests to its log file and removes its data dir on stop', async () => {
    const other = await startRegistry();
    const dir = other.dataDir;
    await (await fetch(`${other.url}/v2/`)).arrayBuffer();
    expect(other.logs()).toMatch(/listening on 127\.0\.0\.1/);
    await other.stop();
    await expect(import('node:fs/promises').then((fs) => fs.stat(dir))).rejects.toThrow();
    await expect(fetch(`${other.url}/v2/`)).rejects.toThrow();
  });
});

describeWithTools(['docker-registry', 'skopeo', 'htpasswd'], 'harness: htpasswd registry', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'htpasswd' });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('refuses anonymous GET /v2/ with a Basic challenge', async () => {
    const res = await fetch(`${reg.url}/v2/`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
  });

  it('accepts the default user and refuses a wrong password', async () => {
    expect(reg.username).toBe('tester');
    const ok = await fetch(`${reg.url}/v2/`, { headers: { authorization: basic(reg.username ?? '', reg.password ?? '') } });
    expect(ok.status).toBe(200);
    const bad = await fetch(`${reg.url}/v2/`, { headers: { authorization: basic(reg.username ?? '', 'wrong') } });
    expect(bad.status).toBe(401);
  });

  it('takes a skopeo push with credentials and refuses one without', async () => {
    await skopeo(['copy', '--dest-tls-verify=false', ...credsArgs('--dest-creds', reg), `oci:${image.dir}:v1`, `docker://${reg.host}/harness/basic:v1`]);
    const head = await fetch(`${reg.url}/v2/harness/basic/blobs/${image.layerDigest}`, {
      method: 'HEAD',
      headers: { authorization: basic(reg.username ?? '', reg.password ?? '') },
    });
    expect(head.status).toBe(200);
    await expect(skopeo(['copy', '--dest-tls-verify=false', `oci:${image.dir}:v1`, `docker://${reg.host}/harness/basic:v2`])).rejects.toThrow(
      /unauthorized|authentication required/i,
    );
  });

  it('supports several users', async () => {
    const multi = await startRegistry({ auth: 'htpasswd', users: { alice: 'a-pass', bob: 'b-pass' } });
    try {
      for (const [u, p] of [
        ['alice', 'a-pass'],
        ['bob', 'b-pass'],
      ] as const) {
        const res = await fetch(`${multi.url}/v2/`, { headers: { authorization: basic(u, p) } });
        expect(res.status).toBe(200);
      }
    } finally {
      await multi.stop();
    }
  });
});

describeWithTools(['docker-registry', 'skopeo', 'openssl'], 'harness: token registry', () => {
  let reg: TestRegistry;
  const repo = 'harness/token';
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'token' });
    await skopeo(['copy', '--dest-tls-verify=false', ...credsArgs('--dest-creds', reg), `oci:${image.dir}:v1`, `docker://${reg.host}/${repo}:v1`]);
  });
  afterAll(async () => {
    await reg?.stop();
  });
  const creds = (): { user: string; pass: string } => ({ user: reg.username ?? '', pass: reg.password ?? '' });

  it('refuses anonymous GET /v2/ with a Bearer challenge naming the token server', async () => {
    const res = await fetch(`${reg.url}/v2/`);
    expect(res.status).toBe(401);
    const challenge = parseBearer(res.headers.get('www-authenticate'));
    expect(challenge['realm']).toBe(reg.tokenServer?.realm);
    expect(challenge['service']).toBe(reg.tokenServer?.service);
  });

  it('lets a token from the token server through GET /v2/ and a blob HEAD', async () => {
    const scope = `repository:${repo}:pull`;
    const head401 = await fetch(`${reg.url}/v2/${repo}/blobs/${image.layerDigest}`, { method: 'HEAD' });
    expect(head401.status).toBe(401);
    expect(parseBearer(head401.headers.get('www-authenticate'))['scope']).toBe(scope);
    const token = await getToken(reg, [scope], creds());
    const ping = await fetch(`${reg.url}/v2/`, { headers: { authorization: `Bearer ${token}` } });
    expect(ping.status).toBe(200);
    const head = await fetch(`${reg.url}/v2/${repo}/blobs/${image.layerDigest}`, {
      method: 'HEAD',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(head.status).toBe(200);
    const last = reg.tokenServer?.requests.at(-1);
    expect(last).toMatchObject({ method: 'GET', account: 'tester', scopes: [scope], status: 200 });
  });

  it('names the key by libtrust kid, jwk or x5c, all accepted by the registry', async () => {
    expect(reg.tokenServer?.keyId).toMatch(/^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
    for (const keyHeader of ['jwk', 'x5c'] as const) {
      const other = await startRegistry({ auth: 'token', tokenKeyHeader: keyHeader });
      try {
        const token = await getToken(other, [], creds());
        const ping = await fetch(`${other.url}/v2/`, { headers: { authorization: `Bearer ${token}` } });
        expect(ping.status, `${keyHeader}: ${other.logs().slice(-2000)}`).toBe(200);
      } finally {
        await other.stop();
      }
    }
  });

  it('gives anonymous callers a token with no access, and refuses a wrong password', async () => {
    const anon = await getToken(reg, [`repository:${repo}:pull`]);
    const head = await fetch(`${reg.url}/v2/${repo}/blobs/${image.layerDigest}`, {
      method: 'HEAD',
      headers: { authorization: `Bearer ${anon}` },
    });
    expect(head.status).toBe(401);
    const realm = reg.tokenServer?.realm ?? '';
    const bad = await fetch(`${realm}?service=x&scope=repository:${repo}:pull`, {
      headers: { authorization: basic('tester', 'nope') },
    });
    expect(bad.status).toBe(401);
  });

  it('hands out wrong-scope and expired tokens on request, which the registry refuses', async () => {
    const ts = reg.tokenServer;
    if (ts === undefined) throw new Error('no token server');
    const scope = `repository:${repo}:pull`;
    for (const kind of ['wrong-scope', 'expired'] as const) {
      ts.setFailure({ kind, times: 1 });
      const token = await getToken(reg, [scope], creds());
      const head = await fetch(`${reg.url}/v2/${repo}/blobs/${image.layerDigest}`, {
        method: 'HEAD',
        headers: { authorization: `Bearer ${token}` },
      });
      expect(head.status, kind).toBe(401);
    }
    // The failure was for one request only.
    const good = await getToken(reg, [scope], creds());
    const head = await fetch(`${reg.url}/v2/${repo}/blobs/${image.layerDigest}`, {
      method: 'HEAD',
      headers: { authorization: `Bearer ${good}` },
    });
    expect(head.status).toBe(200);
    ts.setFailure({ kind: 'status', status: 503, times: 1 });
    const res = await fetch(`${ts.realm}?service=${ts.service}`, { headers: { authorization: basic('tester', 'secret-pass-123') } });
    expect(res.status).toBe(503);
  });

  it('speaks the OAuth2 POST form with refresh tokens', async () => {
    const ts = reg.tokenServer;
    if (ts === undefined) throw new Error('no token server');
    const scope = `repository:${repo}:pull`;
    const first = await fetch(ts.realm, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'password',
        username: 'tester',
        password: 'secret-pass-123',
        service: ts.service,
        scope,
        client_id: 'strata-test',
        access_type: 'offline',
      }),
    });
    expect(first.status).toBe(200);
    const firstBody = (await first.json()) as { access_token: string; refresh_token: string; expires_in: number };
    expect(firstBody.refresh_token).toMatch(/^rt-/);
    expect(firstBody.expires_in).toBe(300);
    const second = await fetch(ts.realm, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: firstBody.refresh_token,
        service: ts.service,
        scope,
        client_id: 'strata-test',
      }),
    });
    expect(second.status).toBe(200);
    const secondBody = (await second.json()) as { access_token: string };
    const head = await fetch(`${reg.url}/v2/${repo}/blobs/${image.layerDigest}`, {
      method: 'HEAD',
      headers: { authorization: `Bearer ${secondBody.access_token}` },
    });
    expect(head.status).toBe(200);
    const bad = await fetch(ts.realm, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'rt-unknown', service: ts.service }),
    });
    expect(bad.status).toBe(401);
    ts.setFailure({ kind: 'no-post', times: 1 });
    const notFound = await fetch(ts.realm, { method: 'POST', body: new URLSearchParams({ grant_type: 'password' }) });
    expect(notFound.status).toBe(404);
  });

  it('grants per-account permissions: anonymous pull, a read-only user cannot push', async () => {
    const other = await startRegistry({
      auth: 'token',
      users: { tester: 'secret-pass-123', reader: 'reader-pass' },
      tokenPermissions: (who, requested) => (who === 'tester' ? requested.actions : requested.actions.filter((a) => a === 'pull')),
    });
    try {
      await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', 'tester:secret-pass-123', `oci:${image.dir}:v1`, `docker://${other.host}/perm/img:v1`]);
      const anon = await getToken(other, ['repository:perm/img:pull,push']);
      const head = await fetch(`${other.url}/v2/perm/img/blobs/${image.layerDigest}`, {
        method: 'HEAD',
        headers: { authorization: `Bearer ${anon}` },
      });
      expect(head.status).toBe(200);
      await expect(
        skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', 'reader:reader-pass', `oci:${image.dir}:v1`, `docker://${other.host}/perm/img:v2`]),
      ).rejects.toThrow(/denied|unauthorized|authentication required/i);
    } finally {
      await other.stop();
    }
  });

  it('takes skopeo reads and writes with credentials', async () => {
    await skopeo([
      'copy',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      ...credsArgs('--src-creds', reg),
      ...credsArgs('--dest-creds', reg),
      `docker://${reg.host}/${repo}:v1`,
      `docker://${reg.host}/harness/token-copy:v1`,
    ]);
    const inspect = await skopeo(['inspect', '--raw', '--tls-verify=false', ...credsArgs('--creds', reg), `docker://${reg.host}/harness/token-copy:v1`]);
    expect(Buffer.from(inspect.stdout).equals(image.manifest)).toBe(true);
    expect(reg.tokenServer?.issuedTokens).toBeGreaterThan(0);
  });
});

describe('harness: helpers without external tools', () => {
  it('skips a test whose tool is missing, and fails it under CI=true, naming the apt package', async () => {
    const { toolGate, requireTool } = await import('../helpers/tools.js');
    const none = (): boolean => false;
    const local = toolGate(['htpasswd'], { PATH: '/nowhere' }, none);
    expect(local).toEqual({ run: false, fail: false, reason: expect.stringContaining("'apache2-utils'") as unknown });
    const ci = toolGate(['skopeo', 'htpasswd'], { PATH: '/nowhere', CI: 'true' }, none);
    expect(ci.run).toBe(false);
    if (!ci.run) {
      expect(ci.fail).toBe(true);
      expect(ci.reason).toMatch(/'skopeo'.*'htpasswd'/);
    }
    expect(toolGate(['sh'], { PATH: '/bin:/usr/bin' })).toEqual({ run: true });
    expect(requireTool('no-such-tool-strata-xyz')).toMatchObject({ ok: false, reason: expect.stringContaining('no-such-tool-strata-xyz') as unknown });
  });

  it('computes libtrust key IDs in 12 groups of 4 base32 characters', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { libtrustKeyId } = await import('../helpers/token-server.js');
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(libtrustKeyId(publicKey)).toMatch(/^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
  });

  it('parses scopes, names with colons included', async () => {
    const { parseScope } = await import('../helpers/token-server.js');
    expect(parseScope('repository:a/b:pull,push')).toEqual({ type: 'repository', name: 'a/b', actions: ['pull', 'push'] });
    expect(parseScope('registry:catalog:*')).toEqual({ type: 'registry', name: 'catalog', actions: ['*'] });
    expect(parseScope('repository(plugin):x:y:pull')).toEqual({ type: 'repository(plugin)', name: 'x:y', actions: ['pull'] });
    expect(parseScope('bogus')).toBeUndefined();
  });
});
