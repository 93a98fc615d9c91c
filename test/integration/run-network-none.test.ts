/**
 * `RUN --network=none` under the executors with no sandbox of their own (proot, inplace): the step gets a network
 * namespace (loopback only) where strata can make one, and is refused in one line naming the Dockerfile line and
 * why where it cannot.
 *
 * - proot as root on the host (`unshare -n`, CAP_SYS_ADMIN) is covered by exec-executors.test.ts; here proot as
 *   uid 1000 on the host (a user namespace with no id mapping) and in the bwrap-uid0 restricted sandbox (no
 *   capability, no user namespaces: refused).
 * - inplace with no capabilities in a scratch-root sandbox, as uid 1000 with user namespaces allowed (`unshare -r
 *   -n`) and as uid 0 with them off (refused).
 */
import { chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { umociUnpack } from '../helpers/busybox-base.js';
import { CLI, strata, type CliResult } from '../helpers/cli.js';
import { RESTRICTED_SANDBOXES, runRestricted, scratchRootDirs, scratchRootSandbox, strataRestricted, restrictedSuite } from '../helpers/restricted.js';
import { describeAsRoot, describeWithTools } from '../helpers/tools.js';

describeAsRoot('RUN --network=none without a sandbox', () => {
  describeWithTools(['docker-registry', 'umoci', 'bwrap', 'setpriv', 'proot', 'unshare'], 'RUN --network=none without a sandbox', () => {
    const suite = restrictedSuite('strata-network-none-', 'RUN --network=none without a sandbox');
    const gate = suite.gate;
    let work: string;
    let base: string;
    let hostInterfaces: number;

    beforeAll(async () => {
      if (suite.unavailable !== undefined) return;
      ({ work, base } = suite);
      hostInterfaces = interfaces(await readFile('/proc/net/dev', 'utf8'));
    });

    /** A context whose line 3 asks for no network; the host's interfaces are counted by the step after it. */
    async function context(name: string, uid: number): Promise<string> {
      const dir = join(work, name);
      await mkdir(join(dir, 'tmp'), { recursive: true });
      await writeFile(
        join(dir, 'Dockerfile'),
        `FROM ${base}\n# no network\nRUN --network=none tail -n +3 /proc/net/dev | wc -l > /ifaces-none && cat /proc/net/dev\nRUN tail -n +3 /proc/net/dev | wc -l > /ifaces-host\n`,
      );
      for (const d of [dir, join(dir, 'tmp')]) await chown(d, uid, uid);
      return dir;
    }

    /** The two counts the build's image holds. */
    async function counted(layout: string, bundle: string): Promise<{ none: number; host: number }> {
      const rootfs = await umociUnpack(layout, 'latest', bundle);
      const read = async (name: string): Promise<number> => Number((await readFile(join(rootfs, name), 'utf8')).trim());
      return { none: await read('ifaces-none'), host: await read('ifaces-host') };
    }

    const refusedAt = (res: CliResult, executor: string): void => {
      expect(res.code).not.toBe(0);
      expect(res.stderr).toMatch(
        new RegExp(
          `^strata: \\S*Dockerfile:3: the ${executor} executor cannot take the network away from this step: no network namespace can be made here \\(.*\\); it needs .*$`,
          'm',
        ),
      );
      expect(res.stderr).not.toMatch(/exited with code/);
    };

    it('proot as uid 1000 on the host: the step has loopback only, in a user namespace', async (ctx) => {
      gate(() => ctx.skip());
      const dir = await context('proot-uid1000', 1000);
      const args = ['build', dir, '--executor', 'proot', '--progress', 'plain', '-o', `type=oci,dest=${join(dir, 'out')},tar=false`];
      const res = await strata(args, { HOME: dir, STRATA_ROOT: join(dir, 'store'), TMPDIR: join(dir, 'tmp') }, { uid: 1000 });
      expect(res.code, res.stderr).toBe(0);
      const seen = await counted(join(dir, 'out'), join(work, 'proot-bundle'));
      expect(seen.none).toBe(1);
      expect(seen.host).toBe(hostInterfaces);
    }, 60_000);

    it('proot in the bwrap-uid0 restricted sandbox (no capability, no user namespaces): refused in one line', async (ctx) => {
      gate(() => ctx.skip());
      const dir = await context('proot-restricted', 0);
      const res = await strataRestricted(RESTRICTED_SANDBOXES[0]!, ['build', dir, '--executor', 'proot', '--progress', 'plain'], {
        HOME: dir,
        STRATA_ROOT: join(dir, 'store'),
        TMPDIR: join(dir, 'tmp'),
      });
      refusedAt(res, 'proot');
    }, 60_000);

    it('inplace as uid 1000 with no capabilities: the step has loopback only, in a user namespace', async (ctx) => {
      gate(() => ctx.skip());
      const { scratch, state } = await scratchRootDirs(work, 'inplace-uid1000', 1000);
      await writeFile(join(state, 'Dockerfile'), await readFile(join(await context('inplace-ctx', 1000), 'Dockerfile')));
      const res = await runRestricted(
        scratchRootSandbox(scratch, state, { dockerenv: true, caps: 'none', uid: 1000, userns: true }),
        [CLI, 'build', '/strata', '--executor', 'inplace', '--progress', 'plain', '-o', 'type=oci,dest=/strata/out,tar=false'],
        {},
      );
      expect(res.code, res.stderr).toBe(0);
      const seen = await counted(join(state, 'out'), join(work, 'inplace-bundle'));
      expect(seen.none).toBe(1);
      expect(seen.host).toBe(hostInterfaces);
    }, 60_000);

    it('inplace as uid 0 with no capabilities and no user namespaces: refused in one line', async (ctx) => {
      gate(() => ctx.skip());
      const { scratch, state } = await scratchRootDirs(work, 'inplace-uid0', 0);
      await writeFile(join(state, 'Dockerfile'), await readFile(join(await context('inplace-ctx0', 0), 'Dockerfile')));
      const res = await runRestricted(
        scratchRootSandbox(scratch, state, { dockerenv: true, caps: 'none', uid: 0 }),
        [CLI, 'build', '/strata', '--executor', 'inplace', '--progress', 'plain'],
        {},
      );
      refusedAt(res, 'inplace');
    }, 60_000);
  });
});

/** The lines of /proc/net/dev after its two header lines: one per interface. */
function interfaces(text: string): number {
  return text
    .split('\n')
    .slice(2)
    .filter((line) => line.trim() !== '').length;
}
