import { createHash } from 'node:crypto';
import { loadCycloneDx } from './cdx-lib.js';
import { normalizeLicense } from './license.js';
import type { SbomSubject } from './spdx.js';
import type { SbomScan } from './types.js';

/**
 * A CycloneDX 1.5 JSON document, built with the CycloneDX library's model and serializer: the image
 * as metadata.component, each package a library component with its purl (also its bom-ref, so the
 * output is deterministic) and where it was found as `strata:location` properties.
 */
export async function cyclonedxDocument(scan: SbomScan, subject: SbomSubject): Promise<string> {
  const { Enums, Models, Serialize, Spec, SPDX } = await loadCycloneDx();
  const bom = new Models.Bom();
  const serial = createHash('sha256')
    .update(JSON.stringify([subject.name, subject.created.toISOString(), scan.packages]))
    .digest('hex');
  bom.serialNumber = `urn:uuid:${serial.slice(0, 8)}-${serial.slice(8, 12)}-5${serial.slice(13, 16)}-8${serial.slice(17, 20)}-${serial.slice(20, 32)}`;
  bom.metadata.timestamp = subject.created;
  bom.metadata.tools.components.add(
    new Models.Component(Enums.ComponentType.Application, 'strata', { version: subject.tool.replace(/^strata-/, ''), bomRef: 'strata' }),
  );
  bom.metadata.component = new Models.Component(Enums.ComponentType.Container, subject.name, { bomRef: 'image' });
  for (const p of scan.packages) {
    const c = new Models.Component(Enums.ComponentType.Library, p.name, { version: p.version, purl: p.purl, bomRef: p.purl });
    if (p.license !== undefined) {
      const l = normalizeLicense(SPDX, p.license);
      if (l.single) c.licenses.add(new Models.SpdxLicense(l.expression));
      else if (l.refs.length === 0) c.licenses.add(new Models.LicenseExpression(l.expression));
      else c.licenses.add(new Models.NamedLicense(p.license.slice(0, 200)));
    }
    for (const at of p.locations) c.properties.add(new Models.Property('strata:location', at));
    bom.components.add(c);
  }
  const serializer = new Serialize.JsonSerializer(new Serialize.JSON.Normalize.Factory(Spec.Spec1dot5));
  return serializer.serialize(bom, { sortLists: true, space: 0 });
}
