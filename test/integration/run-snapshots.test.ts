/**
 * RUN roots from the store's unpacked bases (STRATA_SNAPSHOTS): the first build unpacks the busybox base into
 * `cache/unpacked` and runs its steps in a copy; later builds start from that tree without reading the base; a step
 * never writes into it; a damaged tree is noticed and made again; and the images are the same file by file with
 * snapshots on and off, and the same as buildah's.
 *
 * Needs the built CLI, root, buildah, umoci and docker-registry.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BUILDAH_RUN_LEAKS, Buildah, describeOwnedTree, pushBusyboxBase, treeDifferences, umociUnpack, type OwnedEntry } from '../helpers/busybox-base.js';
import { UnpackedStore, currentOwner, unpackedDir } from '../../src/internals.js';
import { REPO_ROOT, strata } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeAsRoot, describeWithTools } from '../helpers/tools.js';

const CONTEXT = join(REPO_ROOT, 'testdata', 'run', 'snapshots');

describeAsRoot('RUN on unpacked bases kept in the store', () => {
  describeWithTools(['docker-registry', 'buildah', 'umoci'], 'RUN on unpacked bases kept in the store', () => {
    let registry: TestRegistry;
    let work: string;
    let base: string;
    let n = 0;

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'strata-run-snapshots-'));
      await chmod(work, 0o755);
      registry = await startRegistry();
      base = (await pushBusyboxBase(registry.host)).ref;
    }, 120_000);

    afterAll(async () => {
      await registry?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    async function build(store: string, snapshots: string, step: string): Promise<{ tree: Record<string, OwnedEntry>; stderr: string }> {
      n += 1;
      const layout = join(work, `out-${n}`);
      const res = await strata(
        [
          'build',
          CONTEXT,
          '--executor',
          'chroot',
          '--build-arg',
          `BASE=${base}`,
          '--build-arg',
          `STEP=${step}`,
          '--progress',
          'plain',
          '-o',
          `type=oci,dest=${layout},tar=false`,
        ],
        { STRATA_ROOT: store, STRATA_SNAPSHOTS: snapshots, SOURCE_DATE_EPOCH: '1700000000' },
      );
      expect(res.code, `strata build failed:\n${res.stderr}`).toBe(0);
      return { tree: await describeOwnedTree(await umociUnpack(layout, 'latest', `${layout}-bundle`)), stderr: res.stderr };
    }

    async function unpackedTrees(store: string): Promise<string[]> {
      const dir = join(store, 'cache', 'unpacked');
      return existsSync(dir) ? (await readdir(dir)).filter((name) => !name.startsWith('.')) : [];
    }

    it("gives the same image with snapshots on and off, and buildah's; steps never write into the kept tree; a damaged tree is made again", async () => {
      const on = join(work, 'store-on');
      const first = await build(on, '3', 'one');
      const kept = await unpackedTrees(on);
      expect(kept).toHaveLength(1);
      const root = join(on, 'cache', 'unpacked', kept[0] ?? '', 'root');
      // The steps ran in a copy: the kept tree is the base as it was.
      expect(existsSync(join(root, 'work'))).toBe(false);
      expect(existsSync(join(root, 'etc', 'group'))).toBe(true);
      // The build held the tree while it ran (no other build's prune could remove it) and let go when it ended.
      expect(await readdir(join(on, 'cache', 'unpacked', '.users'))).toEqual([]);

      const off = await build(join(work, 'store-off'), '0', 'one');
      expect(await unpackedTrees(join(work, 'store-off'))).toEqual([]);
      expect(treeDifferences(first.tree, off.tree, ['snapshots on', 'snapshots off'])).toEqual([]);

      // Another build on the same base starts from the kept tree (a changed ARG, so the steps run again).
      const second = await build(on, '3', 'two');
      expect(second.tree['work/ran']).toMatchObject({ content: 'two\nsecond\n' });
      expect(await unpackedTrees(on)).toEqual(kept);

      // Damage the kept tree: it no longer matches its stat data, so it is thrown away and unpacked again.
      await writeFile(join(root, 'etc', 'intruder'), 'not from the base\n');
      const third = await build(on, '3', 'three');
      expect(third.tree['etc/intruder']).toBeUndefined();
      expect(existsSync(join(root, 'etc', 'intruder'))).toBe(false);
      expect(third.tree['work/ran']).toMatchObject({ content: 'three\nsecond\n' });

      const buildah = new Buildah(join(work, 'buildah'));
      try {
        const res = await buildah.bud(CONTEXT, 'snapshots', { buildArgs: { BASE: base, STEP: 'one' } });
        if (res.code !== 0) throw new Error(`buildah bud failed (${res.code}):\n${res.stderr}\n${res.stdout}`);
        const layout = join(work, 'buildah-out');
        await buildah.pushOci('snapshots', layout);
        const theirs = await describeOwnedTree(await umociUnpack(layout, 'latest', `${layout}-bundle`));
        for (const leak of BUILDAH_RUN_LEAKS) delete theirs[leak];
        expect(treeDifferences(first.tree, theirs)).toEqual([]);
      } finally {
        await buildah.cleanup();
      }
    }, 240_000);

    it('strata df counts the unpacked bases and strata prune --all removes them, except one a live process holds', async () => {
      const store = join(work, 'store-prune');
      await build(store, '3', 'one');
      const [key] = await unpackedTrees(store);
      const df = async (): Promise<{ count: number; bytes: number }> => {
        const res = await strata(['df', '--format', 'json'], { STRATA_ROOT: store });
        expect(res.code, res.stderr).toBe(0);
        return (JSON.parse(res.stdout) as { unpacked: { count: number; bytes: number } }).unpacked;
      };
      const before = await df();
      expect(before.count).toBe(1);
      // The busybox base's files: more than the binary, less than a few MiB.
      expect(before.bytes).toBeGreaterThan(500_000);
      expect(before.bytes).toBeLessThan(8 * 1024 * 1024);

      // This test process holds the tree, as a running build would: prune leaves it.
      const held = await new UnpackedStore(unpackedDir(store), 3, currentOwner()).get(key!);
      expect(held).toBeDefined();
      expect((await strata(['prune', '--all'], { STRATA_ROOT: store })).code).toBe(0);
      expect(await unpackedTrees(store)).toEqual([key]);

      await held!.release();
      expect((await strata(['prune', '--all'], { STRATA_ROOT: store })).code).toBe(0);
      expect(await unpackedTrees(store)).toEqual([]);
      expect(await df()).toEqual({ count: 0, bytes: 0 });
    }, 120_000);
  });
});
