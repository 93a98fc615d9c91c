/**
 * A base image whose layer names its root entry `/` (what `umoci insert DIR /` writes) must build as it does with
 * buildah: containerd, docker and buildah clean the name and keep it inside the root, and so must strata. The base
 * is a busybox root inserted at `/` by umoci, with a second insert that adds a file under `/etc/` (a leading `/`
 * on every name), pushed to a loopback registry by skopeo. The build has WORKDIR, COPY --chown by name, a RUN
 * (chroot executor) and USER; both images are unpacked by umoci and compared file by file.
 *
 * Needs the built CLI, root, umoci, skopeo, buildah and docker-registry.
 */
import { execFile } from 'node:child_process';
import { chmod, chown, cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BUILDAH_RUN_LEAKS, BUSYBOX, GROUP, PASSWD, busyboxApplets, describeOwnedTree, treeDifferences } from '../helpers/busybox-base.js';
import { BuildahRunner } from '../helpers/buildah.js';
import { REPO_ROOT, strata } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeo } from '../helpers/skopeo.js';
import { describeAsRoot, describeWithTools } from '../helpers/tools.js';
import { umociUnpack, withOciMediaTypes } from '../helpers/umoci.js';

const execFileP = promisify(execFile);

async function umoci(args: string[]): Promise<void> {
  await execFileP('umoci', args, { maxBuffer: 16 * 1024 * 1024 });
}

/** A busybox root as a directory, with exact owners (the test runs as root). */
async function busyboxRoot(dir: string): Promise<void> {
  await mkdir(join(dir, 'bin'), { recursive: true });
  await cp(BUSYBOX, join(dir, 'bin', 'busybox'));
  await chmod(join(dir, 'bin', 'busybox'), 0o755);
  for (const applet of new Set(await busyboxApplets())) await symlink('busybox', join(dir, 'bin', applet));
  await mkdir(join(dir, 'etc'));
  await writeFile(join(dir, 'etc', 'passwd'), PASSWD);
  await writeFile(join(dir, 'etc', 'group'), GROUP);
  await mkdir(join(dir, 'home', 'app'), { recursive: true });
  await chown(join(dir, 'home', 'app'), 1000, 1000);
  await mkdir(join(dir, 'root'), { mode: 0o700 });
  await mkdir(join(dir, 'tmp'));
  await chmod(join(dir, 'tmp'), 0o1777);
}

describeAsRoot('a base image written by umoci insert … /', () => {
  describeWithTools(['docker-registry', 'umoci', 'skopeo', 'buildah'], 'a base image written by umoci insert … /', () => {
    let registry: TestRegistry;
    let work: string;
    let buildah: BuildahRunner;
    let base: string;

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'strata-umoci-base-'));
      registry = await startRegistry();
      buildah = new BuildahRunner(join(work, 'buildah'));
      const root = join(work, 'root');
      await busyboxRoot(root);
      const extra = join(work, 'extra');
      await mkdir(join(extra, 'etc'), { recursive: true });
      await writeFile(join(extra, 'etc', 'motd'), 'inserted at /etc/motd\n');
      const layout = join(work, 'layout');
      await umoci(['init', '--layout', layout]);
      await umoci(['new', '--image', `${layout}:base`]);
      await umoci(['insert', '--image', `${layout}:base`, root, '/']);
      await umoci(['insert', '--image', `${layout}:base`, extra, '/']);
      await umoci(['config', '--image', `${layout}:base`, '--config.env', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
      base = `${registry.host}/umoci-base:1`;
      await skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:base`, `docker://${base}`]);
      // The layers really do name the root `/`: the test is vacuous otherwise.
      const { stdout } = await execFileP('sh', ['-c', `for b in ${layout}/blobs/sha256/*; do gzip -dc "$b" 2>/dev/null | tar -t 2>/dev/null; done; true`], {
        maxBuffer: 16 * 1024 * 1024,
      });
      expect(stdout.split('\n')).toContain('/');
    }, 120_000);

    afterAll(async () => {
      await buildah?.cleanup();
      await registry?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('builds FROM it (WORKDIR, COPY --chown by name, RUN, USER) and equals buildah file by file', async () => {
      const ctx = join(REPO_ROOT, 'testdata', 'build', 'umoci-root');
      const layout = join(work, 'strata-out');
      const res = await strata(
        ['build', ctx, '--executor', 'chroot', '--build-arg', `UMOCI_BASE=${base}`, '--progress', 'plain', '-o', `type=oci,dest=${layout},tar=false`],
        { STRATA_ROOT: join(work, 'store'), SOURCE_DATE_EPOCH: '1700000000' },
      );
      expect(res.code, `strata build failed:\n${res.stderr}`).toBe(0);
      const ours = await describeOwnedTree(await umociUnpack(await withOciMediaTypes(layout), 'latest', `${layout}-bundle`));

      const built = await buildah.bud(ctx, 'umoci-root', { buildArgs: { UMOCI_BASE: base } });
      if (built.code !== 0) throw new Error(`buildah bud failed (${built.code}):\n${built.stderr}\n${built.stdout}`);
      const theirsLayout = join(work, 'buildah-out');
      await buildah.pushOci('umoci-root', theirsLayout);
      const theirs = await describeOwnedTree(await umociUnpack(theirsLayout, 'latest', `${theirsLayout}-bundle`));
      for (const leak of BUILDAH_RUN_LEAKS) delete theirs[leak];

      expect(ours['app/hello.txt']).toMatchObject({ type: 'file', uid: 1000, gid: 1000, content: 'hello\n' });
      expect(ours['app/ran']).toMatchObject({ uid: 1000, content: 'ran\n' });
      expect(ours['etc/motd']).toBeUndefined();
      expect(treeDifferences(ours, theirs)).toEqual([]);
      expect((await readFile(join(layout, 'index.json'), 'utf8')).length).toBeGreaterThan(0);
    }, 180_000);
  });
});
