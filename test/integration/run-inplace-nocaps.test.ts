/**
 * `--executor inplace` in a job container started with `--cap-drop ALL` (bubblewrap `--cap-drop ALL`, user
 * namespaces off), as uid 0 and as uid 1000, each in a sandbox whose `/` is a scratch directory
 * (test/helpers/restricted.ts). No capability means no chown and no change of ids: every step runs as the invoking
 * user, and the build records owners as docker would have them (the invoking uid maps to the step's user).
 *
 * - Steps that create, modify and delete files, and a `USER app` step: the image equals buildah's, file by file,
 *   owners included.
 * - A failing step fails as the step's own failure, the store keeps nothing of it, and `/` is left as it was
 *   before the step (its partial writes are taken off).
 */
import { readdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Buildah, describeOwnedTree, treeDifferences, umociUnpack, type OwnedEntry } from '../helpers/busybox-base.js';
import { CLI, REPO_ROOT, strata } from '../helpers/cli.js';
import { chownOutcome, runRestricted, scratchRootDirs, scratchRootSandbox, restrictedSuite, buildahReference } from '../helpers/restricted.js';
import { describeAsRoot, describeWithTools } from '../helpers/tools.js';

const CONTEXT = join(REPO_ROOT, 'testdata', 'run', 'inplace-nocaps');
const CHOWN_CONTEXT = join(REPO_ROOT, 'testdata', 'run', 'chown-unprivileged');
const UIDS = [0, 1000] as const;

describeAsRoot('RUN --executor inplace with no capabilities', () => {
  describeWithTools(['docker-registry', 'buildah', 'umoci', 'bwrap', 'setpriv'], 'RUN --executor inplace with no capabilities', () => {
    const suite = restrictedSuite('strata-inplace-nocaps-', 'inplace with no capabilities');
    const gate = suite.gate;
    let work: string;
    let base: string;
    let buildah: Buildah;
    let reference: Record<string, OwnedEntry>;

    beforeAll(async () => {
      if (suite.unavailable !== undefined) return;
      ({ work, base } = suite);
      ({ buildah, reference } = await buildahReference(work, CONTEXT, 'inplace-nocaps', { buildArgs: { BASE: base } }));
    }, 180_000);

    afterAll(async () => {
      await buildah?.cleanup();
    });

    for (const uid of UIDS) {
      it(`uid ${uid}, --cap-drop ALL: the steps run in its / and the image equals buildah's, owners included`, async (ctx) => {
        gate(() => ctx.skip());
        const { scratch, state } = await scratchRootDirs(work, `build-${uid}`, uid);
        const res = await runRestricted(
          scratchRootSandbox(scratch, state, { dockerenv: true, caps: 'none', uid }),
          [CLI, 'build', CONTEXT, '--executor', 'inplace', '--build-arg', `BASE=${base}`, '--progress', 'plain', '-o', 'type=oci,dest=/strata/out,tar=false'],
          {},
        );
        expect(res.code, res.stderr).toBe(0);
        expect(res.stderr).toMatch(/^=> executor inplace$/m);
        const ours = await describeOwnedTree(await umociUnpack(join(state, 'out'), 'latest', join(work, `bundle-${uid}`)));
        expect(treeDifferences(ours, reference)).toEqual([]);
      }, 120_000);

      // Pinned, as docs/ARCHITECTURE.md writes it down: with no CAP_CHOWN a chown to another user fails (a chown to
      // the invoking uid itself works), the step sees its files as the invoking uid's, and the layer records the
      // step's user; buildah records bob and app.
      it(`uid ${uid}, --cap-drop ALL: no chown to another user is kept, as documented`, async (ctx) => {
        gate(() => ctx.skip());
        const { scratch, state } = await scratchRootDirs(work, `chown-${uid}`, uid);
        const res = await runRestricted(
          scratchRootSandbox(scratch, state, { dockerenv: true, caps: 'none', uid }),
          [
            CLI,
            'build',
            CHOWN_CONTEXT,
            '--executor',
            'inplace',
            '--build-arg',
            `BASE=${base}`,
            '--progress',
            'plain',
            '-o',
            'type=oci,dest=/strata/out,tar=false',
          ],
          {},
        );
        expect(res.code, res.stderr).toBe(0);
        expect(await chownOutcome(await umociUnpack(join(state, 'out'), 'latest', join(work, `chown-bundle-${uid}`)))).toEqual({
          chownBob: 1,
          chownApp: uid === 1000 ? 0 : 1,
          seenBob: `${uid}:${uid}`,
          bob: '0:0',
          byRoot: '0:0',
          byApp: '1000:1000',
        });
      }, 120_000);

      it(`uid ${uid}, --cap-drop ALL: a failing step fails as the step, stores nothing and leaves / as before the step`, async (ctx) => {
        gate(() => ctx.skip());
        const { scratch, state } = await scratchRootDirs(work, `fail-${uid}`, uid);
        await writeFile(join(state, 'Dockerfile'), `FROM ${base}\nRUN echo kept > /kept\nRUN echo partial > /partial && rm /etc/passwd && exit 3\n`);
        const sandbox = scratchRootSandbox(scratch, state, { dockerenv: true, caps: 'none', uid });
        const res = await runRestricted(sandbox, [CLI, 'build', '/strata', '--executor', 'inplace', '-t', 'failing:test', '--progress', 'plain'], {});
        expect(res.code).not.toBe(0);
        expect(res.stderr).toMatch(/Dockerfile:3: RUN .* exited with code 3/);
        // / is the stage's root as the failed step found it: the step before it is there, its own writes are not.
        expect(existsSync(join(scratch, 'kept'))).toBe(true);
        expect(existsSync(join(scratch, 'etc', 'passwd'))).toBe(true);
        expect(existsSync(join(scratch, 'partial'))).toBe(false);
        // (Asked from the host: the sandbox cannot be made again over the image's /bin.)
        const images = await strata(['images'], { STRATA_ROOT: join(state, 'store') });
        expect(images.code, images.stderr).toBe(0);
        expect(images.stdout).not.toContain('failing');
        expect((await readdir(join(state, 'tmp'))).filter((n) => n.startsWith('strata-run-rootfs'))).toEqual([]);
      }, 120_000);
    }
  });
});
