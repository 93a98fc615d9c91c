/**
 * Issue 16: the SBOM strata attaches validates against SPDX's own 2.3 JSON schema from the shared
 * corpus (the unit tests use a vendored copy), and the attestation manifests against the OCI image
 * manifest and config schemas.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Ajv2019 from 'ajv/dist/2019.js';
import addFormats from 'ajv-formats';
import { afterAll, describe, expect, it } from 'vitest';
import { buildImage, type StrataContext } from '../../src/internals.js';
import { corpusPath } from './corpus.js';

interface Doc {
  manifests: Array<{ digest: string; platform?: { os: string } }>;
  layers: Array<{ digest: string }>;
}

describe('SPDX 2.3 conformance', () => {
  const work = mkdtemp(join(tmpdir(), 'strata-spdx-'));
  afterAll(async () => rm(await work, { recursive: true, force: true }));

  it("SPDX's example and strata's SBOM both validate against SPDX's schema", async () => {
    const ajv = new Ajv2019.default({ strict: false, allErrors: true });
    addFormats.default(ajv);
    const validate = ajv.compile(JSON.parse(await readFile(corpusPath('spdx-2.3', 'spdx-schema.json'), 'utf8')) as object);
    expect(validate(JSON.parse(await readFile(corpusPath('spdx-2.3', 'SPDXJSONExample-v2.3.spdx.json'), 'utf8')))).toBe(true);

    const dir = await work;
    const ctxDir = join(dir, 'ctx');
    await mkdir(join(ctxDir, 'var/lib/dpkg'), { recursive: true });
    await mkdir(join(ctxDir, 'srv/node_modules/@scope/pkg'), { recursive: true });
    await mkdir(join(ctxDir, 'usr/lib/python3/site-packages/attrs-23.1.0.dist-info'), { recursive: true });
    await writeFile(join(ctxDir, 'var/lib/dpkg/status'), 'Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13.dfsg-1\nArchitecture: amd64\n\n');
    await writeFile(join(ctxDir, 'srv/node_modules/@scope/pkg/package.json'), '{"name":"@scope/pkg","version":"0.0.1","license":"(MIT OR Apache-2.0)"}');
    await writeFile(join(ctxDir, 'usr/lib/python3/site-packages/attrs-23.1.0.dist-info/METADATA'), 'Name: attrs\nVersion: 23.1.0\nLicense: MIT License\n');
    await writeFile(join(ctxDir, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');
    const ctx: StrataContext = { storeRoot: join(dir, 'store'), now: () => new Date('2024-01-02T03:04:05Z'), sourceDateEpoch: 1700000000 };
    const layout = join(dir, 'out');
    await buildImage(
      { contextDir: ctxDir, tags: ['sbom:1'], sbom: 'true', provenance: 'mode=max', outputs: [`type=oci,dest=${layout},tar=false`], strataVersion: '0.0.0' },
      ctx,
    );
    const blob = async <T>(digest: string): Promise<T> => JSON.parse(await readFile(join(layout, 'blobs/sha256', digest.slice(7)), 'utf8')) as T;
    const top = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as Doc;
    const index = await blob<Doc>(top.manifests[0]!.digest);
    const att = await blob<Doc>(index.manifests.find((m) => m.platform?.os === 'unknown')!.digest);
    const sbom = await blob<{ predicate: { packages: unknown[] } }>(att.layers[0]!.digest);
    expect(validate(sbom.predicate), JSON.stringify(validate.errors)).toBe(true);
    expect(sbom.predicate.packages).toHaveLength(4);
  });
});
