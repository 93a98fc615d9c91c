/**
 * Issue 16: `--annotation` in buildx's forms lands where buildx puts it: image manifests (per
 * platform), the index, the index's entries, and the layout's index.json entry; on build and append.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ok, strata } from '../helpers/cli.js';

interface Desc {
  digest: string;
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string };
}
interface Doc {
  manifests?: Desc[];
  annotations?: Record<string, string>;
}

describe('--annotation', () => {
  let tmp: string;
  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run make build first`);
    tmp = await mkdtemp(join(tmpdir(), 'strata-annotations-'));
    await mkdir(join(tmp, 'ctx'));
    await writeFile(join(tmp, 'ctx', 'Dockerfile'), 'FROM scratch\nCOPY f /f\n');
    await writeFile(join(tmp, 'ctx', 'f'), 'x\n');
  });
  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const read = async (layout: string, digest: string): Promise<Doc> => JSON.parse(await readFile(join(layout, 'blobs/sha256', digest.slice(7)), 'utf8')) as Doc;

  it('build: manifest (all and per platform), index, manifest-descriptor and index-descriptor', async () => {
    const layout = join(tmp, 'build-layout');
    ok(
      await strata(
        [
          'build',
          join(tmp, 'ctx'),
          '--platform',
          'linux/amd64,linux/arm64',
          '-o',
          `type=oci,dest=${layout},tar=false`,
          '--progress',
          'quiet',
          '--annotation',
          'org.example.all=1',
          '--annotation',
          'manifest[linux/arm64]:org.example.arm=yes',
          '--annotation',
          'index:org.opencontainers.image.title=app',
          '--annotation',
          'manifest-descriptor:org.example.entry=e',
          '--annotation',
          'index-descriptor:org.example.top=t',
        ],
        { STRATA_ROOT: join(tmp, 'store') },
      ),
    );
    const top = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as Doc;
    expect(top.manifests![0]!.annotations).toMatchObject({ 'org.example.top': 't' });
    const index = await read(layout, top.manifests![0]!.digest);
    expect(index.annotations).toEqual({ 'org.opencontainers.image.title': 'app' });
    for (const entry of index.manifests!) {
      expect(entry.annotations).toEqual({ 'org.example.entry': 'e' });
      const manifest = await read(layout, entry.digest);
      expect(manifest.annotations).toEqual(
        entry.platform?.architecture === 'arm64' ? { 'org.example.all': '1', 'org.example.arm': 'yes' } : { 'org.example.all': '1' },
      );
    }
  });

  it('append: a manifest annotation, and an index one that makes an index', async () => {
    const layout = join(tmp, 'append-layout');
    ok(
      await strata(
        ['append', '--layer', join(tmp, 'ctx'), '-o', `oci:${layout}:a`, '--annotation', 'org.example.m=1', '--annotation', 'index:org.example.i=2'],
        { STRATA_ROOT: join(tmp, 'store') },
      ),
    );
    const top = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as Doc;
    const index = await read(layout, top.manifests![0]!.digest);
    expect(index.annotations).toEqual({ 'org.example.i': '2' });
    expect((await read(layout, index.manifests![0]!.digest)).annotations).toEqual({ 'org.example.m': '1' });
  });
});
