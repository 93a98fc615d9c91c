/**
 * `--executor inplace` (kaniko's mode) never runs on the test machine's own `/`: every build here runs strata inside
 * a bubblewrap sandbox whose `/` is a scratch directory (with the host's /usr and the repository bound read-only,
 * and /strata for the store, the temp dir and the output), as strata would run in a throwaway job container.
 *
 * - With no sign of a container (no /.dockerenv, no KUBERNETES_SERVICE_HOST, a plain cgroup), it refuses in one line.
 * - With one (or --force), the step runs in that `/` and the image equals buildah's, file by file with owners.
 */
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BUILDAH_RUN_LEAKS, Buildah, describeOwnedTree, pushBusyboxBase, treeDifferences, umociUnpack, type OwnedEntry } from '../helpers/busybox-base.js';
import { CLI, REPO_ROOT } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { runRestricted, scratchRootSandbox } from '../helpers/restricted.js';
import { describeAsRoot, describeWithTools } from '../helpers/tools.js';

const SECRET = 'inplace-secret-value-0123456789';
describeAsRoot('RUN --executor inplace', () => {
  describeWithTools(['docker-registry', 'buildah', 'umoci', 'bwrap'], 'RUN --executor inplace', () => {
    let registry: TestRegistry;
    let work: string;
    let base: string;
    let buildah: Buildah;
    const references = new Map<string, Record<string, OwnedEntry>>();

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'strata-inplace-'));
      await chmod(work, 0o755);
      registry = await startRegistry();
      base = (await pushBusyboxBase(registry.host)).ref;
      buildah = new Buildah(join(work, 'buildah'));
      const secret = join(work, 'secret');
      await writeFile(secret, SECRET, { mode: 0o600 });
      for (const name of ['restricted', 'multistage']) {
        const res = await buildah.bud(join(REPO_ROOT, 'testdata', 'run', name), `inplace-${name}`, {
          buildArgs: { BASE: base },
          extra: ['--secret', `id=tok,src=${secret}`],
        });
        if (res.code !== 0) throw new Error(`buildah bud ${name} failed (${res.code}):\n${res.stderr}\n${res.stdout}`);
        await buildah.pushOci(`inplace-${name}`, join(work, `buildah-${name}`));
        const tree = await describeOwnedTree(await umociUnpack(join(work, `buildah-${name}`), 'latest', join(work, `buildah-${name}-bundle`)));
        for (const leak of [...BUILDAH_RUN_LEAKS, 'run/secrets', 'var', 'var/cache']) delete tree[leak];
        references.set(name, tree);
      }
    }, 180_000);

    afterAll(async () => {
      await buildah?.cleanup();
      await registry?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    async function sandboxDirs(name: string): Promise<{ scratch: string; state: string }> {
      const scratch = join(work, `${name}-root`);
      const state = join(work, `${name}-state`);
      await mkdir(scratch, { recursive: true });
      await mkdir(join(state, 'tmp'), { recursive: true });
      await writeFile(join(state, 'secret'), SECRET, { mode: 0o600 });
      return { scratch, state };
    }

    it('refuses in one line where it sees no container, and touches nothing', async () => {
      const { scratch, state } = await sandboxDirs('refuse');
      const res = await runRestricted(
        scratchRootSandbox(scratch, state),
        [CLI, 'build', join(REPO_ROOT, 'testdata', 'run', 'restricted'), '--executor', 'inplace', '--build-arg', `BASE=${base}`, '--progress', 'plain'],
        {},
      );
      expect(res.code).not.toBe(0);
      expect(res.stderr).toMatch(
        /^strata: executor inplace cannot run here: the inplace executor overwrites \/ and runs only inside a throwaway container: no container seen here .*; pass --force if this is one$/m,
      );
      // The scratch root holds only what bwrap made for its mount points.
      expect((await readdir(scratch)).sort()).toEqual(['bin', 'dev', 'lib', 'lib64', 'proc', 'sbin', 'strata', 'usr', REPO_ROOT.split('/')[1]!].sort());
    }, 60_000);

    for (const name of ['restricted', 'multistage']) {
      it(`${name}: in a container (/.dockerenv), the step runs in its / and the image equals buildah's`, async () => {
        const { scratch, state } = await sandboxDirs(name);
        const res = await runRestricted(
          scratchRootSandbox(scratch, state, { dockerenv: true }),
          [
            CLI,
            'build',
            join(REPO_ROOT, 'testdata', 'run', name),
            '--executor',
            'inplace',
            '--build-arg',
            `BASE=${base}`,
            '--secret',
            'id=tok,src=/strata/secret',
            '--progress',
            'plain',
            '-o',
            'type=oci,dest=/strata/out,tar=false',
          ],
          {},
        );
        expect(res.code, res.stderr).toBe(0);
        expect(res.stderr).toMatch(/^=> executor inplace$/m);
        const ours = await describeOwnedTree(await umociUnpack(join(state, 'out'), 'latest', join(work, `${name}-bundle`)));
        expect(treeDifferences(ours, references.get(name)!)).toEqual([]);
      }, 120_000);
    }

    it('--force runs where no container is seen', async () => {
      const { scratch, state } = await sandboxDirs('force');
      await writeFile(join(state, 'Dockerfile'), `FROM ${base}\nRUN echo forced > /forced\n`);
      const res = await runRestricted(
        scratchRootSandbox(scratch, state),
        [CLI, 'build', '/strata', '--executor', 'inplace', '--force', '--progress', 'plain', '-o', 'type=local,dest=/strata/out'],
        {},
      );
      expect(res.code, res.stderr).toBe(0);
      expect((await readdir(join(state, 'out'))).sort()).toContain('forced');
    }, 60_000);

    it('bind mounts are copies at their targets: a step writes to them (rw or not) and the context stays as it was', async () => {
      const { scratch, state } = await sandboxDirs('binds');
      await mkdir(join(state, 'src'));
      await writeFile(join(state, 'src', 'keep.txt'), 'keep\n');
      await writeFile(join(state, 'src', 'gone.txt'), 'gone\n');
      await writeFile(
        join(state, 'Dockerfile'),
        `FROM ${base}\n` +
          'RUN --mount=type=bind,source=src,target=/ctx,rw rm /ctx/gone.txt && echo added > /ctx/added.txt && ls /ctx > /seen-rw\n' +
          // inplace cannot mount: a read-only bind is a copy too, whose writes go with it (no EROFS).
          'RUN --mount=type=bind,source=src,target=/ctx rm /ctx/keep.txt && ls /ctx > /seen-ro\n',
      );
      const res = await runRestricted(
        scratchRootSandbox(scratch, state, { dockerenv: true }),
        [CLI, 'build', '/strata', '--executor', 'inplace', '--progress', 'plain', '-o', 'type=local,dest=/strata/out'],
        {},
      );
      expect(res.code, res.stderr).toBe(0);
      expect(await readFile(join(state, 'out', 'seen-rw'), 'utf8')).toBe('added.txt\nkeep.txt\n');
      expect(await readFile(join(state, 'out', 'seen-ro'), 'utf8')).toBe('gone.txt\n');
      expect(await readdir(join(state, 'out'))).not.toContain('ctx');
      expect((await readdir(join(state, 'src'))).sort()).toEqual(['gone.txt', 'keep.txt']);
    }, 60_000);
  });
});
