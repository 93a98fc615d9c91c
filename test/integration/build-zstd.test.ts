/**
 * zstd layers end to end: `strata build|append --compression zstd` writes tar+zstd layers (through the
 * zstd program), reproducibly; umoci and skopeo read them; a build FROM a zstd image reads its layer for
 * COPY and the rootfs outputs; a push keeps the media type.
 */
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { strata, tool } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeo } from '../helpers/skopeo.js';
import { describeWithTools, isRoot } from '../helpers/tools.js';
import { describeTree, makeTrickyTree } from '../helpers/tree.js';
import { layoutManifest } from '../helpers/umoci.js';

const EPOCH = '1700000000';
const ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';

/**
 * Debian's umoci (0.4.7) refuses tar+zstd layers (umoci reads them from 0.5), so skopeo, whose zstd is
 * containers/image's own, decompresses them into a gzip copy first, and umoci unpacks that: two readers
 * that share no code with strata.
 */
async function umociUnpack(layoutRef: string, bundle: string): Promise<string> {
  const gzipped = `${bundle}-gzip-layout`;
  await skopeo(['copy', '--dest-compress', '--dest-compress-format', 'gzip', `oci:${layoutRef}`, `oci:${gzipped}:x`]);
  const image = `${gzipped}:x`;
  const args = isRoot() ? ['unpack', '--image', image, bundle] : ['unpack', '--rootless', '--image', image, bundle];
  const r = await tool('umoci', args);
  expect(r.stderr + r.stdout, 'umoci unpack').not.toMatch(/level=error/);
  expect(r.code, r.stderr).toBe(0);
  return join(bundle, 'rootfs');
}

describeWithTools(['zstd', 'skopeo', 'umoci', 'docker-registry'], 'zstd layers (build, append, push)', () => {
  let work: string;
  let registry: TestRegistry;
  let app: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'strata-zstd-'));
    registry = await startRegistry();
    app = join(work, 'ctx');
    await makeTrickyTree(join(app, 'app'));
    // 8 MiB, random then repetitive: big enough for zstd's multi-threaded mode to cut it into several jobs.
    await writeFile(join(app, 'app', 'big.bin'), Buffer.concat([randomBytes(3 << 20), Buffer.alloc(5 << 20, 'z')]));
    await writeFile(join(app, 'Dockerfile'), 'FROM scratch\nCOPY app/ /app/\nCOPY Dockerfile /\n');
  }, 60_000);

  afterAll(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const build = (args: string[], store: string) => strata(['build', '--progress', 'quiet', ...args], { STRATA_ROOT: store, SOURCE_DATE_EPOCH: EPOCH });

  it('build --compression zstd writes +zstd layers that umoci unpacks and skopeo reads, with the same digest every time', async () => {
    const layout = join(work, 'out-a');
    const first = await build([app, '--compression', 'zstd', '-t', 'zimg:1', '-o', `type=oci,dest=${layout},tar=false`], join(work, 'store-a'));
    expect(first.code, first.stderr).toBe(0);
    const { manifest } = await layoutManifest(layout, '1');
    expect(manifest.layers.map((l) => l.mediaType)).toEqual([ZSTD, ZSTD]);
    const blob = await readFile(join(layout, 'blobs', 'sha256', manifest.layers[0]!.digest.slice(7)));
    expect(blob.subarray(0, 4)).toEqual(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));

    const rootfs = await umociUnpack(`${layout}:1`, join(work, 'bundle-a'));
    expect(await describeTree(join(rootfs, 'app'))).toEqual(await describeTree(join(app, 'app')));
    const info = JSON.parse((await skopeo(['inspect', `oci:${layout}:1`])).stdout) as { Layers: string[] };
    expect(info.Layers).toEqual(manifest.layers.map((l) => l.digest));
    const raw = JSON.parse((await skopeo(['inspect', '--raw', `oci:${layout}:1`])).stdout) as { layers: Array<{ mediaType: string }> };
    expect(raw.layers.map((l) => l.mediaType)).toEqual([ZSTD, ZSTD]);

    // Another store (nothing cached) and the same store (cached steps) give the same image.
    const again = await build([app, '--compression', 'zstd', '-t', 'zimg:1', '-o', `type=oci,dest=${join(work, 'out-b')},tar=false`], join(work, 'store-b'));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.trim()).toBe(first.stdout.trim());
    const cached = await build([app, '--compression', 'zstd', '-t', 'zimg:1'], join(work, 'store-a'));
    expect(cached.stdout.trim()).toBe(first.stdout.trim());
    // The cache does not hand a zstd layer to a gzip build (or back).
    const gzip = await build([app, '-t', 'zimg:gz', '-o', `type=oci,dest=${join(work, 'out-gz')},tar=false`], join(work, 'store-a'));
    expect(gzip.code, gzip.stderr).toBe(0);
    expect((await layoutManifest(join(work, 'out-gz'), 'gz')).manifest.layers.map((l) => l.mediaType)).toEqual([
      'application/vnd.oci.image.layer.v1.tar+gzip',
      'application/vnd.oci.image.layer.v1.tar+gzip',
    ]);
    const level = await build([app, '--compression', 'zstd', '--compression-level', '19', '-t', 'zimg:19'], join(work, 'store-a'));
    expect(level.code, level.stderr).toBe(0);
    expect(level.stdout.trim()).not.toBe(first.stdout.trim());
  }, 180_000);

  it('a build FROM an appended zstd image reads its layer (COPY into it, local and tar outputs) and keeps its files', async () => {
    const store = join(work, 'store-base');
    const base = join(work, 'base-tree');
    await makeTrickyTree(base);
    const appended = await strata(['append', '--compression', 'zstd', '--layer', `${base}:/base`, '-t', 'zbase:1'], {
      STRATA_ROOT: store,
      SOURCE_DATE_EPOCH: EPOCH,
    });
    expect(appended.code, appended.stderr).toBe(0);
    const inspected = await strata(['inspect', 'zbase:1'], { STRATA_ROOT: store });
    expect(inspected.code, inspected.stderr).toBe(0);

    const ctx = join(work, 'ctx-from-base');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'extra.txt'), 'extra\n');
    // COPY (not --link) into a directory of the base: strata resolves the destination in the base's files.
    await writeFile(join(ctx, 'Dockerfile'), 'FROM zbase:1\nCOPY extra.txt /base/bin/\n');
    const layout = join(work, 'out-from-base');
    const local = join(work, 'out-local');
    const tarFile = join(work, 'out-rootfs.tar');
    for (const compression of ['zstd', 'gzip']) {
      const res = await build(
        [
          ctx,
          '--compression',
          compression,
          '-t',
          `derived:${compression}`,
          '-o',
          `type=oci,dest=${layout},tar=false`,
          '-o',
          `type=local,dest=${local}-${compression}`,
          '-o',
          `type=tar,dest=${tarFile}`,
        ],
        store,
      );
      expect(res.code, res.stderr).toBe(0);
      const { manifest } = await layoutManifest(layout, compression);
      expect(manifest.layers.map((l) => l.mediaType)).toEqual([ZSTD, compression === 'zstd' ? ZSTD : 'application/vnd.oci.image.layer.v1.tar+gzip']);
      const rootfs = await umociUnpack(`${layout}:${compression}`, join(work, `bundle-base-${compression}`));
      const want = await describeTree(base);
      const got = await describeTree(join(rootfs, 'base'));
      expect(got['bin/extra.txt']).toMatchObject({ type: 'file', content: Buffer.from('extra\n').toString('base64') });
      delete got['bin/extra.txt'];
      expect(got).toEqual(want);
      expect(await readFile(join(`${local}-${compression}`, 'base', 'bin', 'extra.txt'), 'utf8')).toBe('extra\n');
      expect(await readFile(join(`${local}-${compression}`, 'base', 'données', '日本語', 'ñandú ☃.txt'), 'utf8')).toBe('unicode\n');
      const listed = await tool('tar', ['-tf', tarFile]);
      expect(listed.stdout).toMatch(/base\/bin\/extra\.txt/);
      expect(listed.stdout).toMatch(/base\/data\.bin/);
    }
  }, 180_000);

  it('refuses zstd with Docker formats, and zstd levels outside 1-19', async () => {
    const store = join(work, 'store-refuse');
    const small = join(work, 'small');
    await mkdir(join(small, 'app'), { recursive: true });
    await cp(join(app, 'Dockerfile'), join(small, 'Dockerfile'));
    const docker = await build([small, '--compression', 'zstd', '-o', `type=docker,dest=${join(work, 'd.tar')}`], store);
    expect(docker.code).toBe(2);
    expect(docker.stderr).toMatch(/zstd/);
    const appendDocker = await strata(['append', '--compression', 'zstd', '--format', 'docker', '--layer', small, '-t', 'x:1'], { STRATA_ROOT: store });
    expect(appendDocker.code).toBe(2);
    expect(appendDocker.stderr).toMatch(/--format oci/);
    for (const bad of ['0', '20']) {
      const res = await build([small, '--compression', 'zstd', '--compression-level', bad], store);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/zstd level from 1/);
    }
    const unknown = await build([small, '--compression', 'brotli'], store);
    expect(unknown.code).toBe(2);
    expect(await readdir(work)).not.toContain('d.tar');
  }, 60_000);

  it('a pushed zstd image keeps the +zstd media type in the registry', async () => {
    const ref = `${registry.host}/zstd/app:1`;
    const res = await build([app, '--compression', 'zstd', '-t', ref, '--push'], join(work, 'store-push'));
    expect(res.code, res.stderr).toBe(0);
    const raw = JSON.parse((await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])).stdout) as {
      mediaType: string;
      layers: Array<{ mediaType: string }>;
    };
    expect(raw.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(raw.layers.map((l) => l.mediaType)).toEqual([ZSTD, ZSTD]);
    // And it comes back: skopeo copies it out, umoci unpacks it.
    const back = join(work, 'pulled');
    await skopeo(['copy', '--src-tls-verify=false', `docker://${ref}`, `oci:${back}:p`]);
    expect((await layoutManifest(back, 'p')).manifest.layers.map((l) => l.mediaType)).toEqual([ZSTD, ZSTD]);
    const rootfs = await umociUnpack(`${back}:p`, join(work, 'bundle-pulled'));
    expect(await describeTree(join(rootfs, 'app'))).toEqual(await describeTree(join(app, 'app')));
  }, 120_000);
});
