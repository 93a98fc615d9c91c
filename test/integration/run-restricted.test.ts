/**
 * RUN where CI runs: strata inside the restricted sandboxes of test/helpers/restricted.ts (no user namespaces, no
 * mount, no capabilities; uid 0 and uid 1000) builds testdata/run/restricted with its default flags, `auto` picks
 * proot there, and the image equals buildah's (`--isolation chroot`, on the host) file by file, owners included.
 *
 * What cannot be kept there is left out of that Dockerfile and written down in docs/ARCHITECTURE.md: a chown to a
 * third user (no CAP_CHOWN) and `RUN --network=none` (no network namespace).
 */
import { chown, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BUILDAH_RUN_LEAKS, type Buildah, describeOwnedTree, treeDifferences, umociUnpack, type OwnedEntry } from '../helpers/busybox-base.js';
import { CLI, REPO_ROOT } from '../helpers/cli.js';
import { RESTRICTED_SANDBOXES, chownOutcome, runRestricted, strataRestricted, restrictedSuite, buildahReference } from '../helpers/restricted.js';
import { describeAsRoot, describeWithTools } from '../helpers/tools.js';

const CONTEXT = join(REPO_ROOT, 'testdata', 'run', 'restricted');
const CHOWN_CONTEXT = join(REPO_ROOT, 'testdata', 'run', 'chown-unprivileged');
const SECRET = 'restricted-secret-value-0123456789';

describeAsRoot('RUN in a restricted CI sandbox', () => {
  describeWithTools(['docker-registry', 'buildah', 'umoci', 'bwrap', 'setpriv', 'proot'], 'RUN in a restricted CI sandbox', () => {
    const suite = restrictedSuite('strata-restricted-', 'restricted sandbox');
    const gate = suite.gate;
    let work: string;
    let base: string;
    let buildah: Buildah;
    let reference: Record<string, OwnedEntry>;

    beforeAll(async () => {
      if (suite.unavailable !== undefined) return;
      ({ work, base } = suite);
      const secret = join(work, 'secret');
      await writeFile(secret, SECRET, { mode: 0o600 });
      ({ buildah, reference } = await buildahReference(work, CONTEXT, 'restricted', {
        buildArgs: { BASE: base },
        extra: ['--secret', `id=tok,src=${secret}`],
        // buildah also leaves the parents of mount targets it made (/run/secrets, /var/cache); strata removes
        // them, as with any executor (run-buildah.test.ts compares no mount case for that reason).
        leaks: [...BUILDAH_RUN_LEAKS, 'run/secrets', 'var', 'var/cache'],
      }));
    }, 180_000);

    afterAll(async () => {
      await buildah?.cleanup();
    });

    /** A directory the sandbox's uid owns, with the secret file in it. */
    async function sandboxDir(name: string, uid: number): Promise<{ dir: string; secret: string }> {
      const dir = join(work, name);
      await mkdir(dir, { recursive: true });
      const secret = join(dir, 'secret');
      await writeFile(secret, SECRET, { mode: 0o600 });
      await chown(dir, uid, uid);
      await chown(secret, uid, uid);
      return { dir, secret };
    }

    for (const sandbox of RESTRICTED_SANDBOXES) {
      it(`${sandbox.name}: auto picks proot, says why the others cannot run, and the image equals buildah's`, async (ctx) => {
        gate(() => ctx.skip());
        const { dir, secret } = await sandboxDir(sandbox.name, sandbox.uid);
        const layout = join(dir, 'out');
        const res = await strataRestricted(
          sandbox,
          [
            'build',
            CONTEXT,
            '--build-arg',
            `BASE=${base}`,
            '--secret',
            `id=tok,src=${secret}`,
            '--progress',
            'plain',
            '-o',
            `type=oci,dest=${layout},tar=false`,
          ],
          { HOME: dir, STRATA_ROOT: join(dir, 'store'), TMPDIR: dir },
        );
        expect(res.code, res.stderr).toBe(0);
        expect(res.stderr).toMatch(/^=> executor proot \(bwrap cannot run here, runc cannot run here, chroot cannot run here\)$/m);
        expect(res.stderr).not.toContain(SECRET);
        const ours = await describeOwnedTree(await umociUnpack(layout, 'latest', join(dir, 'bundle')));
        expect(treeDifferences(ours, reference)).toEqual([]);
      }, 180_000);
    }

    // Pinned, as docs/ARCHITECTURE.md writes it down: a chown to another user is never kept (buildah records bob and
    // app). The step sees it fail where strata's own user namespace maps no such id (EINVAL: bwrap-uid0, and bob
    // under bwrap-uid1000, where app is the invoking uid itself), and succeed where proot fakes the EPERM of a root
    // with no CAP_CHOWN (setpriv-uid0); either way it sees its files as root's and the layer records the step's user.
    const chownExits: Record<string, [number, number]> = { 'bwrap-uid0': [1, 1], 'bwrap-uid1000': [1, 0], 'setpriv-uid0': [0, 0] };
    for (const sandbox of RESTRICTED_SANDBOXES) {
      it(`${sandbox.name}: proot keeps no chown to another user, as documented`, async (ctx) => {
        gate(() => ctx.skip());
        const { dir } = await sandboxDir(`chown-${sandbox.name}`, sandbox.uid);
        const layout = join(dir, 'out');
        const res = await strataRestricted(
          sandbox,
          ['build', CHOWN_CONTEXT, '--build-arg', `BASE=${base}`, '--progress', 'plain', '-o', `type=oci,dest=${layout},tar=false`],
          { HOME: dir, STRATA_ROOT: join(dir, 'store'), TMPDIR: dir },
        );
        expect(res.code, res.stderr).toBe(0);
        const [chownBob, chownApp] = chownExits[sandbox.name]!;
        expect(await chownOutcome(await umociUnpack(layout, 'latest', join(dir, 'bundle')))).toEqual({
          chownBob,
          chownApp,
          seenBob: '0:0',
          bob: '0:0',
          byRoot: '0:0',
          byApp: '1000:1000',
        });
      }, 120_000);
    }

    it('bwrap-uid0: the executors named as available are the ones that work there', async (ctx) => {
      gate(() => ctx.skip());
      const { dir } = await sandboxDir('named', 0);
      await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\nRUN true\n');
      const res = await strataRestricted(
        RESTRICTED_SANDBOXES[0]!,
        ['build', dir, '--executor', 'chroot', '--progress', 'plain', '-o', `type=oci,dest=${join(dir, 'out')},tar=false`],
        {
          HOME: dir,
          STRATA_ROOT: join(dir, 'store'),
          TMPDIR: dir,
        },
      );
      expect(res.code).not.toBe(0);
      // Refused up front as a sandbox that cannot be set up, never as the step's own failure.
      expect(res.stderr).toContain('executor chroot cannot run here');
      expect(res.stderr).not.toMatch(/exited with code/);
      expect(res.stderr).toMatch(/executors available on this machine: proot$/m);
    }, 60_000);

    it('a step proot cannot trace (ptrace refused by seccomp) names the cause and the executors left, and stores nothing', async (ctx) => {
      gate(() => ctx.skip());
      const { dir } = await sandboxDir('noptrace', 0);
      await writeFile(join(dir, 'Dockerfile'), `FROM ${base}\nRUN echo hi > /hi\n`);
      await writeFile(join(dir, 'noptrace.bpf'), noPtraceFilter());
      const store = join(dir, 'store');
      // bwrap reads the seccomp program from fd 3: a filter that fails ptrace with EPERM, as a strict profile does.
      const res = await runRestricted(
        {
          name: 'bwrap-uid0',
          uid: 0,
          wrap: (argv) => [
            'sh',
            '-c',
            'exec "$@" 3<"$0"',
            join(dir, 'noptrace.bpf'),
            'bwrap',
            '--bind',
            '/',
            '/',
            '--dev',
            '/dev',
            '--proc',
            '/proc',
            '--unshare-pid',
            '--seccomp',
            '3',
            '--',
            ...argv,
          ],
        },
        [CLI, 'build', dir, '--executor', 'proot', '-t', 'noptrace:test', '--progress', 'plain'],
        { PATH: process.env.PATH, HOME: dir, STRATA_ROOT: store, TMPDIR: dir },
      );
      expect(res.code).not.toBe(0);
      expect(res.stderr).toMatch(/proot cannot trace processes here: ptrace\(TRACEME\): Operation not permitted/);
      expect(res.stderr).toMatch(/executors available on this machine: (bwrap|runc|chroot)/);
      expect(res.stderr).not.toMatch(/exited with code/);
      const images = await runRestricted({ name: 'setpriv-uid0', uid: 0, wrap: (argv) => [...argv] }, [CLI, 'images'], {
        PATH: process.env.PATH,
        STRATA_ROOT: store,
      });
      expect(images.stdout).not.toContain('noptrace');
    }, 60_000);
  });
});

/** A classic-BPF seccomp program for x86_64: ptrace fails with EPERM, everything else is allowed. */
function noPtraceFilter(): Buffer {
  const AUDIT_ARCH_X86_64 = 0xc000003e;
  const NR_PTRACE = 101;
  const program: Array<[number, number, number, number]> = [
    [0x20, 0, 0, 4], // ld arch
    [0x15, 0, 3, AUDIT_ARCH_X86_64], // not x86_64: allow
    [0x20, 0, 0, 0], // ld nr
    [0x15, 0, 1, NR_PTRACE],
    [0x06, 0, 0, 0x00050001], // SECCOMP_RET_ERRNO | EPERM
    [0x06, 0, 0, 0x7fff0000], // SECCOMP_RET_ALLOW
  ];
  const out = Buffer.alloc(program.length * 8);
  program.forEach(([code, jt, jf, k], i) => {
    out.writeUInt16LE(code, i * 8);
    out.writeUInt8(jt, i * 8 + 2);
    out.writeUInt8(jf, i * 8 + 3);
    out.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return out;
}
