import { createHash } from 'node:crypto';
import { loadSpdxIds } from './cdx-lib.js';
import { normalizeLicense } from './license.js';
import type { SbomPackage, SbomScan } from './types.js';

/** What an SBOM document is about and when and by what it was made. */
export interface SbomSubject {
  /** The image's name (`docker.io/library/app:latest`), or a description when it has none. */
  name: string;
  /** When the document was made: SOURCE_DATE_EPOCH's instant, or the build's start. */
  created: Date;
  /** `strata-0.1.0`. */
  tool: string;
}

const FOUND_BY: Record<SbomPackage['type'], string> = {
  deb: 'the dpkg database',
  apk: 'the apk database',
  npm: 'npm package metadata',
  pypi: 'Python package metadata',
  golang: 'Go build info',
};

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

function spdxId(kind: string, text: string): string {
  return `SPDXRef-${kind}-${text.replace(/[^A-Za-z0-9.-]+/g, '-').slice(0, 60)}`;
}

/** ISO 8601 to the second, as SPDX's `created` wants it. */
export function spdxTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * An SPDX 2.3 JSON document, laid out as BuildKit's (syft's) are: a root package for the image that
 * the document DESCRIBES and that CONTAINS every package found, each with its purl as an external
 * reference and where it was found as `sourceInfo`. Deterministic: the namespace is a digest of the
 * content, so the same image and time give the same bytes.
 */
export async function spdxDocument(scan: SbomScan, subject: SbomSubject): Promise<Record<string, unknown>> {
  const SPDX = await loadSpdxIds();
  const extracted = new Map<string, string>();
  const rootId = 'SPDXRef-DocumentRoot-Image';
  const used = new Set<string>([rootId]);
  const packages = scan.packages.map((p) => {
    let id = spdxId(`Package-${p.type}-${p.name}`, shortHash(p.purl));
    for (let n = 2; used.has(id); n++) id = `${id}-${n}`;
    used.add(id);
    const license = p.license === undefined ? undefined : normalizeLicense(SPDX, p.license);
    for (const ref of license?.refs ?? []) extracted.set(ref.id, ref.text);
    return {
      name: p.name,
      SPDXID: id,
      versionInfo: p.version,
      supplier: 'NOASSERTION',
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      sourceInfo: `acquired package info from ${FOUND_BY[p.type]}: ${p.locations.join(', ')}`,
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: license?.expression ?? 'NOASSERTION',
      copyrightText: 'NOASSERTION',
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: p.purl }],
    };
  });
  const root = {
    name: subject.name,
    SPDXID: rootId,
    supplier: 'NOASSERTION',
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: 'NOASSERTION',
    copyrightText: 'NOASSERTION',
    primaryPackagePurpose: 'CONTAINER',
  };
  const body = {
    packages: [root, ...packages],
    relationships: [
      { spdxElementId: 'SPDXRef-DOCUMENT', relatedSpdxElement: rootId, relationshipType: 'DESCRIBES' },
      ...packages.map((p) => ({ spdxElementId: rootId, relatedSpdxElement: p.SPDXID, relationshipType: 'CONTAINS' })),
    ],
  };
  const namespaceHash = shortHash(JSON.stringify([subject.name, spdxTime(subject.created), body]));
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: subject.name,
    documentNamespace: `https://strata.invalid/spdx/${encodeURIComponent(subject.name)}-${namespaceHash}`,
    creationInfo: {
      creators: [`Tool: ${subject.tool}`],
      created: spdxTime(subject.created),
    },
    ...(extracted.size > 0
      ? { hasExtractedLicensingInfos: [...extracted].sort(([a], [b]) => (a < b ? -1 : 1)).map(([licenseId, extractedText]) => ({ licenseId, extractedText })) }
      : {}),
    ...body,
  };
}
