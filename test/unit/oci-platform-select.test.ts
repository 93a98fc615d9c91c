import { describe, expect, it } from 'vitest';
import type { Descriptor, Index, Platform } from '../../src/oci/index.js';
import { MediaType } from '../../src/oci/index.js';
import { checkImagePlatform, indexPlatforms, platformCandidates } from '../../src/oci/index.js';

const d = (n: number, platform?: Platform, extra: Partial<Descriptor> = {}): Descriptor => ({
  mediaType: MediaType.OciManifest,
  digest: `sha256:${String(n).repeat(64).slice(0, 64)}`,
  size: 100 + n,
  ...(platform ? { platform } : {}),
  ...extra,
});
const index = (manifests: Descriptor[]): Index => ({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests });

describe('platform resolution', () => {
  const amd64 = d(1, { os: 'linux', architecture: 'amd64' });
  const arm64 = d(2, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  const armv7 = d(3, { os: 'linux', architecture: 'arm', variant: 'v7' });
  const armv6 = d(4, { os: 'linux', architecture: 'arm', variant: 'v6' });
  const attestation = d(5, { os: 'unknown', architecture: 'unknown' }, { annotations: { 'vnd.docker.reference.type': 'attestation-manifest' } });
  const win1 = d(6, { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.1234' });
  const win2 = d(7, { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.100' });

  it('matches os/arch with containerd normalization', () => {
    const idx = index([attestation, amd64, arm64, armv7]);
    expect(platformCandidates(idx, { os: 'linux', architecture: 'amd64' })[0]).toBe(amd64);
    expect(platformCandidates(idx, { os: 'linux', architecture: 'x86_64' })[0]).toBe(amd64);
    expect(platformCandidates(idx, { os: 'linux', architecture: 'arm64' })[0]).toBe(arm64);
    expect(platformCandidates(idx, { os: 'linux', architecture: 'aarch64' })[0]).toBe(arm64);
    expect(platformCandidates(idx, { os: 'linux', architecture: 'arm' })[0]).toBe(armv7);
    expect(platformCandidates(idx, { os: 'linux', architecture: 's390x' })).toEqual([]);
  });

  it('takes a linux/arm64 request for an entry that says v8, and a v8 request for one that says none', () => {
    // Docker Hub official images write `variant: "v8"`; BuildKit and strata write none.
    const bare = d(10, { os: 'linux', architecture: 'arm64' });
    expect(platformCandidates(index([amd64, arm64]), { os: 'linux', architecture: 'arm64' })).toEqual([arm64]);
    expect(platformCandidates(index([amd64, bare]), { os: 'linux', architecture: 'arm64', variant: 'v8' })).toEqual([bare]);
    expect(platformCandidates(index([amd64, bare]), { os: 'linux', architecture: 'arm64', variant: 'v8.2' })).toEqual([bare]);
    expect(platformCandidates(index([amd64, arm64]), { os: 'linux', architecture: 'aarch64', variant: '8' })).toEqual([arm64]);
    expect(platformCandidates(index([d(11, { os: 'linux', architecture: 'arm64', variant: 'v8.2' })]), { os: 'linux', architecture: 'arm64' })).toEqual([]);
    expect(() => checkImagePlatform('img', { os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' })).not.toThrow();
    expect(() => checkImagePlatform('img', { os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 'arm64' })).not.toThrow();
  });

  it('never picks attestation entries', () => {
    expect(platformCandidates(index([attestation]), { os: 'unknown', architecture: 'unknown' })).toEqual([]);
    expect(indexPlatforms(index([attestation, amd64]))).toEqual(['linux/amd64']);
  });

  it('prefers the exact arm variant, then the closest lower one', () => {
    expect(platformCandidates(index([armv6, armv7]), { os: 'linux', architecture: 'arm', variant: 'v7' })).toEqual([armv7, armv6]);
    expect(platformCandidates(index([armv6]), { os: 'linux', architecture: 'arm', variant: 'v7' })).toEqual([armv6]);
    expect(platformCandidates(index([armv7]), { os: 'linux', architecture: 'arm', variant: 'v6' })).toEqual([]);
  });

  it('prefers the matching Windows os.version', () => {
    expect(platformCandidates(index([win1, win2]), { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.100' })[0]).toBe(win2);
    expect(platformCandidates(index([win1, win2]), { os: 'windows', architecture: 'amd64' })[0]).toBe(win1);
  });

  it('keeps nested indexes without a platform as candidates to descend into, last', () => {
    const nested = d(8, undefined, { mediaType: MediaType.OciIndex });
    expect(platformCandidates(index([nested, amd64]), { os: 'linux', architecture: 'amd64' })).toEqual([amd64, nested]);
    // A platform-less manifest is taken only when it is the index's one image (see 'one ranked selector').
    expect(platformCandidates(index([d(9), amd64]), { os: 'linux', architecture: 'amd64' })).toEqual([amd64]);
  });

  it('checks a single-manifest image against an explicit platform', () => {
    expect(() => checkImagePlatform('img', { os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'amd64' })).not.toThrow();
    expect(() => checkImagePlatform('img', { os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'amd64' })).toThrow(
      expect.objectContaining({ code: 'E_PLATFORM_MISMATCH', message: expect.stringMatching(/^img is a linux\/amd64 image, not linux\/arm64/) }),
    );
    expect(() => checkImagePlatform('img', { os: 'linux', architecture: 'arm64' }, {})).not.toThrow();
  });
});

describe('one ranked selector', () => {
  const v5 = d(20, { os: 'linux', architecture: 'arm', variant: 'v5' });
  const v6 = d(21, { os: 'linux', architecture: 'arm', variant: 'v6' });
  const v7 = d(22, { os: 'linux', architecture: 'arm', variant: 'v7' });

  it('ranks the exact arm variant first, then the closest older one, whatever the index order', () => {
    expect(platformCandidates(index([v5, v7, v6]), { os: 'linux', architecture: 'arm', variant: 'v7' })).toEqual([v7, v6, v5]);
    expect(platformCandidates(index([v5, v6]), { os: 'linux', architecture: 'arm', variant: 'v7' })).toEqual([v6, v5]);
  });

  it('takes a lone entry without a platform, and nested indexes after every match', () => {
    const lone = d(23);
    expect(platformCandidates(index([lone]), { os: 'linux', architecture: 'amd64' })).toEqual([lone]);
    const nested = d(24, undefined, { mediaType: MediaType.OciIndex });
    expect(platformCandidates(index([nested, v7]), { os: 'linux', architecture: 'arm' })).toEqual([v7, nested]);
    expect(platformCandidates(index([lone, v7]), { os: 'linux', architecture: 'amd64' })).toEqual([]);
  });
});
