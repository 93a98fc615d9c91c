/**
 * Issue 16's leftovers, through the built CLI into OCI layouts: SBOMs of build stages (`--sbom
 * scan-stage=true`, or BuildKit's BUILDKIT_SBOM_SCAN_STAGE ARG) and of the build context (BUILDKIT_SBOM_SCAN_CONTEXT)
 * as further SPDX statements in the image's attestation manifest, and provenance materials for what a build fetched: `ADD <url>` (sha256 of the
 * download) and `ADD <git>` (the commit) from loopback servers, and a `--build-context` from git, each
 * named by its URL with the credentials stripped, on a fresh build and on a cached one alike.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ok, strata } from '../helpers/cli.js';
import { startFileServer, type FileServer } from '../helpers/file-server.js';
import { makeRepo, startGitHttp, type GitServer } from '../helpers/git-server.js';
import { describeWithTools } from '../helpers/tools.js';

interface Desc {
  mediaType: string;
  digest: string;
  annotations?: Record<string, string>;
}
interface Statement {
  predicateType: string;
  subject: Array<{ name: string; digest: { sha256: string } }>;
  predicate: Record<string, unknown>;
}

const EPOCH = '1700000000';
let tmp: string;
let n = 0;

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run make build first`);
  tmp = await mkdtemp(join(tmpdir(), 'strata-attest-sources-'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function json<T>(layout: string, digest: string): Promise<T> {
  return JSON.parse(await readFile(join(layout, 'blobs', ...digest.split(':')), 'utf8')) as T;
}

/** Builds `dockerfile` (with `files` in its context) into an OCI layout; returns the image's subject digest and its statements. */
async function attested(
  dockerfile: string,
  args: string[],
  options: { files?: Record<string, string>; store?: string } = {},
): Promise<{ image: string; statements: Statement[]; layers: Desc[]; log: string; layout: string }> {
  const ctx = join(tmp, `ctx-${++n}`);
  await mkdir(ctx, { recursive: true });
  for (const [path, text] of Object.entries({ Dockerfile: dockerfile, ...(options.files ?? {}) })) {
    await mkdir(join(ctx, path, '..'), { recursive: true });
    await writeFile(join(ctx, path), text);
  }
  const layout = join(tmp, `layout-${n}`);
  const result = await strata(['build', ctx, '--progress', 'plain', ...args, '-o', `type=oci,dest=${layout},tar=false`], {
    STRATA_ROOT: options.store ?? join(tmp, `store-${n}`),
    SOURCE_DATE_EPOCH: EPOCH,
    HOME: join(tmp, 'home'),
  });
  ok(result);
  const top = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Desc[] };
  const index = await json<{ manifests: Desc[] }>(layout, top.manifests[0]!.digest);
  const image = index.manifests.find((m) => m.annotations?.['vnd.docker.reference.type'] === undefined)!;
  const att = index.manifests.find((m) => m.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest')!;
  const layers = (await json<{ layers: Desc[] }>(layout, att.digest)).layers;
  const statements = await Promise.all(layers.map((l) => json<Statement>(layout, l.digest)));
  return { image: image.digest, statements, layers, log: result.stderr, layout };
}

const sbomNames = (statements: Statement[]): string[] =>
  statements.filter((s) => s.predicateType === 'https://spdx.dev/Document').map((s) => String(s.predicate['name']));
const purls = (s: Statement): string[] =>
  ((s.predicate['packages'] as Array<{ externalRefs?: Array<{ referenceLocator: string }> }>) ?? []).flatMap((p) =>
    (p.externalRefs ?? []).map((r) => r.referenceLocator),
  );

describe('SBOMs of build stages', () => {
  const files = {
    'deps/node_modules/left-pad/package.json': JSON.stringify({ name: 'left-pad', version: '1.3.0' }),
    'tools/node_modules/is-odd/package.json': JSON.stringify({ name: 'is-odd', version: '3.0.1' }),
    'app/node_modules/final-pkg/package.json': JSON.stringify({ name: 'final-pkg', version: '2.0.0' }),
  };
  const stages = (scanArg: string, globalArg = ''): string =>
    [
      globalArg,
      'FROM scratch AS deps',
      'COPY deps/ /deps/',
      'FROM scratch AS tools',
      scanArg,
      'COPY tools/ /tools/',
      'FROM scratch',
      'COPY --from=deps /deps/node_modules/left-pad/package.json /copied.json',
      'COPY --from=tools /tools/node_modules/is-odd/package.json /copied2.json',
      'COPY app/ /app/',
      '',
    ].join('\n');

  it("scan-stage=true adds one SPDX statement per build stage, after the image's own, all about the image", async () => {
    const { image, statements, layers } = await attested(stages(''), ['--sbom', 'scan-stage=true', '--provenance', '-t', 'staged:1'], { files });
    expect(layers.map((l) => l.annotations?.['in-toto.io/predicate-type'])).toEqual([
      'https://spdx.dev/Document',
      'https://spdx.dev/Document',
      'https://spdx.dev/Document',
      'https://slsa.dev/provenance/v1',
    ]);
    expect(sbomNames(statements)).toEqual(['staged:1', 'staged:1 (stage deps)', 'staged:1 (stage tools)']);
    for (const s of statements) expect(`sha256:${s.subject[0]!.digest.sha256}`).toBe(image);
    expect(purls(statements[0]!)).toEqual(['pkg:npm/final-pkg@2.0.0']);
    expect(purls(statements[1]!)).toEqual(['pkg:npm/left-pad@1.3.0']);
    expect(purls(statements[2]!)).toEqual(['pkg:npm/is-odd@3.0.1']);
  });

  it('takes BUILDKIT_SBOM_SCAN_STAGE from a stage, from before FROM (a list of names), and lets scan-stage=false turn it off', async () => {
    const fromStage = await attested(stages('ARG BUILDKIT_SBOM_SCAN_STAGE=true'), ['--sbom', '-t', 'staged:2'], { files });
    expect(sbomNames(fromStage.statements)).toEqual(['staged:2', 'staged:2 (stage tools)']);
    const global = await attested(stages('', 'ARG BUILDKIT_SBOM_SCAN_STAGE=deps'), ['--sbom', '-t', 'staged:3'], { files });
    expect(sbomNames(global.statements)).toEqual(['staged:3', 'staged:3 (stage deps)']);
    // A --build-arg overrides the declared ARG (BuildKit's rule: it never adds one).
    const overridden = await attested(
      stages('ARG BUILDKIT_SBOM_SCAN_STAGE=true'),
      ['--sbom', '--build-arg', 'BUILDKIT_SBOM_SCAN_STAGE=false', '-t', 'staged:4'],
      {
        files,
      },
    );
    expect(sbomNames(overridden.statements)).toEqual(['staged:4']);
    const off = await attested(stages('ARG BUILDKIT_SBOM_SCAN_STAGE=true'), ['--sbom', 'scan-stage=false', '-t', 'staged:5'], { files });
    expect(sbomNames(off.statements)).toEqual(['staged:5']);
  });
});

describe('SBOM of the build context (BUILDKIT_SBOM_SCAN_CONTEXT)', () => {
  const lock = JSON.stringify({
    name: 'app',
    lockfileVersion: 3,
    packages: { '': { name: 'app' }, 'node_modules/lodash': { version: '4.17.21', license: 'MIT' } },
  });
  const files = {
    'package-lock.json': lock,
    'app/node_modules/final-pkg/package.json': JSON.stringify({ name: 'final-pkg', version: '2.0.0' }),
    'unread/node_modules/unread-pkg/package.json': JSON.stringify({ name: 'unread-pkg', version: '0.1.0' }),
    'ignored/node_modules/hidden-pkg/package.json': JSON.stringify({ name: 'hidden-pkg', version: '9.9.9' }),
    '.dockerignore': 'ignored\n',
  };
  // A build stage reads the lockfile; the image holds it under another name (no lockfile to it) and app/:
  // the context's SBOM has both, and not unread/.
  const twoStages = (globalArg: string, stageArg = ''): string =>
    [
      globalArg,
      'FROM scratch AS build',
      'COPY package-lock.json /',
      'FROM scratch AS final',
      stageArg,
      'COPY --from=build /package-lock.json /build.lock',
      'COPY app/ /app/',
      '',
    ].join('\n');

  it('scans what the build read of its context, .dockerignore applied, as one more statement about the image', async () => {
    const store = join(tmp, 'store-context');
    const { image, statements, layout } = await attested(twoStages('ARG BUILDKIT_SBOM_SCAN_CONTEXT=true'), ['--sbom', '-t', 'ctx:1'], { files, store });
    expect(sbomNames(statements)).toEqual(['ctx:1', 'ctx:1 (context)']);
    // inspect --sbom shows the image's table, then the context's.
    const table = ok(await strata(['inspect', `oci:${layout}`, '--sbom'], { STRATA_ROOT: store }));
    expect(table.split('\n').filter((l) => / packages? in /.test(l))).toEqual([
      '1 package in ctx:1 (https://spdx.dev/Document, from the image index)',
      '2 packages in ctx:1 (context) (https://spdx.dev/Document, from the image index)',
    ]);
    // A fully cached rebuild reads the same of the context, so its SBOM is the same.
    const cached = await attested(twoStages('ARG BUILDKIT_SBOM_SCAN_CONTEXT=true'), ['--sbom', '-t', 'ctx:1'], { files, store });
    expect(cached.log).toMatch(/CACHED/);
    expect(cached.statements).toEqual(statements);
    for (const s of statements) expect(`sha256:${s.subject[0]!.digest.sha256}`).toBe(image);
    expect(purls(statements[0]!)).toEqual(['pkg:npm/final-pkg@2.0.0']);
    expect(purls(statements[1]!)).toEqual(['pkg:npm/final-pkg@2.0.0', 'pkg:npm/lodash@4.17.21']);
    // COPY . reads all of it but what .dockerignore leaves out; the stage's own ARG asks here.
    const all = await attested('FROM scratch\nARG BUILDKIT_SBOM_SCAN_CONTEXT=true\nCOPY . /src/\n', ['--sbom', '-t', 'ctx:2'], { files });
    expect(purls(all.statements[1]!)).toEqual(['pkg:npm/final-pkg@2.0.0', 'pkg:npm/lodash@4.17.21', 'pkg:npm/unread-pkg@0.1.0']);
  });

  it('takes true, false or the target stage name; --build-arg overrides, scan-context=true|false decides', async () => {
    const named = await attested(twoStages('ARG BUILDKIT_SBOM_SCAN_CONTEXT=build'), ['--sbom', '-t', 'ctx:3'], { files });
    expect(sbomNames(named.statements)).toEqual(['ctx:3']);
    const target = await attested(twoStages('', 'ARG BUILDKIT_SBOM_SCAN_CONTEXT=other,final'), ['--sbom', '-t', 'ctx:4'], { files });
    expect(sbomNames(target.statements)).toEqual(['ctx:4', 'ctx:4 (context)']);
    const overridden = await attested(
      twoStages('ARG BUILDKIT_SBOM_SCAN_CONTEXT=true'),
      ['--sbom', '--build-arg', 'BUILDKIT_SBOM_SCAN_CONTEXT=false', '-t', 'ctx:5'],
      { files },
    );
    expect(sbomNames(overridden.statements)).toEqual(['ctx:5']);
    const forced = await attested(twoStages(''), ['--sbom', 'scan-context=true', '-t', 'ctx:6'], { files });
    expect(sbomNames(forced.statements)).toEqual(['ctx:6', 'ctx:6 (context)']);
    const off = await attested(twoStages('ARG BUILDKIT_SBOM_SCAN_CONTEXT=true'), ['--sbom', 'scan-context=false', '-t', 'ctx:7'], { files });
    expect(sbomNames(off.statements)).toEqual(['ctx:7']);
  });
});

describeWithTools(['git'], 'provenance materials of fetched sources', () => {
  const TOKEN = 'ghp_MaterialTokenNeverShown';
  let files: FileServer;
  let gitHttp: GitServer;
  let commit: string;
  const body = 'downloaded file\n';
  const sha = createHash('sha256').update(body).digest('hex');

  beforeAll(async () => {
    files = await startFileServer();
    files.routes.set('/file.txt', { body });
    const repos = join(tmp, 'repos');
    commit = await (await makeRepo(join(repos, 'src.git')))({ 'inner.txt': 'inner\n', 'sub/x.txt': 'x\n' }, '2024-01-02T03:04:05Z');
    gitHttp = await startGitHttp(repos, { token: TOKEN });
  });
  afterAll(async () => {
    await files?.stop();
    await gitHttp?.stop();
  });

  it('lists ADD <url>, ADD <git> and a git --build-context with digest or commit and no credentials, fresh and cached', async () => {
    const host = gitHttp.url.replace(/^http:\/\//, '');
    const repo = `http://x-access-token:${TOKEN}@${host}/src.git`;
    const dockerfile = [
      'FROM scratch',
      `ADD http://user:pw@${files.url.replace(/^http:\/\//, '')}/file.txt /file.txt`,
      `ADD ${repo}#main /src/`,
      'COPY --from=named x.txt /named.txt',
      '',
    ].join('\n');
    const store = join(tmp, 'store-materials');
    const args = ['--build-context', `named=${repo}#main:sub`, '-t', 'materials:1'];
    for (const [version, round] of [
      ['v0.2', 'fresh'],
      ['v1', 'cached'],
    ] as const) {
      const { statements, log } = await attested(dockerfile, [...args, '--provenance', `version=${version}`], { store });
      // A cached round replays both ADD steps: the materials must not depend on a fetch.
      if (round === 'cached') expect(log.match(/\] ADD .* CACHED/g)).toHaveLength(2);
      const prov = statements.find((s) => s.predicateType.startsWith('https://slsa.dev/provenance/'))!;
      const text = JSON.stringify(prov);
      expect(text, `${version} ${round}`).not.toContain(TOKEN);
      expect(text).not.toContain('user:pw');
      const deps =
        version === 'v1'
          ? (prov.predicate['buildDefinition'] as { resolvedDependencies: unknown[] }).resolvedDependencies
          : (prov.predicate['materials'] as unknown[]);
      expect(deps).toEqual(
        expect.arrayContaining([
          { uri: `${files.url}/file.txt`, digest: { sha256: sha } },
          { uri: `http://${host}/src.git#main`, digest: { sha1: commit } },
          { uri: `http://${host}/src.git#main:sub`, digest: { sha1: commit } },
        ]),
      );
    }
  });
});
