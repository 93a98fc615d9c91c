/**
 * What `strata build .` does with no flags, as docker users expect: RUN steps run (`--executor auto`, the most
 * isolated executor that works here, printed once and recorded in --metadata-file), with the host's network and
 * resolver, and with the proxy variables of strata's environment visible to the step but never written into the
 * image's config or history. The config file's `executor` key still chooses.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pushBusyboxBase, umociUnpack } from '../helpers/busybox-base.js';
import { REPO_ROOT, strata } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeAsRoot, describeWithTools } from '../helpers/tools.js';

const CONTEXT = join(REPO_ROOT, 'testdata', 'run', 'defaults');
const PROXY = 'http://proxy-user:proxy-pass-4242@proxy.invalid:3128';

describeAsRoot('RUN with the default flags', () => {
  describeWithTools(['docker-registry', 'umoci', 'bwrap'], 'RUN with the default flags', () => {
    let registry: TestRegistry;
    let work: string;
    let base: string;

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'strata-run-defaults-'));
      registry = await startRegistry();
      base = (await pushBusyboxBase(registry.host)).ref;
    }, 60_000);

    afterAll(async () => {
      await registry?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('auto runs the steps with the host network and resolver; proxies reach the step, not the config or history', async () => {
      const layout = join(work, 'out');
      const metadata = join(work, 'metadata.json');
      const res = await strata(
        [
          'build',
          CONTEXT,
          '--build-arg',
          `BASE=${base}`,
          '--build-arg',
          'https_proxy=http://from-build-arg:8080',
          '--progress',
          'plain',
          '--metadata-file',
          metadata,
          '-o',
          `type=oci,dest=${layout},tar=false`,
        ],
        { STRATA_ROOT: join(work, 'store'), HTTP_PROXY: PROXY, NO_PROXY: 'localhost,127.0.0.1' },
      );
      expect(res.code, res.stderr).toBe(0);
      // Printed once, at the start; bwrap works as root on this machine.
      expect(res.stderr.match(/^=> executor /gm)).toHaveLength(1);
      expect(res.stderr).toMatch(/^=> executor (bwrap|runc|chroot)\b/m);
      expect(res.stderr).not.toContain('was not consumed');
      const meta = JSON.parse(await readFile(metadata, 'utf8')) as Record<string, unknown>;
      expect(['bwrap', 'runc', 'chroot']).toContain(meta['strata.executor']);

      const rootfs = await umociUnpack(layout, 'latest', join(work, 'bundle'));
      expect(await readFile(join(rootfs, 'seen-resolv.conf'), 'utf8')).toBe(await readFile('/etc/resolv.conf', 'utf8'));
      expect(await readFile(join(rootfs, 'seen-hosts'), 'utf8')).toContain('localhost');
      expect((await readFile(join(rootfs, 'seen-proxy'), 'utf8')).trim()).toBe(`http=${PROXY} https=http://from-build-arg:8080 no=localhost,127.0.0.1`);
      const hostInterfaces = (await readFile('/proc/net/dev', 'utf8'))
        .split('\n')
        .slice(2)
        .filter((l) => l.trim() !== '').length;
      expect(Number((await readFile(join(rootfs, 'seen-interfaces'), 'utf8')).trim())).toBe(hostInterfaces);
      expect(Number((await readFile(join(rootfs, 'seen-interfaces-none'), 'utf8')).trim())).toBe(1);

      // Nothing of the proxies in the image's metadata: not in Env, not in history.
      const blobs = join(layout, 'blobs', 'sha256');
      const { readdir } = await import('node:fs/promises');
      for (const name of await readdir(blobs)) {
        const bytes = await readFile(join(blobs, name));
        if (bytes[0] !== 0x7b) continue;
        const text = bytes.toString('utf8');
        expect(text).not.toContain('proxy-pass-4242');
        expect(text).not.toContain('from-build-arg');
        expect(text).not.toContain('127.0.0.1,');
      }
    }, 120_000);

    it('a proxy changed between builds does not miss the cache: it is not part of the key', async () => {
      const store = join(work, 'store-cache');
      const args = ['build', CONTEXT, '--build-arg', `BASE=${base}`, '--progress', 'plain', '-o', `type=oci,dest=${join(work, 'cache-out')},tar=false`];
      expect((await strata(args, { STRATA_ROOT: store, HTTP_PROXY: 'http://one:1' })).code).toBe(0);
      const second = await strata(args, { STRATA_ROOT: store, HTTP_PROXY: 'http://two:2' });
      expect(second.code, second.stderr).toBe(0);
      expect(second.stderr).toMatch(/2\/2 steps cached/);
    }, 120_000);

    it("the config file's executor key still chooses, and --executor none refuses RUN naming working executors", async () => {
      const configDir = join(work, 'config');
      await mkdir(join(configDir, 'strata'), { recursive: true });
      await writeFile(join(configDir, 'strata', 'config.json'), JSON.stringify({ executor: 'none' }));
      const res = await strata(
        ['build', CONTEXT, '--build-arg', `BASE=${base}`, '--progress', 'plain', '-o', `type=oci,dest=${join(work, 'none-out')},tar=false`],
        {
          STRATA_ROOT: join(work, 'store'),
          XDG_CONFIG_HOME: configDir,
        },
      );
      expect(res.code).not.toBe(0);
      expect(res.stderr).toMatch(/Dockerfile:3: RUN needs an executor, and --executor is none/);
      expect(res.stderr).toMatch(/executors available on this machine: bwrap\b/);
    }, 60_000);
  });
});
