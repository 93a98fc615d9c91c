/**
 * A step dies with strata: strata killed by SIGKILL in the middle of a RUN (no chance to clean up) leaves nothing
 * of the step running, whatever the executor. bwrap dies with its parent (--die-with-parent), chroot's unshare by
 * setpriv's parent death signal, proot's tracer by a watchdog that kills its process group. For runc (and crun,
 * the same code) the watchdog also kills and deletes the container: no container is left in the runtime's state
 * directory, its cgroup is gone, and so is the bundle.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { executorUnsupported, pushBusyboxBase } from '../helpers/busybox-base.js';
import { CLI, strata, tool } from '../helpers/cli.js';
import { mountTable } from '../../src/internals.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeAsRoot, describeWithTools, needExecutor } from '../helpers/tools.js';

const EXECUTORS = ['bwrap', 'chroot', 'proot', 'runc', 'crun'] as const;
const RUNTIMES: ReadonlySet<string> = new Set(['runc', 'crun']);

describeAsRoot('RUN when strata is killed', () => {
  describeWithTools(['docker-registry', 'bwrap', 'runc'], 'RUN when strata is killed', () => {
    let registry: TestRegistry;
    let work: string;
    let base: string;
    const unsupported = new Map<string, string | undefined>();

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'strata-run-kill-'));
      registry = await startRegistry();
      base = (await pushBusyboxBase(registry.host)).ref;
      await Promise.all(EXECUTORS.map(async (e) => unsupported.set(e, await executorUnsupported(e, work))));
    }, 60_000);

    afterAll(async () => {
      await registry?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    for (const executor of EXECUTORS) {
      it(`strata killed by SIGKILL mid-step (${executor}): nothing of the step keeps running`, async (ctx) => {
        needExecutor(ctx, executor, unsupported.get(executor));
        const marker = 2000 + Math.floor(Math.random() * 5000);
        const dir = join(work, executor);
        const temp = join(dir, 'tmp');
        await mkdir(temp, { recursive: true });
        await writeFile(join(dir, 'Dockerfile'), `FROM ${base}\nRUN sleep ${marker} & sleep ${marker + 1}\n`);
        const child = spawn(CLI, ['build', dir, '--executor', executor, '--progress', 'plain', '-o', `type=oci,dest=${join(dir, 'out')},tar=false`], {
          env: { PATH: process.env.PATH, HOME: process.env.HOME, STRATA_ROOT: join(dir, 'store'), TMPDIR: temp },
          stdio: 'ignore',
        });
        const exited = new Promise((resolve) => child.once('exit', resolve));
        // Wait until the step runs, then kill strata (the launcher execs Node: the same pid) with no chance to clean up.
        const step = ['sleep', String(marker + 1)];
        for (let i = 0; i < 200 && (await processesRunning(step)).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
        const running = await processesRunning(step);
        expect(running).not.toEqual([]);
        const container = RUNTIMES.has(executor) ? await runtimeContainer(executor, temp, running[0]!) : undefined;
        child.kill('SIGKILL');
        await exited;
        let left: string[] = [];
        for (let i = 0; i < 50; i++) {
          left = [...(await processesRunning(['sleep', String(marker)])), ...(await processesRunning(step))];
          if (left.length === 0) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        expect(left, 'step processes outlived strata').toEqual([]);
        // An overlay RUN root stays mounted after a kill -9 (no process is left to unmount it): the next command's
        // sweep of dead owners' leftovers unmounts it and removes its directory.
        await strata(['images'], { HOME: process.env.HOME, STRATA_ROOT: join(dir, 'store'), TMPDIR: temp });
        expect(
          mountTable().filter((m) => m.point.startsWith(`${temp}/`)),
          'a RUN root stayed mounted',
        ).toEqual([]);
        if (container === undefined) return;
        // The watchdog deletes the container after the kill, then its files.
        for (let i = 0; i < 50 && existsSync(container.state); i++) await new Promise((r) => setTimeout(r, 100));
        // Nor the bundle, with the state directory in it, nor the step's /etc/hosts and resolv.conf (`strata-run-XXXXXX`).
        const leftovers = (await readdir(temp)).filter((n) => n.startsWith(`strata-${executor}-`) || /^strata-run-[^-]{6}$/.test(n));
        expect(leftovers, 'the bundle outlived strata').toEqual([]);
        expect(
          container.cgroups.filter((c) => existsSync(c)),
          "the container's cgroups outlived strata",
        ).toEqual([]);
        // Asked last: `list` makes its root directory again when it is missing.
        const list = await tool(executor, ['--root', container.state, 'list', '-q']);
        expect(list.stdout.trim(), 'a container outlived strata').toBe('');
      }, 60_000);
    }
  });
});

/** The runtime's state directory (in strata's temp dir) and the cgroup directories of the step's process. */
async function runtimeContainer(runtime: string, temp: string, pid: string): Promise<{ state: string; cgroups: string[] }> {
  const bundle = (await readdir(temp)).find((n) => n.startsWith(`strata-${runtime}-`));
  expect(bundle, `no ${runtime} bundle in ${temp}`).toBeDefined();
  const state = join(temp, bundle!, 'state');
  const list = await tool(runtime, ['--root', state, 'list', '-q']);
  expect(list.stdout.trim()).toMatch(/^strata-[0-9a-f]+$/);
  // cgroup v1 lines are `N:controllers:/path`, v2 `0::/path`; the container's own directory is not the root.
  const cgroups = (await readFile(`/proc/${pid}/cgroup`, 'utf8'))
    .split('\n')
    .map((line) => /^\d+:([^:]*):(\/.+)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null && m[2] !== '/')
    .flatMap((m) => (m[1] === '' ? ['unified', ''] : [m[1]!.split(',')[0]!.replace(/^name=/, '')]).map((dir) => join('/sys/fs/cgroup', dir, m[2]!)))
    .filter((dir) => dir !== '/sys/fs/cgroup' && existsSync(dir));
  expect(cgroups, 'the container has no cgroup of its own').not.toEqual([]);
  return { state, cgroups };
}

/** Pids of processes running exactly `argv` (from /proc/PID/cmdline). */
async function processesRunning(argv: string[]): Promise<string[]> {
  const wanted = `${argv.join('\0')}\0`;
  const found: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue;
    if ((await readFile(join('/proc', pid, 'cmdline'), 'utf8').catch(() => '')) === wanted) found.push(pid);
  }
  return found;
}
