import { addReferrer, referrersTag } from '../attest/index.js';
import { StrataError } from '../errors/index.js';
import { MediaType, canonicalJsonBytes, parseManifestOrIndex, type Descriptor, type Index } from '../oci/index.js';
import { blobSourceFromReader } from '../registry/index.js';
import type { BlobReader } from '../store/index.js';
import { registryTarget, type RegistryConnection } from './registry-target.js';

export interface Referrer {
  subject: Descriptor;
  artifact: Descriptor;
}

/**
 * Pushes OCI 1.1 artifacts whose `subject` is a manifest in the same repository. A registry with the
 * referrers API says so by answering the manifest PUT with `OCI-Subject`; for one that does not (as
 * distribution 2.8), the referrers tag schema: the index under tag `sha256-<hex>` gets the artifact
 * added (read, extended, written back), as the distribution spec asks clients to do.
 */
export async function pushReferrers(
  conn: RegistryConnection,
  name: string,
  referrers: readonly Referrer[],
  reader: BlobReader,
  signal?: AbortSignal,
): Promise<string[]> {
  const target = registryTarget(conn, name);
  const { client, repository } = target;
  const written: string[] = [];
  for (const { subject, artifact } of referrers) {
    const bytes = await reader.readBlob(artifact);
    const parsed = parseManifestOrIndex(bytes, `artifact ${artifact.digest}`, artifact.mediaType);
    if (parsed.kind !== 'manifest') throw new StrataError('E_INTERNAL', `artifact ${artifact.digest} is not a manifest`);
    for (const blob of [parsed.manifest.config, ...parsed.manifest.layers]) {
      if (await client.blobExists(repository, blob.digest, { signal })) continue;
      await client.uploadBlob(repository, blob, blobSourceFromReader(reader, blob), { signal });
    }
    let subjectHeader: string | null = null;
    await client.putManifest(repository, artifact.digest, bytes, artifact.mediaType, { signal, onHeaders: (get) => (subjectHeader = get('oci-subject')) });
    if (subjectHeader === subject.digest) {
      written.push(`referrer ${artifact.digest} of ${target.ref.domain}/${repository}@${subject.digest}`);
      continue;
    }
    const tag = referrersTag(subject.digest);
    let existing: Index | undefined;
    if ((await client.headManifest(repository, tag, { signal })) !== undefined) {
      const fetched = await client.getManifest(repository, tag, { signal });
      if (fetched.parsed.kind === 'index') existing = fetched.parsed.index;
    }
    const descriptor: Descriptor = { mediaType: artifact.mediaType, digest: artifact.digest, size: artifact.size };
    if (artifact.artifactType !== undefined) descriptor.artifactType = artifact.artifactType;
    if (artifact.annotations !== undefined) descriptor.annotations = artifact.annotations;
    const index = addReferrer(existing, descriptor);
    await client.putManifest(repository, tag, canonicalJsonBytes(index), MediaType.OciIndex, { signal });
    written.push(`referrer ${artifact.digest} of ${target.ref.domain}/${repository}@${subject.digest} (tag ${tag})`);
  }
  return written;
}
