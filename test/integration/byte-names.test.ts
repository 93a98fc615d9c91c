/**
 * File names that are not UTF-8 (`bad\377\376utf8.txt`) travel as bytes: COPY from the context, `append
 * --layer DIR` and the change capture of a RUN step put the exact bytes in the layer (PAX path records),
 * as buildah does for the same context; `tar -t` of both layers lists the same names.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Buildah, pushBusyboxBase } from '../helpers/busybox-base.js';
import { ok, strata } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWithTools, isRoot } from '../helpers/tools.js';

const BAD = Buffer.from('bad\xff\xfeutf8.txt', 'latin1');
const LATIN1 = Buffer.from('caf\xe9', 'latin1');
const LINK = Buffer.from('l\xffnk', 'latin1');
const IGNORED = Buffer.from('ign\xffored', 'latin1');

function at(dir: string, ...names: Buffer[]): Buffer {
  return Buffer.concat([Buffer.from(`${dir}/`), ...names.flatMap((n, i) => (i === 0 ? [n] : [Buffer.from('/'), n]))]);
}

/** Names in a (compressed or not) layer tarball, as GNU tar prints them (non-printing bytes as \ooo). */
function tarNames(path: string): string[] {
  return execFileSync('tar', ['-tf', path], { encoding: 'latin1' }).trim().split('\n').sort();
}

/** The blob of the last layer (or the one `back` before it) of the image at `tag` in an OCI layout. */
function lastLayer(layout: string, tag: string, back = 0): string {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag) ?? index.manifests[0]!;
  const blob = (d: string): string => join(layout, 'blobs', ...d.split(':'));
  const manifest = JSON.parse(readFileSync(blob(entry.digest), 'utf8')) as { layers: { digest: string }[] };
  return blob(manifest.layers[manifest.layers.length - 1 - back]!.digest);
}

describeWithTools(['buildah', 'docker-registry'], 'file names that are not UTF-8', () => {
  let tmp: string;
  let ctx: string;
  let reg: TestRegistry;
  let buildah: Buildah;
  const env = (): Record<string, string> => ({ STRATA_ROOT: join(tmp, 'store'), SOURCE_DATE_EPOCH: '1700000000' });

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'strata-bytes-'));
    ctx = join(tmp, 'ctx');
    mkdirSync(join(ctx, 'sub'), { recursive: true });
    writeFileSync(at(ctx, BAD), 'hello\n');
    writeFileSync(at(ctx, Buffer.from('sub'), LATIN1), 'x');
    writeFileSync(at(ctx, IGNORED), 'ignored');
    // Two names that differ only in a byte that is not UTF-8: two files, in byte order.
    writeFileSync(at(ctx, Buffer.from('b\xfe', 'latin1')), '1');
    writeFileSync(at(ctx, Buffer.from('b\xff', 'latin1')), '2');
    symlinkSync(BAD, at(ctx, LINK));
    writeFileSync(join(ctx, '.dockerignore'), 'ign*\nDockerfile\n.dockerignore\n');
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY . /c/\n');
    reg = await startRegistry({ auth: 'none' });
    buildah = new Buildah(join(tmp, 'buildah'));
  });
  afterAll(async () => {
    await buildah?.cleanup();
    await reg?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('COPY . keeps them byte for byte, as buildah does, and .dockerignore matches them', async () => {
    ok(await strata(['build', '-t', 'bytes:copy', '-o', `type=oci,tar=false,dest=${join(tmp, 'copy-oci')}`, '--progress', 'quiet', ctx], env()));
    const ours = tarNames(lastLayer(join(tmp, 'copy-oci'), 'latest'));
    expect(ours).toContain('c/bad\\377\\376utf8.txt');
    expect(ours).toContain('c/sub/caf\\351');
    expect(ours).toContain('c/l\\377nk');
    expect(ours.some((n) => n.includes('ign'))).toBe(false);
    const listed = execFileSync('tar', ['-tf', lastLayer(join(tmp, 'copy-oci'), 'latest')], { encoding: 'latin1' }).split('\n');
    expect(listed.indexOf('c/b\\376')).toBeGreaterThan(0);
    expect(listed.indexOf('c/b\\377')).toBe(listed.indexOf('c/b\\376') + 1);
    // The link target is the bytes too.
    expect(execFileSync('tar', ['-tvf', lastLayer(join(tmp, 'copy-oci'), 'latest')], { encoding: 'latin1' })).toContain('c/l\\377nk -> bad\\377\\376utf8.txt');

    const bud = await buildah.bud(ctx, 'bytes-copy');
    expect(bud.code, bud.stderr).toBe(0);
    await buildah.pushOci('bytes-copy', join(tmp, 'buildah-copy'));
    const theirs = tarNames(lastLayer(join(tmp, 'buildah-copy'), 'latest'));
    const interesting = (names: string[]): string[] => names.filter((n) => n.includes('\\')).map((n) => n.replace(/^\.?\/?/, ''));
    expect(interesting(ours)).toEqual(interesting(theirs));
  }, 120_000);

  it('append --layer DIR keeps them byte for byte', async () => {
    ok(await strata(['append', '--layer', ctx, '-o', `oci:${join(tmp, 'append-oci')}:latest`, '--progress', 'quiet'], env()));
    const names = tarNames(lastLayer(join(tmp, 'append-oci'), 'latest'));
    expect(names).toEqual(expect.arrayContaining(['bad\\377\\376utf8.txt', 'sub/caf\\351', 'l\\377nk', 'ign\\377ored']));
  }, 60_000);

  it('a RUN step that makes and removes such names records them byte for byte, as buildah does', async (t) => {
    if (!isRoot()) {
      if (process.env.CI) throw new Error('the chroot executor needs root');
      t.skip();
      return;
    }
    const base = await pushBusyboxBase(reg.host, { repo: 'bytes-base' });
    const run = join(tmp, 'run');
    mkdirSync(run, { recursive: true });
    writeFileSync(
      join(run, 'Dockerfile'),
      `FROM ${base.ref}\nRUN mkdir /d && printf x > "/d/$(printf 'r\\377un')" && printf y > "/d/$(printf 'caf\\351')"\nRUN rm "/d/$(printf 'caf\\351')"\n`,
    );
    ok(await strata(['build', '--executor', 'chroot', '-o', `type=oci,tar=false,dest=${join(tmp, 'run-oci')}`, '--progress', 'quiet', run], env()));
    const layout = join(tmp, 'run-oci');
    const ours = [...tarNames(lastLayer(layout, 'latest', 1)), ...tarNames(lastLayer(layout, 'latest'))];
    expect(ours).toEqual(expect.arrayContaining(['d/r\\377un', 'd/caf\\351', 'd/.wh.caf\\351']));

    const bud = await buildah.bud(run, 'bytes-run', { extra: ['--layers'] });
    expect(bud.code, bud.stderr).toBe(0);
    await buildah.pushOci('bytes-run', join(tmp, 'buildah-run'));
    const theirs = [...tarNames(lastLayer(join(tmp, 'buildah-run'), 'latest', 1)), ...tarNames(lastLayer(join(tmp, 'buildah-run'), 'latest'))];
    const interesting = (names: string[]): string[] =>
      names
        .filter((n) => n.includes('\\'))
        .map((n) => n.replace(/^\.?\/?/, ''))
        .sort();
    expect(interesting(ours)).toEqual(interesting(theirs));
  }, 180_000);
});
