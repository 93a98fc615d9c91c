import { StrataError } from '../errors/index.js';
import { digestOf } from '../digest/index.js';
import { MediaType, canonicalJsonBytes, isAttestationPlatform, parseManifestOrIndex, type Descriptor, type Manifest } from '../oci/index.js';
import { CompositeBlobReader, MemoryBlobReader, type BlobReader } from '../store/index.js';

const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';

/** OCI layer types and their Docker schema 2 twins; the blob bytes stay the same. */
const LAYER_TYPES: Record<string, string> = {
  [MediaType.OciLayerGzip]: MediaType.DockerLayerGzip,
  [MediaType.OciLayer]: DOCKER_LAYER_TAR,
  [MediaType.OciLayerNondistributableGzip]: MediaType.DockerLayerForeignGzip,
  [MediaType.DockerLayerGzip]: MediaType.DockerLayerGzip,
  [DOCKER_LAYER_TAR]: DOCKER_LAYER_TAR,
  [MediaType.DockerLayerForeignGzip]: MediaType.DockerLayerForeignGzip,
};

/**
 * The image with Docker schema 2 manifests (and a manifest list for an index), for registries and
 * consumers that refuse OCI media types (buildx's `oci-mediatypes=false`). Configs and layers are the same
 * blobs under Docker media types; manifests are new documents, so their digests change. Annotations,
 * `subject` and attestation entries have no place in schema 2 and are dropped; zstd layers and artifacts
 * cannot be described and are refused. An image already in Docker types is returned as it is.
 */
export async function convertToDockerV2s2(root: Descriptor, reader: BlobReader): Promise<{ descriptor: Descriptor; reader: BlobReader }> {
  const memory = new MemoryBlobReader();
  const descriptor = await convert(root, reader, memory, 0);
  return { descriptor, reader: new CompositeBlobReader([memory, reader]) };
}

async function convert(d: Descriptor, reader: BlobReader, memory: MemoryBlobReader, depth: number): Promise<Descriptor> {
  if (depth > 4) throw new StrataError('E_MANIFEST_INVALID', `manifest ${d.digest}: indexes nested too deeply`);
  const parsed = parseManifestOrIndex(await reader.readBlob(d), `manifest ${d.digest}`, d.mediaType);
  if (parsed.mediaType === MediaType.DockerManifest)
    return { mediaType: MediaType.DockerManifest, digest: d.digest, size: d.size, ...(d.platform ? { platform: d.platform } : {}) };
  let doc: object;
  let mediaType: string;
  if (parsed.kind === 'index') {
    const manifests: Descriptor[] = [];
    for (const child of parsed.index.manifests) {
      if (isAttestationPlatform(child.platform)) continue;
      const converted = await convert(child, reader, memory, depth + 1);
      manifests.push({
        mediaType: converted.mediaType,
        digest: converted.digest,
        size: converted.size,
        ...(child.platform ? { platform: child.platform } : {}),
      });
    }
    mediaType = MediaType.DockerManifestList;
    doc = { schemaVersion: 2, mediaType, manifests };
  } else {
    mediaType = MediaType.DockerManifest;
    doc = convertManifest(parsed.manifest, d);
  }
  const bytes = canonicalJsonBytes(doc);
  const digest = digestOf(bytes);
  memory.add(digest, bytes);
  return { mediaType, digest, size: bytes.byteLength, ...(d.platform ? { platform: d.platform } : {}) };
}

function convertManifest(manifest: Manifest, d: Descriptor): object {
  const configType = manifest.config.mediaType;
  if (configType !== MediaType.OciConfig && configType !== MediaType.DockerConfig) {
    throw new StrataError('E_USAGE', `manifest ${d.digest} is an artifact (config ${configType}); Docker schema 2 describes container images only`, {
      hint: 'push it with OCI media types',
    });
  }
  const layers = manifest.layers.map((layer) => {
    const type = LAYER_TYPES[layer.mediaType];
    if (type === undefined) {
      throw new StrataError('E_USAGE', `layer ${layer.digest} is ${layer.mediaType}, which Docker schema 2 cannot describe`, {
        hint: layer.mediaType.endsWith('+zstd')
          ? 'Docker manifests have no zstd layers: rebuild with --compression gzip, or push with OCI media types'
          : 'push it with OCI media types',
      });
    }
    return { mediaType: type, digest: layer.digest, size: layer.size, ...(layer.urls ? { urls: layer.urls } : {}) };
  });
  return {
    schemaVersion: 2,
    mediaType: MediaType.DockerManifest,
    config: { mediaType: MediaType.DockerConfig, digest: manifest.config.digest, size: manifest.config.size },
    layers,
  };
}
