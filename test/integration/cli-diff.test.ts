/**
 * `strata diff` on a set of image pairs made for it (one changed file, a mode, an mtime, a label, a layer
 * split in two with the same final tree, the same tree compressed differently, two platforms of an
 * index), and `strata export` (whiteouts applied, the tar read back by GNU tar). Layouts are written by
 * hand here (tar-stream and zlib, no strata code), so the pairs differ in exactly one way each.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ok, strata } from '../helpers/cli.js';

const run = promisify(execFile);

interface TarEntry {
  name: string;
  content?: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  linkname?: string;
  mode?: number;
  mtime?: number;
  uid?: number;
}

interface LayerSpec {
  entries: TarEntry[];
  gzipLevel?: number;
}

interface ImageSpec {
  layers: LayerSpec[];
  labels?: Record<string, string>;
  created?: string;
  architecture?: string;
}

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

async function tar(entries: TarEntry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    p.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    p.on('end', () => resolve(Buffer.concat(chunks)));
    p.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? (e.name.endsWith('/') ? 'directory' : 'file');
    p.entry(
      {
        name: e.name,
        type,
        mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
        mtime: new Date((e.mtime ?? 1_700_000_000) * 1000),
        uid: e.uid ?? 0,
        gid: 0,
        ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
      },
      type === 'file' ? (e.content ?? '') : '',
    );
  }
  p.finalize();
  return done;
}

async function blob(dir: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7)), data);
  return digest;
}

async function writeImage(dir: string, spec: ImageSpec): Promise<{ mediaType: string; digest: string; size: number }> {
  const layers = [];
  const diffIds = [];
  for (const l of spec.layers) {
    const raw = await tar(l.entries);
    diffIds.push(sha256(raw));
    const gz = gzipSync(raw, { level: l.gzipLevel ?? 6 });
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: await blob(dir, gz), size: gz.length });
  }
  const config = Buffer.from(
    JSON.stringify({
      created: spec.created ?? '2023-11-14T22:13:20Z',
      architecture: spec.architecture ?? 'amd64',
      os: 'linux',
      config: { Env: ['PATH=/usr/bin'], Labels: spec.labels ?? { app: 'demo' } },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: spec.layers.map((_, i) => ({ created_by: `layer ${i + 1}` })),
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: await blob(dir, config), size: config.length },
      layers,
    }),
  );
  return { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: await blob(dir, manifest), size: manifest.length };
}

/** An OCI layout holding one image, or an index of several platforms. */
async function layout(dir: string, specs: ImageSpec[]): Promise<string> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const images = [];
  for (const spec of specs) images.push(await writeImage(dir, spec));
  let top = images[0]!;
  if (specs.length > 1) {
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: images.map((m, i) => ({ ...m, platform: { os: 'linux', architecture: specs[i]!.architecture ?? 'amd64' } })),
      }),
    );
    top = { mediaType: 'application/vnd.oci.image.index.v1+json', digest: await blob(dir, index), size: index.length };
  }
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }] }),
  );
  return `oci:${dir}:latest`;
}

const BASE: TarEntry[] = [
  { name: 'app/' },
  { name: 'app/a.txt', content: 'alpha\n' },
  { name: 'app/b.txt', content: 'beta\n' },
  { name: 'app/run.sh', content: '#!/bin/sh\necho hi\n', mode: 0o755 },
  { name: 'app/link', type: 'symlink', linkname: 'a.txt' },
];
const OS: LayerSpec = { entries: [{ name: 'etc/' }, { name: 'etc/os-release', content: 'ID=test\n' }] };

function edit(entries: TarEntry[], name: string, change: Partial<TarEntry>): TarEntry[] {
  return entries.map((e) => (e.name === name ? { ...e, ...change } : e));
}

interface DiffJson {
  identical: boolean;
  reasons: string[];
  onlyInA: string[];
  onlyInB: string[];
  platforms: Array<{
    platform: string;
    identical: boolean;
    files?: Array<{ path: string; change: string; fields?: string[] }>;
    config: Array<{ field: string }>;
    layers: Array<{ verdict: string }>;
  }>;
}

describe('strata diff and export on images made to differ in one way', () => {
  let tmp: string;
  let env: Record<string, string>;
  let base: string;

  async function diff(a: string, b: string, ...extra: string[]): Promise<DiffJson> {
    return JSON.parse(ok(await strata(['diff', a, b, '--format', 'json', ...extra], env))) as DiffJson;
  }

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first`);
    tmp = await mkdtemp(join(tmpdir(), 'strata-diff-'));
    env = { STRATA_ROOT: join(tmp, 'store'), HOME: join(tmp, 'home') };
    base = await layout(join(tmp, 'base'), [{ layers: [OS, { entries: BASE }] }]);
  });
  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('the same image is identical', async () => {
    const same = await diff(base, base);
    expect(same.identical).toBe(true);
    expect(ok(await strata(['diff', base, base], env))).toContain('identical');
  });

  it('one changed file: its path and "content"', async () => {
    const b = await layout(join(tmp, 'content'), [{ layers: [OS, { entries: edit(BASE, 'app/b.txt', { content: 'BETA\n' }) }] }]);
    const d = await diff(base, b);
    expect(d.platforms[0]?.files).toEqual([expect.objectContaining({ path: '/app/b.txt', change: 'changed', fields: ['content'] })]);
    expect(d.reasons).toEqual(['files differ: 1 changed (content): /app/b.txt (from layer 2)']);
    const text = ok(await strata(['diff', base, b], env));
    expect(text).toContain('~ /app/b.txt: content (5 -> 5 bytes)');
    expect(text).toContain('2: different');
  });

  it('one mode', async () => {
    const b = await layout(join(tmp, 'mode'), [{ layers: [OS, { entries: edit(BASE, 'app/run.sh', { mode: 0o700 }) }] }]);
    const d = await diff(base, b);
    expect(d.platforms[0]?.files).toEqual([expect.objectContaining({ path: '/app/run.sh', fields: ['mode'] })]);
    expect(d.reasons[0]).toContain('1 changed (mode)');
    expect(ok(await strata(['diff', base, b], env))).toContain('~ /app/run.sh: mode 0755 -> 0700');
  });

  it('an mtime: "same files, different mtimes in layer 2 (SOURCE_DATE_EPOCH not set)"', async () => {
    const b = await layout(join(tmp, 'mtime'), [{ layers: [OS, { entries: BASE.map((e) => ({ ...e, mtime: 1_733_500_000 })) }] }]);
    const d = await diff(base, b);
    expect(d.platforms[0]?.files?.every((f) => f.fields?.join() === 'mtime')).toBe(true);
    expect(d.reasons).toEqual(['same files, different mtimes in layer 2 (SOURCE_DATE_EPOCH not set)']);
  });

  it('a changed file among files whose mtimes moved: both are said', async () => {
    const moved = edit(BASE, 'app/a.txt', { content: 'ALPHA\n' }).map((e) => ({ ...e, mtime: 1_733_500_000 }));
    const b = await layout(join(tmp, 'mixed'), [{ layers: [OS, { entries: moved }] }]);
    const d = await diff(base, b);
    expect(d.reasons).toEqual([
      'files differ: 1 changed (content, mtime): /app/a.txt (from layer 2)',
      '4 more files differ only in mtime, in layer 2 (SOURCE_DATE_EPOCH not set)',
    ]);
  });

  it('a label (and created): "same layers, config differs in created and Labels"', async () => {
    const b = await layout(join(tmp, 'label'), [{ layers: [OS, { entries: BASE }], labels: { app: 'demo', extra: '1' }, created: '2024-01-01T00:00:00Z' }]);
    const d = await diff(base, b);
    expect(d.platforms[0]?.files).toBeUndefined();
    expect(d.reasons).toEqual(['same layers, config differs in created and Labels']);
    const text = ok(await strata(['diff', base, b], env));
    expect(text).toContain('Labels: + extra=1');
    expect(text).toContain('created: 2023-11-14T22:13:20Z -> 2024-01-01T00:00:00Z');
  });

  it('a layer split in two, same final tree', async () => {
    const b = await layout(join(tmp, 'split'), [{ layers: [OS, { entries: BASE.slice(0, 3) }, { entries: BASE.slice(3) }] }]);
    const d = await diff(base, b);
    expect(d.platforms[0]?.files).toEqual([]);
    expect(d.reasons[0]).toBe('same final filesystem, layered differently (2 layers vs 3)');
  });

  it('the same tree compressed differently: "layer 2 same content, different compression"', async () => {
    const b = await layout(join(tmp, 'gzip'), [{ layers: [OS, { entries: BASE, gzipLevel: 0 }] }]);
    const d = await diff(base, b);
    expect(d.platforms[0]?.layers.map((l) => l.verdict)).toEqual(['same', 'same-content']);
    expect(d.reasons).toHaveLength(1);
    expect(d.reasons[0]).toMatch(/^layer 2 same content, different compression \(\d+ vs \d+ bytes\)$/);
  });

  it('two platforms of an index: platform by platform', async () => {
    const amd = { layers: [OS, { entries: BASE }], architecture: 'amd64' };
    const arm = { layers: [OS, { entries: BASE }], architecture: 'arm64' };
    const a = await layout(join(tmp, 'index-a'), [amd, arm]);
    const b = await layout(join(tmp, 'index-b'), [amd, { ...arm, layers: [OS, { entries: edit(BASE, 'app/a.txt', { content: 'ALPHA!\n' }) }] }]);
    const d = await diff(a, b);
    expect(d.platforms.map((p) => [p.platform, p.identical])).toEqual([
      ['linux/amd64', true],
      ['linux/arm64', false],
    ]);
    expect(d.reasons).toEqual(['linux/arm64: files differ: 1 changed (content): /app/a.txt (from layer 2)']);
    const one = await layout(join(tmp, 'index-c'), [amd]);
    const partial = await diff(a, one);
    expect(partial.onlyInA).toEqual(['linux/arm64']);
    expect(partial.reasons).toContain('platform linux/arm64 is only in A');
  });

  it('export writes the flattened filesystem, whiteouts and opaque directories applied', async () => {
    const upper: LayerSpec = {
      entries: [
        { name: 'app/.wh.b.txt', content: '' },
        { name: 'etc/.wh..wh..opq', content: '' },
        { name: 'etc/hostname', content: 'box\n' },
        { name: 'app/a.txt', content: 'replaced\n', mode: 0o600 },
        { name: 'app/hard', type: 'link', linkname: 'app/a.txt' },
      ],
    };
    const image = await layout(join(tmp, 'whiteouts'), [{ layers: [OS, { entries: BASE }, upper] }]);
    const out = join(tmp, 'rootfs.tar');
    ok(await strata(['export', image, '-o', out], env));
    const listing = (await run('tar', ['-tvf', out])).stdout;
    const names = listing
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/).slice(5).join(' '));
    expect(names).not.toContain('app/b.txt');
    expect(names).not.toContain('etc/os-release');
    expect(names).toEqual(expect.arrayContaining(['etc/hostname', 'app/a.txt', 'app/run.sh', 'app/link -> a.txt', 'app/hard link to app/a.txt']));
    expect(listing).toMatch(/-rw------- 0\/0\s+9 .* app\/a\.txt/);
    const unpacked = join(tmp, 'unpacked');
    await mkdir(unpacked);
    await run('tar', ['-xf', out, '-C', unpacked]);
    expect((await readdir(join(unpacked, 'app'))).sort()).toEqual(['a.txt', 'hard', 'link', 'run.sh']);
    // To standard output too, and a failure leaves no file behind.
    const piped = await strata(['export', image, '-o', '-'], env);
    expect(piped.code).toBe(0);
    expect(piped.stdout.length).toBeGreaterThan(1024);
    const missing = await strata(['export', `oci:${join(tmp, 'nope')}`, '-o', join(tmp, 'nope.tar')], env);
    expect(missing.code).toBe(1);
    expect((await readdir(tmp)).filter((n) => n.includes('nope'))).toEqual([]);
  });
});
