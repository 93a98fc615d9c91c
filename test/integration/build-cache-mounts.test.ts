/**
 * Cache mounts that travel (issue 18): `--cache-to …,mode=max,cache-mounts=true` carries the contents
 * of RUN --mount=type=cache directories in the cache artifact, and `--cache-from` restores them in a
 * fresh store before the first RUN that mounts them. Without the option the mount starts empty, and
 * the mount's contents never enter an image layer. CLI, loopback registry, chroot executor (root).
 */
import { chmod, mkdir, mkdtemp, readFile, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pushBusyboxBase } from '../helpers/busybox-base.js';
import { ok, strata } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeAsRoot, describeWithTools } from '../helpers/tools.js';

const MARKER = 'cache-mount-content-7f3a9c';

/** The gunzipped layers of the image an OCI layout (tar=false) holds. */
async function layers(layout: string): Promise<Buffer[]> {
  const blob = (digest: string): Promise<Buffer> => readFile(join(layout, 'blobs', ...digest.split(':')));
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const manifest = JSON.parse((await blob(index.manifests[0]!.digest)).toString('utf8')) as { layers: Array<{ digest: string }> };
  return Promise.all(manifest.layers.map(async (l) => gunzipSync(await blob(l.digest))));
}

describeAsRoot('cache mounts that travel', () => {
  describeWithTools(['docker-registry'], 'RUN --mount=type=cache contents in a registry build cache', () => {
    let registry: TestRegistry;
    let work: string;
    let base: string;
    let ctx: string;

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'strata-cache-mounts-'));
      await chmod(work, 0o755);
      registry = await startRegistry();
      base = (await pushBusyboxBase(registry.host, { repo: 'busybox-mounts' })).ref;
      ctx = join(work, 'ctx');
      await mkdir(ctx);
      // A COPY before the RUN: its hit comes from the imported cache, and the RUN's root needs its layer
      // from the cache's repository, not the base's.
      await writeFile(join(ctx, 'input.txt'), 'input\n');
      await writeFile(
        join(ctx, 'Dockerfile'),
        'ARG BASE\nFROM $BASE\nCOPY input.txt /input.txt\nARG N\n' +
          'RUN --mount=type=cache,id=npm,target=/root/.npm ' +
          `if [ -f /root/.npm/marker ]; then echo "found-filled" > /found; else echo "found-empty" > /found; fi; echo "$N" > /n; echo ${MARKER} > /root/.npm/marker\n`,
      );
    }, 120_000);

    afterAll(async () => {
      await registry?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    const build = (store: string, n: string, extra: string[], out: string) =>
      strata(
        [
          'build',
          ctx,
          '--executor',
          'chroot',
          '--build-arg',
          `BASE=${base}`,
          '--build-arg',
          `N=${n}`,
          '--progress',
          'plain',
          '-o',
          `type=oci,dest=${join(work, out)},tar=false`,
          ...extra,
        ],
        {
          STRATA_ROOT: join(work, store),
          SOURCE_DATE_EPOCH: '1700000000',
        },
      );

    it('a fresh store finds the mount filled with cache-mounts=true, empty without, and no layer holds it', async () => {
      const withMounts = `type=registry,ref=${registry.host}/app:cache-mounts,mode=max,cache-mounts=true`;
      const without = `type=registry,ref=${registry.host}/app:cache-plain,mode=max`;
      ok(await build('store-a', '1', ['--cache-to', withMounts], 'out-a'));
      ok(await build('store-a', '1', ['--cache-to', without], 'out-a2'));
      const first = Buffer.concat(await layers(join(work, 'out-a')));
      expect(first.includes('found-empty')).toBe(true);

      // A fresh runner: the RUN misses (another N) and finds what the first one left in the mount.
      ok(await build('store-b', '2', ['--cache-from', `${registry.host}/app:cache-mounts`], 'out-b'));
      const restored = await layers(join(work, 'out-b'));
      expect(Buffer.concat(restored).includes('found-filled')).toBe(true);

      ok(await build('store-c', '2', ['--cache-from', `${registry.host}/app:cache-plain`], 'out-c'));
      expect(Buffer.concat(await layers(join(work, 'out-c'))).includes('found-empty')).toBe(true);

      for (const out of ['out-a', 'out-b', 'out-c']) {
        for (const layer of await layers(join(work, out))) expect(layer.includes(MARKER)).toBe(false);
      }
    }, 180_000);
  });
});
