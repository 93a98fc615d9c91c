import { StrataError } from '../errors/index.js';
import { formatPlatform, isAttestationPlatform, isIndexMediaType, normalizePlatform, platformMatches, type Descriptor, type Index, type Platform } from '../oci/index.js';

/** BuildKit marks attestation manifests with this annotation as well as `unknown/unknown`. */
function isAttestation(d: Descriptor): boolean {
  return isAttestationPlatform(d.platform) || d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest';
}

function variantRank(wanted: Platform, candidate: Platform): number {
  const w = normalizePlatform(wanted);
  const c = normalizePlatform(candidate);
  if (w.variant === c.variant) return 0;
  // Among compatible arm variants, the closest (highest) one is best.
  const n = Number((c.variant ?? 'v0').replace(/^v/, ''));
  return Number.isFinite(n) ? 100 - n : 100;
}

function osVersionRank(wanted: Platform, candidate: Platform): number {
  const want = wanted['os.version'];
  if (!want) return 0;
  const have = candidate['os.version'];
  if (have === want) return 0;
  // Windows: same major.minor.build runs; prefer it over other builds.
  return have !== undefined && have.split('.').slice(0, 3).join('.') === want.split('.').slice(0, 3).join('.') ? 1 : 2;
}

/**
 * The entries of an index that can serve `wanted`, best first: platform match (containerd's
 * normalization), exact variant before compatible ones, matching Windows `os.version` first.
 * Attestation entries never match. Nested indexes without a platform are kept as candidates to
 * descend into.
 */
export function platformCandidates(index: Index, wanted: Platform): Descriptor[] {
  const ranked = index.manifests
    .map((d, order) => ({ d, order }))
    .filter(({ d }) => !isAttestation(d))
    .filter(({ d }) => (d.platform ? platformMatches(wanted, d.platform) : isIndexMediaType(d.mediaType)))
    .map(({ d, order }) => ({ d, order, rank: d.platform ? variantRank(wanted, d.platform) * 10 + osVersionRank(wanted, d.platform) : 10_000 }));
  ranked.sort((a, b) => a.rank - b.rank || a.order - b.order);
  return ranked.map(({ d }) => d);
}

/** The platforms an index offers (for error messages and `inspect`). */
export function indexPlatforms(index: Index): string[] {
  return index.manifests.filter((d) => d.platform && !isAttestation(d)).map((d) => formatPlatform(d.platform as Platform));
}

export function noPlatformError(what: string, wanted: Platform, available: string[]): StrataError {
  return new StrataError(
    'E_PLATFORM_MISMATCH',
    `${what} has no image for ${formatPlatform(wanted)}${available.length ? ` (it has ${available.join(', ')})` : ''}`,
    { hint: available.length ? `choose one with --platform, e.g. --platform ${available[0]}` : undefined },
  );
}

/** Checks a single-manifest image's config platform against an explicitly requested one. */
export function checkImagePlatform(what: string, wanted: Platform, config: { os?: unknown; architecture?: unknown; variant?: unknown }): void {
  if (typeof config.os !== 'string' || typeof config.architecture !== 'string') return;
  const actual: Platform = { os: config.os, architecture: config.architecture };
  if (typeof config.variant === 'string' && config.variant !== '') actual.variant = config.variant;
  if (!platformMatches(wanted, actual)) {
    throw new StrataError('E_PLATFORM_MISMATCH', `${what} is a ${formatPlatform(actual)} image, not ${formatPlatform(wanted)}`, {
      hint: `it has only one platform; pass --platform ${formatPlatform(actual)} or pick another image`,
    });
  }
}
