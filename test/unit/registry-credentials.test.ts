import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isStrataError } from '../../src/errors/index.js';
import {
  configKeyFor,
  createCredentialStore,
  credentialLookup,
  registryHostOf,
  type CredentialStore,
  type HelperRunner,
} from '../../src/registry/credentials/index.js';

const HOST = '127.0.0.1:5000';

/** A real docker-credential-helpers program: keeps its store in $TESTHELPER_DB, logs verbs to $TESTHELPER_LOG. */
const HELPER_SOURCE = `#!${process.execPath}
const fs = require('node:fs');
const db = process.env.TESTHELPER_DB;
const verb = process.argv[2];
let input = '';
process.stdin.on('data', (c) => { input += c; });
process.stdin.on('end', () => {
  fs.appendFileSync(process.env.TESTHELPER_LOG, verb + ' ' + (verb === 'store' ? JSON.parse(input).ServerURL : input.trim()) + '\\n');
  if (process.env.TESTHELPER_FAIL) {
    process.stdout.write('{"Secret":"leaked-secret-from-helper"}');
    process.exit(3);
  }
  const store = fs.existsSync(db) ? JSON.parse(fs.readFileSync(db, 'utf8')) : {};
  if (verb === 'get') {
    const entry = store[input.trim()];
    if (!entry) { process.stdout.write('credentials not found in native keychain\\n'); process.exit(1); }
    process.stdout.write(JSON.stringify({ ServerURL: input.trim(), Username: entry.Username, Secret: entry.Secret }));
  } else if (verb === 'store') {
    const cred = JSON.parse(input);
    store[cred.ServerURL] = { Username: cred.Username, Secret: cred.Secret };
    fs.writeFileSync(db, JSON.stringify(store));
  } else if (verb === 'erase') {
    if (!store[input.trim()]) { process.stdout.write('credentials not found in native keychain\\n'); process.exit(1); }
    delete store[input.trim()];
    fs.writeFileSync(db, JSON.stringify(store));
  } else { process.exit(2); }
});
`;

function b64(text: string): string {
  return Buffer.from(text).toString('base64');
}

let root: string;
let home: string;
let binDir: string;
let helperDb: string;
let helperLog: string;
let env: Record<string, string | undefined>;

async function writeJson(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, JSON.stringify(value));
}

const dockerConfig = (): string => join(home, '.docker', 'config.json');
const store = (): CredentialStore => createCredentialStore({ env, homeDir: home });

async function helperDbContents(): Promise<Record<string, { Username: string; Secret: string }>> {
  try {
    return JSON.parse(await readFile(helperDb, 'utf8')) as Record<string, { Username: string; Secret: string }>;
  } catch {
    return {};
  }
}

async function helperVerbs(): Promise<string[]> {
  try {
    return (await readFile(helperLog, 'utf8'))
      .trim()
      .split('\n')
      .filter((l) => l !== '');
  } catch {
    return [];
  }
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'strata-creds-'));
  home = join(root, 'home');
  binDir = join(root, 'bin');
  helperDb = join(root, 'helper-db.json');
  helperLog = join(root, 'helper.log');
  await mkdir(home, { recursive: true });
  await mkdir(binDir);
  const helper = join(binDir, 'docker-credential-testhelper');
  await writeFile(helper, HELPER_SOURCE);
  await chmod(helper, 0o755);
  env = { PATH: [binDir, process.env['PATH'] ?? ''].join(delimiter), TESTHELPER_DB: helperDb, TESTHELPER_LOG: helperLog };
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('registry keys', () => {
  it('normalizes the spellings of a registry key', () => {
    for (const key of ['https://127.0.0.1:5000', 'http://127.0.0.1:5000', '127.0.0.1:5000', '127.0.0.1:5000/v1/', 'https://127.0.0.1:5000/v2/']) {
      expect(registryHostOf(key)).toBe(HOST);
    }
    for (const key of ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'https://index.docker.io/v1/']) {
      expect(registryHostOf(key)).toBe('docker.io');
      expect(configKeyFor(key)).toBe('https://index.docker.io/v1/');
    }
    expect(configKeyFor('GHCR.io')).toBe('ghcr.io');
  });
});

describe('credential lookup', () => {
  it('finds nothing when there are no files', async () => {
    expect(await store().get(HOST)).toBeUndefined();
    expect(await credentialLookup(store())(HOST)).toBeUndefined();
  });

  it('offers a plain lookup function for the registry client', async () => {
    await writeJson(dockerConfig(), { auths: { 'localhost:5000': { auth: b64('l:p') } } });
    expect(await credentialLookup(store())('localhost:5000')).toEqual({ username: 'l', password: 'p' });
  });

  it('reads auths[].auth from ~/.docker/config.json under any spelling of the key', async () => {
    for (const key of ['https://127.0.0.1:5000', 'http://127.0.0.1:5000', '127.0.0.1:5000', '127.0.0.1:5000/v1/']) {
      await writeJson(dockerConfig(), { auths: { [key]: { auth: b64('alice:pa:ss') } } });
      expect(await store().get(HOST)).toEqual({
        credential: { username: 'alice', password: 'pa:ss' },
        source: dockerConfig(),
      });
    }
  });

  it('maps every Docker Hub name to https://index.docker.io/v1/', async () => {
    await writeJson(dockerConfig(), { auths: { 'https://index.docker.io/v1/': { auth: b64('hubuser:hubpass') } } });
    for (const name of ['docker.io', 'index.docker.io', 'registry-1.docker.io']) {
      expect((await store().get(name))?.credential).toEqual({ username: 'hubuser', password: 'hubpass' });
    }
    expect(await store().get('ghcr.io')).toBeUndefined();
  });

  it('reads identity tokens, and does not crash on entries without auth', async () => {
    await writeJson(dockerConfig(), {
      auths: {
        'tok.example': { auth: b64('bob:'), identitytoken: 'refresh-123' },
        'empty.example': {},
        'weird.example': { email: 'x@example.com' },
        'nul.example': null,
      },
    });
    expect((await store().get('tok.example'))?.credential).toEqual({ identityToken: 'refresh-123', username: 'bob' });
    expect(await store().get('empty.example')).toBeUndefined();
    expect(await store().get('weird.example')).toBeUndefined();
    expect(await store().get('nul.example')).toBeUndefined();
  });

  it('prefers $DOCKER_CONFIG over ~/.docker', async () => {
    await writeJson(dockerConfig(), { auths: { [HOST]: { auth: b64('home:home') } } });
    const dir = join(root, 'docker-config');
    await writeJson(join(dir, 'config.json'), { auths: { [HOST]: { auth: b64('env:env') } } });
    env['DOCKER_CONFIG'] = dir;
    expect(await store().get(HOST)).toEqual({ credential: { username: 'env', password: 'env' }, source: join(dir, 'config.json') });
  });

  it('falls back to $REGISTRY_AUTH_FILE, then podman auth.json under $XDG_RUNTIME_DIR', async () => {
    const authFile = join(root, 'auth-file.json');
    const runtime = join(root, 'run');
    const podman = join(runtime, 'containers', 'auth.json');
    env['REGISTRY_AUTH_FILE'] = authFile;
    env['XDG_RUNTIME_DIR'] = runtime;
    await writeJson(podman, { auths: { [HOST]: { auth: b64('podman:p') }, 'other.example': { auth: b64('podman:o') } } });
    await writeJson(authFile, { auths: { [HOST]: { auth: b64('regfile:r') } } });
    await writeJson(dockerConfig(), { auths: { 'unrelated.example': { auth: b64('u:u') } } });
    expect(await store().get(HOST)).toEqual({ credential: { username: 'regfile', password: 'r' }, source: authFile });
    expect(await store().get('other.example')).toEqual({ credential: { username: 'podman', password: 'o' }, source: podman });
    await writeJson(dockerConfig(), { auths: { [HOST]: { auth: b64('docker:d') } } });
    expect((await store().get(HOST))?.source).toBe(dockerConfig());
  });

  it('asks credHelpers[host] through the helper program on PATH', async () => {
    await writeFile(helperDb, JSON.stringify({ [HOST]: { Username: 'helped', Secret: 'helper-secret' } }));
    await writeJson(dockerConfig(), { credHelpers: { [`https://${HOST}`]: 'testhelper' }, auths: { [HOST]: { auth: b64('file:f') } } });
    expect(await store().get(HOST)).toEqual({
      credential: { username: 'helped', password: 'helper-secret' },
      source: 'docker-credential-testhelper',
    });
    expect(await helperVerbs()).toEqual([`get ${HOST}`]);
  });

  it("reads Username '<token>' from a helper as an identity token", async () => {
    await writeFile(helperDb, JSON.stringify({ [HOST]: { Username: '<token>', Secret: 'identity-xyz' } }));
    await writeJson(dockerConfig(), { credsStore: 'testhelper' });
    expect((await store().get(HOST))?.credential).toEqual({ identityToken: 'identity-xyz' });
  });

  it('uses the auths entry when the helper has nothing for the host', async () => {
    await writeJson(dockerConfig(), { credsStore: 'testhelper', auths: { [HOST]: { auth: b64('file:f') } } });
    expect(await store().get(HOST)).toEqual({ credential: { username: 'file', password: 'f' }, source: dockerConfig() });
  });

  it('reports a failing helper by name and exit code, never its output', async () => {
    await writeJson(dockerConfig(), { credsStore: 'testhelper' });
    env['TESTHELPER_FAIL'] = '1';
    const err = await store()
      .get(HOST)
      .catch((e: unknown) => e);
    expect(isStrataError(err, 'E_CREDENTIALS')).toBe(true);
    const text = `${(err as Error).message} ${String((err as { hint?: string }).hint)}`;
    expect(text).toContain('docker-credential-testhelper');
    expect(text).toContain('exit code 3');
    expect(text).not.toContain('leaked-secret-from-helper');
  });

  it('says which helper is missing from PATH', async () => {
    await writeJson(dockerConfig(), { credHelpers: { [HOST]: 'nosuchhelper' } });
    await expect(store().get(HOST)).rejects.toThrow(/docker-credential-nosuchhelper is not on PATH/);
  });

  it('reports an unreadable config file by path without quoting it', async () => {
    await mkdir(dirname(dockerConfig()), { recursive: true });
    await writeFile(dockerConfig(), '{"auths": {"h": {"auth": "c2VjcmV0LXBhc3N3b3Jk"}}, oops');
    const err = await store()
      .get(HOST)
      .catch((e: unknown) => e);
    expect(isStrataError(err, 'E_CREDENTIALS')).toBe(true);
    expect((err as Error).message).toContain(dockerConfig());
    expect((err as Error).message).not.toContain('c2VjcmV0');
  });

  it('passes the helper runner the program, verb and server URL', async () => {
    const calls: Array<[string, string[], string]> = [];
    const runHelper: HelperRunner = async (program, args, stdin) => {
      calls.push([program, args, stdin]);
      return { code: 0, stdout: JSON.stringify({ Username: 'u', Secret: 's' }), stderr: '' };
    };
    await writeJson(dockerConfig(), { credsStore: 'fake' });
    const found = await createCredentialStore({ env, homeDir: home, runHelper }).get('docker.io');
    expect(found).toEqual({ credential: { username: 'u', password: 's' }, source: 'docker-credential-fake' });
    expect(calls).toEqual([['docker-credential-fake', ['get'], 'https://index.docker.io/v1/']]);
  });
});

describe('login and logout', () => {
  it('writes auths[host].auth with mode 0600 in a 0700 directory and reads it back', async () => {
    const result = await store().login(HOST, { username: 'alice', password: 's3cret' });
    expect(result).toEqual({ path: dockerConfig() });
    const file = JSON.parse(await readFile(dockerConfig(), 'utf8')) as { auths: Record<string, { auth: string }> };
    expect(file.auths[HOST]?.auth).toBe(b64('alice:s3cret'));
    expect((await stat(dockerConfig())).mode & 0o777).toBe(0o600);
    expect((await stat(dirname(dockerConfig()))).mode & 0o777).toBe(0o700);
    expect(await readdir(dirname(dockerConfig()))).toEqual(['config.json']);
    expect((await store().get(HOST))?.credential).toEqual({ username: 'alice', password: 's3cret' });
  });

  it('keeps every other key of the file and replaces other spellings of the same host', async () => {
    await writeJson(dockerConfig(), {
      auths: { [`https://${HOST}`]: { auth: b64('old:old') }, 'other.example': { auth: b64('o:o') } },
      proxies: { default: { httpProxy: 'http://127.0.0.1:3128' } },
      currentContext: 'default',
      psFormat: 'table {{.ID}}',
    });
    await store().login(HOST, { username: 'new', password: 'new' });
    const file = JSON.parse(await readFile(dockerConfig(), 'utf8')) as Record<string, unknown>;
    expect(file).toEqual({
      auths: { 'other.example': { auth: b64('o:o') }, [HOST]: { auth: b64('new:new') } },
      proxies: { default: { httpProxy: 'http://127.0.0.1:3128' } },
      currentContext: 'default',
      psFormat: 'table {{.ID}}',
    });
  });

  it('writes Docker Hub under https://index.docker.io/v1/ and stores identity tokens', async () => {
    await store().login('docker.io', { identityToken: 'tok-1', username: 'hubuser' });
    const file = JSON.parse(await readFile(dockerConfig(), 'utf8')) as { auths: Record<string, Record<string, string>> };
    expect(Object.keys(file.auths)).toEqual(['https://index.docker.io/v1/']);
    expect((await store().get('registry-1.docker.io'))?.credential).toEqual({ identityToken: 'tok-1', username: 'hubuser' });
  });

  it('writes into $DOCKER_CONFIG when set, and through a symlinked config.json', async () => {
    const dir = join(root, 'dc');
    const real = join(root, 'elsewhere', 'real-config.json');
    await writeJson(real, { auths: {} });
    await mkdir(dir);
    await symlink(real, join(dir, 'config.json'));
    env['DOCKER_CONFIG'] = dir;
    const result = await store().login(HOST, { username: 'a', password: 'b' });
    expect(result).toEqual({ path: real });
    expect((await lstat(join(dir, 'config.json'))).isSymbolicLink()).toBe(true);
    expect((await store().get(HOST))?.credential).toEqual({ username: 'a', password: 'b' });
  });

  it('stores through credsStore and erases on logout', async () => {
    await writeJson(dockerConfig(), { credsStore: 'testhelper' });
    expect(await store().login(HOST, { username: 'helped', password: 'pw-in-helper' })).toEqual({ helper: 'docker-credential-testhelper' });
    expect(await helperDbContents()).toEqual({ [HOST]: { Username: 'helped', Secret: 'pw-in-helper' } });
    const text = await readFile(dockerConfig(), 'utf8');
    expect(text).not.toContain(b64('helped:pw-in-helper'));
    expect(JSON.parse(text)).toEqual({ credsStore: 'testhelper', auths: { [HOST]: {} } });
    expect(await store().get(HOST)).toEqual({ credential: { username: 'helped', password: 'pw-in-helper' }, source: 'docker-credential-testhelper' });
    expect(await store().logout(HOST)).toBe(true);
    expect(await helperDbContents()).toEqual({});
    expect(await store().get(HOST)).toBeUndefined();
    expect(await store().logout(HOST)).toBe(false);
    expect(await helperVerbs()).toEqual([`store ${HOST}`, `get ${HOST}`, `erase ${HOST}`, `get ${HOST}`, `erase ${HOST}`]);
  });

  it('uses credHelpers[host] over credsStore, and identity tokens go as <token>', async () => {
    await writeJson(dockerConfig(), { credsStore: 'nosuchstore', credHelpers: { [HOST]: 'testhelper' } });
    await store().login(HOST, { identityToken: 'id-tok' });
    expect(await helperDbContents()).toEqual({ [HOST]: { Username: '<token>', Secret: 'id-tok' } });
    expect((await store().get(HOST))?.credential).toEqual({ identityToken: 'id-tok' });
  });

  it('reports a failing helper store without the secret', async () => {
    await writeJson(dockerConfig(), { credsStore: 'testhelper' });
    env['TESTHELPER_FAIL'] = '1';
    const err = await store()
      .login(HOST, { username: 'u', password: 'do-not-print-me' })
      .catch((e: unknown) => e);
    expect(isStrataError(err, 'E_CREDENTIALS')).toBe(true);
    expect((err as Error).message).toMatch(/docker-credential-testhelper failed to store .* \(exit code 3\)/);
    expect(JSON.stringify({ m: (err as Error).message, h: (err as { hint?: string }).hint })).not.toContain('do-not-print-me');
  });

  it('logout removes every spelling of the host from the file and keeps the rest', async () => {
    await writeJson(dockerConfig(), {
      auths: { [`https://${HOST}`]: { auth: b64('a:a') }, [HOST]: { auth: b64('b:b') }, 'keep.example': { auth: b64('k:k') } },
      detachKeys: 'ctrl-x',
    });
    expect(await store().logout(HOST)).toBe(true);
    expect(JSON.parse(await readFile(dockerConfig(), 'utf8'))).toEqual({ auths: { 'keep.example': { auth: b64('k:k') } }, detachKeys: 'ctrl-x' });
    expect((await stat(dockerConfig())).mode & 0o777).toBe(0o600);
    expect(await store().logout(HOST)).toBe(false);
    expect(await store().logout('never.example')).toBe(false);
  });

  it('logout without a config file is a no-op', async () => {
    expect(await store().logout(HOST)).toBe(false);
  });
});
