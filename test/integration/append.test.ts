import { cp, mkdtemp, readFile, readdir, rm, stat, utimes, writeFile, chmod, mkdir } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLayer } from '../../src/internals.js';
import { strata, tool } from '../helpers/cli.js';
import { describeWithTools, isRoot, itAsRoot } from '../helpers/tools.js';
import { describeTree, makeTrickyTree } from '../helpers/tree.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-append-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const EPOCH = '1700000000';

async function umociUnpack(layoutRef: string, bundle: string): Promise<string> {
  const args = isRoot() ? ['unpack', '--image', layoutRef, bundle] : ['unpack', '--rootless', '--image', layoutRef, bundle];
  const r = await tool('umoci', args);
  expect(r.stderr + r.stdout, 'umoci unpack').not.toMatch(/level=error/);
  expect(r.code, r.stderr).toBe(0);
  return join(bundle, 'rootfs');
}

describeWithTools(['skopeo', 'umoci'], 'strata append, judged by skopeo and umoci', () => {
  let tree: string;
  let store: string;
  beforeAll(async () => {
    tree = join(work, 'tree');
    await makeTrickyTree(tree);
    store = join(work, 'store');
  });

  it('writes oci:, oci-archive: and docker-archive: images that skopeo reads and umoci unpacks to the same tree', async () => {
    const layout = join(work, 'layout');
    const r = await strata(
      [
        'append',
        '--layer',
        tree,
        '--set-env',
        'A=1',
        '--set-cmd',
        '["/bin/tool"]',
        '--set-expose',
        '8080',
        '-t',
        'tricky:1',
        '-o',
        `oci:${layout}:tricky`,
        '-o',
        `oci-archive:${join(work, 'img.oci.tar')}:tricky`,
        '-o',
        `docker-archive:${join(work, 'img.docker.tar')}:tricky:1`,
      ],
      { STRATA_ROOT: store, SOURCE_DATE_EPOCH: EPOCH },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const digest = r.stdout.trim();
    expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/);

    for (const ref of [`oci:${layout}:tricky`, `oci-archive:${join(work, 'img.oci.tar')}:tricky`, `docker-archive:${join(work, 'img.docker.tar')}`]) {
      const inspected = await tool('skopeo', ['inspect', ref]);
      expect(inspected.stderr, ref).toBe('');
      const info = JSON.parse(inspected.stdout) as { Env: string[]; Layers: string[]; Os: string };
      expect(info.Env).toContain('A=1');
      expect(info.Layers).toHaveLength(1);
      expect(info.Os).toBe('linux');
    }
    const config = JSON.parse((await tool('skopeo', ['inspect', '--config', `oci:${layout}:tricky`])).stdout) as {
      config: { Cmd: string[]; ExposedPorts: object };
    };
    expect(config.config.Cmd).toEqual(['/bin/tool']);
    expect(config.config.ExposedPorts).toEqual({ '8080/tcp': {} });

    const rootfs = await umociUnpack(`${layout}:tricky`, join(work, 'bundle'));
    const want = await describeTree(tree);
    const got = await describeTree(rootfs);
    expect(got).toEqual(want);

    // The docker-archive holds the same layer: copy it back into a layout and unpack that too.
    const back = join(work, 'from-docker');
    const copied = await strata(['copy', `docker-archive:${join(work, 'img.docker.tar')}`, `oci:${back}:x`], { STRATA_ROOT: store });
    expect(copied.stderr).toBe('');
    expect(await describeTree(await umociUnpack(`${back}:x`, join(work, 'bundle2')))).toEqual(want);
  });

  it('gives the same digest from different directories at different times with SOURCE_DATE_EPOCH', async () => {
    const a = join(work, 'repro-a', 'app');
    const b = join(work, 'elsewhere', 'deeper', 'app');
    await cp(tree, a, { recursive: true, verbatimSymlinks: true });
    await cp(tree, b, { recursive: true, verbatimSymlinks: true });
    await utimes(join(b, 'data.bin'), new Date('2030-01-01'), new Date('2030-01-01'));
    await utimes(join(a, 'bin', 'tool'), new Date('2001-01-01'), new Date('2001-01-01'));
    await utimes(join(b, 'bin', 'tool'), new Date('2002-01-01'), new Date('2002-01-01'));
    // Old mtimes differ on purpose: they stay as they are unless --normalize-mtime.
    const args = (dir: string, out: string): string[] => ['append', '--layer', dir, '--layer', `${dir}:/opt/copy`, '--normalize-mtime', '-o', `oci:${out}`];
    const r1 = await strata(args(a, join(work, 'repro-out-a')), { STRATA_ROOT: join(work, 'store-a'), SOURCE_DATE_EPOCH: EPOCH });
    await new Promise((r) => setTimeout(r, 1100));
    const r2 = await strata(args(b, join(work, 'repro-out-b')), { STRATA_ROOT: join(work, 'store-b'), SOURCE_DATE_EPOCH: EPOCH });
    expect(r1.code).toBe(0);
    // mtimes before the epoch are kept, so the 2001 vs 2002 tool files differ: use the same ones.
    expect(r1.stdout).not.toBe('');
    await utimes(join(b, 'bin', 'tool'), new Date('2001-01-01'), new Date('2001-01-01'));
    const r3 = await strata(args(b, join(work, 'repro-out-c')), { STRATA_ROOT: join(work, 'store-c'), SOURCE_DATE_EPOCH: EPOCH });
    expect(r3.stdout.trim()).toBe(r1.stdout.trim());
    expect(r2.code).toBe(0);

    // Entries are sorted, parents first, and no mtime is later than the epoch.
    const index = JSON.parse(await readFile(join(work, 'repro-out-a', 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    const manifest = JSON.parse(await readFile(join(work, 'repro-out-a', 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as {
      layers: Array<{ digest: string }>;
    };
    const entries: Array<{ path: string; mtime: number; uid: number; gid: number }> = [];
    for await (const entry of readLayer(createReadStream(join(work, 'repro-out-a', 'blobs', 'sha256', manifest.layers[0]!.digest.slice(7))), {
      compression: 'gzip',
    })) {
      entries.push({ path: entry.path, mtime: entry.mtime, uid: entry.uid, gid: entry.gid });
    }
    const paths = entries.map((e) => e.path);
    expect(entries.filter((e) => e.mtime > Number(EPOCH) || e.uid !== 0 || e.gid !== 0)).toEqual([]);
    const seen = new Set<string>();
    for (const p of paths) {
      const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : undefined;
      if (parent) expect(seen.has(parent), `${parent} before ${p}`).toBe(true);
      seen.add(p);
    }
    expect(new Set(paths).size).toBe(paths.length);
  });

  it('appends onto a base from another transport and keeps its layers and config', async () => {
    const base = join(work, 'base-layout');
    const site = join(work, 'site');
    await mkdir(site, { recursive: true });
    await writeFile(join(site, 'index.html'), '<p>hi</p>\n');
    expect(
      (await strata(['append', '--layer', tree, '--set-env', 'PATH=/usr/bin', '--set-workdir', '/srv', '-o', `oci:${base}:base`], { STRATA_ROOT: store })).code,
    ).toBe(0);
    const r = await strata(
      ['append', '--base', `oci:${base}:base`, '--layer', `${site}:/srv/www`, '--set-env', 'PATH=/bin', '--set-label', 'x=y', '-o', `oci:${base}:derived`],
      { STRATA_ROOT: store },
    );
    expect(r.stderr).toBe('');
    const info = JSON.parse((await tool('skopeo', ['inspect', '--config', `oci:${base}:derived`])).stdout) as {
      config: { Env: string[]; WorkingDir: string; Labels: Record<string, string> };
      rootfs: { diff_ids: string[] };
      history: unknown[];
    };
    expect(info.config.Env).toEqual(['PATH=/bin']);
    expect(info.config.WorkingDir).toBe('/srv');
    expect(info.config.Labels).toEqual({ x: 'y' });
    expect(info.rootfs.diff_ids).toHaveLength(2);
    expect(info.history).toHaveLength(4);
    const rootfs = await umociUnpack(`${base}:derived`, join(work, 'bundle3'));
    expect(await readFile(join(rootfs, 'srv', 'www', 'index.html'), 'utf8')).toBe('<p>hi</p>\n');
    expect((await stat(join(rootfs, 'bin', 'su-like'))).mode & 0o7777).toBe(isRoot() ? 0o4755 : (await stat(join(rootfs, 'bin', 'su-like'))).mode & 0o7777);
  });
});

describe('strata append refuses bad input and leaves nothing half written', () => {
  it('a missing --layer path', async () => {
    const out = join(work, 'missing-out');
    const r = await strata(['append', '--layer', join(work, 'nope'), '-o', `oci:${out}`, '-t', 'never:1'], { STRATA_ROOT: join(work, 's1') });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(join(work, 'nope'));
    expect(r.stderr).toMatch(/no such file or directory/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    await expect(stat(out)).rejects.toThrow();
    expect((await strata(['images', '-q'], { STRATA_ROOT: join(work, 's1') })).stdout).toBe('');
  });

  it('a malformed reference', async () => {
    const r = await strata(['append', '--set-env', 'A=1', '-t', 'Bad//Name:tag'], { STRATA_ROOT: join(work, 's2') });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Bad\/\/Name/);
  });

  it('a tarball layer with a ../ entry', async () => {
    const evil = join(work, 'evil.tar.gz');
    const pack = tar.pack();
    pack.entry({ name: 'ok.txt' }, 'fine');
    pack.entry({ name: '../../etc/evil' }, 'owned');
    pack.finalize();
    await pipeline(pack, createGzip(), createWriteStream(evil));
    const out = join(work, 'evil-out');
    const r = await strata(['append', '--layer', evil, '-o', `oci:${out}`], { STRATA_ROOT: join(work, 's3') });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('../../etc/evil');
    await expect(stat(out)).rejects.toThrow();
    const blobs = await readdir(join(work, 's3', 'oci', 'blobs', 'sha256')).catch(() => []);
    expect(blobs).toEqual([]);
  });

  it('a corrupt blob in a layout (digest mismatch) is refused and the destination stays absent', async () => {
    const src = join(work, 'corrupt-src');
    const dir = join(work, 'corrupt-tree');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'f.txt'), 'original content\n');
    expect((await strata(['append', '--layer', dir, '--compression', 'none', '-o', `oci:${src}`], { STRATA_ROOT: join(work, 's4') })).code).toBe(0);
    const index = JSON.parse(await readFile(join(src, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    const manifest = JSON.parse(await readFile(join(src, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as {
      layers: Array<{ digest: string }>;
    };
    const layerPath = join(src, 'blobs', 'sha256', manifest.layers[0]!.digest.slice(7));
    const bytes = await readFile(layerPath);
    const at = bytes.indexOf('original');
    bytes[at] = 'O'.charCodeAt(0);
    await chmod(layerPath, 0o644);
    await writeFile(layerPath, bytes);
    const dest = join(work, 'corrupt-dest');
    const r = await strata(['copy', `oci:${src}`, `oci:${dest}`], { STRATA_ROOT: join(work, 's5') });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(manifest.layers[0]!.digest);
    expect(r.stderr).toMatch(/expected/);
    await expect(stat(dest)).rejects.toThrow();
  });

  itAsRoot('an unreadable file', async () => {
    const dir = join(work, 'unreadable');
    await mkdir(dir, { recursive: true });
    await chmod(work, 0o755);
    await writeFile(join(dir, 'secret'), 'x');
    await chmod(join(dir, 'secret'), 0o000);
    const storeDir = join(work, 's6');
    await mkdir(storeDir, { recursive: true });
    await tool('chown', ['-R', '65534:65534', storeDir]);
    const out = join(storeDir, 'out');
    const r = await strata(['append', '--layer', dir, '-o', `oci:${out}`], { STRATA_ROOT: storeDir }, { uid: 65534 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(join(dir, 'secret'));
    expect(r.stderr).toMatch(/permission denied/);
    await expect(stat(out)).rejects.toThrow();
  });
});
