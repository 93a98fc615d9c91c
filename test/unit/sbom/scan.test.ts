import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeLayer, type LayerEntry } from '../../../src/layer/index.js';
import { scanImageLayers, scanWhileWriting } from '../../../src/sbom/index.js';
import { MemoryBlobReader } from '../../../src/store/index.js';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { TempStore } from '../layer/temp-store.js';
import { findOnPath, itIfTools } from '../../helpers/tools.js';
import { fakeGoBinary, layerOf } from './tar.js';

const STATUS = `Package: base-files
Status: install ok installed
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files
 continuation line: with a colon

Package: removed-one
Status: deinstall ok config-files
Version: 1.0

Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4
`;

const APK = `C:Q1abc=
P:musl
V:1.2.4-r2
A:x86_64
L:MIT
o:musl

P:busybox
V:1.36.1-r15
A:x86_64
L:GPL-2.0-only
`;

describe('scanImageLayers', () => {
  it('lists dpkg, apk, npm, python and Go packages with purls, licenses and locations', async () => {
    const reader = new MemoryBlobReader();
    const base = await layerOf(reader, [
      { name: 'etc/os-release', body: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n' },
      { name: 'var/lib/dpkg/status', body: STATUS },
      { name: 'var/lib/dpkg/status.d/tzdata', body: 'Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n' },
      {
        name: 'usr/share/doc/libc6/copyright',
        body: 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: LGPL-2.1+\n',
      },
      { name: 'lib/apk/db/installed', body: APK },
      { name: 'app/node_modules/left-pad/package.json', body: JSON.stringify({ name: 'left-pad', version: '1.3.0', license: 'WTFPL' }) },
      { name: 'app/node_modules/@scope/util/package.json', body: JSON.stringify({ name: '@scope/util', version: '2.0.0', license: 'MIT' }) },
      { name: 'app/node_modules/@scope/util/node_modules/left-pad/package.json', body: JSON.stringify({ name: 'left-pad', version: '1.3.0' }) },
      {
        name: 'app/package-lock.json',
        body: JSON.stringify({
          lockfileVersion: 3,
          packages: { '': { name: 'app' }, 'node_modules/left-pad': { version: '1.3.0' }, 'node_modules/not-installed': { version: '0.1.0', license: 'ISC' } },
        }),
      },
      {
        name: 'usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA',
        body: 'Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache 2.0\n\nbody\n',
      },
      { name: 'usr/lib/python3/dist-packages/Typing_Extensions-4.0.egg-info', body: 'Metadata-Version: 1.0\nName: Typing_Extensions\nVersion: 4.0\n' },
      {
        name: 'usr/local/bin/tool',
        mode: 0o755,
        body: fakeGoBinary('go1.22.1', 'path\texample.com/tool\nmod\texample.com/tool\tv1.2.3\th1:x=\ndep\tgolang.org/x/sys\tv0.18.0\th1:y=\n'),
      },
    ]);
    const scan = await scanImageLayers([base], reader);
    const purls = scan.packages.map((p) => p.purl);
    expect(purls).toEqual([
      'pkg:apk/debian/busybox@1.36.1-r15?arch=x86_64&distro=debian-12',
      'pkg:apk/debian/musl@1.2.4-r2?arch=x86_64&distro=debian-12',
      'pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12',
      'pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12',
      'pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12',
      'pkg:golang/example.com/tool@v1.2.3',
      'pkg:golang/golang.org/x/sys@v0.18.0',
      'pkg:golang/stdlib@go1.22.1',
      'pkg:npm/%40scope/util@2.0.0',
      'pkg:npm/left-pad@1.3.0',
      'pkg:npm/not-installed@0.1.0',
      'pkg:pypi/requests@2.31.0',
      'pkg:pypi/typing-extensions@4.0',
    ]);
    const byName = new Map(scan.packages.map((p) => [p.name, p]));
    expect(byName.get('libc6')?.license).toBe('LGPL-2.1+');
    expect(byName.get('libc6')?.locations).toEqual(['/var/lib/dpkg/status']);
    expect(byName.get('left-pad')?.locations).toEqual([
      '/app/node_modules/@scope/util/node_modules/left-pad/package.json',
      '/app/node_modules/left-pad/package.json',
    ]);
    expect(byName.get('not-installed')?.locations).toEqual(['/app/package-lock.json']);
    expect(byName.get('musl')?.license).toBe('MIT');
    expect(scan.distro).toEqual({ id: 'debian', versionId: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)' });
    expect(scan.warnings).toEqual([]);
  });

  itIfTools(['umoci'], "reads the build info of a real Go binary (Debian's umoci)", async () => {
    const reader = new MemoryBlobReader();
    const layer = await layerOf(reader, [{ name: 'usr/bin/umoci', mode: 0o755, body: readFileSync(findOnPath('umoci')!) }]);
    const scan = await scanImageLayers([layer], reader);
    expect(scan.warnings).toEqual([]);
    expect(scan.packages.map((p) => p.purl)).toContainEqual(expect.stringMatching(/^pkg:golang\/stdlib@go1\.\d+/));
    expect(scan.packages.map((p) => p.name)).toContain('github.com/opencontainers/umoci/cmd/umoci');
  });

  it("lists a lockfile's own project (cdxgen and syft do; found by bench/cdxgen-compare.sh), v3 and v1", async () => {
    const reader = new MemoryBlobReader();
    // As `npm install` writes it for bench/cdxgen-app: the root entry names the app, its deps are installed.
    const v3 = {
      name: 'cdxgen-compare-app',
      version: '1.0.0',
      lockfileVersion: 3,
      requires: true,
      packages: {
        '': { name: 'cdxgen-compare-app', version: '1.0.0', license: 'MIT', dependencies: { ms: '2.0.0' } },
        'node_modules/ms': { version: '2.0.0', license: 'MIT' },
      },
    };
    const layer = await layerOf(reader, [
      { name: 'app/package-lock.json', body: JSON.stringify(v3) },
      { name: 'app/node_modules/ms/package.json', body: JSON.stringify({ name: 'ms', version: '2.0.0', license: 'MIT' }) },
      {
        name: 'old/package-lock.json',
        body: JSON.stringify({ name: 'old-app', version: '0.3.0', lockfileVersion: 1, dependencies: { x: { version: '1.0.0' } } }),
      },
      { name: 'unnamed/package-lock.json', body: JSON.stringify({ lockfileVersion: 3, packages: { '': { dependencies: {} } } }) },
    ]);
    const scan = await scanImageLayers([layer], reader);
    expect(scan.packages.map((p) => p.purl)).toEqual(['pkg:npm/cdxgen-compare-app@1.0.0', 'pkg:npm/ms@2.0.0', 'pkg:npm/old-app@0.3.0', 'pkg:npm/x@1.0.0']);
    const app = scan.packages.find((p) => p.name === 'cdxgen-compare-app');
    expect(app).toMatchObject({ license: 'MIT', locations: ['/app/package-lock.json'] });
    expect(scan.warnings).toEqual([]);
  });

  it('applies whiteouts and opaque directories of upper layers', async () => {
    const reader = new MemoryBlobReader();
    const lower = await layerOf(reader, [
      { name: 'a/node_modules/x/package.json', body: JSON.stringify({ name: 'x', version: '1.0.0' }) },
      { name: 'b/node_modules/y/package.json', body: JSON.stringify({ name: 'y', version: '1.0.0' }) },
      { name: 'c/node_modules/z/package.json', body: JSON.stringify({ name: 'z', version: '1.0.0' }) },
    ]);
    const upper = await layerOf(reader, [
      { name: 'a/node_modules/.wh.x' },
      { name: 'b/.wh..wh..opq' },
      { name: 'b/node_modules/w/package.json', body: JSON.stringify({ name: 'w', version: '2.0.0' }) },
      { name: 'c/node_modules/z/package.json', body: JSON.stringify({ name: 'z', version: '1.1.0' }) },
    ]);
    const scan = await scanImageLayers([lower, upper], reader);
    expect(scan.packages.map((p) => p.purl)).toEqual(['pkg:npm/w@2.0.0', 'pkg:npm/z@1.1.0']);
  });

  it('finishes on hostile input, lists what it can and warns once per kind', async () => {
    const reader = new MemoryBlobReader();
    // ~50 MB of dpkg status: many real stanzas, broken lines and a line of megabytes.
    const stanza = 'Package: p%d\nStatus: install ok installed\nVersion: 1.%d\n\n';
    const parts: string[] = [];
    for (let i = 0; i < 120_000; i++) parts.push(stanza.replace(/%d/g, String(i)));
    parts.push('garbage line without a colon\n');
    parts.push(`Description: ${'x'.repeat(45_000_000)}\n\n`);
    const status = Buffer.from(parts.join(''));
    expect(status.length).toBeGreaterThan(50_000_000);
    const layer = await layerOf(reader, [
      { name: 'var/lib/dpkg/status', body: status },
      { name: 'n/node_modules/bad/package.json', body: '{ "name": "bad", ' },
      { name: 'n/node_modules/worse/package.json', body: '[1,2]' },
      { name: 'n/node_modules/noversion/package.json', body: '{"name":"noversion"}' },
      { name: 'n/node_modules/good/package.json', body: '{"name":"good","version":"1.0.0"}' },
      // A loop of links: the scan reads entries, it never follows links.
      { name: 'n/node_modules/loop', type: 'symlink', linkname: 'loop' },
      { name: 'n/node_modules/a', type: 'symlink', linkname: 'b' },
      { name: 'n/node_modules/b', type: 'symlink', linkname: 'a' },
      { name: 'n/node_modules/self', type: 'symlink', linkname: '.' },
      { name: 'bin/corrupt-go', mode: 0o755, body: fakeGoBinary('go1.21.0', 'mod\tx\tv1\n', { corruptLength: true }) },
      { name: 'bin/not-elf', mode: 0o755, body: Buffer.alloc(100_000, 0x41) },
      { name: 'site/broken.dist-info/METADATA', body: 'no headers here\n' },
    ]);
    const scan = await scanImageLayers([layer], reader);
    const deb = scan.packages.filter((p) => p.type === 'deb');
    expect(deb.length).toBe(100_000);
    expect(scan.packages.filter((p) => p.type === 'npm').map((p) => p.name)).toEqual(['good']);
    expect(scan.packages.some((p) => p.type === 'golang')).toBe(false);
    const kinds = scan.warnings.map((w) => w.replace(/:.*/, ''));
    expect(kinds.sort()).toEqual(
      [
        '/bin/corrupt-go',
        '/n/node_modules/bad/package.json',
        '/site/broken.dist-info/METADATA',
        '/var/lib/dpkg/status',
        '/var/lib/dpkg/status',
        '/var/lib/dpkg/status',
      ].sort(),
    );
    expect(scan.warnings.find((w) => w.includes('package.json'))).toMatch(/and 2 more like it/);
  }, 60_000);

  it("keeps each layer's findings by digest and reuses them", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sbom-cache-'));
    try {
      const reader = new MemoryBlobReader();
      const layer = await layerOf(reader, [{ name: 'x/node_modules/q/package.json', body: '{"name":"q","version":"3.0.0","license":"MIT"}' }]);
      const first = await scanImageLayers([layer], reader, { cacheDir: dir });
      expect(await readdir(dir)).toHaveLength(1);
      // The blob is gone: a second scan can only succeed from the kept findings.
      const empty = new MemoryBlobReader();
      expect(await scanImageLayers([layer], empty, { cacheDir: dir })).toEqual(first);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('scans a layer while it is written, so the image scan reads no layer back and finds the same', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sbom-tap-'));
    const store = await TempStore.create();
    try {
      const reader = new MemoryBlobReader();
      const lower = await layerOf(reader, [
        { name: 'a/node_modules/x/package.json', body: JSON.stringify({ name: 'x', version: '1.0.0' }) },
        { name: 'etc/os-release', body: 'ID=debian\nVERSION_ID="12"\n' },
      ]);
      // A Go binary of more than 1 MiB: the layer writer reads it in chunks, and the scan reads them as they go.
      const go = fakeGoBinary('go1.22.1', 'path\texample.com/big\nmod\texample.com/big\tv0.1.0\th1:x=\n');
      await writeFile(join(dir, 'big-go'), Buffer.concat([go.subarray(0, 4), Buffer.alloc(1536 * 1024), go.subarray(4)]));
      const size = (await readFile(join(dir, 'big-go'))).length;
      const data = (path: string, text: string): LayerEntry => ({
        path,
        type: 'file',
        mode: 0o644,
        size: text.length,
        mtime: 0,
        uid: 0,
        gid: 0,
        data: Buffer.from(text),
      });
      const entries: LayerEntry[] = [
        data('a/node_modules/.wh.x', ''),
        data('var/lib/dpkg/status', 'Package: tzdata\nStatus: install ok installed\nVersion: 2024a\nArchitecture: all\n'),
        data('n/node_modules/bad/package.json', '{ "name": '),
        { path: 'usr/bin/big', type: 'file', mode: 0o755, size, mtime: 0, uid: 0, gid: 0, source: join(dir, 'big-go') },
      ];
      const watch = scanWhileWriting(join(dir, 'cache'));
      const written = await writeLayer(entries, { tap: watch.tap }, store);
      await watch.written(written.descriptor);
      const upper = written.descriptor;
      // Without the upper blob: the scan can only take the upper layer's findings from the cache.
      const fromTap = await scanImageLayers([lower, upper], reader, { cacheDir: join(dir, 'cache') });
      reader.add(upper.digest, await readFile(store.blobPath(upper.digest)));
      const fromBlob = await scanImageLayers([lower, upper], reader);
      expect(fromTap).toEqual(fromBlob);
      expect(fromTap.packages.map((p) => p.purl)).toEqual([
        'pkg:deb/debian/tzdata@2024a?arch=all&distro=debian-12',
        'pkg:golang/example.com/big@v0.1.0',
        'pkg:golang/stdlib@go1.22.1',
      ]);
      expect(fromTap.warnings).toHaveLength(1);
    } finally {
      await store.remove();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
