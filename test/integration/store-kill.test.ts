import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI, REPO_ROOT, ok, strata } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWithTools } from '../helpers/tools.js';

/**
 * kill -9 at random points of build, append, push and pull on one store, 20 rounds: after each, the
 * next command leaves no temp file, lease, scratch directory or secret of the killed process, the store
 * verifies, and running the command again gives the digest an undisturbed run gave.
 */
const ROUNDS = Number(process.env.STRATA_KILL_ROUNDS ?? '20');
const EPOCH = '1700000000';

let work: string;
let registry: TestRegistry;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-kill-'));
  registry = await startRegistry();
}, 60_000);

afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Starts `strata args`, kills it with SIGKILL after `ms`, and waits for it to be gone. Returns its pid. */
async function killAfter(args: string[], env: Record<string, string>, ms: number): Promise<number> {
  const child = spawn(CLI, args, { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, cwd: REPO_ROOT, stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await sleep(ms);
  child.kill('SIGKILL');
  await exited;
  return child.pid!;
}

describeWithTools(['docker-registry'], 'kill -9 in the middle', () => {
  it(`leaves a store that verifies, no leftovers after the next command, and the same digests (${ROUNDS} rounds)`, async () => {
    const store = join(work, 'store');
    const scratch = join(work, 'scratch');
    await mkdir(scratch);
    const env = { STRATA_ROOT: store, SOURCE_DATE_EPOCH: EPOCH, TMPDIR: scratch, TOKEN: 's3cr3t-value' };

    const big = join(work, 'big');
    await mkdir(big);
    await writeFile(join(big, 'data.bin'), randomBytes(8 * 1024 * 1024));
    const ctx = join(work, 'ctx');
    await mkdir(ctx);
    await writeFile(join(ctx, 'data.bin'), randomBytes(6 * 1024 * 1024));
    await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY data.bin /data.bin\n');
    const base = `${registry.host}/kill/base:1`;
    const pushed = `${registry.host}/kill/pushed:1`;
    ok(await strata(['append', '--layer', big, '-o', `docker://${base}`], { STRATA_ROOT: join(work, 'seed'), SOURCE_DATE_EPOCH: EPOCH }));

    const commands: Record<string, string[]> = {
      build: ['build', '--no-cache', '--secret', 'id=tok,env=TOKEN', '-t', 'killed-build', ctx],
      append: ['append', '--layer', big, '-t', 'killed-append'],
      pull: ['pull', base],
      push: ['push', 'killed-append', `docker://${pushed}`],
    };
    // What an undisturbed run gives, from a store of its own.
    const expected: Record<string, string> = {};
    const clean = { ...env, STRATA_ROOT: join(work, 'clean') };
    const took: Record<string, number> = {};
    for (const op of ['build', 'append', 'pull', 'push']) {
      const started = Date.now();
      expected[op] = ok(await strata(commands[op]!, clean));
      took[op] = Date.now() - started;
    }
    ok(await strata(commands.append!, env));

    const ops = Object.keys(commands);
    let interrupted = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const op = ops[round % ops.length]!;
      // Anywhere from the start-up to the end of what an undisturbed run took.
      const pid = await killAfter(commands[op]!, env, Math.floor((0.3 + Math.random() * 0.7) * took[op]!));
      const left = [...(await readdir(join(store, 'tmp', 'blobs')).catch(() => [])), ...(await readdir(join(store, 'leases')).catch(() => []))];
      if (left.some((n) => n.includes(`${pid}.`))) interrupted++;

      // The next command (any) removes what the killed one left; the store is whole.
      const verified = await strata(['verify'], env);
      expect(verified.code, `round ${round} (${op}): ${verified.stdout}${verified.stderr}`).toBe(0);
      const mine = (names: string[]): string[] => names.filter((n) => n.includes(`${pid}.`));
      expect(await readdir(join(store, 'tmp', 'blobs')).catch(() => []), `round ${round} (${op})`).toEqual([]);
      expect(mine(await readdir(join(store, 'tmp')).catch(() => [])), `round ${round} (${op})`).toEqual([]);
      expect(mine(await readdir(join(store, 'leases')).catch(() => [])), `round ${round} (${op})`).toEqual([]);
      expect(mine(await readdir(join(store, 'oci'))), `round ${round} (${op})`).toEqual([]);
      expect(mine(await readdir(scratch)), `round ${round} (${op})`).toEqual([]);
      expect(mine(await readdir('/dev/shm').catch(() => [])), `round ${round} (${op})`).toEqual([]);

      expect(ok(await strata(commands[op]!, env)), `round ${round} (${op}) rerun`).toBe(expected[op]);
    }
    expect(ok(await strata(['verify'], env))).toMatch(/all good/);
    process.stderr.write(`kill -9: ${ROUNDS} rounds, ${interrupted} killed while holding a temp blob or a lease\n`);
  }, 600_000);
});
