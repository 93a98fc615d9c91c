/**
 * Issue 16: `--sbom` and `--provenance` attach in-toto attestations the way BuildKit does (an
 * `unknown/unknown` attestation manifest per image in the index), judged by a real docker-registry,
 * skopeo (which copies the index with its digest kept) and SPDX's JSON schema; `--attest-to referrers`
 * uses the referrers tag schema against distribution 2.8 and the referrers API against a loopback
 * server that has one.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Ajv2019 from 'ajv/dist/2019.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI, REPO_ROOT, ok, strata } from '../helpers/cli.js';
import { startReferrersServer, type ReferrersServer } from '../helpers/referrers-server.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeo } from '../helpers/skopeo.js';
import { describeWithTools } from '../helpers/tools.js';
import { fakeGoBinary } from '../unit/sbom/tar.js';

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string };
}
interface RawIndex {
  mediaType: string;
  manifests: Desc[];
}
interface RawManifest {
  mediaType: string;
  artifactType?: string;
  config: Desc;
  layers: Desc[];
  subject?: Desc;
}
interface Statement {
  _type: string;
  predicateType: string;
  subject: Array<{ name: string; digest: { sha256: string } }>;
  predicate: Record<string, unknown>;
}

const EPOCH = '1700000000';
const SECRET = 'hunter2-do-not-leak';

async function get(url: string, accept?: string): Promise<Buffer> {
  const res = await fetch(url, accept ? { headers: { accept } } : {});
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

async function manifest<T>(reg: { url: string }, repo: string, ref: string): Promise<T> {
  return JSON.parse(
    (await get(`${reg.url}/v2/${repo}/manifests/${ref}`, 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json')).toString(
      'utf8',
    ),
  ) as T;
}

async function blobJson<T>(reg: { url: string }, repo: string, digest: string): Promise<T> {
  return JSON.parse((await get(`${reg.url}/v2/${repo}/blobs/${digest}`)).toString('utf8')) as T;
}

describeWithTools(['docker-registry', 'skopeo'], 'SBOM and provenance attestations', () => {
  let reg: TestRegistry;
  let reg2: TestRegistry;
  let api: ReferrersServer;
  let tmp: string;
  let ctx: string;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run make build first`);
    [reg, reg2] = await Promise.all([startRegistry({ auth: 'none' }), startRegistry({ auth: 'none' })]);
    api = await startReferrersServer(reg2.url);
    tmp = await mkdtemp(join(tmpdir(), 'strata-attest-'));
    ctx = join(tmp, 'ctx');
    await mkdir(join(ctx, 'app/node_modules/left-pad'), { recursive: true });
    await mkdir(join(ctx, 'var/lib/dpkg'), { recursive: true });
    await mkdir(join(ctx, 'bin'), { recursive: true });
    await writeFile(join(ctx, 'app/node_modules/left-pad/package.json'), JSON.stringify({ name: 'left-pad', version: '1.3.0', license: 'WTFPL' }));
    await writeFile(join(ctx, 'var/lib/dpkg/status'), 'Package: base-files\nStatus: install ok installed\nVersion: 12.4\nArchitecture: amd64\n\n');
    await writeFile(join(ctx, 'bin/tool'), fakeGoBinary('go1.22.1', 'path\texample.com/tool\nmod\texample.com/tool\tv1.2.3\th1:x=\n'), { mode: 0o755 });
    await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nARG API_TOKEN\nARG VERSION\nCOPY . /\nLABEL version=$VERSION\n');
  });
  afterAll(async () => {
    await api?.stop();
    await Promise.all([reg?.stop(), reg2?.stop()]);
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const build = (store: string, extra: string[]) =>
    strata(['build', ctx, '--build-arg', `API_TOKEN=${SECRET}`, '--build-arg', 'VERSION=7', '--progress', 'plain', ...extra], {
      STRATA_ROOT: join(tmp, store),
      SOURCE_DATE_EPOCH: EPOCH,
    });

  it('pushes an index with a BuildKit attestation manifest: SPDX and SLSA v1, no secret, reproducible', async () => {
    const first = ok(await build('store-a', ['--sbom', '--provenance=mode=max', '--push', '-t', `${reg.host}/app:1`]));
    const index = await manifest<RawIndex>(reg, 'app', '1');
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(index.manifests).toHaveLength(2);
    const [image, att] = index.manifests as [Desc, Desc];
    expect(image.platform?.os).toBe('linux');
    expect(att.platform).toEqual({ architecture: 'unknown', os: 'unknown' });
    expect(att.annotations).toEqual({ 'vnd.docker.reference.digest': image.digest, 'vnd.docker.reference.type': 'attestation-manifest' });
    const attManifest = await manifest<RawManifest>(reg, 'app', att.digest);
    expect(attManifest.layers.map((l) => [l.mediaType, l.annotations?.['in-toto.io/predicate-type']])).toEqual([
      ['application/vnd.in-toto+json', 'https://spdx.dev/Document'],
      ['application/vnd.in-toto+json', 'https://slsa.dev/provenance/v1'],
    ]);
    const [sbom, prov] = (await Promise.all(attManifest.layers.map((l) => blobJson<Statement>(reg, 'app', l.digest)))) as [Statement, Statement];
    for (const s of [sbom, prov]) {
      expect(s.subject).toEqual([
        {
          name: `pkg:docker/${reg.host}/app@1?platform=${encodeURIComponent(`${image.platform!.os}/${image.platform!.architecture}`)}`,
          digest: { sha256: image.digest.slice(7) },
        },
      ]);
    }
    expect(sbom._type).toBe('https://in-toto.io/Statement/v0.1');
    const ajv = new Ajv2019.default({ strict: false });
    addFormats.default(ajv);
    const validate = ajv.compile(JSON.parse(readFileSync(join(REPO_ROOT, 'testdata/spdx-2.3/spdx-schema.json'), 'utf8')) as object);
    expect(validate(sbom.predicate), JSON.stringify(validate.errors)).toBe(true);
    const purls = (sbom.predicate['packages'] as Array<{ externalRefs?: Array<{ referenceLocator: string }> }>).flatMap(
      (p) => p.externalRefs?.map((r) => r.referenceLocator) ?? [],
    );
    expect(purls).toEqual([
      'pkg:deb/debian/base-files@12.4?arch=amd64',
      'pkg:golang/example.com/tool@v1.2.3',
      'pkg:golang/stdlib@go1.22.1',
      'pkg:npm/left-pad@1.3.0',
    ]);
    // SLSA v1 field definitions: buildDefinition (buildType, externalParameters, resolvedDependencies), runDetails (builder.id, metadata).
    expect(prov._type).toBe('https://in-toto.io/Statement/v1');
    const def = prov.predicate['buildDefinition'] as {
      buildType: string;
      externalParameters: { request: { args: Record<string, string> }; configSource: { path: string } };
      internalParameters: { buildConfig: { steps: Array<{ instruction: string }> } };
    };
    expect(def.buildType).toMatch(/^https:\/\//);
    expect(def.externalParameters.request.args).toEqual({ 'build-arg:VERSION': '7' });
    expect(def.externalParameters.configSource.path).toBe('Dockerfile');
    expect(def.internalParameters.buildConfig.steps.map((s) => s.instruction)).toEqual(['ARG API_TOKEN', 'ARG VERSION', 'COPY . /', 'LABEL version=$VERSION']);
    const run = prov.predicate['runDetails'] as { builder: { id: string }; metadata: { startedOn: string; finishedOn: string } };
    expect(run.metadata.startedOn).toBe('2023-11-14T22:13:20Z');
    expect(run.metadata.finishedOn).toBe('2023-11-14T22:13:20Z');
    for (const l of attManifest.layers) expect((await get(`${reg.url}/v2/app/blobs/${l.digest}`)).toString('utf8')).not.toContain(SECRET);

    // Rebuilt (same name: the subjects name it) in a cold store and in the warm one: the same index digest.
    const second = ok(await build('store-b', ['--sbom', '--provenance=mode=max', '--push', '-t', `${reg.host}/app:1`]));
    expect(second).toBe(first);
    expect(ok(await build('store-a', ['--sbom', '--provenance=mode=max', '--push', '-t', `${reg.host}/app:1`]))).toBe(first);

    // strata inspect reads them back: a table of packages, the provenance as JSON.
    const table = ok(await strata(['inspect', `docker://${reg.host}/app:1`, '--sbom'], { STRATA_ROOT: join(tmp, 'store-a') }));
    expect(table).toMatch(/^NAME\s+VERSION\s+LICENSE\s+PURL/);
    expect(table).toMatch(/left-pad\s+1\.3\.0\s+WTFPL\s+pkg:npm\/left-pad@1\.3\.0/);
    expect(table).toMatch(/4 packages in [^ ]+ \(https:\/\/spdx\.dev\/Document, from the image index\)/);
    const provenance = JSON.parse(ok(await strata(['inspect', `docker://${reg.host}/app:1`, '--provenance'], { STRATA_ROOT: join(tmp, 'store-a') }))) as Record<
      string,
      unknown
    >;
    expect(provenance['buildDefinition']).toBeDefined();

    // skopeo copies the whole index to another registry, digest kept.
    await skopeo([
      'copy',
      '--all',
      '--preserve-digests',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      `docker://${reg.host}/app:1`,
      `docker://${reg2.host}/copied:1`,
    ]);
    const copied = (await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg2.host}/copied:1`])).stdout;
    expect(`sha256:${(await import('node:crypto')).createHash('sha256').update(copied).digest('hex')}`).toBe(first);
    expect((await manifest<RawManifest>(reg2, 'copied', att.digest)).layers).toHaveLength(2);
  });

  it('CycloneDX and v0.2 on request; an OCI layout carries them; docker-archive drops them with a notice', async () => {
    const layout = join(tmp, 'layout');
    const archive = join(tmp, 'image.tar');
    const r = await build('store-c', [
      '--attest',
      'type=sbom,format=cyclonedx',
      '--provenance=version=v0.2',
      '-o',
      `type=oci,dest=${layout},tar=false`,
      '-o',
      `type=docker,dest=${archive}`,
      '-t',
      'app:cdx',
    ]);
    ok(r);
    expect(r.stderr).toMatch(/type=docker.*holds no attestations; they were left out/);
    const top = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as RawIndex;
    const blob = async <T>(d: string): Promise<T> => JSON.parse(await readFile(join(layout, 'blobs/sha256', d.slice(7)), 'utf8')) as T;
    const index = await blob<RawIndex>(top.manifests[0]!.digest);
    const att = await blob<RawManifest>(index.manifests[1]!.digest);
    const [cdx, prov] = (await Promise.all(att.layers.map((l) => blob<Statement>(l.digest)))) as [Statement, Statement];
    expect(cdx.predicateType).toBe('https://cyclonedx.org/bom');
    expect(cdx.predicate['specVersion']).toBe('1.5');
    expect(prov.predicateType).toBe('https://slsa.dev/provenance/v0.2');
    expect(prov.predicate['buildType']).toMatch(/^https:\/\//);
    expect((prov.predicate['metadata'] as { reproducible: boolean }).reproducible).toBe(true);
    expect(existsSync(archive)).toBe(true);
    const cdxTable = ok(await strata(['inspect', `oci:${layout}`, '--sbom'], { STRATA_ROOT: join(tmp, 'store-c') }));
    expect(cdxTable).toMatch(/4 packages in [^ ]+ \(https:\/\/cyclonedx\.org\/bom, from the image index\)/);
  });

  it('provenance names a registry base by its digest', async () => {
    const baseDir = join(tmp, 'base');
    await mkdir(baseDir, { recursive: true });
    await writeFile(join(baseDir, 'hello'), 'hi\n');
    const baseDigest = ok(await strata(['append', '--layer', baseDir, '-o', `docker://${reg.host}/base:1`], { STRATA_ROOT: join(tmp, 'store-base') }));
    const ctx2 = join(tmp, 'ctx2');
    await mkdir(ctx2, { recursive: true });
    await writeFile(join(ctx2, 'Dockerfile'), `FROM ${reg.host}/base:1\nCOPY Dockerfile /\n`);
    ok(
      await strata(['build', ctx2, '--provenance=version=v0.2', '--push', '-t', `${reg.host}/onbase:1`, '--progress', 'quiet'], {
        STRATA_ROOT: join(tmp, 'store-f'),
        SOURCE_DATE_EPOCH: EPOCH,
      }),
    );
    const index = await manifest<RawIndex>(reg, 'onbase', '1');
    const att = await manifest<RawManifest>(reg, 'onbase', index.manifests[1]!.digest);
    const prov = await blobJson<Statement>(reg, 'onbase', att.layers[0]!.digest);
    const platform = encodeURIComponent(`${index.manifests[0]!.platform!.os}/${index.manifests[0]!.platform!.architecture}`);
    expect(prov.predicate['materials']).toEqual([{ uri: `pkg:docker/${reg.host}/base@1?platform=${platform}`, digest: { sha256: baseDigest.slice(7) } }]);
  });

  it('--attest-to referrers: the tag schema on distribution 2.8', async () => {
    const digest = ok(await build('store-d', ['--sbom', '--provenance', '--attest-to', 'referrers', '--push', '-t', `${reg.host}/ref:1`]));
    const top = await manifest<RawManifest>(reg, 'ref', '1');
    expect(top.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    const referrers = await manifest<RawIndex>(reg, 'ref', digest.replace(':', '-'));
    expect(referrers.manifests.map((m) => [m.artifactType, m.annotations?.['in-toto.io/predicate-type']])).toEqual([
      ['application/vnd.in-toto+json', 'https://spdx.dev/Document'],
      ['application/vnd.in-toto+json', 'https://slsa.dev/provenance/v1'],
    ]);
    const listed = ok(await strata(['inspect', `docker://${reg.host}/ref:1`], { STRATA_ROOT: join(tmp, 'store-d') }));
    expect(listed).toContain('Referrers (2):');
    expect(listed).toContain(`${referrers.manifests[1]!.digest}  https://slsa.dev/provenance/v1`);
    expect(ok(await strata(['inspect', `docker://${reg.host}/ref:1`, '--sbom'], { STRATA_ROOT: join(tmp, 'store-d') }))).toMatch(/from the referrers\)$/);
    const artifact = await manifest<RawManifest>(reg, 'ref', referrers.manifests[0]!.digest);
    expect(artifact.subject?.digest).toBe(digest);
    expect(artifact.config.mediaType).toBe('application/vnd.oci.empty.v1+json');
  });

  it('--attest-to both: the referrers API where the registry has one, no fallback tag', async () => {
    const top = ok(
      await strata(['build', ctx, '--sbom', '--attest-to', 'both', '--push', '-t', `${api.host}/both:1`, '--progress', 'plain'], {
        STRATA_ROOT: join(tmp, 'store-e'),
        SOURCE_DATE_EPOCH: EPOCH,
      }),
    );
    const index = await manifest<RawIndex>(reg2, 'both', '1');
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(top).toMatch(/^sha256:/);
    const image = index.manifests[0]!;
    const listed = JSON.parse((await get(`${api.url}/v2/both/referrers/${image.digest}`)).toString('utf8')) as RawIndex;
    expect(listed.manifests.map((m) => m.annotations?.['in-toto.io/predicate-type'])).toEqual(['https://spdx.dev/Document']);
    expect(api.requests.some((r) => r.includes(image.digest.replace(':', '-')))).toBe(false);
  });
});
