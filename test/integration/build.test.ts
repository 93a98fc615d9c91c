/**
 * `strata build` on its own: every output type read back by an independent reader, --iidfile,
 * --metadata-file, --push to a loopback registry, reproducible digests, the local step cache, and
 * bad input that must stop with `Dockerfile:LINE: …` (or the option named), a non-zero exit, no
 * output written and no tag moved.
 *
 * Needs the built CLI (`npx tsc -p tsconfig.json`), docker-registry, skopeo and tar.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { strata } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWithTools } from '../helpers/tools.js';
import { layoutManifest } from '../helpers/umoci.js';

const execFileP = promisify(execFile);
const EPOCH = '1700000000';

async function skopeoInspect(ref: string, extra: string[] = []): Promise<Record<string, unknown>> {
  const { stdout } = await execFileP('skopeo', ['inspect', ...extra, ref], { maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(stdout) as Record<string, unknown>;
}

interface ImageRow {
  name: string;
  digest: string;
}

describeWithTools(['docker-registry', 'skopeo', 'tar'], 'strata build (strata only)', () => {
  let work: string;
  let registry: TestRegistry;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'strata-build-'));
    registry = await startRegistry();
  }, 60_000);

  afterAll(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** A context with three files read by three COPY steps and a metadata step. */
  async function makeContext(dir: string): Promise<string> {
    await mkdir(join(dir, 'sub'), { recursive: true });
    await writeFile(
      join(dir, 'Dockerfile'),
      'FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\nCOPY sub /sub/\nLABEL org.example.kind=test\nCMD ["/a.txt"]\n',
    );
    await writeFile(join(dir, 'a.txt'), 'a\n');
    await writeFile(join(dir, 'b.txt'), 'b\n');
    await writeFile(join(dir, 'sub', 'c.txt'), 'c\n');
    return dir;
  }

  const build = (args: string[], store: string, env: Record<string, string> = {}) =>
    strata(['build', ...args], { STRATA_ROOT: store, SOURCE_DATE_EPOCH: EPOCH, ...env });

  async function images(store: string): Promise<ImageRow[]> {
    const res = await strata(['images', '--format', 'json'], { STRATA_ROOT: store });
    expect(res.code, res.stderr).toBe(0);
    return JSON.parse(res.stdout || '[]') as ImageRow[];
  }

  describe.concurrent('outputs', () => {
    it('type=image is the default; with no -t the image is named after the slugified context directory', async () => {
      const ctx = await makeContext(join(work, 'outputs-default', 'My Ctx_Dir'));
      const store = join(work, 'store-default');
      const res = await build([ctx, '--progress', 'plain'], store);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout + res.stderr).toContain('my-ctx-dir:latest');
      const rows = await images(store);
      expect(rows.map((r) => r.name)).toContain('my-ctx-dir:latest');
    }, 60_000);

    it('type=oci writes an oci-archive tar, and a layout directory with tar=false; skopeo reads both', async () => {
      const ctx = await makeContext(join(work, 'outputs-oci'));
      const store = join(work, 'store-oci');
      const archive = join(work, 'out-oci.tar');
      const layout = join(work, 'out-oci-layout');
      const res = await build(
        [ctx, '-t', 'oci-out:1', '--progress', 'quiet', '-o', `type=oci,dest=${archive}`, '-o', `type=oci,dest=${layout},tar=false`],
        store,
      );
      expect(res.code, res.stderr).toBe(0);
      const fromArchive = await skopeoInspect(`oci-archive:${archive}`, ['--config']);
      const fromLayout = await skopeoInspect(`oci:${layout}:1`, ['--config']);
      expect(fromArchive).toEqual(fromLayout);
      expect((fromLayout['config'] as { Labels?: Record<string, string> }).Labels).toEqual({ 'org.example.kind': 'test' });
      expect(existsSync(join(layout, 'oci-layout'))).toBe(true);
    }, 60_000);

    it('type=docker writes a docker-archive that skopeo inspects, with the tag', async () => {
      const ctx = await makeContext(join(work, 'outputs-docker'));
      const file = join(work, 'out-docker.tar');
      const res = await build([ctx, '-t', 'docker-out:2', '--progress', 'quiet', '-o', `type=docker,dest=${file}`], join(work, 'store-docker'));
      expect(res.code, res.stderr).toBe(0);
      const info = await skopeoInspect(`docker-archive:${file}`);
      expect(info['Layers']).toHaveLength(3);
      expect(info['Labels']).toEqual({ 'org.example.kind': 'test' });
      const { stdout } = await execFileP('tar', ['-xOf', file, 'manifest.json']);
      expect(stdout).toContain('docker-out:2');
    }, 60_000);

    it('type=local writes the root filesystem to a directory and type=tar to a tarball', async () => {
      const ctx = await makeContext(join(work, 'outputs-local'));
      const dir = join(work, 'out-local');
      const tarFile = join(work, 'out-rootfs.tar');
      const res = await build([ctx, '--progress', 'quiet', '-o', `type=local,dest=${dir}`, '-o', `type=tar,dest=${tarFile}`], join(work, 'store-local'));
      expect(res.code, res.stderr).toBe(0);
      expect((await readdir(dir)).sort()).toEqual(['a.txt', 'b.txt', 'sub']);
      expect(await readFile(join(dir, 'sub', 'c.txt'), 'utf8')).toBe('c\n');
      // A root filesystem's top is 0755 (the directory was made private while it was filled).
      expect((await stat(dir)).mode & 0o777).toBe(0o755);
      const { stdout } = await execFileP('tar', ['-tf', tarFile]);
      const names = stdout
        .split('\n')
        .filter(Boolean)
        .map((n) => n.replace(/^\.\//, '').replace(/\/$/, ''));
      expect(names).toEqual(expect.arrayContaining(['a.txt', 'b.txt', 'sub', 'sub/c.txt']));
    }, 60_000);

    it('--metadata-file writes what buildx writes; --push puts the image in the registry', async () => {
      const ctx = await makeContext(join(work, 'outputs-push'));
      const ref = `${registry.host}/built/app:pushed`;
      const meta = join(work, 'push-metadata.json');
      const res = await build([ctx, '-t', ref, '--push', '--progress', 'quiet', '--metadata-file', meta], join(work, 'store-push'));
      expect(res.code, res.stderr).toBe(0);
      const metadata = JSON.parse(await readFile(meta, 'utf8')) as Record<string, unknown>;
      expect(metadata['image.name']).toContain('built/app:pushed');
      expect(metadata['containerimage.digest']).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(metadata['containerimage.config.digest']).toMatch(/^sha256:[0-9a-f]{64}$/);
      const info = await skopeoInspect(`docker://${ref}`, ['--tls-verify=false']);
      expect(info['Digest']).toBe(metadata['containerimage.digest']);
      const config = await skopeoInspect(`docker://${ref}`, ['--tls-verify=false', '--config']);
      expect((config['config'] as { Cmd?: string[] }).Cmd).toEqual(['/a.txt']);
    }, 60_000);

    // docker build --iidfile and buildx write the image ID: the config digest.
    it('--iidfile holds the image ID, the config digest', async () => {
      const ctx = await makeContext(join(work, 'outputs-iid'));
      const iid = join(work, 'iid.txt');
      const meta = join(work, 'iid-metadata.json');
      const res = await build([ctx, '--progress', 'quiet', '--iidfile', iid, '--metadata-file', meta], join(work, 'store-iid'));
      expect(res.code, res.stderr).toBe(0);
      const metadata = JSON.parse(await readFile(meta, 'utf8')) as Record<string, unknown>;
      expect((await readFile(iid, 'utf8')).trim()).toBe(metadata['containerimage.config.digest']);
    }, 60_000);
  });

  it('is reproducible: the same context in two directories and stores gives the same digests', async () => {
    const digests: string[] = [];
    for (const n of [1, 2]) {
      const ctx = await makeContext(join(work, `repro-${n}`, 'ctx'));
      const meta = join(work, `repro-${n}.json`);
      const layout = join(work, `repro-${n}-layout`);
      const res = await build(
        [ctx, '-t', 'repro:1', '--progress', 'quiet', '--metadata-file', meta, '-o', `type=oci,dest=${layout},tar=false`],
        join(work, `store-repro-${n}`),
      );
      expect(res.code, res.stderr).toBe(0);
      const metadata = JSON.parse(await readFile(meta, 'utf8')) as Record<string, string>;
      expect((await layoutManifest(layout, '1')).digest).toBe(metadata['containerimage.digest']);
      digests.push(`${metadata['containerimage.digest']} ${metadata['containerimage.config.digest']}`);
    }
    expect(digests[0]).toBe(digests[1]);
  }, 60_000);

  describe('the local cache', () => {
    const stepLines = (out: string): string[] => out.split('\n').filter((l) => /^#\d+\/\d+ /.test(l));
    const copyLines = (out: string): string[] => stepLines(out).filter((l) => / COPY /.test(l));

    it('a rebuild has every layer step CACHED and the same digest; --no-cache runs them again', async () => {
      const ctx = await makeContext(join(work, 'cache-1'));
      const store = join(work, 'store-cache-1');
      const first = await build([ctx, '-t', 'cached:1', '--progress', 'plain'], store);
      expect(first.code, first.stderr).toBe(0);
      const out1 = first.stdout + first.stderr;
      expect(copyLines(out1)).toHaveLength(3);
      expect(copyLines(out1).some((l) => l.includes('CACHED'))).toBe(false);
      const digest = (await images(store)).find((r) => r.name === 'cached:1')?.digest;

      const second = await build([ctx, '-t', 'cached:1', '--progress', 'plain'], store);
      expect(second.code, second.stderr).toBe(0);
      const lines = copyLines(second.stdout + second.stderr);
      expect(lines).toHaveLength(3);
      for (const l of lines) expect(l).toMatch(/CACHED/);
      expect((await images(store)).find((r) => r.name === 'cached:1')?.digest).toBe(digest);

      const third = await build([ctx, '-t', 'cached:1', '--progress', 'plain', '--no-cache'], store);
      expect(third.code, third.stderr).toBe(0);
      for (const l of stepLines(third.stdout + third.stderr)) expect(l).not.toMatch(/CACHED/);
      expect((await images(store)).find((r) => r.name === 'cached:1')?.digest).toBe(digest);
    }, 60_000);

    it('changing one file re-runs the build from the step that reads it', async () => {
      const ctx = await makeContext(join(work, 'cache-2'));
      const store = join(work, 'store-cache-2');
      expect((await build([ctx, '-t', 'cached:2', '--progress', 'plain'], store)).code).toBe(0);
      await writeFile(join(ctx, 'b.txt'), 'b changed\n');
      const res = await build([ctx, '-t', 'cached:2', '--progress', 'plain'], store);
      expect(res.code, res.stderr).toBe(0);
      const lines = stepLines(res.stdout + res.stderr);
      const at = (needle: string): string => lines.find((l) => l.includes(needle)) ?? `missing step ${needle}`;
      expect(at('COPY a.txt')).toMatch(/CACHED/);
      expect(at('COPY b.txt')).not.toMatch(/CACHED/);
      expect(at('COPY sub')).not.toMatch(/CACHED/);
    }, 60_000);
  });

  describe('bad input', () => {
    let store: string;
    let victimDigest: string;
    let outside: string;

    beforeAll(async () => {
      store = join(work, 'store-bad');
      outside = join(work, 'bad-outside');
      await mkdir(outside, { recursive: true });
      // Sentinels outside every bad context: nothing may ever read them into an image.
      await writeFile(join(outside, 'secret'), 'SENTINEL-OUTSIDE\n');
      await writeFile(join(work, 'x'), 'SENTINEL-PARENT\n');
      const ctx = await makeContext(join(work, 'bad-victim'));
      const res = await build([ctx, '-t', 'victim:latest', '--progress', 'quiet'], store);
      expect(res.code, res.stderr).toBe(0);
      victimDigest = (await images(store)).find((r) => r.name === 'victim:latest')!.digest;
    }, 60_000);

    interface Bad {
      name: string;
      dockerfile: string;
      /** What stderr must match. */
      error: RegExp;
      args?: string[];
      setup?: (ctx: string) => Promise<void>;
    }

    const BAD: Bad[] = [
      // BUG (src/build, COPY --from resolution in handlers/copy.ts or stages.ts): a --from that is
      // neither a stage nor a valid reference fails with "invalid reference \"NoSuchStage\"" and no
      // Dockerfile line. Expected: `Dockerfile:3: COPY --from=NoSuchStage: …` naming the line.
      { name: 'an unknown stage in COPY --from', dockerfile: 'FROM scratch AS real\nFROM scratch\nCOPY --from=NoSuchStage /x /y\n', error: /Dockerfile:3\b/ },
      { name: 'a missing source file', dockerfile: 'FROM scratch\nCOPY a.txt /a\nCOPY missing.txt /\n', error: /Dockerfile:3\b.*missing\.txt/ },
      { name: 'COPY ../x, scoped to the context (which has no x)', dockerfile: 'FROM scratch\nCOPY ../x /x\n', error: /Dockerfile:2\b/ },
      {
        name: 'a symlink in the context pointing out of it',
        dockerfile: 'FROM scratch\nCOPY escape /e\n',
        error: /Dockerfile:2\b/,
        setup: async (ctx) => symlink(join('..', 'bad-outside', 'secret'), join(ctx, 'escape')),
      },
      {
        name: 'an absolute symlink in the context pointing out of it',
        dockerfile: 'FROM scratch\nCOPY escape /e\n',
        error: /Dockerfile:2\b/,
        setup: async (ctx) => symlink(join(work, 'bad-outside', 'secret'), join(ctx, 'escape')),
      },
      { name: '${X:?} with X unset', dockerfile: 'FROM scratch\nARG X\nENV Y="${X:?X is required}"\n', error: /Dockerfile:3\b.*X is required/ },
      { name: 'an unknown --output type', dockerfile: 'FROM scratch\nCOPY a.txt /\n', error: /--output.*bogus/, args: ['-o', 'type=bogus,dest=somewhere'] },
      {
        name: 'RUN with --executor none',
        dockerfile: 'FROM scratch\nCOPY a.txt /\nRUN echo hi\n',
        error: /Dockerfile:3: RUN needs an executor/,
        args: ['--executor', 'none'],
      },
      // The default (auto) runs the step: FROM scratch has no /bin/sh, which is the step's own failure.
      { name: 'RUN with the default executor and no shell in the image', dockerfile: 'FROM scratch\nCOPY a.txt /\nRUN echo hi\n', error: /Dockerfile:3: RUN/ },
    ];

    for (const bad of BAD) {
      it(`${bad.name}: exits non-zero naming the line, writes nothing, moves no tag`, async () => {
        const id = bad.name.replace(/[^a-z0-9]+/gi, '-');
        const ctx = join(work, `bad-ctx-${id}`);
        await mkdir(ctx, { recursive: true });
        await writeFile(join(ctx, 'a.txt'), 'a\n');
        await writeFile(join(ctx, 'Dockerfile'), bad.dockerfile);
        await bad.setup?.(ctx);
        const layout = join(work, `bad-out-${id}`);
        const local = join(work, `bad-local-${id}`);
        const res = await build(
          [
            ctx,
            '-t',
            'victim:latest',
            '--progress',
            'plain',
            '-o',
            'type=image',
            '-o',
            `type=oci,dest=${layout},tar=false`,
            '-o',
            `type=local,dest=${local}`,
            ...(bad.args ?? []),
          ],
          store,
        );
        expect(res.code).not.toBe(0);
        expect(res.stderr).toMatch(bad.error);
        expect(res.stdout + res.stderr).not.toContain('SENTINEL');
        expect(existsSync(layout), 'an OCI layout was written').toBe(false);
        expect(existsSync(local), 'a root filesystem was written').toBe(false);
        expect((await images(store)).find((r) => r.name === 'victim:latest')?.digest).toBe(victimDigest);
      }, 60_000);
    }

    it("COPY ../x copies the context's own x, never the x beside the context", async () => {
      const ctx = join(work, 'scoped', 'ctx');
      await mkdir(ctx, { recursive: true });
      await writeFile(join(work, 'scoped', 'x'), 'SENTINEL-BESIDE\n');
      await writeFile(join(ctx, 'x'), 'inside\n');
      await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY ../x /from-parent\nCOPY /x /from-absolute\n');
      const local = join(work, 'scoped-local');
      const res = await build([ctx, '--progress', 'quiet', '-o', `type=local,dest=${local}`], join(work, 'store-scoped'));
      expect(res.code, res.stderr).toBe(0);
      expect(await readFile(join(local, 'from-parent'), 'utf8')).toBe('inside\n');
      expect(await readFile(join(local, 'from-absolute'), 'utf8')).toBe('inside\n');
    }, 60_000);

    it('a symlink out of the context is followed inside the context root only', async () => {
      const ctx = join(work, 'scoped-link', 'ctx');
      await mkdir(join(ctx, 'bad-outside'), { recursive: true });
      await cp(join(outside, 'secret'), join(work, 'scoped-link', 'secret'));
      await writeFile(join(ctx, 'bad-outside', 'secret'), 'inside the context\n');
      // ../bad-outside/secret from the context root is, scoped to the root, /bad-outside/secret.
      await symlink(join('..', 'bad-outside', 'secret'), join(ctx, 'escape'));
      await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY escape /e\n');
      const local = join(work, 'scoped-link-local');
      const res = await build([ctx, '--progress', 'quiet', '-o', `type=local,dest=${local}`], join(work, 'store-scoped-link'));
      expect(res.code, res.stderr).toBe(0);
      expect(await readFile(join(local, 'e'), 'utf8')).toBe('inside the context\n');
    }, 60_000);
  });
});
