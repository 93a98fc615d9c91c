import { describe, expect, it } from 'vitest';
import { digestOf } from '../../src/digest/index.js';
import {
  MediaType,
  canonicalJson,
  canonicalJsonBytes,
  formatPlatform,
  hostPlatform,
  isAttestationPlatform,
  normalizePlatform,
  parseImageConfig,
  parseManifestOrIndex,
  parsePlatform,
  platformMatches,
} from '../../src/oci/index.js';
import { thrown } from '../helpers/errors.js';

const D1 = digestOf('config');
const D2 = digestOf('layer');
const descriptor = (mediaType: string, digest = D1, size = 6) => ({ mediaType, digest, size });
const ociManifest = {
  schemaVersion: 2,
  mediaType: MediaType.OciManifest,
  config: descriptor(MediaType.OciConfig),
  layers: [descriptor(MediaType.OciLayerGzip, D2, 5)],
};
const dockerManifest = {
  schemaVersion: 2,
  mediaType: MediaType.DockerManifest,
  config: descriptor(MediaType.DockerConfig),
  layers: [descriptor(MediaType.DockerLayerGzip, D2, 5)],
};
const ociIndex = {
  schemaVersion: 2,
  mediaType: MediaType.OciIndex,
  manifests: [{ ...descriptor(MediaType.OciManifest), platform: { os: 'linux', architecture: 'amd64' } }],
};
const dockerList = { ...ociIndex, mediaType: MediaType.DockerManifestList, manifests: [descriptor(MediaType.DockerManifest)] };

describe('canonicalJson', () => {
  it('sorts keys recursively, inside arrays too, with no white space', () => {
    expect(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}');
  });

  it('drops undefined members and keeps nulls', () => {
    expect(canonicalJson({ a: undefined, b: null, c: { d: undefined } })).toBe('{"b":null,"c":{}}');
  });

  it('gives the same bytes whatever the key order', () => {
    expect(canonicalJsonBytes({ x: 1, y: [1, 2] }).equals(canonicalJsonBytes({ y: [1, 2], x: 1 }))).toBe(true);
  });
});

describe('parseManifestOrIndex', () => {
  it.each([
    ['OCI manifest', ociManifest, 'manifest', MediaType.OciManifest],
    ['Docker manifest', dockerManifest, 'manifest', MediaType.DockerManifest],
    ['OCI index', ociIndex, 'index', MediaType.OciIndex],
    ['Docker manifest list', dockerList, 'index', MediaType.DockerManifestList],
  ])('accepts a %s', (_what, doc, kind, mediaType) => {
    const parsed = parseManifestOrIndex(JSON.stringify(doc), 'test');
    expect(parsed.kind).toBe(kind);
    expect(parsed.mediaType).toBe(mediaType);
  });

  it('takes bytes as well as text', () => {
    expect(parseManifestOrIndex(Buffer.from(JSON.stringify(ociManifest)), 'test').kind).toBe('manifest');
  });

  it('infers the type from contentType when the document has no mediaType', () => {
    const { mediaType: _m, ...bare } = dockerManifest;
    expect(parseManifestOrIndex(JSON.stringify(bare), 'test', MediaType.DockerManifest).mediaType).toBe(MediaType.DockerManifest);
    const { mediaType: _i, ...bareIndex } = dockerList;
    const parsed = parseManifestOrIndex(JSON.stringify(bareIndex), 'test', MediaType.DockerManifestList);
    expect(parsed).toMatchObject({ kind: 'index', mediaType: MediaType.DockerManifestList });
  });

  it('falls back to the OCI type by shape when neither document nor contentType says', () => {
    const { mediaType: _m, ...bare } = ociManifest;
    expect(parseManifestOrIndex(JSON.stringify(bare), 'test', 'application/json').mediaType).toBe(MediaType.OciManifest);
    const { mediaType: _i, ...bareIndex } = ociIndex;
    expect(parseManifestOrIndex(JSON.stringify(bareIndex), 'test').mediaType).toBe(MediaType.OciIndex);
  });

  it.each([
    ['invalid JSON', '{"schemaVersion": 2,'],
    ['a JSON array', '[]'],
    ['schemaVersion 1', JSON.stringify({ ...ociManifest, schemaVersion: 1 })],
    ['no schemaVersion', JSON.stringify({ ...ociManifest, schemaVersion: undefined })],
    ['an unknown media type', JSON.stringify({ ...ociManifest, mediaType: 'application/vnd.example+json' })],
    ['no layers', JSON.stringify({ ...ociManifest, layers: undefined })],
    ['no config', JSON.stringify({ ...ociManifest, config: undefined })],
    ['a layer without mediaType', JSON.stringify({ ...ociManifest, layers: [{ digest: D2, size: 1 }] })],
    ['a layer with a bad digest', JSON.stringify({ ...ociManifest, layers: [descriptor(MediaType.OciLayer, 'sha256:abc' as never)] })],
    ['a layer with a negative size', JSON.stringify({ ...ociManifest, layers: [descriptor(MediaType.OciLayer, D2, -1)] })],
    ['a layer with a fractional size', JSON.stringify({ ...ociManifest, layers: [descriptor(MediaType.OciLayer, D2, 1.5)] })],
    ['an index without manifests', JSON.stringify({ ...ociIndex, manifests: undefined })],
    ['an index entry that is not an object', JSON.stringify({ ...ociIndex, manifests: ['x'] })],
  ])('refuses %s with E_MANIFEST_INVALID naming what', (_what, text) => {
    const error = thrown(() => parseManifestOrIndex(text, 'manifest of app'));
    expect(error.code).toBe('E_MANIFEST_INVALID');
    expect(error.message).toMatch(/^manifest of app/);
  });

  it('says which descriptor is wrong', () => {
    const error = thrown(() => parseManifestOrIndex(JSON.stringify({ ...ociManifest, layers: [ociManifest.layers[0], { digest: D2, size: 1 }] }), 'm'));
    expect(error.message).toContain('layers[1]');
  });
});

describe('parseImageConfig', () => {
  const config = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [D1] }, config: { Env: ['A=1'] } };

  it('accepts a config', () => {
    expect(parseImageConfig(JSON.stringify(config), 'c').config?.Env).toEqual(['A=1']);
  });

  it.each([
    ['invalid JSON', 'nope'],
    ['no os', JSON.stringify({ ...config, os: undefined })],
    ['no architecture', JSON.stringify({ ...config, architecture: 7 })],
    ['no rootfs', JSON.stringify({ ...config, rootfs: undefined })],
    ['a wrong rootfs type', JSON.stringify({ ...config, rootfs: { type: 'other', diff_ids: [] } })],
    ['a non-string diff_id', JSON.stringify({ ...config, rootfs: { type: 'layers', diff_ids: [1] } })],
    ['an invalid diff_id', JSON.stringify({ ...config, rootfs: { type: 'layers', diff_ids: ['sha256:XYZ'] } })],
  ])('refuses %s with E_CONFIG_INVALID', (_what, text) => {
    expect(thrown(() => parseImageConfig(text, 'config of app')).code).toBe('E_CONFIG_INVALID');
  });
});

describe('platform', () => {
  it('parses os/arch[/variant], and a bare arch as linux', () => {
    expect(parsePlatform('linux/amd64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(parsePlatform('linux/arm/v6')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v6' });
    expect(parsePlatform('arm64')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(parsePlatform('linux/arm64')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(parsePlatform('linux/arm64/v8.2')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8.2' });
    expect(parsePlatform('linux/arm')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(parsePlatform(' windows/amd64 ')).toEqual({ os: 'windows', architecture: 'amd64' });
  });

  it.each(['', 'linux/', '/amd64', 'linux//v7', 'a/b/c/d'])('refuses "%s" with E_USAGE', (text) => {
    expect(thrown(() => parsePlatform(text)).code).toBe('E_USAGE');
  });

  // The table is containerd/platforms normalizeArch (database.go), as BuildKit, buildx and Docker 25+ use it.
  it.each([
    ['i386', undefined, '386', undefined],
    ['i386', 'v7', '386', undefined],
    ['x86_64', undefined, 'amd64', undefined],
    ['x86-64', undefined, 'amd64', undefined],
    ['amd64', 'v1', 'amd64', undefined],
    ['AMD64', 'V1', 'amd64', undefined],
    ['amd64', 'v3', 'amd64', 'v3'],
    ['aarch64', undefined, 'arm64', undefined],
    ['arm64', undefined, 'arm64', undefined],
    ['arm64', '8', 'arm64', undefined],
    ['arm64', 'v8', 'arm64', undefined],
    ['arm64', 'V8', 'arm64', undefined],
    ['arm64', 'v8.0', 'arm64', undefined],
    ['arm64', 'v8.2', 'arm64', 'v8.2'],
    ['arm64', '9', 'arm64', 'v9'],
    ['arm64', '9.0', 'arm64', 'v9'],
    ['arm64', 'v9.0', 'arm64', 'v9'],
    ['arm64', 'v9', 'arm64', 'v9'],
    ['aarch64', 'v9.1', 'arm64', 'v9.1'],
    ['armhf', undefined, 'arm', 'v7'],
    ['armhf', 'v6', 'arm', 'v7'],
    ['armel', undefined, 'arm', 'v6'],
    ['arm', undefined, 'arm', 'v7'],
    ['arm', '7', 'arm', 'v7'],
    ['arm', '5', 'arm', 'v5'],
    ['arm', '6', 'arm', 'v6'],
    ['arm', '8', 'arm', 'v8'],
    ['arm', 'v6', 'arm', 'v6'],
    ['ARM', 'V7', 'arm', 'v7'],
    ['riscv64', undefined, 'riscv64', undefined],
  ])('normalizes %s variant %s to %s variant %s', (architecture, variant, wantArch, wantVariant) => {
    const p = normalizePlatform({ os: 'linux', architecture, ...(variant === undefined ? {} : { variant }) });
    expect(p).toEqual({ os: 'linux', architecture: wantArch, ...(wantVariant === undefined ? {} : { variant: wantVariant }) });
    // Normalizing is idempotent, and a dropped variant is absent rather than undefined or ''.
    expect(normalizePlatform(p)).toEqual(p);
    expect('variant' in p).toBe(wantVariant !== undefined);
  });

  it('lower-cases os, maps macos to darwin and keeps os.version', () => {
    expect(normalizePlatform({ os: 'Linux', architecture: 'AMD64', variant: 'v1' })).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(normalizePlatform({ os: 'macos', architecture: 'arm64' })).toEqual({ os: 'darwin', architecture: 'arm64' });
    expect(normalizePlatform({ os: 'MacOS', architecture: 'arm64' }).os).toBe('darwin');
    expect(normalizePlatform({ os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763' })['os.version']).toBe('10.0.17763');
  });

  it('formats os/arch[/variant]', () => {
    expect(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' })).toBe('linux/arm/v7');
    expect(formatPlatform({ os: 'linux', architecture: 'amd64' })).toBe('linux/amd64');
  });

  it('formats a normalized arm64 as linux/arm64', () => {
    expect(formatPlatform(parsePlatform('linux/arm64/v8'))).toBe('linux/arm64');
    expect(formatPlatform(normalizePlatform({ os: 'linux', architecture: 'aarch64' }))).toBe('linux/arm64');
    expect(formatPlatform(parsePlatform('linux/arm64/v9.0'))).toBe('linux/arm64/v9');
  });

  it('matches after normalizing; an arm v7 host runs v6 and v5 but not v8', () => {
    expect(platformMatches({ os: 'linux', architecture: 'x86_64' }, { os: 'linux', architecture: 'amd64' })).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'aarch64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v8' }, { os: 'linux', architecture: 'arm', variant: 'v5' })).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm' })).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm', variant: 'v4' })).toBe(false);
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm', variant: 'v6' })).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm', variant: 'v5' })).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v6' }, { os: 'linux', architecture: 'arm', variant: 'v7' })).toBe(false);
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm', variant: 'v8' })).toBe(false);
    expect(platformMatches({ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' })).toBe(false);
    expect(platformMatches({ os: 'linux', architecture: 'amd64' }, { os: 'windows', architecture: 'amd64' })).toBe(false);
  });

  const arm64 = (variant?: string): { os: string; architecture: string; variant?: string } =>
    variant === undefined ? { os: 'linux', architecture: 'arm64' } : { os: 'linux', architecture: 'arm64', variant };

  it('treats a missing arm64 variant and v8 alike, both ways (Docker Hub indexes say v8)', () => {
    for (const wanted of [undefined, '8', 'v8', 'v8.0']) {
      for (const candidate of [undefined, '8', 'v8', 'v8.0']) expect(platformMatches(arm64(wanted), arm64(candidate))).toBe(true);
    }
    expect(platformMatches(parsePlatform('linux/arm64'), arm64('v8'))).toBe(true);
    expect(platformMatches(arm64('v8'), parsePlatform('linux/arm64'))).toBe(true);
  });

  // containerd's platforms.Only: arm64 v8.x runs v8.0..v8.x; v9.x runs v9.0..v9.x and v8.0..v8.(x+5).
  it.each([
    ['v8.2', 'v8', true],
    ['v8.2', undefined, true],
    ['v8.2', 'v8.1', true],
    ['v8.2', 'v8.2', true],
    ['v8.2', 'v8.3', false],
    [undefined, 'v8.1', false],
    ['v8', 'v8.1', false],
    ['v8.10', 'v8.9', true],
    ['v8.9', 'v8.10', false],
    [undefined, 'v9', false],
    ['v8.9', 'v9', false],
    ['v9', 'v9', true],
    ['v9', undefined, true],
    ['v9', 'v8', true],
    ['v9', 'v8.5', true],
    ['v9', 'v8.6', false],
    ['v9.2', 'v8.7', true],
    ['v9.2', 'v8.8', false],
    ['v9.2', 'v9.1', true],
    ['v9.1', 'v9.2', false],
    ['v9.7', 'v8.9', true],
    ['9.0', 'v9', true],
    ['v10', 'v8', false],
    ['banana', 'v8', false],
    ['banana', 'banana', true],
  ])('an arm64 %s request takes an arm64 %s image: %s', (wanted, candidate, expected) => {
    expect(platformMatches(arm64(wanted), arm64(candidate))).toBe(expected);
  });

  it('an amd64 vN request takes v1..vN images; a missing amd64 variant is v1', () => {
    const amd64 = (variant?: string) => (variant === undefined ? { os: 'linux', architecture: 'amd64' } : { os: 'linux', architecture: 'amd64', variant });
    expect(platformMatches(amd64('v3'), amd64())).toBe(true);
    expect(platformMatches(amd64('v3'), amd64('v1'))).toBe(true);
    expect(platformMatches(amd64('v3'), amd64('v2'))).toBe(true);
    expect(platformMatches(amd64('v2'), amd64('v3'))).toBe(false);
    expect(platformMatches(amd64(), amd64('v2'))).toBe(false);
    expect(platformMatches(amd64('v1'), amd64())).toBe(true);
  });

  it('other architectures match equal variants, or when either side has none', () => {
    const riscv = (variant?: string) => (variant === undefined ? { os: 'linux', architecture: 'riscv64' } : { os: 'linux', architecture: 'riscv64', variant });
    expect(platformMatches(riscv(), riscv('rva22'))).toBe(true);
    expect(platformMatches(riscv('rva22'), riscv())).toBe(true);
    expect(platformMatches(riscv('rva22'), riscv('rva22'))).toBe(true);
    expect(platformMatches(riscv('rva20'), riscv('rva22'))).toBe(false);
  });

  it('recognizes attestation entries (unknown/unknown) only', () => {
    expect(isAttestationPlatform({ os: 'unknown', architecture: 'unknown' })).toBe(true);
    expect(isAttestationPlatform({ os: 'linux', architecture: 'unknown' })).toBe(false);
    expect(isAttestationPlatform(undefined)).toBe(false);
  });

  it('maps Node platform and arch names to OCI ones', () => {
    expect(hostPlatform('linux', 'x64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(hostPlatform('linux', 'arm64')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(formatPlatform(hostPlatform('linux', 'arm64'))).toBe('linux/arm64');
    expect(hostPlatform('linux', 'arm')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(hostPlatform('linux', 'ia32')).toEqual({ os: 'linux', architecture: '386' });
    expect(hostPlatform('linux', 'ppc64')).toEqual({ os: 'linux', architecture: 'ppc64le' });
    expect(hostPlatform('win32', 'x64')).toEqual({ os: 'windows', architecture: 'amd64' });
    expect(hostPlatform('darwin', 'arm64').os).toBe('darwin');
    expect(hostPlatform().os).toBe(process.platform === 'win32' ? 'windows' : process.platform);
  });
});
