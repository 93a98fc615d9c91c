/**
 * `strata build --cache-to/--cache-from` with the built program against a real docker-registry on
 * loopback: a cache exported by one build is imported by a build in a fresh store; a mid-file
 * change that rebuilds to identical content lets later steps hit; the local (OCI layout) cache
 * round trip; a hit whose layer lives in the destination registry is never downloaded (counted at
 * a recording proxy); a missing cache warns; the round trip through a token-auth registry, with the
 * password in no output and nothing the registry stores.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI, ok, strata, type CliResult } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWithTools } from '../helpers/tools.js';

/** The `#N/M [stage] TEXT  STATE` lines of `--progress plain`, as `TEXT STATE`. */
function stepLines(stderr: string): string[] {
  return stderr.split('\n').flatMap((line) => {
    const m = /^#\d+\/\d+ \[[^\]]*\] (.*?)(?: {2}(CACHED|DONE))? \d+\.\ds$/.exec(line);
    return m ? [`${m[1]} ${m[2] ?? ''}`.trim()] : [];
  });
}

describeWithTools(['docker-registry'], 'strata build with a shared registry or local cache', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let tmp: string;
  let stores = 0;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json\` (make test builds first)`);
    reg = await startRegistry({ auth: 'none' });
    proxy = await startFaultProxy(reg.url, []);
    tmp = await mkdtemp(join(tmpdir(), 'strata-build-cache-'));
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  /** Each call is a new, empty store: what a fresh CI runner has. */
  function freshEnv(): Record<string, string> {
    stores++;
    return { STRATA_ROOT: join(tmp, `store-${stores}`), HOME: join(tmp, 'home'), DOCKER_CONFIG: join(tmp, 'docker') };
  }

  async function project(name: string, dockerfile: string, files: Record<string, string>): Promise<string> {
    const dir = join(tmp, name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'Dockerfile'), dockerfile);
    for (const [file, content] of Object.entries(files)) await writeFile(join(dir, file), content);
    return dir;
  }

  const build = (env: Record<string, string>, dir: string, args: string[]): Promise<CliResult> =>
    strata(['build', '--progress', 'plain', '--source-date-epoch', '1700000000', ...args, dir], env);

  const FILES = { 'a.txt': 'alpha\n', 'b.txt': 'beta\n', 'b-copy.txt': 'beta\n', 'c.txt': 'gamma\n' };

  it('a cache exported by one build makes every layer step of a build in a fresh store hit, to the same digest', async () => {
    const dir = await project('shared', 'FROM scratch\nCOPY a.txt /a\nENV STAGE=one\nCOPY b.txt /b\nWORKDIR /work\nCOPY c.txt /work/c\n', FILES);
    const cacheRef = `${reg.host}/cache/shared:main`;
    const first = await build(freshEnv(), dir, ['-t', `${reg.host}/app/shared:1`, '--cache-to', `type=registry,ref=${cacheRef},mode=max`]);
    const digest = ok(first);
    expect(stepLines(first.stderr)).toEqual(['COPY a.txt /a DONE', 'ENV STAGE=one', 'COPY b.txt /b DONE', 'WORKDIR /work DONE', 'COPY c.txt /work/c DONE']);
    expect(first.stderr).toMatch(/wrote build cache \(4 steps, mode=max\) registry/);

    const second = await build(freshEnv(), dir, ['-t', `${reg.host}/app/shared:2`, '--cache-from', `type=registry,ref=${cacheRef}`]);
    expect(ok(second)).toBe(digest);
    expect(stepLines(second.stderr)).toEqual([
      'COPY a.txt /a CACHED',
      'ENV STAGE=one',
      'COPY b.txt /b CACHED',
      'WORKDIR /work CACHED',
      'COPY c.txt /work/c CACHED',
    ]);
    expect(second.stderr).toMatch(/4\/5 steps cached/);
  });

  it('a change in the middle that rebuilds to identical content lets the later steps hit', async () => {
    const before = await project('mid-before', 'FROM scratch\nCOPY a.txt /a\nCOPY b.txt /b\nCOPY c.txt /c\n', FILES);
    const after = await project('mid-after', 'FROM scratch\nCOPY a.txt /a\nCOPY b-copy.txt /b\nCOPY c.txt /c\n', FILES);
    const cacheRef = `${reg.host}/cache/mid:main`;
    ok(await build(freshEnv(), before, ['-t', 'mid:1', '--cache-to', `type=registry,ref=${cacheRef}`]));
    const changed = await build(freshEnv(), after, ['-t', 'mid:2', '--cache-from', cacheRef]);
    ok(changed);
    expect(stepLines(changed.stderr)).toEqual(['COPY a.txt /a CACHED', 'COPY b-copy.txt /b DONE', 'COPY c.txt /c CACHED']);
  });

  it('type=local exports an OCI layout that a fresh store imports', async () => {
    const dir = await project('local', 'FROM scratch\nCOPY a.txt /a\nCOPY c.txt /c\nLABEL kind=local\n', FILES);
    const cacheDir = join(tmp, 'local-cache');
    const first = await build(freshEnv(), dir, ['-t', 'local:1', '--cache-to', `type=local,dest=${cacheDir}`]);
    const digest = ok(first);
    const index = JSON.parse(await readFile(join(cacheDir, 'index.json'), 'utf8')) as {
      manifests: { artifactType?: string; annotations?: Record<string, string> }[];
    };
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0]).toMatchObject({
      artifactType: 'application/vnd.strata.build-cache.v1+json',
      annotations: { 'org.opencontainers.image.ref.name': 'cache' },
    });

    const second = await build(freshEnv(), dir, ['-t', 'local:2', '--cache-from', `type=local,src=${cacheDir}`]);
    expect(ok(second)).toBe(digest);
    expect(stepLines(second.stderr)).toEqual(['COPY a.txt /a CACHED', 'COPY c.txt /c CACHED', 'LABEL kind=local']);
  });

  it('a hit whose layer already lives in the destination registry is pushed without downloading it', async () => {
    // --link steps never look at the layers below, so nothing in the build needs the cached bytes.
    const dir = await project('nodownload', 'FROM scratch\nCOPY --link a.txt /a\nCOPY --link c.txt /c\nCMD ["/a"]\n', {
      'a.txt': 'alpha, pushed once\n',
      'c.txt': 'gamma, pushed once\n',
    });
    const cacheRef = `${proxy.host}/cache/nodl:main`;
    ok(await build(freshEnv(), dir, ['-t', `${proxy.host}/app/nodl-first:1`, '--output', 'type=registry', '--cache-to', `type=registry,ref=${cacheRef}`]));
    const manifest = JSON.parse(
      await (await fetch(`${reg.url}/v2/app/nodl-first/manifests/1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).text(),
    ) as { layers: { digest: string }[] };
    expect(manifest.layers).toHaveLength(2);

    proxy.requests.length = 0;
    const second = await build(freshEnv(), dir, [
      '-t',
      `${proxy.host}/app/nodl-second:1`,
      '--output',
      'type=registry',
      '--cache-from',
      cacheRef,
      '--cache-to',
      `type=registry,ref=${cacheRef}`,
    ]);
    ok(second);
    expect(stepLines(second.stderr)).toEqual(['COPY --link a.txt /a CACHED', 'COPY --link c.txt /c CACHED', 'CMD ["/a"]']);
    const blobGets = proxy.requests.filter((r) => r.method === 'GET' && /\/blobs\/sha256:/.test(r.path));
    const layerGets = blobGets.filter((r) => manifest.layers.some((l) => r.path.includes(l.digest)));
    expect(layerGets).toEqual([]);
    // Only the cache's small config blob was read; the layers were mounted from the cache's repository,
    // and exporting the cache again found every blob already there.
    expect(blobGets).toHaveLength(1);
    const mounts = proxy.requests.filter((r) => r.method === 'POST' && r.path.includes('mount=') && r.status === 201);
    expect(mounts).toHaveLength(2);
  });

  it('a missing cache ref warns and the build goes on; an invalid spec fails before building', async () => {
    const dir = await project('missing', 'FROM scratch\nCOPY a.txt /a\n', FILES);
    const result = await build(freshEnv(), dir, ['-t', 'missing:1', '--cache-from', `${reg.host}/cache/none:here`]);
    ok(result);
    expect(result.stderr).toMatch(/WARNING: registry cache 127\.0\.0\.1:\d+\/cache\/none:here not imported/);
    expect(stepLines(result.stderr)).toEqual(['COPY a.txt /a DONE']);

    const bad = await build(freshEnv(), dir, ['-t', 'missing:2', '--cache-to', 'type=s3,bucket=x']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/cache type "s3" is not supported/);
    expect(bad.stderr).not.toMatch(/COPY a\.txt/);
  });
});

describeWithTools(['docker-registry', 'htpasswd'], 'strata build with a registry cache behind token auth', () => {
  let reg: TestRegistry;
  let tmp: string;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json\` (make test builds first)`);
    reg = await startRegistry({ auth: 'token', tokenTtlSeconds: 300 });
    tmp = await mkdtemp(join(tmpdir(), 'strata-build-cache-token-'));
  });
  afterAll(async () => {
    await reg?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('a logged-in runner exports the cache and a fresh store on another runner imports it; the password is written nowhere', async () => {
    const password = reg.password ?? '';
    const dir = join(tmp, 'ctx');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY a.txt /a\nENV STAGE=token\nCOPY b.txt /b\n');
    await writeFile(join(dir, 'a.txt'), 'alpha behind a token\n');
    await writeFile(join(dir, 'b.txt'), 'beta behind a token\n');
    // Two runners share the credentials (a CI secret), not the store.
    const runner = (n: number): Record<string, string> => ({
      STRATA_ROOT: join(tmp, `store-${n}`),
      HOME: join(tmp, 'home'),
      DOCKER_CONFIG: join(tmp, 'docker'),
    });
    ok(await strata(['login', reg.host, '-u', reg.username ?? '', '-p', password], runner(0)));
    const cacheRef = `${reg.host}/cache/token:main`;
    const args = (tag: string, cache: string[]): string[] => [
      'build',
      '--progress',
      'plain',
      '--source-date-epoch',
      '1700000000',
      '--push',
      '-t',
      `${reg.host}/app/token:${tag}`,
      ...cache,
      dir,
    ];

    const first = await strata(args('1', ['--cache-to', `type=registry,ref=${cacheRef},mode=max`]), runner(1));
    const digest = ok(first);
    expect(first.stderr).toMatch(/wrote build cache \(2 steps, mode=max\) registry/);
    const second = await strata(args('2', ['--cache-from', `type=registry,ref=${cacheRef}`]), runner(2));
    expect(ok(second)).toBe(digest);
    expect(stepLines(second.stderr)).toEqual(['COPY a.txt /a CACHED', 'ENV STAGE=token', 'COPY b.txt /b CACHED']);

    // Neither the output nor anything the registry now holds carries the password.
    for (const result of [first, second]) expect(`${result.stdout}${result.stderr}`).not.toContain(password);
    const stored = await readTree(reg.storageDir);
    expect(stored.length).toBeGreaterThan(0);
    expect(stored.some((text) => text.includes(password))).toBe(false);
    // The cache's repository was pushed to with a token the token server issued for it.
    expect(reg.tokenServer!.requests.some((r) => r.scopes.some((s) => s.startsWith('repository:cache/token:') && s.includes('push')))).toBe(true);
    expect(reg.logs()).not.toContain(password);
  });
});

/** Every file under `dir`, as latin1 text (blobs included), for searching. */
async function readTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(await readFile(join(entry.parentPath, entry.name), 'latin1'));
  }
  return out;
}
