/**
 * Authentication against real registries: htpasswd Basic auth and the token flow (with the test
 * token server), wrong and missing credentials, tokens for the wrong scope, expired tokens,
 * identity tokens, and Authorization never following a redirect to another host.
 */
import { afterAll, beforeAll, beforeEach, expect, it, describe } from 'vitest';
import { RegistryClient, pullImage, pushImage, type RegistryClientOptions, type RegistryCredential } from '../../src/registry/index.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { addTestImage, MemoryBlobStore } from '../helpers/memory-blobs.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWithTools } from '../helpers/tools.js';

function creds(reg: TestRegistry, password = reg.password ?? ''): (host: string) => Promise<RegistryCredential | undefined> {
  return async () => ({ username: reg.username ?? '', password });
}

async function failure(p: Promise<unknown>): Promise<Error & { code?: string; hint?: string }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string; hint?: string };
  }
  throw new Error('expected a failure');
}

describeWithTools(['docker-registry', 'htpasswd'], 'registry auth', () => {
  describe('htpasswd (Basic)', () => {
    let reg: TestRegistry;
    let proxy: FaultProxy;
    const client = (extra: Partial<RegistryClientOptions> = {}): RegistryClient =>
      new RegistryClient({ registry: proxy.host, credentials: creds(reg), retry: { baseDelayMs: 5 }, ...extra });

    beforeAll(async () => {
      reg = await startRegistry({ auth: 'htpasswd' });
      proxy = await startFaultProxy(reg.url);
    });
    afterAll(async () => {
      await proxy?.stop();
      await reg?.stop();
    });
    beforeEach(() => {
      proxy.setRules([]);
      proxy.requests.length = 0;
    });

    it('pushes and pulls with the right password', async () => {
      const store = new MemoryBlobStore();
      const img = await addTestImage(store, { label: 'basic-ok' });
      await pushImage({ client: client(), repository: 'auth/basic', source: store, root: img.manifest, tags: ['v1'] });
      const pulled = await pullImage({ client: client(), repository: 'auth/basic', reference: 'v1', sink: new MemoryBlobStore() });
      expect(pulled.image?.descriptor.digest).toBe(img.manifest.digest);
      expect(proxy.requests.filter((r) => r.path !== '/v2/').every((r) => String(r.headers.authorization).startsWith('Basic '))).toBe(true);
    });

    it('follows a blob redirect to another port without sending Authorization there', async () => {
      const store = new MemoryBlobStore();
      const img = await addTestImage(store, { label: 'redirect', randomLayers: [100_000] });
      await pushImage({ client: client(), repository: 'auth/redirect', source: store, root: img.manifest, tags: ['v1'] });
      proxy.setRules([{ method: 'GET', path: /\/blobs\/sha256:/, action: { kind: 'redirect' } }]);
      const sink = new MemoryBlobStore();
      await pullImage({ client: client(), repository: 'auth/redirect', reference: 'v1', sink });
      expect(sink.blobs.has(img.layers[1]!.digest)).toBe(true);
      const redirected = proxy.redirectServer.requests;
      expect(redirected.length).toBe(3);
      expect(redirected.every((r) => r.headers.authorization === undefined)).toBe(true);
      expect(proxy.requests.filter((r) => r.fault === 'redirect').every((r) => String(r.headers.authorization).startsWith('Basic '))).toBe(true);
    });

    it('fails with E_REGISTRY_UNAUTHORIZED on a wrong password, never showing it', async () => {
      const error = await failure(client({ credentials: creds(reg, 'not-the-password-42') }).getManifest('auth/basic', 'v1'));
      expect(error.code).toBe('E_REGISTRY_UNAUTHORIZED');
      expect(error.message).toContain(proxy.host);
      expect(`${error.message} ${error.hint}`).not.toContain('not-the-password-42');
      expect(`${error.message} ${error.hint}`).not.toContain(reg.password);
    });

    it('checks credentials for login', async () => {
      expect(await client().checkCredentials()).toEqual({});
      const error = await failure(client({ credentials: creds(reg, 'nope-nope-1') }).checkCredentials());
      expect(error.code).toBe('E_REGISTRY_UNAUTHORIZED');
      expect(`${error.message} ${error.hint}`).not.toContain('nope-nope-1');
    });

    it('fails with E_REGISTRY_UNAUTHORIZED and a login hint without credentials', async () => {
      const error = await failure(new RegistryClient({ registry: proxy.host }).getManifest('auth/basic', 'v1'));
      expect(error.code).toBe('E_REGISTRY_UNAUTHORIZED');
      expect(error.hint).toContain(`strata login ${proxy.host}`);
    });
  });

  describe('token auth', () => {
    let reg: TestRegistry;
    let now: number;
    const client = (extra: Partial<RegistryClientOptions> = {}): RegistryClient =>
      new RegistryClient({ registry: reg.host, credentials: creds(reg), retry: { baseDelayMs: 5 }, now: () => now, ...extra });
    const tokens = () => reg.tokenServer!.requests;

    beforeAll(async () => {
      reg = await startRegistry({ auth: 'token', tokenTtlSeconds: 300 });
    });
    afterAll(async () => {
      await reg?.stop();
    });
    beforeEach(() => {
      now = Date.now();
      reg.tokenServer!.setFailure(undefined);
      tokens().length = 0;
    });

    it('pushes with one token whose first scope is push, and reuses it', async () => {
      const store = new MemoryBlobStore();
      const img = await addTestImage(store, { label: 'token-push', randomLayers: [10_000, 20_000] });
      const c = client();
      await pushImage({ client: c, repository: 'auth/token', source: store, root: img.manifest, tags: ['v1'] });
      expect(tokens()).toHaveLength(1);
      expect(tokens()[0]?.scopes[0]).toBe('repository:auth/token:push,pull');
      expect(tokens()[0]?.auth).toBe('basic');
      await pullImage({ client: c, repository: 'auth/token', reference: 'v1', sink: new MemoryBlobStore() });
      expect(tokens()).toHaveLength(1);
    });

    it('asks for pull on the mount source after the push scope', async () => {
      const store = new MemoryBlobStore();
      const img = await addTestImage(store, { label: 'token-mount' });
      await pushImage({ client: client(), repository: 'auth/mount-src', source: store, root: img.manifest, tags: ['v1'] });
      tokens().length = 0;
      const events: string[] = [];
      await pushImage({
        client: client(),
        repository: 'auth/mount-dst',
        source: store,
        root: img.manifest,
        tags: ['v1'],
        mountFrom: ['auth/mount-src'],
        progress: (e) => events.push(e.type),
      });
      expect(tokens()[0]?.scopes).toEqual(['repository:auth/mount-dst:push,pull', 'repository:auth/mount-src:pull']);
      expect(events.filter((e) => e === 'blob-mounted')).toHaveLength(2);
    });

    it('refreshes a token once it expires', async () => {
      const store = new MemoryBlobStore();
      const img = await addTestImage(store, { label: 'token-ttl' });
      const c = client();
      await pushImage({ client: c, repository: 'auth/ttl', source: store, root: img.manifest, tags: ['v1'] });
      expect(tokens()).toHaveLength(1);
      await c.getManifest('auth/ttl', 'v1');
      expect(tokens()).toHaveLength(1);
      now += 301_000;
      await c.getManifest('auth/ttl', 'v1');
      expect(tokens()).toHaveLength(2);
    });

    it('gets a fresh token when the registry refuses it in the middle of an upload', async () => {
      const proxy = await startFaultProxy(reg.url);
      try {
        const ts = reg.tokenServer!;
        proxy.setRules([
          {
            method: 'PATCH',
            path: /\/blobs\/uploads\//,
            nth: 1,
            action: {
              kind: 'status',
              status: 401,
              headers: { 'www-authenticate': `Bearer realm="${ts.realm}",service="${ts.service}",error="invalid_token"` },
            },
          },
        ]);
        const store = new MemoryBlobStore();
        const img = await addTestImage(store, { label: 'token-mid-upload', randomLayers: [2_000_000] });
        await pushImage({ client: client({ registry: proxy.host }), repository: 'auth/mid-upload', source: store, root: img.manifest, tags: ['v1'] });
        expect(proxy.requests.filter((r) => r.method === 'PATCH').map((r) => r.status)).toEqual([401, 202]);
        expect(tokens().length).toBe(2);
        const pulled = await pullImage({ client: client(), repository: 'auth/mid-upload', reference: 'v1', sink: new MemoryBlobStore() });
        expect(pulled.image?.descriptor.digest).toBe(img.manifest.digest);
      } finally {
        await proxy.stop();
      }
    });

    it('recovers when the registry refuses an already-expired token', async () => {
      const store = new MemoryBlobStore();
      const img = await addTestImage(store, { label: 'token-expired' });
      await pushImage({ client: client(), repository: 'auth/expired', source: store, root: img.manifest, tags: ['v1'] });
      tokens().length = 0;
      reg.tokenServer!.setFailure({ kind: 'expired', times: 1 });
      const pulled = await pullImage({ client: client(), repository: 'auth/expired', reference: 'v1', sink: new MemoryBlobStore() });
      expect(pulled.image?.descriptor.digest).toBe(img.manifest.digest);
      expect(tokens().map((t) => t.failure ?? 'ok')).toEqual(['expired', 'ok']);
    });

    it('fails with E_REGISTRY_DENIED when the token lacks the push scope', async () => {
      const store = new MemoryBlobStore();
      const img = await addTestImage(store, { label: 'token-pull-only' });
      reg.tokenServer!.setFailure({ kind: 'pull-only' });
      const error = await failure(pushImage({ client: client(), repository: 'auth/pull-only', source: store, root: img.manifest, tags: ['v1'] }));
      expect(error.code).toBe('E_REGISTRY_DENIED');
      expect(error.message).toContain('auth/pull-only');
    });

    it('fails with E_REGISTRY_DENIED when the token is for another repository', async () => {
      const store = new MemoryBlobStore();
      const img = await addTestImage(store, { label: 'token-wrong-scope' });
      await pushImage({ client: client(), repository: 'auth/wrong-scope', source: store, root: img.manifest, tags: ['v1'] });
      reg.tokenServer!.setFailure({ kind: 'wrong-scope' });
      const error = await failure(client().getManifest('auth/wrong-scope', 'v1'));
      expect(error.code).toBe('E_REGISTRY_DENIED');
    });

    it('fails with E_REGISTRY_UNAUTHORIZED on a wrong password, never showing it', async () => {
      const error = await failure(client({ credentials: creds(reg, 'wrong-secret-99') }).getManifest('auth/token', 'v1'));
      expect(error.code).toBe('E_REGISTRY_UNAUTHORIZED');
      expect(`${error.message} ${error.hint}`).not.toContain('wrong-secret-99');
      expect(error.message).toContain(`user ${reg.username}`);
    });

    it('fails with E_REGISTRY_UNAUTHORIZED without credentials', async () => {
      const error = await failure(new RegistryClient({ registry: reg.host }).getManifest('auth/token', 'v1'));
      expect(error.code).toBe('E_REGISTRY_UNAUTHORIZED');
      expect(error.hint).toContain(`strata login ${reg.host}`);
    });

    it('checks credentials for login and gets an identity token that works', async () => {
      const store = new MemoryBlobStore();
      const img = await addTestImage(store, { label: 'login' });
      await pushImage({ client: client(), repository: 'auth/login', source: store, root: img.manifest, tags: ['v1'] });
      tokens().length = 0;
      const result = await client().checkCredentials();
      expect(result.identityToken).toMatch(/^rt-/);
      expect(tokens()[0]).toMatchObject({ method: 'GET', auth: 'basic', account: reg.username, scopes: [] });
      const c = client({ credentials: async () => ({ identityToken: result.identityToken ?? '' }) });
      expect((await c.getManifest('auth/login', 'v1')).digest).toBe(img.manifest.digest);
      const error = await failure(client({ credentials: creds(reg, 'bad-login-pass') }).checkCredentials());
      expect(error.code).toBe('E_REGISTRY_UNAUTHORIZED');
      expect(`${error.message} ${error.hint}`).not.toContain('bad-login-pass');
    });

    it('uses an identity token through the OAuth2 POST form', async () => {
      const store = new MemoryBlobStore();
      const img = await addTestImage(store, { label: 'identity' });
      await pushImage({ client: client(), repository: 'auth/identity', source: store, root: img.manifest, tags: ['v1'] });
      tokens().length = 0;
      const identityToken = reg.tokenServer!.issueRefreshToken(reg.username ?? '');
      const c = client({ credentials: async () => ({ identityToken }) });
      const pulled = await pullImage({ client: c, repository: 'auth/identity', reference: 'v1', sink: new MemoryBlobStore() });
      expect(pulled.image?.descriptor.digest).toBe(img.manifest.digest);
      expect(tokens()[0]).toMatchObject({ method: 'POST', grantType: 'refresh_token', account: reg.username, status: 200 });
    });

    it('falls back to GET when the token server has no POST form', async () => {
      const identityToken = reg.tokenServer!.issueRefreshToken(reg.username ?? '');
      reg.tokenServer!.setFailure({ kind: 'no-post', times: 1 });
      const c = client({ credentials: async () => ({ identityToken }) });
      // The GET is anonymous (an identity token is no password), so what follows depends on the
      // repository's anonymous rights; the order of the token requests is what matters here.
      await c.getManifest('auth/token', 'v1').catch(() => undefined);
      expect(
        tokens()
          .map((t) => `${t.method} ${t.status}`)
          .slice(0, 2),
      ).toEqual(['POST 404', 'GET 200']);
    });
  });
});
