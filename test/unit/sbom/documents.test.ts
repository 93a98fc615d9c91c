import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2019 from 'ajv/dist/2019.js';
import addFormats from 'ajv-formats';
import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { describe, expect, it } from 'vitest';
import { cyclonedxDocument, spdxDocument, type SbomScan } from '../../../src/sbom/index.js';

const scan: SbomScan = {
  packages: [
    {
      type: 'deb',
      name: 'libc6',
      version: '2.36-9+deb12u4',
      purl: 'pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12',
      license: 'LGPL-2.1+ AND GPL-2+',
      locations: ['/var/lib/dpkg/status'],
    },
    {
      type: 'npm',
      name: '@scope/util',
      version: '2.0.0',
      purl: 'pkg:npm/%40scope/util@2.0.0',
      license: 'mit',
      locations: ['/app/node_modules/@scope/util/package.json'],
    },
    { type: 'npm', name: 'dual', version: '1.0.0', purl: 'pkg:npm/dual@1.0.0', license: '(MIT OR Apache-2.0)', locations: ['/a', '/b'] },
    { type: 'pypi', name: 'requests', version: '2.31.0', purl: 'pkg:pypi/requests@2.31.0', license: 'Apache 2.0 (see the file)', locations: ['/x/METADATA'] },
    { type: 'golang', name: 'stdlib', version: 'go1.22.1', purl: 'pkg:golang/stdlib@go1.22.1', locations: ['/bin/tool'] },
  ],
  warnings: [],
};
const subject = { name: 'docker.io/library/app:latest', created: new Date('2024-01-02T03:04:05Z'), tool: 'strata-0.1.0' };

describe('SBOM documents', () => {
  it("writes SPDX 2.3 JSON that SPDX's schema accepts, the same bytes each time", async () => {
    const schema: unknown = JSON.parse(readFileSync(join(import.meta.dirname, '../../../testdata/spdx-2.3/spdx-schema.json'), 'utf8'));
    const ajv = new Ajv2019.default({ strict: false, allErrors: true });
    addFormats.default(ajv);
    const validate = ajv.compile(schema as object);
    const doc = await spdxDocument(scan, subject);
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
    expect(JSON.stringify(await spdxDocument(scan, subject))).toBe(JSON.stringify(doc));
    const packages = doc['packages'] as Array<Record<string, unknown>>;
    const decl = new Map(packages.map((p) => [p['name'], p['licenseDeclared']]));
    expect(decl.get('@scope/util')).toBe('MIT');
    expect(decl.get('dual')).toBe('(MIT OR Apache-2.0)');
    expect(decl.get('libc6')).toBe('LGPL-2.1+ AND LicenseRef-GPL-2');
    expect(decl.get('stdlib')).toBe('NOASSERTION');
    const refs = doc['hasExtractedLicensingInfos'] as Array<{ licenseId: string }>;
    expect(refs.map((r) => r.licenseId)).toContain('LicenseRef-GPL-2');
    expect(doc['creationInfo']).toEqual({ creators: ['Tool: strata-0.1.0'], created: '2024-01-02T03:04:05Z' });
  });

  it("writes CycloneDX 1.5 JSON that the CycloneDX library's validator accepts", async () => {
    const text = await cyclonedxDocument(scan, subject);
    const validator = new Validation.JsonStrictValidator(Spec.Version.v1dot5);
    expect(await validator.validate(text)).toBeNull();
    expect(await cyclonedxDocument(scan, subject)).toBe(text);
    const bom = JSON.parse(text) as { specVersion: string; components: Array<{ purl: string; licenses?: unknown[] }> };
    expect(bom.specVersion).toBe('1.5');
    expect(bom.components.map((c) => c.purl).sort()).toEqual(scan.packages.map((p) => p.purl).sort());
  });
});
