/**
 * The built `strata` program against a real docker-registry on loopback, with skopeo as the
 * independent judge: append/push/pull/copy/inspect over docker://, the local-store fallback of
 * inspect, login/logout against an htpasswd registry, and the progress output.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgress } from '../../cli/progress.js';
import type { Digest, TransferEvent } from '../../src/internals.js';
import { RegistryClient, pushImage } from '../../src/registry/index.js';
import { CLI, ok, strata, type CliResult } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { addTestIndex, MemoryBlobStore, sha256 } from '../helpers/memory-blobs.js';
import { writeTinyOciLayout } from '../helpers/oci-layout.js';
import { freePort } from '../helpers/ports.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { credsArgs, skopeo } from '../helpers/skopeo.js';
import { describeWithTools } from '../helpers/tools.js';

function requireBuiltCli(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json\` (make test builds first)`);
}

/** Like `strata()`, with bytes on standard input (for --password-stdin). */
function strataWithInput(args: string[], env: Record<string, string>, input: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(CLI, args, { env: { PATH: process.env.PATH, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(input);
  });
}

async function makeTree(dir: string, files: Record<string, string>): Promise<string> {
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  return dir;
}

async function rawDigest(ref: string, extra: string[] = []): Promise<string> {
  const raw = await skopeo(['inspect', '--tls-verify=false', '--raw', ...extra, `docker://${ref}`]);
  return sha256(Buffer.from(raw.stdout));
}

describeWithTools(['docker-registry', 'skopeo'], 'strata CLI with an anonymous registry (skopeo as judge)', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let tmp: string;
  let env: Record<string, string>;
  let layer: string;

  beforeAll(async () => {
    requireBuiltCli();
    reg = await startRegistry({ auth: 'none' });
    proxy = await startFaultProxy(reg.url);
    tmp = await mkdtemp(join(tmpdir(), 'strata-cli-reg-'));
    env = { STRATA_ROOT: join(tmp, 'store'), HOME: join(tmp, 'home'), DOCKER_CONFIG: join(tmp, 'docker'), SOURCE_DATE_EPOCH: '1700000000' };
    layer = await makeTree(join(tmp, 'tree'), { 'etc/greeting': 'hello from strata\n', 'bin/tool': '#!/bin/sh\necho tool\n' });
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('append -o docker:// pushes an image skopeo reads, digests equal', async () => {
    const digest = ok(
      await strata(['append', '--layer', layer, '--set-cmd', '["/bin/tool"]', '-o', `docker://${reg.host}/cli/appended:1`, '--progress', 'quiet'], env),
    );
    expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(await rawDigest(`${reg.host}/cli/appended:1`)).toBe(digest);
    const info = JSON.parse((await skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/cli/appended:1`])).stdout) as {
      Digest: string;
      Layers: string[];
    };
    expect(info.Digest).toBe(digest);
    expect(info.Layers).toHaveLength(1);
  });

  it('push sends a local-store image, to a given destination or to its own name', async () => {
    const digest = ok(await strata(['append', '--layer', layer, '--set-label', 'which=push', '-t', 'pushme:1'], env));
    expect(ok(await strata(['push', 'pushme:1', `${reg.host}/cli/pushed:2`, '--progress', 'quiet'], env))).toBe(digest);
    expect(await rawDigest(`${reg.host}/cli/pushed:2`)).toBe(digest);

    const named = `${reg.host}/cli/named:3`;
    ok(await strata(['append', '--layer', layer, '--set-label', 'which=push', '-t', named], env));
    expect(ok(await strata(['push', named, '--progress', 'quiet'], env))).toBe(digest);
    expect(await rawDigest(named)).toBe(digest);
    // A second push sends nothing: the tag already names the manifest.
    const again = await strata(['push', named, '--progress', 'plain'], env);
    expect(ok(again)).toBe(digest);
    expect(again.stderr).toContain(`${named} already names ${digest.slice('sha256:'.length, 'sha256:'.length + 12)}: nothing to push`);
    expect(again.stderr).not.toMatch(/: done |pushed manifest/);
    // To a new tag, every blob is HEAD-checked and found.
    const retagged = await strata(['push', named, `${reg.host}/cli/named:4`, '--progress', 'plain'], env);
    expect(ok(retagged)).toBe(digest);
    expect(retagged.stderr.match(/already there/g)).toHaveLength(2);
    expect(retagged.stderr).not.toMatch(/: done /);
  });

  it("pull brings a skopeo-pushed image into the local store with skopeo's digest; images lists it", async () => {
    const tiny = await writeTinyOciLayout(join(tmp, 'tiny'), { tag: 'v1', content: 'pushed by skopeo for strata pull\n' });
    await skopeo(['copy', '--dest-tls-verify=false', `oci:${tiny.dir}:v1`, `docker://${reg.host}/cli/from-skopeo:v1`]);
    expect(ok(await strata(['pull', `${reg.host}/cli/from-skopeo:v1`, '--progress', 'quiet'], env))).toBe(tiny.manifestDigest);
    const images = JSON.parse(ok(await strata(['images', '--format', 'json'], env))) as Array<{ fullName: string; digest: string }>;
    expect(images).toContainEqual(expect.objectContaining({ fullName: `${reg.host}/cli/from-skopeo:v1`, digest: tiny.manifestDigest }));
    // And to another transport with -o.
    const out = join(tmp, 'pulled-layout');
    expect(ok(await strata(['pull', `docker://${reg.host}/cli/from-skopeo:v1`, '-o', `oci:${out}:v1`, '--progress', 'quiet'], env))).toBe(tiny.manifestDigest);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    expect(index.manifests[0]?.digest).toBe(tiny.manifestDigest);
  });

  it('--all-platforms pulls and copies a whole index', async () => {
    const store = new MemoryBlobStore();
    const { index, images } = await addTestIndex(
      store,
      [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
      { label: 'cli-multi' },
    );
    await pushImage({ client: new RegistryClient({ registry: reg.host }), repository: 'cli/multi', source: store, root: index, tags: ['1'] });

    expect(ok(await strata(['pull', '--all-platforms', `${reg.host}/cli/multi:1`, '--progress', 'quiet'], env))).toBe(index.digest);
    const listed = JSON.parse(ok(await strata(['images', '--format', 'json'], env))) as Array<{ fullName: string; digest: string }>;
    expect(listed).toContainEqual(expect.objectContaining({ fullName: `${reg.host}/cli/multi:1`, digest: index.digest }));
    // Only one platform without the flag: the arm64 image's manifest.
    const arm = ok(
      await strata(['pull', '--platform', 'linux/arm64', `${reg.host}/cli/multi:1`, '--progress', 'quiet'], { ...env, STRATA_ROOT: join(tmp, 'store-arm') }),
    );
    expect(arm).toBe(images[1]?.manifest.digest);

    expect(
      ok(await strata(['copy', '--all-platforms', `docker://${reg.host}/cli/multi:1`, `docker://${reg.host}/cli/multi-copy:1`, '--progress', 'quiet'], env)),
    ).toBe(index.digest);
    expect(await rawDigest(`${reg.host}/cli/multi-copy:1`)).toBe(index.digest);
    for (const image of images) expect(await rawDigest(`${reg.host}/cli/multi-copy@${image.manifest.digest}`)).toBe(image.manifest.digest);
    // And the local store's index goes back out whole with push.
    expect(ok(await strata(['push', `${reg.host}/cli/multi:1`, `${reg.host}/cli/multi-pushed:1`, '--progress', 'quiet'], env))).toBe(index.digest);
    expect(await rawDigest(`${reg.host}/cli/multi-pushed:1`)).toBe(index.digest);
  });

  it('copy within one registry streams nothing: blobs are mounted (no blob GET); --progress json is JSON lines', async () => {
    const digest = ok(
      await strata(['append', '--layer', layer, '--set-label', 'which=copy', '-o', `docker://${reg.host}/cli/copy-src:1`, '--progress', 'quiet'], env),
    );
    proxy.requests.length = 0;
    const result = await strata(['copy', `docker://${proxy.host}/cli/copy-src:1`, `docker://${proxy.host}/cli/copy-dst:1`, '--progress', 'json'], env);
    expect(ok(result)).toBe(digest);
    const blobGets = proxy.requests.filter((r) => r.method === 'GET' && /\/blobs\/sha256:/.test(r.path));
    expect(blobGets).toEqual([]);
    expect(proxy.requests.filter((r) => r.method === 'POST' && /mount=/.test(r.path)).length).toBeGreaterThanOrEqual(2);
    const events = result.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string });
    expect(events.filter((e) => e.type === 'blob-mounted')).toHaveLength(2);
    expect(events.some((e) => e.type === 'manifest-done')).toBe(true);
    expect(await rawDigest(`${reg.host}/cli/copy-dst:1`)).toBe(digest);
  });

  it('inspect reads docker:// and falls back to the registry for a bare name the store lacks, saying which it used', async () => {
    const digest = ok(
      await strata(['append', '--layer', layer, '--set-label', 'which=inspect', '-o', `docker://${reg.host}/cli/inspect-me:1`, '--progress', 'quiet'], env),
    );
    const viaDocker = ok(await strata(['inspect', `docker://${reg.host}/cli/inspect-me:1`], env));
    expect(viaDocker).toContain(`Digest:       ${digest}`);
    expect(viaDocker).toMatch(/^Source:\s+registry$/m);

    const bareRun = await strata(['inspect', `${reg.host}/cli/inspect-me:1`], env);
    expect(ok(bareRun)).toMatch(/^Source:\s+registry$/m);
    expect(bareRun.stderr).toContain(`is not in the local store; asking the registry ${reg.host} for ${reg.host}/cli/inspect-me:1`);
    const json = JSON.parse(ok(await strata(['inspect', '--format', 'json', `${reg.host}/cli/inspect-me:1`], env))) as { source: string; digest: string };
    expect(json).toMatchObject({ source: 'registry', digest });

    ok(await strata(['pull', `${reg.host}/cli/inspect-me:1`, '--progress', 'quiet'], env));
    expect(ok(await strata(['inspect', `${reg.host}/cli/inspect-me:1`], env))).toMatch(/^Source:\s+local store$/m);
  });

  it('a bare name neither the store nor its (unreachable) registry has fails, naming both', async () => {
    const closed = await freePort();
    const result = await strata(['inspect', `127.0.0.1:${closed}/typo/nmae:1`, '--progress', 'quiet'], env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('is not in the local store');
    expect(result.stderr).toContain(`the registry 127.0.0.1:${closed}, asked for docker://127.0.0.1:${closed}/typo/nmae:1, could not provide it`);
    expect(result.stderr).toMatch(/hint: .*typo/);
  }, 60_000);
});

describeWithTools(['docker-registry', 'htpasswd', 'skopeo'], 'strata login/logout with an htpasswd registry', () => {
  let reg: TestRegistry;
  let tmp: string;
  let env: Record<string, string>;
  let configPath: string;
  const wrongPassword = 'Wrong-Pass-4711-xyz';

  beforeAll(async () => {
    requireBuiltCli();
    reg = await startRegistry({ auth: 'htpasswd' });
    tmp = await mkdtemp(join(tmpdir(), 'strata-cli-login-'));
    env = { STRATA_ROOT: join(tmp, 'store'), HOME: join(tmp, 'home'), DOCKER_CONFIG: join(tmp, 'docker') };
    configPath = join(tmp, 'docker', 'config.json');
  });
  afterAll(async () => {
    await reg?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('a wrong password fails, stores nothing and is printed nowhere', async () => {
    const result = await strataWithInput(['login', reg.host, '-u', reg.username ?? '', '--password-stdin'], env, `${wrongPassword}\n`);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`login to ${reg.host}`);
    expect(`${result.stdout}${result.stderr}`).not.toContain(wrongPassword);
    expect(existsSync(configPath)).toBe(false);
  });

  it('login with --password-stdin writes config.json (0600); push then needs no flags; logout removes it', async () => {
    const password = reg.password ?? '';
    const login = await strataWithInput(['login', reg.host, '-u', reg.username ?? '', '--password-stdin'], env, `${password}\n`);
    expect(ok(login)).toBe('Login Succeeded');
    expect(`${login.stdout}${login.stderr}`).not.toContain(password);
    expect((await stat(configPath)).mode & 0o777).toBe(0o600);
    const config = JSON.parse(await readFile(configPath, 'utf8')) as { auths: Record<string, { auth: string }> };
    expect(Buffer.from(config.auths[reg.host]?.auth ?? '', 'base64').toString()).toBe(`${reg.username}:${password}`);

    const layer = await makeTree(join(tmp, 'tree'), { 'hello.txt': 'private\n' });
    const digest = ok(await strata(['append', '--layer', layer, '-t', 'private:1'], env));
    const push = await strata(['push', 'private:1', `${reg.host}/team/private:1`, '--progress', 'plain'], env);
    expect(ok(push)).toBe(digest);
    expect(`${push.stdout}${push.stderr}`).not.toContain(password);
    const raw = await skopeo(['inspect', '--tls-verify=false', '--raw', ...credsArgs('--creds', reg), `docker://${reg.host}/team/private:1`]);
    expect(sha256(Buffer.from(raw.stdout))).toBe(digest);

    const logout = await strata(['logout', reg.host], env);
    expect(ok(logout)).toBe(`Removing login credentials for ${reg.host}`);
    const after = JSON.parse(await readFile(configPath, 'utf8')) as { auths?: Record<string, unknown> };
    expect(after.auths?.[reg.host]).toBeUndefined();
    const denied = await strata(['push', 'private:1', `${reg.host}/team/private:2`, '--progress', 'quiet'], env);
    expect(denied.code).toBe(1);
    expect(ok(await strata(['logout', reg.host], env))).toBe(`Not logged in to ${reg.host}`);
  });

  it('-p works with a warning, as docker does', async () => {
    const password = reg.password ?? '';
    const result = await strata(['login', reg.host, '-u', reg.username ?? '', '-p', password], env);
    expect(ok(result)).toBe('Login Succeeded');
    expect(result.stderr).toContain('WARNING! Using --password via the CLI is insecure');
    expect(result.stderr).not.toContain(password);
    ok(await strata(['logout', reg.host], env));
  });
});

describe('progress rendering (cli/progress.ts)', () => {
  const digest = `sha256:${'ab'.repeat(32)}` as Digest;
  const events: TransferEvent[] = [
    { type: 'blob-start', direction: 'push', digest, size: 2048, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' },
    { type: 'blob-bytes', direction: 'push', digest, bytes: 1024, size: 2048 },
    { type: 'blob-bytes', direction: 'push', digest, bytes: 2048, size: 2048 },
    { type: 'blob-done', direction: 'push', digest, size: 2048 },
    { type: 'manifest-done', direction: 'push', digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', reference: 'r/x:1' },
  ];
  const render = (mode: 'tty' | 'plain' | 'json' | 'quiet'): string => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    let t = 0;
    const progress = createProgress(mode, out, false, () => (t += 1000));
    for (const e of events) progress.listener?.(e);
    progress.finish();
    return text;
  };

  it('tty: one redrawn line per blob with bytes and speed', () => {
    const text = render('tty');
    expect(text).toContain('\x1b[');
    expect(text).toMatch(/push abababababab {2}\[=+ *\] {2}1\.0 KiB \/ 2\.0 KiB {2}\S+ B\/s/);
    expect(text).toMatch(/push abababababab {2}done {2}2\.0 KiB/);
    expect(text).toContain('pushed manifest r/x:1');
  });

  it('plain: lines without escape codes or byte counts', () => {
    const text = render('plain');
    expect(text).not.toContain('\x1b[');
    expect(text.trim().split('\n')).toEqual([
      'push abababababab: 2.0 KiB',
      expect.stringMatching(/^push abababababab: done 2\.0 KiB in \d+\.\d s/),
      'pushed manifest r/x:1',
    ]);
  });

  it('json: one parseable event per line; quiet: nothing', () => {
    const lines = render('json')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as TransferEvent);
    expect(lines.map((e) => e.type)).toEqual(['blob-start', 'blob-bytes', 'blob-bytes', 'blob-done', 'manifest-done']);
    expect(render('quiet')).toBe('');
  });
});
