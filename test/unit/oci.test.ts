import { describe, expect, it } from 'vitest';
import { digestOf } from '../../src/digest/index.js';
import { StrataError } from '../../src/errors/index.js';
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

function thrown(fn: () => unknown): StrataError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(StrataError);
    return error as StrataError;
  }
  throw new Error('expected a StrataError');
}

const D1 = digestOf('config');
const D2 = digestOf('layer');
const descriptor = (mediaType: string, digest = D1, size = 6) => ({ mediaType, digest, size });
const ociManifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: descriptor(MediaType.OciConfig), layers: [descriptor(MediaType.OciLayerGzip, D2, 5)] };
const dockerManifest = { schemaVersion: 2, mediaType: MediaType.DockerManifest, config: descriptor(MediaType.DockerConfig), layers: [descriptor(MediaType.DockerLayerGzip, D2, 5)] };
const ociIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [{ ...descriptor(MediaType.OciManifest), platform: { os: 'linux', architecture: 'amd64' } }] };
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
    expect(parsePlatform('arm64')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(parsePlatform(' windows/amd64 ')).toEqual({ os: 'windows', architecture: 'amd64' });
  });

  it.each(['', 'linux/', '/amd64', 'linux//v7', 'a/b/c/d'])('refuses "%s" with E_USAGE', (text) => {
    expect(thrown(() => parsePlatform(text)).code).toBe('E_USAGE');
  });

  it('normalizes aliases as containerd does', () => {
    expect(normalizePlatform({ os: 'linux', architecture: 'aarch64' })).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(normalizePlatform({ os: 'linux', architecture: 'arm64', variant: '8' })).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(normalizePlatform({ os: 'linux', architecture: 'arm' })).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(normalizePlatform({ os: 'linux', architecture: 'arm', variant: '6' })).toEqual({ os: 'linux', architecture: 'arm', variant: 'v6' });
    expect(normalizePlatform({ os: 'linux', architecture: 'armhf' })).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(normalizePlatform({ os: 'linux', architecture: 'x86_64' })).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(normalizePlatform({ os: 'Linux', architecture: 'AMD64', variant: 'v1' })).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(normalizePlatform({ os: 'linux', architecture: 'i386' })).toEqual({ os: 'linux', architecture: '386' });
    expect(normalizePlatform({ os: 'macos', architecture: 'arm64' }).os).toBe('darwin');
    expect(normalizePlatform({ os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763' })['os.version']).toBe('10.0.17763');
  });

  it('formats os/arch[/variant]', () => {
    expect(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' })).toBe('linux/arm/v7');
    expect(formatPlatform({ os: 'linux', architecture: 'amd64' })).toBe('linux/amd64');
  });

  it('matches after normalizing; an arm v7 host runs v6 and v5 but not v8', () => {
    expect(platformMatches({ os: 'linux', architecture: 'x86_64' }, { os: 'linux', architecture: 'amd64' })).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'aarch64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm', variant: 'v6' })).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm', variant: 'v5' })).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v6' }, { os: 'linux', architecture: 'arm', variant: 'v7' })).toBe(false);
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm', variant: 'v8' })).toBe(false);
    expect(platformMatches({ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' })).toBe(false);
    expect(platformMatches({ os: 'linux', architecture: 'amd64' }, { os: 'windows', architecture: 'amd64' })).toBe(false);
  });

  // BUG (src/oci/platform.ts, platformMatches): the comment says an arm64 v8.x host runs v8 images
  // (as containerd's matcher does), but the variant fallback only applies to 32-bit arm, so a
  // linux/arm64/v8.2 request refuses a linux/arm64/v8 image.
  it('an arm64 v8.x host runs arm64 v8 images', () => {
    expect(platformMatches({ os: 'linux', architecture: 'arm64', variant: 'v8.2' }, { os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe(true);
  });

  it('recognizes attestation entries (unknown/unknown) only', () => {
    expect(isAttestationPlatform({ os: 'unknown', architecture: 'unknown' })).toBe(true);
    expect(isAttestationPlatform({ os: 'linux', architecture: 'unknown' })).toBe(false);
    expect(isAttestationPlatform(undefined)).toBe(false);
  });

  it('maps Node platform and arch names to OCI ones', () => {
    expect(hostPlatform('linux', 'x64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(hostPlatform('linux', 'arm64')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(hostPlatform('linux', 'arm')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(hostPlatform('linux', 'ia32')).toEqual({ os: 'linux', architecture: '386' });
    expect(hostPlatform('linux', 'ppc64')).toEqual({ os: 'linux', architecture: 'ppc64le' });
    expect(hostPlatform('win32', 'x64')).toEqual({ os: 'windows', architecture: 'amd64' });
    expect(hostPlatform('darwin', 'arm64').os).toBe('darwin');
    expect(hostPlatform().os).toBe(process.platform === 'win32' ? 'windows' : process.platform);
  });
});
