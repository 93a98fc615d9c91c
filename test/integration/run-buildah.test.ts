/**
 * RUN against buildah: each Dockerfile under testdata/run/<case>/ is built by strata with every
 * executor this machine supports and by `buildah bud --isolation chroot`; both images are unpacked
 * by umoci (as root, so owners are kept) and the root filesystems must be equal, apart from the
 * paths buildah leaks (BUILDAH_RUN_LEAKS, docs/buildah-differences.md), which strata must not write.
 *
 * Needs the built CLI (`make build`), root, buildah, umoci and docker-registry.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, type TestContext } from 'vitest';
import {
  BUILDAH_RUN_LEAKS,
  Buildah,
  describeOwnedTree,
  executorUnsupported,
  pushBusyboxBase,
  treeDifferences,
  umociUnpack,
  type OwnedEntry,
} from '../helpers/busybox-base.js';
import { REPO_ROOT, strata } from '../helpers/cli.js';
import { mountTable } from '../../src/internals.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeAsRoot, describeWithTools, needExecutor } from '../helpers/tools.js';

const EXECUTORS = ['chroot', 'bwrap', 'runc', 'crun', 'proot'] as const;
/**
 * crun refuses hosts whose cgroups are in hybrid mode (v1 controllers plus a v2 mount), which CI
 * machines often are; there it is skipped with strata's reason even under CI=true.
 */

interface Case {
  name: string;
  buildArgs?: Record<string, string>;
}

const CASES: Case[] = [{ name: 'files' }, { name: 'env', buildArgs: { FROM_CLI: 'from-the-command-line' } }, { name: 'multistage' }];

/** The uncompressed bytes of every gzip blob of an OCI layout, as text (tar headers hold the names). */
async function layerText(layout: string): Promise<string> {
  const dir = join(layout, 'blobs', 'sha256');
  const parts = await Promise.all(
    (await readdir(dir)).map(async (b) => {
      const bytes = await readFile(join(dir, b));
      return bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes).toString('latin1') : '';
    }),
  );
  return parts.join('');
}

const testdata = (name: string): string => join(REPO_ROOT, 'testdata', 'run', name);

describeAsRoot('RUN compared with buildah', () => {
  describeWithTools(['docker-registry', 'buildah', 'umoci'], 'RUN compared with buildah', () => {
    let registry: TestRegistry;
    let work: string;
    let base: string;
    let buildah: Buildah;
    const unsupported = new Map<string, string | undefined>();
    const reference = new Map<string, Promise<Record<string, OwnedEntry>>>();

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'strata-run-buildah-'));
      // bwrap runs a non-root USER's step as that uid, which must reach the private root inside
      // the store; a store under a 0700 directory is the separate (failing) test below.
      await chmod(work, 0o755);
      registry = await startRegistry();
      base = (await pushBusyboxBase(registry.host)).ref;
      buildah = new Buildah(join(work, 'buildah'));
      await Promise.all(EXECUTORS.map(async (e) => unsupported.set(e, await executorUnsupported(e, work))));
    }, 120_000);

    afterAll(async () => {
      await buildah?.cleanup();
      await registry?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    /** buildah's root filesystem for a case, built once and shared by the executors' tests. */
    function buildahTree(c: Case): Promise<Record<string, OwnedEntry>> {
      let tree = reference.get(c.name);
      if (tree === undefined) {
        tree = (async () => {
          const res = await buildah.bud(testdata(c.name), `run-${c.name}`, { buildArgs: { BASE: base, ...(c.buildArgs ?? {}) } });
          if (res.code !== 0) throw new Error(`buildah bud ${c.name} failed (${res.code}):\n${res.stderr}\n${res.stdout}`);
          const layout = join(work, `buildah-${c.name}`);
          await buildah.pushOci(`run-${c.name}`, layout);
          const tree = await describeOwnedTree(await umociUnpack(layout, 'latest', join(work, `buildah-${c.name}-bundle`)));
          for (const leak of BUILDAH_RUN_LEAKS) delete tree[leak];
          return tree;
        })();
        reference.set(c.name, tree);
      }
      return tree;
    }

    const needThisExecutor = (ctx: TestContext, executor: string): void => needExecutor(ctx, executor, unsupported.get(executor));

    for (const executor of EXECUTORS) {
      // Overlay RUN roots (the default as root), and for two executors also copied roots (STRATA_OVERLAY=off).
      const modes = executor === 'chroot' || executor === 'bwrap' ? (['overlay', 'copy'] as const) : (['overlay'] as const);
      for (const [c, mode] of CASES.flatMap((c) => modes.map((m) => [c, m] as const))) {
        it(`${c.name} with --executor ${executor} (${mode} roots) builds the same root filesystem as buildah`, async (ctx) => {
          needThisExecutor(ctx, executor);
          const tag = mode === 'overlay' ? 'main' : 'copy';
          const ours = await strataTree(c, executor, join(work, `store-${executor}-${mode}`), tag, mode === 'copy' ? { STRATA_OVERLAY: 'off' } : {});
          if (c.name === 'files') {
            // The deletions are whiteouts of lower layers; the replaced directory is opaque (or
            // whiteouts of each child it had).
            const tars = await layerText(join(work, `strata-${c.name}-${executor}-${tag}`));
            expect(tars).toContain('opt/.wh.gone');
            expect(tars).toContain('bin/.wh.vi');
            if (!tars.includes('opt/d/.wh..wh..opq')) {
              expect(tars).toContain('opt/d/.wh.a');
              expect(tars).toContain('opt/d/.wh.sub');
            }
          }
          for (const leak of BUILDAH_RUN_LEAKS) expect(ours[leak], `strata wrote /${leak}`).toBeUndefined();
          expect(treeDifferences(ours, await buildahTree(c))).toEqual([]);
        }, 120_000);
      }

      it(`a failing RUN with --executor ${executor} names the line and the exit code, and writes no image`, async (ctx) => {
        needThisExecutor(ctx, executor);
        const layout = join(work, `strata-failing-${executor}`);
        const store = join(work, `store-failing-${executor}`);
        // RUN roots go to TMPDIR: a private one shows what the failed build left there.
        const scratch = join(work, `tmp-failing-${executor}`);
        await mkdir(scratch, { mode: 0o755 });
        const res = await strata(
          [
            'build',
            testdata('failing'),
            '--executor',
            executor,
            '--build-arg',
            `BASE=${base}`,
            '--progress',
            'plain',
            '-t',
            'failing:test',
            '-o',
            `type=oci,dest=${layout},tar=false`,
          ],
          { STRATA_ROOT: store, TMPDIR: scratch },
        );
        expect(res.code).not.toBe(0);
        expect(res.stderr).toMatch(/Dockerfile:4\b/);
        // The failed step's overlay is unmounted and its root removed.
        expect(res.stderr).toContain('=> RUN roots: overlayfs');
        expect(mountTable().filter((m) => m.point.startsWith(scratch))).toEqual([]);
        expect(await readdir(scratch)).toEqual([]);
        expect(res.stderr).toMatch(/\b(exit|exited|status|code)\D{0,12}7\b/i);
        // The command's own output is repeated in the error.
        expect(res.stderr).toContain('about to fail');
        expect(res.stderr).not.toContain('never');
        expect(existsSync(layout)).toBe(false);
        const images = await strata(['images'], { STRATA_ROOT: store });
        expect(images.stdout).not.toContain('failing');
      }, 120_000);
    }

    /** Builds a case with strata, unpacks it and returns its tree, or the failed CLI result. */
    async function strataTree(c: Case, executor: string, store: string, tag: string, env: Record<string, string> = {}): Promise<Record<string, OwnedEntry>> {
      const layout = join(work, `strata-${c.name}-${executor}-${tag}`);
      const args = ['build', testdata(c.name), '--executor', executor, '--no-cache', '--progress', 'plain', '-o', `type=oci,dest=${layout},tar=false`];
      for (const [k, v] of Object.entries({ BASE: base, ...(c.buildArgs ?? {}) })) args.push('--build-arg', `${k}=${v}`);
      const res = await strata(args, { STRATA_ROOT: store, ...env });
      expect(res.code, res.stderr).toBe(0);
      // As root with CAP_SYS_ADMIN the roots are overlay mounts, unless turned off.
      expect(res.stderr).toContain(env.STRATA_OVERLAY === 'off' ? '=> RUN roots: copies' : '=> RUN roots: overlayfs');
      return describeOwnedTree(await umociUnpack(layout, 'latest', `${layout}-bundle`));
    }

    // BUG (src/build/handlers/copy.ts): COPY --from=STAGE resets owners to 0:0. Expected: without
    // --chown, files copied from another stage or an image keep their uid/gid, as in docker since
    // moby#38599, BuildKit and buildah; only files from the build context become 0:0.
    it('COPY --from keeps the owners a RUN gave files in the other stage, as buildah does', async () => {
      const c: Case = { name: 'copy-from-owners' };
      const ours = await strataTree(c, 'chroot', join(work, 'store-chroot'), 'owners');
      expect(treeDifferences(ours, await buildahTree(c))).toEqual([]);
    }, 120_000);

    // BUG (src/build/users.ts resolveExecUser, or the executors): a named USER's step runs without
    // its primary group among the supplementary groups, so `id` prints no `groups=1000(app)`.
    // Expected, as docker (moby#27028, image-spec#1011 show `groups=` with the primary gid) and
    // buildah: supplementary groups = [primary gid, then the groups listing the user].
    it('a USER step has the primary group among its supplementary groups, as with buildah', async () => {
      const c: Case = { name: 'user-groups' };
      const ours = await strataTree(c, 'chroot', join(work, 'store-chroot'), 'groups');
      expect(treeDifferences(ours, await buildahTree(c))).toEqual([]);
    }, 120_000);

    // BUG (src/exec/bwrap.ts): as root, bwrap runs a step whose USER is not root as that uid
    // (spawn uid/gid), so the private root inside the store must be reachable by it. With the
    // default store (~/.local/share/strata, under /root, mode 0700) or any store below a 0700
    // directory, `USER app` + RUN fails with "Can't find source path ...: Permission denied".
    // Expected: the step runs as docker's would (for instance bwrap started as root with
    // --unshare-user --uid/--gid, or the private root placed where the uid can reach it).
    it('bwrap runs a USER app step when the store is under a 0700 directory', async (ctx) => {
      needThisExecutor(ctx, 'bwrap');
      const privateDir = await mkdtemp(join(tmpdir(), 'strata-run-0700-'));
      try {
        const ours = await strataTree(CASES[1]!, 'bwrap', join(privateDir, 'store'), 'private');
        expect(treeDifferences(ours, await buildahTree(CASES[1]!))).toEqual([]);
      } finally {
        await rm(privateDir, { recursive: true, force: true });
      }
    }, 120_000);

    it('buildah fails the same Dockerfile too (the case is a real failure)', async () => {
      const res = await buildah.bud(testdata('failing'), 'run-failing', { buildArgs: { BASE: base } });
      expect(res.code).not.toBe(0);
    }, 120_000);
  });
});
