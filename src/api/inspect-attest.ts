import {
  ATTESTATION_MANIFEST,
  PREDICATE_TYPE_ANNOTATION,
  PredicateType,
  REFERENCE_DIGEST_ANNOTATION,
  REFERENCE_TYPE_ANNOTATION,
  referrersTag,
} from '../attest/index.js';
import { StrataError } from '../errors/index.js';
import { parseManifestOrIndex, type Descriptor, type Index } from '../oci/index.js';
import type { BlobReader } from '../store/index.js';
import { type RegistryIo, type StrataContext, isRegistryConnection, registryTarget, parseImageLocation } from '../transports/index.js';
import { openWithFallback } from './inspect.js';

export interface FoundStatement {
  predicateType: string;
  /** Where it was found: the index's attestation manifest, or a referrer. */
  from: 'index' | 'referrer';
  statement: { predicateType: string; subject?: unknown; predicate?: unknown };
}

export interface ImageAttestations {
  /** The image manifest (of the chosen platform) the statements are about. */
  subject: Descriptor;
  statements: FoundStatement[];
  /** Referrers of the image manifest in its registry (API or tag schema); empty elsewhere. */
  referrers: Descriptor[];
}

const MAX_STATEMENT = 64 * 1024 * 1024;

async function statementsOf(manifest: Descriptor, reader: BlobReader, from: FoundStatement['from']): Promise<FoundStatement[]> {
  const parsed = parseManifestOrIndex(await reader.readBlob(manifest), `attestation manifest ${manifest.digest}`, manifest.mediaType);
  if (parsed.kind !== 'manifest') return [];
  const out: FoundStatement[] = [];
  for (const layer of parsed.manifest.layers) {
    const predicateType = layer.annotations?.[PREDICATE_TYPE_ANNOTATION];
    if (predicateType === undefined || layer.size > MAX_STATEMENT) continue;
    const bytes = await reader.readBlob(layer);
    try {
      const statement = JSON.parse(bytes.toString('utf8')) as FoundStatement['statement'];
      out.push({ predicateType, from, statement });
    } catch (cause) {
      throw new StrataError('E_MANIFEST_INVALID', `attestation ${layer.digest} is not JSON`, { cause });
    }
  }
  return out;
}

/**
 * The attestations of an image for the chosen platform: those in its index (BuildKit's attestation
 * manifests) and, for a registry image, its referrers (the referrers API, else the `sha256-<hex>` tag).
 */
export async function readImageAttestations(source: string, ctx: StrataContext, io: RegistryIo = {}): Promise<ImageAttestations> {
  const location = parseImageLocation(source);
  const opened = await openWithFallback(location, ctx, io, {});
  try {
    const subject = opened.manifest.descriptor;
    const statements: FoundStatement[] = [];
    for (const entry of opened.index?.manifests ?? []) {
      if (entry.annotations?.[REFERENCE_TYPE_ANNOTATION] !== ATTESTATION_MANIFEST || entry.annotations[REFERENCE_DIGEST_ANNOTATION] !== subject.digest)
        continue;
      statements.push(...(await statementsOf(entry, opened.reader, 'index')));
    }
    const referrers: Descriptor[] = [];
    if (opened.location.transport === 'docker' && isRegistryConnection(io)) {
      const target = registryTarget(io, opened.location.ref);
      let index: Index | undefined = await target.client.getReferrers(target.repository, subject.digest);
      if (index === undefined && (await target.client.headManifest(target.repository, referrersTag(subject.digest))) !== undefined) {
        const fetched = await target.client.getManifest(target.repository, referrersTag(subject.digest));
        if (fetched.parsed.kind === 'index') index = fetched.parsed.index;
      }
      for (const r of index?.manifests ?? []) {
        referrers.push(r);
        if (r.annotations?.[PREDICATE_TYPE_ANNOTATION] !== undefined) statements.push(...(await statementsOf(r, opened.reader, 'referrer')));
      }
    }
    return { subject, statements, referrers };
  } finally {
    await opened.close();
  }
}

export interface PackageRow {
  name: string;
  version: string;
  license: string;
  purl: string;
}

/** The packages an SPDX or CycloneDX predicate lists, for a short table. */
export function sbomPackages(found: FoundStatement): PackageRow[] {
  const predicate = found.statement.predicate;
  if (typeof predicate !== 'object' || predicate === null) return [];
  const rows: PackageRow[] = [];
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  if (found.predicateType === PredicateType.spdx) {
    for (const p of (predicate as { packages?: unknown[] }).packages ?? []) {
      if (typeof p !== 'object' || p === null) continue;
      const pkg = p as Record<string, unknown>;
      const refs = Array.isArray(pkg['externalRefs']) ? (pkg['externalRefs'] as Array<Record<string, unknown>>) : [];
      const purl = str(refs.find((r) => r['referenceType'] === 'purl')?.['referenceLocator']);
      if (purl === '') continue;
      rows.push({ name: str(pkg['name']), version: str(pkg['versionInfo']), license: str(pkg['licenseDeclared']), purl });
    }
  } else {
    for (const c of (predicate as { components?: unknown[] }).components ?? []) {
      if (typeof c !== 'object' || c === null) continue;
      const comp = c as Record<string, unknown>;
      const licenses = Array.isArray(comp['licenses']) ? (comp['licenses'] as Array<Record<string, { id?: string; name?: string } | string>>) : [];
      const license = licenses
        .map((l) =>
          typeof l['expression'] === 'string' ? l['expression'] : typeof l['license'] === 'object' ? (l['license'].id ?? l['license'].name ?? '') : '',
        )
        .filter(Boolean)
        .join(' AND ');
      rows.push({ name: str(comp['name']), version: str(comp['version']), license, purl: str(comp['purl']) });
    }
  }
  return rows;
}

/** The name an SPDX or CycloneDX document gives what it describes (`app`, `app (stage deps)`, `app (context)`). */
export function sbomName(found: FoundStatement): string {
  const predicate = found.statement.predicate;
  if (typeof predicate !== 'object' || predicate === null) return '';
  if (found.predicateType === PredicateType.spdx) {
    const name = (predicate as { name?: unknown }).name;
    return typeof name === 'string' ? name : '';
  }
  const name = (predicate as { metadata?: { component?: { name?: unknown } } }).metadata?.component?.name;
  return typeof name === 'string' ? name : '';
}
