import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ok, strata } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWithTools } from '../helpers/tools.js';

const EPOCH = '1700000000';
let work: string;
let registry: TestRegistry;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-repair-'));
  registry = await startRegistry();
}, 60_000);

afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Flips one byte in the middle of a file, as a bad disk or a stray write would. */
async function flipByte(path: string): Promise<void> {
  const size = (await stat(path)).size;
  const handle = await open(path, 'r+');
  try {
    const one = Buffer.alloc(1);
    await handle.read(one, 0, 1, Math.floor(size / 2));
    one[0] = one[0]! ^ 0xff;
    await handle.write(one, 0, 1, Math.floor(size / 2));
  } finally {
    await handle.close();
  }
}

/** The blob file of the largest blob of the store: the layer of these one-layer images of random bytes. */
async function largestBlob(store: string): Promise<string> {
  const dir = join(store, 'oci', 'blobs', 'sha256');
  const sized = await Promise.all((await readdir(dir)).map(async (n) => ({ path: join(dir, n), size: (await stat(join(dir, n))).size })));
  return sized.sort((a, b) => b.size - a.size)[0]!.path;
}

describeWithTools(['docker-registry'], 'a store that mends itself', () => {
  it('finds a flipped byte, and pull, verify --repair and builds recover from it', async () => {
    const seed = join(work, 'seed');
    await mkdir(seed);
    await writeFile(join(seed, 'data.bin'), randomBytes(64 * 1024));
    const ref = `${registry.host}/repair/base:1`;
    ok(await strata(['append', '--layer', seed, '-o', `docker://${ref}`], { STRATA_ROOT: join(work, 'seed-store'), SOURCE_DATE_EPOCH: EPOCH }));

    const store = join(work, 'store');
    const env = { STRATA_ROOT: store, SOURCE_DATE_EPOCH: EPOCH };
    const digest = ok(await strata(['pull', ref], env));
    expect(ok(await strata(['verify'], env))).toMatch(/images checked: all good/);

    // A corrupt layer is reported, with the image that needs it; verify alone changes nothing.
    const layer = await largestBlob(store);
    await flipByte(layer);
    const found = await strata(['verify'], env);
    expect(found.code).toBe(1);
    expect(found.stdout).toMatch(new RegExp(`corrupt sha256:[0-9a-f]{64}: its content hashes to sha256:[0-9a-f]{64} \\(in ${ref.replace(/[.]/g, '\\.')}\\)`));
    expect(found.stderr).toContain('strata verify --repair');

    // pull does not take the damaged blob for "already there": it fetches it again.
    expect(ok(await strata(['pull', ref], env))).toBe(digest);
    expect(ok(await strata(['verify'], env))).toMatch(/all good/);

    // verify --repair moves the blob aside and pulls the image again by digest from where it came from.
    await flipByte(layer);
    const repaired = ok(await strata(['verify', '--repair'], env));
    expect(repaired).toMatch(/moved to .*corrupt.*; fetched again from/);
    expect(ok(await strata(['verify'], env))).toMatch(/all good/);
    // Moved aside twice: by the pull that found it, and by --repair.
    expect((await readdir(join(store, 'corrupt'))).length).toBe(2);

    // A build from the damaged local image fails once, naming the blob, and moves it aside; the next
    // build pulls the image again by digest from where it came from, and succeeds.
    await flipByte(layer);
    const ctx = join(work, 'ctx');
    await mkdir(ctx);
    await writeFile(join(ctx, 'Dockerfile'), `FROM ${ref}\nCOPY f /f\n`);
    await writeFile(join(ctx, 'f'), 'f\n');
    const broken = await strata(['build', '-t', 'app', '-o', `type=oci,dest=${join(work, 'app.tar')}`, ctx], env);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/sha256:[0-9a-f]{64}/);
    expect(broken.stderr).toMatch(/moved to/);
    ok(await strata(['build', '-t', 'app', ctx], env));
    expect(ok(await strata(['verify'], env))).toMatch(/all good/);
  }, 120_000);

  it('cannot repair a built image, says so, and rmi of an image with a corrupt manifest untags it cleanly', async () => {
    const store = join(work, 'store-built');
    const env = { STRATA_ROOT: store, SOURCE_DATE_EPOCH: EPOCH };
    const tree = join(work, 'tree');
    await mkdir(tree);
    await writeFile(join(tree, 'x'), randomBytes(32 * 1024));
    const digest = ok(await strata(['append', '--layer', tree, '-t', 'built:1'], env));
    await flipByte(await largestBlob(store));
    const r = await strata(['verify', '--repair'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/not repaired: docker\.io\/library\/built:1 was not pulled/);

    // The manifest itself corrupt: rmi untags it and exits 0, and prune-free collection removes what it can.
    const manifest = join(store, 'oci', 'blobs', 'sha256', digest.slice('sha256:'.length));
    await flipByte(manifest);
    ok(await strata(['rmi', 'built:1'], env));
    expect(ok(await strata(['images', '-q'], env))).toBe('');
  }, 60_000);
});
