import { digestOf, type Digest } from '../digest/index.js';
import { MediaType, canonicalJsonBytes, type Descriptor, type Index, type Manifest } from '../oci/index.js';
import { IN_TOTO_MEDIA_TYPE, PREDICATE_TYPE_ANNOTATION, statementBytes, type InTotoStatement } from './statement.js';

export const REFERENCE_TYPE_ANNOTATION = 'vnd.docker.reference.type';
export const REFERENCE_DIGEST_ANNOTATION = 'vnd.docker.reference.digest';
export const ATTESTATION_MANIFEST = 'attestation-manifest';

/** Blobs made here, by digest: what the caller must store or hand to a sink with the manifests. */
export type Blobs = Map<Digest, Buffer>;

function blob(blobs: Blobs, mediaType: string, bytes: Buffer, extra: Partial<Descriptor> = {}): Descriptor {
  const digest = digestOf(bytes);
  blobs.set(digest, bytes);
  return { mediaType, digest, size: bytes.byteLength, ...extra };
}

function layerOf(blobs: Blobs, s: InTotoStatement): Descriptor {
  return blob(blobs, IN_TOTO_MEDIA_TYPE, statementBytes(s), { annotations: { [PREDICATE_TYPE_ANNOTATION]: s.predicateType } });
}

/**
 * BuildKit's attestation manifest for one image manifest: an image manifest whose layers are the
 * in-toto statements (`application/vnd.in-toto+json`, each annotated with its predicate type) and whose
 * config is an `unknown/unknown` image config; its index entry is platform `unknown/unknown` with
 * `vnd.docker.reference.type=attestation-manifest` and `vnd.docker.reference.digest=<image manifest>`.
 */
export function attestationManifest(subject: Descriptor, statements: readonly InTotoStatement[], blobs: Blobs): Descriptor {
  const layers = statements.map((s) => layerOf(blobs, s));
  const config = blob(
    blobs,
    MediaType.OciConfig,
    canonicalJsonBytes({
      architecture: 'unknown',
      os: 'unknown',
      config: {},
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    }),
  );
  const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers };
  const bytes = canonicalJsonBytes(manifest);
  const digest = digestOf(bytes);
  blobs.set(digest, bytes);
  return {
    mediaType: MediaType.OciManifest,
    digest,
    size: bytes.byteLength,
    annotations: { [REFERENCE_DIGEST_ANNOTATION]: subject.digest, [REFERENCE_TYPE_ANNOTATION]: ATTESTATION_MANIFEST },
    platform: { architecture: 'unknown', os: 'unknown' },
  };
}

/** The OCI 1.1 empty config (`{}`), which artifacts without a config of their own use. */
export function emptyConfig(blobs: Blobs): Descriptor {
  return blob(blobs, MediaType.OciEmpty, Buffer.from('{}'), { data: 'e30=' });
}

/**
 * An OCI 1.1 artifact for one statement, whose `subject` is the image manifest: what the referrers
 * API (or the referrers tag schema) lists for that manifest. `artifactType` is the in-toto media type;
 * the predicate type is an annotation on the manifest and the layer, so a client can filter on either.
 */
export function referrerManifest(subject: Descriptor, s: InTotoStatement, blobs: Blobs, created?: string): Descriptor {
  const layer = layerOf(blobs, s);
  const annotations: Record<string, string> = { [PREDICATE_TYPE_ANNOTATION]: s.predicateType };
  if (created !== undefined) annotations['org.opencontainers.image.created'] = created;
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: IN_TOTO_MEDIA_TYPE,
    config: emptyConfig(blobs),
    layers: [layer],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations,
  };
  const bytes = canonicalJsonBytes(manifest);
  const digest = digestOf(bytes);
  blobs.set(digest, bytes);
  return { mediaType: MediaType.OciManifest, digest, size: bytes.byteLength, artifactType: IN_TOTO_MEDIA_TYPE, annotations };
}

/** An index over image manifests and their attestation manifests (each attestation right after its image, as BuildKit orders them). */
export function indexWithAttestations(
  entries: ReadonlyArray<{ image: Descriptor; attestation?: Descriptor | undefined }>,
  blobs: Blobs,
  annotations?: Record<string, string>,
): Descriptor {
  const index: Index = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: entries.flatMap((e) => (e.attestation ? [e.image, e.attestation] : [e.image])),
    ...(annotations && Object.keys(annotations).length > 0 ? { annotations } : {}),
  };
  const bytes = canonicalJsonBytes(index);
  const digest = digestOf(bytes);
  blobs.set(digest, bytes);
  return { mediaType: MediaType.OciIndex, digest, size: bytes.byteLength };
}

/** The referrers tag schema's tag for a manifest digest: `sha256-<hex>`. */
export function referrersTag(digest: Digest): string {
  return digest.replace(':', '-');
}

/** Adds `artifact` to a referrers index (as returned by the API or stored under the fallback tag), once. */
export function addReferrer(existing: Index | undefined, artifact: Descriptor): Index {
  const manifests = (existing?.manifests ?? []).filter((m) => m.digest !== artifact.digest);
  return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [...manifests, artifact] };
}
