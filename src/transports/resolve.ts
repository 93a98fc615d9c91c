import { StrataError } from '../errors/index.js';
import {
  checkImagePlatform,
  descendToManifest,
  hostPlatform,
  parseImageConfig,
  parseManifestOrIndex,
  type Descriptor,
  type ImageConfig,
  type Index,
  type Manifest,
  type ParsedManifest,
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

/**
 * Reads a manifest or index and, for an index, picks the manifest for `platform` (the host's by
 * default), skipping attestation entries and following nested indexes.
 */
export async function resolveImage(top: Descriptor, reader: BlobReader, what: string, platform?: Platform, signal?: AbortSignal): Promise<ResolvedImage> {
  const read = async (descriptor: Descriptor, name: string): Promise<{ descriptor: Descriptor; bytes: Buffer; parsed: ParsedManifest }> => {
    const bytes = await reader.readBlob(descriptor, { signal });
    return { descriptor, bytes, parsed: parseManifestOrIndex(bytes, name, descriptor.mediaType) };
  };
  const root = await read(top, what);
  const { node, firstIndex } = await descendToManifest(root, platform ?? hostPlatform(), what, (chosen) => read(chosen, `${what}@${chosen.digest}`));
  const { descriptor, bytes, parsed } = node;
  if (parsed.kind !== 'manifest') throw new StrataError('E_MANIFEST_INVALID', `${what}: expected a manifest`);
  const manifest = parsed.manifest;
  const configBytes = await reader.readBlob(manifest.config, { signal });
  const config = parseImageConfig(configBytes, `config of ${what}`);
  if (platform && firstIndex === undefined) checkImagePlatform(what, platform, config);
  const result: ResolvedImage = {
    top: { descriptor: top, bytes: root.bytes },
    manifest: { descriptor: { ...descriptor, mediaType: parsed.mediaType }, bytes, value: manifest },
    config: { bytes: configBytes, value: config },
    image: imageFromManifest(manifest, config, parsed.mediaType),
  };
  if (firstIndex) result.index = firstIndex;
  return result;
}
