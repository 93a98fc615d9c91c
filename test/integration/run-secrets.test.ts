/**
 * RUN --mount=type=secret: the values given with `--secret id=tok,src=FILE` and
 * `--secret id=tok2,env=VAR` reach the step, and appear in no blob of the resulting OCI layout
 * (layers gunzipped, config with its history, manifests) nor anywhere in strata's store.
 *
 * Needs the built CLI (`make build`), root (chroot, runc) and docker-registry.
 */
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { executorUnsupported, pushBusyboxBase } from '../helpers/busybox-base.js';
import { REPO_ROOT, strata } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeAsRoot, describeWithTools, needExecutor } from '../helpers/tools.js';

const EXECUTORS = ['chroot', 'bwrap', 'runc', 'crun'] as const;

/** Every regular file under `dir`, gunzipped when it is gzip, that contains `needle`. */
async function filesContaining(dir: string, needles: readonly string[]): Promise<string[]> {
  const hits: string[] = [];
  const walk = async (path: string): Promise<void> => {
    const info = await lstat(path);
    if (info.isDirectory()) {
      for (const name of await readdir(path)) await walk(join(path, name));
      return;
    }
    if (!info.isFile()) return;
    let bytes = await readFile(path);
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
      try {
        bytes = gunzipSync(bytes);
      } catch {
        // not a whole gzip stream (a partial download, say): search the raw bytes
      }
    }
    for (const needle of needles) {
      if (bytes.includes(Buffer.from(needle)) || bytes.includes(Buffer.from(Buffer.from(needle).toString('base64'))))
        hits.push(`${path} contains ${needle.slice(0, 6)}…`);
    }
  };
  await walk(dir);
  return hits;
}

describeAsRoot('RUN secrets', () => {
  describeWithTools(['docker-registry'], 'RUN secrets never reach the image', () => {
    let registry: TestRegistry;
    let work: string;
    let base: string;
    const unsupported = new Map<string, string | undefined>();

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'strata-run-secrets-'));
      await chmod(work, 0o755);
      registry = await startRegistry();
      base = (await pushBusyboxBase(registry.host, { repo: 'busybox-secrets' })).ref;
      await Promise.all(EXECUTORS.map(async (e) => unsupported.set(e, await executorUnsupported(e, work))));
    }, 120_000);

    afterAll(async () => {
      await registry?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    // BUG (src/build/mounts.ts parseMountSpec): `--mount=type=secret,id=tok2,env=TOKEN` without
    // target= fails with "--mount=type=secret needs target=" (the default target is only filled in
    // when env= is absent, then the generic check refuses it). Expected, as BuildKit: env= alone
    // puts the secret in $TOKEN and mounts no file. testdata/run/secrets adds target= meanwhile.
    it('a secret with env= and no target= is given to the step in that variable only', async () => {
      const res = await strata(
        [
          'build',
          join(REPO_ROOT, 'testdata', 'run', 'secret-env-only'),
          '--executor',
          'chroot',
          '--build-arg',
          `BASE=${base}`,
          '--secret',
          'id=tok2,env=STRATA_TEST_TOKEN',
          '--progress',
          'plain',
          '-o',
          `type=oci,dest=${join(work, 'env-only')},tar=false`,
        ],
        { STRATA_ROOT: join(work, 'store-env-only'), STRATA_TEST_TOKEN: randomBytes(20).toString('hex') },
      );
      expect(res.code, res.stderr).toBe(0);
    }, 120_000);

    for (const executor of EXECUTORS) {
      it(`--executor ${executor}: secrets from a file and from the environment are readable in RUN and absent from every blob`, async (ctx) => {
        needExecutor(ctx, executor, unsupported.get(executor));
        const fileSecret = randomBytes(20).toString('hex');
        const envSecret = randomBytes(20).toString('hex');
        const secretFile = join(work, `tok-${executor}`);
        await writeFile(secretFile, fileSecret, { mode: 0o600 });
        const layout = join(work, `layout-${executor}`);
        const store = join(work, `store-${executor}`);
        const res = await strata(
          [
            'build',
            join(REPO_ROOT, 'testdata', 'run', 'secrets'),
            '--executor',
            executor,
            '--build-arg',
            `BASE=${base}`,
            '--secret',
            `id=tok,src=${secretFile}`,
            '--secret',
            'id=tok2,env=STRATA_TEST_TOKEN',
            '--progress',
            'plain',
            '-t',
            'secrets:test',
            '-o',
            `type=oci,dest=${layout},tar=false`,
          ],
          { STRATA_ROOT: store, STRATA_TEST_TOKEN: envSecret },
        );
        expect(res.code, res.stderr).toBe(0);
        expect(`${res.stdout}${res.stderr}`).not.toContain(fileSecret);
        expect(`${res.stdout}${res.stderr}`).not.toContain(envSecret);

        // The steps really ran with the secrets (the image holds their markers).
        const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
        expect(index.manifests.length).toBeGreaterThan(0);
        const blobs = await readdir(join(layout, 'blobs', 'sha256'));
        const layerText = (
          await Promise.all(
            blobs.map(async (b) => {
              const bytes = await readFile(join(layout, 'blobs', 'sha256', b));
              return bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes).toString('latin1') : '';
            }),
          )
        ).join('');
        expect(layerText).toContain('read a secret');
        expect(layerText).toContain('done');
        // Nor do the mount points the secrets were mounted on.
        expect(layerText).not.toContain('etc/app-token');
        expect(layerText).not.toContain('run/secrets');

        expect(await filesContaining(layout, [fileSecret, envSecret])).toEqual([]);
        expect(await filesContaining(store, [fileSecret, envSecret])).toEqual([]);
      }, 120_000);
    }
  });
});
