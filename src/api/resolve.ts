import { StrataError } from '../errors/index.js';
import {
  formatPlatform,
  hostPlatform,
  isAttestationPlatform,
  isIndexMediaType,
  parseImageConfig,
  parseManifestOrIndex,
  platformMatches,
  type Descriptor,
  type ImageConfig,
  type Index,
  type Manifest,
  type Platform,
} from '../oci/index.js';
import { imageFromManifest, type Image } from '../image/index.js';
import type { BlobReader } from '../store/index.js';

export interface ResolvedImage {
  /** What the caller asked for: a manifest, or the index that was resolved to one. */
  top: { descriptor: Descriptor; bytes: Buffer };
  index?: Index;
  manifest: { descriptor: Descriptor; bytes: Buffer; value: Manifest };
  config: { bytes: Buffer; value: ImageConfig };
  image: Image;
}

const MAX_INDEX_DEPTH = 4;

/**
 * Reads a manifest or index and, for an index, picks the manifest for `platform` (the host's by
 * default), skipping attestation entries and following nested indexes.
 */
export async function resolveImage(top: Descriptor, reader: BlobReader, what: string, platform?: Platform): Promise<ResolvedImage> {
  const topBytes = await reader.readBlob(top);
  let descriptor = top;
  let bytes = topBytes;
  let parsed = parseManifestOrIndex(bytes, what, top.mediaType);
  let firstIndex: Index | undefined;
  for (let depth = 0; parsed.kind === 'index'; depth++) {
    if (depth >= MAX_INDEX_DEPTH) throw new StrataError('E_MANIFEST_INVALID', `${what}: indexes nested too deep`);
    firstIndex ??= parsed.index;
    descriptor = selectPlatformManifest(parsed.index, what, platform);
    bytes = await reader.readBlob(descriptor);
    parsed = parseManifestOrIndex(bytes, `${what}@${descriptor.digest}`, descriptor.mediaType);
  }
  const manifest = parsed.manifest;
  const configBytes = await reader.readBlob(manifest.config);
  const config = parseImageConfig(configBytes, `config of ${what}`);
  if (platform && firstIndex === undefined && !platformMatches(platform, { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) })) {
    throw new StrataError('E_PLATFORM_MISMATCH', `${what} is ${config.os}/${config.architecture}${config.variant ? `/${config.variant}` : ''}, not ${formatPlatform(platform)}`);
  }
  const result: ResolvedImage = {
    top: { descriptor: top, bytes: topBytes },
    manifest: { descriptor: { ...descriptor, mediaType: parsed.mediaType }, bytes, value: manifest },
    config: { bytes: configBytes, value: config },
    image: imageFromManifest(manifest, config, parsed.mediaType),
  };
  if (firstIndex) result.index = firstIndex;
  return result;
}

export function selectPlatformManifest(index: Index, what: string, wanted: Platform = hostPlatform()): Descriptor {
  const candidates = index.manifests.filter((m) => !isAttestationPlatform(m.platform));
  const match = candidates.find((m) => (m.platform ? platformMatches(wanted, m.platform) : false))
    ?? (candidates.length === 1 && !candidates[0]!.platform ? candidates[0] : undefined)
    ?? candidates.find((m) => !m.platform && isIndexMediaType(m.mediaType));
  if (!match) {
    const offered = candidates.map((m) => (m.platform ? formatPlatform(m.platform) : m.digest)).join(', ');
    throw new StrataError('E_PLATFORM_MISMATCH', `${what} has no image for ${formatPlatform(wanted)}`, {
      hint: offered ? `it offers: ${offered}; choose one with --platform` : 'the index lists no images',
    });
  }
  return match;
}
