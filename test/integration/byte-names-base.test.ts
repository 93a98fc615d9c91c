/**
 * Base images whose layers hold names that are not UTF-8 (`bad\377\376utf8.txt`), written by GNU tar
 * (`--format=pax`: raw bytes in PAX path records; `--format=gnu`: in the ustar fields and GNU long-name
 * entries) and by buildah (Go's archive/tar), keep those names byte for byte through a build FROM them
 * (RUN sees them, a whiteout of one removes it, COPY --from copies them), `export` and `diff`. Names are
 * compared as `tar -t` prints them (bytes that are not printable as `\ooo`).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Buildah, pushBusyboxBase } from '../helpers/busybox-base.js';
import { ok, strata } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWithTools, isRoot } from '../helpers/tools.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const BAD = 'bad\xff\xfeutf8.txt';
const LONG = `${'n'.repeat(110)}\xff`;

function at(root: string, rel: string): Buffer {
  return Buffer.concat([Buffer.from(`${root}/`), b(rel)]);
}

/** `tar -t` (or `-tv`) of a tar file: names with their bytes escaped by GNU tar, `./` and a trailing `/` dropped. */
function listing(path: string, verbose = false): string[] {
  const out = execFileSync('tar', [verbose ? '-tvf' : '-tf', path], { encoding: 'latin1', maxBuffer: 1 << 26 });
  return out
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (verbose ? line.replace(/^.*? \d\d:\d\d /, '') : line).replace(/^\.\//, '').replace(/\/$/, ''))
    .sort();
}

/** The names that hold escaped bytes. */
const escaped = (names: string[]): string[] => names.filter((n) => n.includes('\\'));

describeWithTools(['buildah', 'docker-registry'], 'base images whose file names are not UTF-8', () => {
  let tmp: string;
  let reg: TestRegistry;
  let buildah: Buildah;
  let tars: { pax: string; gnu: string; whiteout: string };
  const env = (): Record<string, string> => ({ STRATA_ROOT: join(tmp, 'store'), SOURCE_DATE_EPOCH: '1700000000' });

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'strata-bytes-base-'));
    const src = join(tmp, 'src');
    mkdirSync(join(src, 'pax'), { recursive: true });
    mkdirSync(join(src, 'gnu'));
    writeFileSync(at(src, `pax/${BAD}`), 'pax\n');
    writeFileSync(at(src, 'pax/gone\xff'), 'gone\n');
    symlinkSync(b(BAD), at(src, 'pax/l\xffnk'));
    writeFileSync(at(src, `gnu/${BAD}`), 'gnu\n');
    writeFileSync(at(src, `gnu/${LONG}`), 'long\n');
    mkdirSync(join(tmp, 'wh', 'pax'), { recursive: true });
    writeFileSync(at(join(tmp, 'wh'), 'pax/.wh.gone\xff'), '');
    tars = { pax: join(tmp, 'pax.tar'), gnu: join(tmp, 'gnu.tar'), whiteout: join(tmp, 'wh.tar') };
    execFileSync('tar', ['--format=pax', '-cf', tars.pax, '-C', src, 'pax']);
    execFileSync('tar', ['--format=gnu', '-cf', tars.gnu, '-C', src, 'gnu']);
    execFileSync('tar', ['--format=pax', '-cf', tars.whiteout, '-C', join(tmp, 'wh'), 'pax']);
    reg = await startRegistry({ auth: 'none' });
    buildah = new Buildah(join(tmp, 'buildah'));
  }, 60_000);
  afterAll(async () => {
    await buildah?.cleanup();
    await reg?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('FROM a GNU tar layer: RUN, a whiteout, COPY --from, export and diff keep the bytes', async (t) => {
    if (!isRoot()) {
      if (process.env.CI) throw new Error('the chroot executor needs root');
      t.skip();
      return;
    }
    const base = await pushBusyboxBase(reg.host, { repo: 'bytes-gnu-base', extraLayers: [tars.pax, tars.gnu, tars.whiteout] });
    const ctx = join(tmp, 'ctx');
    mkdirSync(ctx);
    const name = (rel: string): string => `"/${rel.replace(/[\x80-\xff]/g, (c) => `$(printf '\\${c.charCodeAt(0).toString(8)}')`)}"`;
    writeFileSync(
      join(ctx, 'Dockerfile'),
      [
        `FROM ${base.ref} AS base`,
        `RUN test -f ${name(`pax/${BAD}`)} && test -f ${name(`gnu/${LONG}`)} && test ! -e ${name('pax/gone\xff')} && cp ${name(`gnu/${BAD}`)} ${name('ran\xff')}`,
        'FROM scratch AS fewer',
        'COPY --from=base /pax/ /cp/pax/',
        'COPY --from=base /gnu/ /cp/gnu/',
        'FROM fewer',
        'COPY --from=base /ran* /cp/',
        '',
      ].join('\n'),
    );
    ok(await strata(['build', '--executor', 'chroot', '--target', 'base', '-t', 'bytes-run', '--progress', 'quiet', ctx], env()));
    ok(await strata(['build', '--executor', 'chroot', '-t', 'bytes-copy', '--progress', 'quiet', ctx], env()));
    ok(await strata(['build', '--executor', 'chroot', '--target', 'fewer', '-t', 'bytes-fewer', '--progress', 'quiet', ctx], env()));
    ok(await strata(['export', 'bytes-run', '-o', join(tmp, 'run.tar')], env()));
    ok(await strata(['export', 'bytes-copy', '-o', join(tmp, 'copy.tar')], env()));

    // What GNU tar wrote, less the whited-out name, is what the exported root holds, byte for byte.
    const written = escaped([...listing(tars.pax), ...listing(tars.gnu)])
      .filter((n) => n !== 'pax/gone\\377')
      .sort();
    expect(written).toEqual(['gnu/bad\\377\\376utf8.txt', `gnu/${'n'.repeat(110)}\\377`, 'pax/bad\\377\\376utf8.txt', 'pax/l\\377nk'].sort());
    expect(escaped(listing(join(tmp, 'run.tar')))).toEqual([...written, 'ran\\377'].sort());
    expect(escaped(listing(join(tmp, 'copy.tar')))).toEqual([...written.map((n) => `cp/${n}`), 'cp/ran\\377'].sort());
    expect(listing(join(tmp, 'copy.tar'), true)).toContain('cp/pax/l\\377nk -> bad\\377\\376utf8.txt');
    expect(execFileSync('tar', ['-xOf', join(tmp, 'copy.tar'), '--wildcards', 'cp/ran*'], { encoding: 'utf8' })).toBe('gnu\n');

    const text = ok(await strata(['diff', 'bytes-fewer', 'bytes-copy'], env()));
    expect(text, text).toContain('files (1 differ)\n    + /cp/ran\\xff\n');
    const json = JSON.parse(ok(await strata(['diff', 'bytes-run', 'bytes-copy', '--format', 'json'], env()))) as {
      platforms: { files?: { path: string }[] }[];
    };
    const paths = (json.platforms[0]?.files ?? []).map((f) => f.path);
    expect(paths).toContain(`/cp/ran\udcff`);
    expect(paths).toContain(`/pax/bad\udcff\udcfeutf8.txt`);
  }, 180_000);

  it("FROM buildah's layer (Go's archive/tar): COPY --from and export keep the bytes", async () => {
    const ctx = join(tmp, 'buildah-ctx');
    mkdirSync(ctx);
    writeFileSync(at(ctx, BAD), 'buildah\n');
    writeFileSync(at(ctx, LONG), 'long\n');
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY . /b/\n');
    const bud = await buildah.bud(ctx, 'bytes-buildah');
    expect(bud.code, bud.stderr).toBe(0);
    const layout = join(tmp, 'buildah-oci');
    await buildah.pushOci('bytes-buildah', layout);

    const from = join(tmp, 'from-buildah');
    mkdirSync(from);
    writeFileSync(join(from, 'Dockerfile'), 'FROM theirs AS base\nFROM scratch\nCOPY --from=base /b/ /c/\n');
    ok(await strata(['build', '--build-context', `theirs=oci-layout://${layout}:latest`, '-t', 'bytes-from-buildah', '--progress', 'quiet', from], env()));
    ok(await strata(['export', 'bytes-from-buildah', '-o', join(tmp, 'from-buildah.tar')], env()));
    expect(escaped(listing(join(tmp, 'from-buildah.tar')))).toEqual(['c/bad\\377\\376utf8.txt', `c/${'n'.repeat(110)}\\377`].sort());
  }, 120_000);
});
