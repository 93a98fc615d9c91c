import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { strata, tool, type CliResult } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWithTools } from '../helpers/tools.js';

/**
 * Eight processes at a time on one store: builds, appends (some on another worker's image, which that
 * worker may be removing), pulls, tags and rmi. Afterwards every name a successful command wrote is
 * listed, none a successful rmi removed, every blob hashes to its name, and every image copies to an
 * OCI layout that skopeo reads whole. STRATA_STRESS_SECONDS sets how long the workers run (default 15;
 * 60 by hand).
 */
const SECONDS = Number(process.env.STRATA_STRESS_SECONDS ?? '15');
const WORKERS = 8;
const MIN_OPS = 3;
const EPOCH = '1700000000';

let work: string;
let registry: TestRegistry;
let store: string;
let base: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-stress-'));
  registry = await startRegistry();
  store = join(work, 'store');
  const seed = join(work, 'seed');
  await mkdir(seed);
  await writeFile(join(seed, 'base.txt'), 'base\n');
  base = `${registry.host}/stress/base:1`;
  const made = await strata(['append', '--layer', seed, '-o', `docker://${base}`], { STRATA_ROOT: join(work, 'seed-store'), SOURCE_DATE_EPOCH: EPOCH });
  if (made.code !== 0) throw new Error(made.stderr);
}, 60_000);

afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

interface Outcome {
  worker: number;
  op: string;
  args: string[];
  result: CliResult;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function pool<T>(items: readonly T[], width: number, each: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await each(items[next++]!);
    }),
  );
}

describeWithTools(['docker-registry', 'skopeo'], 'a store shared by eight processes', () => {
  it(
    `keeps every name, frees only what no one uses, and stays whole (${SECONDS} s)`,
    async () => {
      const env = { STRATA_ROOT: store, SOURCE_DATE_EPOCH: EPOCH };
      const written = new Map<string, number>();
      const removed = new Set<string>();
      /** Names any worker has, for appends on another worker's image. */
      const live = new Set<string>();
      const unexpected: Outcome[] = [];
      const crossFailures: Outcome[] = [];
      let pulled = false;
      let ops = 0;
      const deadline = Date.now() + SECONDS * 1000;

      const worker = async (k: number): Promise<void> => {
        const ctx = join(work, `ctx-${k}`);
        await mkdir(ctx, { recursive: true });
        const mine: string[] = [];
        let rnd = k * 7919 + 1;
        const random = (n: number): number => {
          rnd = (rnd * 1103515245 + 12345) % 2147483648;
          return rnd % n;
        };
        // At least MIN_OPS commands each, however loaded the machine: the run is about contention, not speed.
        for (let n = 0; n < MIN_OPS || Date.now() < deadline; n++) {
          const kinds = mine.length === 0 ? ['build', 'append', 'pull'] : ['build', 'append', 'append-other', 'pull', 'tag', 'rmi', 'rmi'];
          const op = kinds[random(kinds.length)]!;
          let args: string[];
          let name: string | undefined;
          let cross = false;
          await writeFile(join(ctx, 'f.txt'), `${k}-${n}\n`);
          switch (op) {
            case 'build':
              name = `w${k}-b${n}`;
              await writeFile(join(ctx, 'Dockerfile'), `FROM ${base}\nCOPY f.txt /w${k}/f.txt\n`);
              args = ['build', '-t', name, ...(random(3) === 0 ? ['--no-cache'] : []), ctx];
              break;
            case 'append':
              name = `w${k}-a${n}`;
              args = ['append', '--base', `docker://${base}`, '--layer', ctx, '-t', name];
              break;
            case 'append-other': {
              const others = [...live].filter((l) => !l.startsWith(`w${k}-`));
              const on = others.length ? others[random(others.length)]! : mine[random(mine.length)]!;
              cross = !on.startsWith(`w${k}-`);
              name = `w${k}-o${n}`;
              args = ['append', '--base', on, '--layer', ctx, '-t', name];
              break;
            }
            case 'pull':
              args = ['pull', base];
              break;
            case 'tag': {
              name = `w${k}-t${n}`;
              args = ['tag', mine[random(mine.length)]!, name];
              break;
            }
            default: {
              const victim = mine.splice(random(mine.length), 1)[0]!;
              live.delete(victim);
              args = ['rmi', victim];
              const result = await strata(args, env);
              ops++;
              if (result.code === 0) {
                removed.add(victim);
                written.delete(victim);
              } else unexpected.push({ worker: k, op, args, result });
              continue;
            }
          }
          const result = await strata(args, env);
          ops++;
          if (result.code !== 0) {
            (cross ? crossFailures : unexpected).push({ worker: k, op, args, result });
            continue;
          }
          if (op === 'pull') pulled = true;
          if (name) {
            written.set(name, k);
            mine.push(name);
            live.add(name);
          }
        }
      };
      await Promise.all(Array.from({ length: WORKERS }, (_, k) => worker(k)));

      expect(unexpected.map((u) => `${u.args.join(' ')}: ${u.result.stderr}`)).toEqual([]);
      // An append on an image another worker was removing may find it gone; never anything else.
      for (const f of crossFailures) expect(f.result.stderr).toMatch(/is not in the local store|is missing from/);
      expect(ops).toBeGreaterThan(WORKERS * 2);

      const listed = JSON.parse((await strata(['images', '--format', 'json'], env)).stdout) as Array<{ name: string; fullName: string }>;
      const names = new Set(listed.map((i) => i.name.replace(/:latest$/, '')));
      expect([...written.keys()].filter((n) => !names.has(n))).toEqual([]);
      expect([...removed].filter((n) => names.has(n))).toEqual([]);
      if (pulled) expect(names.has(base)).toBe(true);

      // Every blob is what its name says; nothing half-written, no lease, no temp file is left.
      const blobDir = join(store, 'oci', 'blobs', 'sha256');
      for (const hex of await readdir(blobDir)) expect(await sha256File(join(blobDir, hex)), hex).toBe(hex);
      expect(await readdir(join(store, 'leases')).catch(() => [])).toEqual([]);
      expect(await readdir(join(store, 'tmp', 'blobs')).catch(() => [])).toEqual([]);

      // Every listed image is complete: strata copies it out and skopeo reads every blob of the copy.
      const out = join(work, 'out');
      await pool(
        listed.map((image, i) => ({ image, i })),
        4,
        async ({ image, i }) => {
          const copied = await strata(['copy', image.fullName, `oci:${out}-${i}:img`], env);
          expect(copied.code, `${image.name}: ${copied.stderr}`).toBe(0);
          const read = await tool('skopeo', ['copy', '--insecure-policy', `oci:${out}-${i}:img`, `dir:${join(work, `dir-${i}`)}`]);
          expect(read.code, `${image.name}: ${read.stderr}`).toBe(0);
        },
      );
      process.stderr.write(
        `store stress: ${ops} commands in ${SECONDS} s, ${listed.length} images, ${removed.size} removed, ${crossFailures.length} appends lost their base to an rmi\n`,
      );
    },
    (SECONDS + 240) * 1000,
  );
});

describeWithTools(['skopeo'], 'rmi of a base while a build reads it', () => {
  it('never leaves a build with missing blobs: it succeeds whole, or finds the base gone (three points)', async () => {
    const root = join(work, 'rmi-store');
    const env = { STRATA_ROOT: root, SOURCE_DATE_EPOCH: EPOCH };
    const layer = join(work, 'rmi-layer');
    await mkdir(layer, { recursive: true });
    await writeFile(join(layer, 'big.bin'), randomBytes(8 * 1024 * 1024));
    const ctx = join(work, 'rmi-ctx');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'Dockerfile'), 'FROM base\nCOPY f.txt /f.txt\n');
    await writeFile(join(ctx, 'f.txt'), 'f\n');
    const outcomes: string[] = [];
    for (const delay of [150, 500, 1000]) {
      const made = await strata(['append', '--layer', layer, '-t', 'base'], env);
      expect(made.code, made.stderr).toBe(0);
      const building = strata(['build', '--no-cache', '-t', 'r1', ctx], env);
      await new Promise((resolve) => setTimeout(resolve, delay));
      const removed = await strata(['rmi', 'base'], env);
      expect(removed.code, removed.stderr).toBe(0);
      const built = await building;
      if (built.code !== 0) {
        // Started after the untag: the name is gone (here or, asked next, on Docker Hub), never a blob of it.
        expect(built.stderr).not.toMatch(/is missing from|blob|digest/);
        outcomes.push('base gone');
        continue;
      }
      outcomes.push('built');
      expect((await strata(['verify'], env)).stdout).toMatch(/all good/);
      const out = join(work, `rmi-out-${delay}`);
      expect((await strata(['copy', 'r1', `oci:${out}:r1`], env)).code).toBe(0);
      expect((await tool('skopeo', ['copy', '--insecure-policy', `oci:${out}:r1`, `dir:${out}-dir`])).code).toBe(0);
    }
    process.stderr.write(`rmi during build: ${outcomes.join(', ')}\n`);
  }, 180_000);
});
