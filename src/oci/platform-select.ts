import { StrataError } from '../errors/index.js';
import { isIndexMediaType } from './media-types.js';
import type { ParsedManifest } from './parse.js';
import { formatPlatform, isAttestationPlatform, normalizePlatform, platformMatches } from './platform.js';
import type { Descriptor, Index, Platform } from './types.js';

/** How deep indexes may nest under the one asked for; deeper is refused as malformed. */
export const MAX_INDEX_DEPTH = 8;

/** BuildKit marks attestation manifests with this annotation as well as `unknown/unknown`. */
function isAttestation(d: Descriptor): boolean {
  return isAttestationPlatform(d.platform) || d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest';
}

function variantRank(wanted: Platform, candidate: Platform): number {
  const w = normalizePlatform(wanted);
  const c = normalizePlatform(candidate);
  if (w.variant === c.variant) return 0;
  // Among compatible variants, the closest (highest) one is best: arm v7 before v6 before v5.
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
 * normalization), exact variant before compatible ones (closest first), matching Windows `os.version`
 * first, index order last. Attestation entries never match. Entries without a platform come after every
 * match: nested indexes (to descend into), and a lone manifest (an index some tools write around one image).
 */
export function platformCandidates(index: Index, wanted: Platform): Descriptor[] {
  const images = index.manifests.filter((d) => !isAttestation(d));
  const lone = images.length === 1 ? images[0] : undefined;
  const ranked = images
    .map((d, order) => ({ d, order }))
    .filter(({ d }) => (d.platform ? platformMatches(wanted, d.platform) : isIndexMediaType(d.mediaType) || d === lone))
    .map(({ d, order }) => ({ d, order, rank: d.platform ? variantRank(wanted, d.platform) * 10 + osVersionRank(wanted, d.platform) : 10_000 }));
  ranked.sort((a, b) => a.rank - b.rank || a.order - b.order);
  return ranked.map(({ d }) => d);
}

/** The best entry of an index for `wanted`, or an error naming what the index has. */
export function selectPlatformManifest(index: Index, what: string, wanted: Platform): Descriptor {
  const best = platformCandidates(index, wanted)[0];
  if (best === undefined) throw noPlatformError(what, wanted, indexPlatforms(index));
  return best;
}

/**
 * Follows an index, and the indexes nested in it, down to the manifest for `wanted`: the one descent
 * that FROM, pull, copy, inspect and every output use, whatever `fetchChild` reads from.
 * `chosen` is the index entry that led to the manifest (with its platform), when there was an index.
 */
export async function descendToManifest<T extends { parsed: ParsedManifest }>(
  root: T,
  wanted: Platform,
  what: string,
  fetchChild: (chosen: Descriptor) => Promise<T>,
): Promise<{ node: T; chosen: Descriptor | undefined; firstIndex: Index | undefined }> {
  let node = root;
  let chosen: Descriptor | undefined;
  let firstIndex: Index | undefined;
  for (let depth = 0; node.parsed.kind === 'index'; depth++) {
    if (depth >= MAX_INDEX_DEPTH) throw new StrataError('E_MANIFEST_INVALID', `${what}: indexes nested too deeply`);
    firstIndex ??= node.parsed.index;
    chosen = selectPlatformManifest(node.parsed.index, what, wanted);
    node = await fetchChild(chosen);
  }
  return { node, chosen, firstIndex };
}

/** The platforms an index offers (for error messages and `inspect`). */
export function indexPlatforms(index: Index): string[] {
  return index.manifests.flatMap((d) => (d.platform && !isAttestation(d) ? [formatPlatform(d.platform)] : []));
}

export function noPlatformError(what: string, wanted: Platform, available: string[]): StrataError {
  return new StrataError(
    'E_PLATFORM_MISMATCH',
    `${what} has no image for ${formatPlatform(wanted)}${available.length ? ` (it has ${available.join(', ')})` : ''}`,
    { hint: available.length ? `choose one with --platform, e.g. --platform ${available[0]}` : 'the index lists no images' },
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
