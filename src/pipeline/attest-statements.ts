import { isAbsolute, join, relative } from 'node:path';
import { PredicateType, provenancePredicate, statement, type InTotoStatement, type ProvenanceRequest, type SbomRequest } from '../attest/index.js';
import { digestOf, type Digest } from '../digest/index.js';
import { imagePlatform } from '../image/index.js';
import { formatPlatform, hostPlatform, type Descriptor, type Platform } from '../oci/index.js';
import { cyclonedxDocument, scanImageLayers, spdxDocument, type SbomScan, type SbomSubject } from '../sbom/index.js';
import type { BlobReader } from '../store/index.js';
import { familiarImageName } from '../transports/index.js';
import type { PlatformBuild } from './inputs.js';
import { scanBuildContext } from './sbom-context.js';

/** A base image, image context, fetched source or remote context a build read: provenance's materials. */
export interface Material {
  /** The platform whose build read it; none for what every platform read (a remote context). */
  platform?: Platform | undefined;
  /** The reference as written (`debian:12`), the location's description, or a source's URL. */
  ref: string;
  /** An image's manifest digest, a download's sha256, or a git commit (`sha1:…`). */
  digest: Digest;
  /** Registry and local-store references are `pkg:docker` URIs; the others keep their `ref`. */
  docker: boolean;
}

export interface BuildStep {
  stage: string;
  /** As written in the Dockerfile (not expanded: no build-arg value reaches it). */
  instruction: string;
  /** The Dockerfile line; the host path of the file is left out. */
  line: number;
}

/** What the statements of every platform's image are made from, beside the image itself. */
export interface StatementInputs {
  strataVersion: string;
  dockerfile: { file: string; text: string };
  contextDir: string;
  buildArgs: Readonly<Record<string, string>>;
  target?: string | undefined;
  contexts: readonly string[];
  sourceDateEpoch?: number | undefined;
  startedAt: Date;
  finishedAt: Date;
  /** Full local-store names; the first names the image in SBOM and subjects. */
  names: readonly string[];
  materials: readonly Material[];
  steps: ReadonlyMap<string, readonly BuildStep[]>;
  storeRoot: string;
  signal?: AbortSignal | undefined;
}

/** The inputs with what every platform's statements share worked out once. */
export interface BuildFacts extends StatementInputs {
  /** SOURCE_DATE_EPOCH's instant, or the build's start: the SBOM's time, and provenance's with an epoch. */
  created: Date;
  dockerfileDigest: Digest;
  /** Relative to the context when the Dockerfile is in it. */
  dockerfilePath: string;
  /** The image's name in subjects and documents. */
  name: string;
}

export function buildFacts(inputs: StatementInputs): BuildFacts {
  const file = inputs.dockerfile.file;
  return {
    ...inputs,
    created: new Date(inputs.sourceDateEpoch !== undefined ? inputs.sourceDateEpoch * 1000 : inputs.startedAt.getTime()),
    dockerfileDigest: digestOf(inputs.dockerfile.text),
    dockerfilePath: isAbsolute(file) ? relative(inputs.contextDir, file) || 'Dockerfile' : file,
    name: inputs.names[0] ?? 'image',
  };
}

/** Where layers' SBOM findings are kept by digest. */
export function sbomCacheDir(storeRoot: string): string {
  return join(storeRoot, 'cache', 'sbom');
}

/** BuildKit's subject and material name: `pkg:docker/NAME@TAG?platform=os%2Farch`. */
function dockerPurl(name: string, platform: Platform): string {
  const familiar = familiarImageName(name);
  const at = familiar.lastIndexOf('@');
  const colon = familiar.lastIndexOf(':');
  const slash = familiar.lastIndexOf('/');
  let base = familiar;
  let version = '';
  if (at > 0) {
    base = familiar.slice(0, at);
    version = familiar.slice(at + 1);
  } else if (colon > slash) {
    base = familiar.slice(0, colon);
    version = familiar.slice(colon + 1);
  }
  return `pkg:docker/${base}${version ? `@${version}` : ''}?platform=${encodeURIComponent(formatPlatform(platform))}`;
}

function subjectOf(b: PlatformBuild, digest: Digest, facts: BuildFacts): { name: string; digest: Digest } {
  return { name: dockerPurl(facts.name, imagePlatform(b.image)), digest };
}

/**
 * The SBOM statements of one platform's image: the image's own first, then one for each build stage
 * asked for (`scan-stage`, or the stage's BUILDKIT_SBOM_SCAN_STAGE) and one for the build context when
 * asked for (`scan-context`, or the target's BUILDKIT_SBOM_SCAN_CONTEXT), as BuildKit adds them to the
 * same attestation manifest, every one with the image as its subject.
 */
export async function sbomStatements(
  b: PlatformBuild,
  reader: BlobReader,
  request: SbomRequest,
  subjectDigest: Digest,
  facts: BuildFacts,
): Promise<{ statements: InTotoStatement[]; warnings: string[]; packages: number }> {
  const key = formatPlatform(b.platform);
  const subject = subjectOf(b, subjectDigest, facts);
  const options = { cacheDir: sbomCacheDir(facts.storeRoot), signal: facts.signal };
  const tool = `strata-${facts.strataVersion}`;
  const familiar = familiarImageName(facts.name);
  const scans: Array<{ scan: SbomScan; doc: SbomSubject; label: string }> = [
    { scan: await scanImageLayers(layersOf(b.image.layers), reader, options), doc: { name: familiar, created: facts.created, tool }, label: key },
  ];
  for (const stage of b.stages.filter((s) => request.scanStage ?? enabledForStage(s.name, s.sbomScanStage))) {
    const scan = await scanImageLayers(layersOf(stage.image.layers), stage.reader, options);
    scans.push({ scan, doc: { name: `${familiar} (stage ${stage.name})`, created: facts.created, tool }, label: `${key} stage ${stage.name}` });
  }
  if (request.scanContext ?? enabledForStage(b.context.stage, b.context.sbomScanContext)) {
    const scan = await scanBuildContext(facts.contextDir, facts.dockerfile.file, b.context.reads, facts.signal);
    scans.push({ scan, doc: { name: `${familiar} (context)`, created: facts.created, tool }, label: `${key} context` });
  }
  const statements: InTotoStatement[] = [];
  for (const { scan, doc } of scans) {
    statements.push(
      request.format === 'cyclonedx'
        ? statement(PredicateType.cyclonedx, subject, JSON.parse(await cyclonedxDocument(scan, doc)) as unknown)
        : statement(PredicateType.spdx, subject, await spdxDocument(scan, doc)),
    );
  }
  const warnings = scans.flatMap(({ scan, label }) => scan.warnings.map((w) => `sbom ${label}: ${w}`));
  return { statements, warnings, packages: scans[0]!.scan.packages.length };
}

function layersOf(layers: ReadonlyArray<{ descriptor: Descriptor }>): Descriptor[] {
  return layers.map((l) => l.descriptor);
}

/**
 * BUILDKIT_SBOM_SCAN_STAGE and BUILDKIT_SBOM_SCAN_CONTEXT as BuildKit reads them for a stage: `true`,
 * `false`, or the names of the stages it holds for.
 */
function enabledForStage(stage: string, arg: string | undefined): boolean {
  const value = arg?.trim() ?? '';
  if (value === '' || /^(false|0)$/i.test(value)) return false;
  if (/^(true|1)$/i.test(value)) return true;
  return value
    .split(',')
    .map((n) => n.trim())
    .includes(stage);
}

/** The SLSA provenance statement of one platform's image: its materials are what that platform's build read. */
export function provenanceStatement(b: PlatformBuild, request: ProvenanceRequest, subjectDigest: Digest, facts: BuildFacts): InTotoStatement {
  const key = formatPlatform(b.platform);
  const materials = facts.materials
    .filter((m) => m.platform === undefined || formatPlatform(m.platform) === key)
    .map((m) => ({ uri: m.docker ? dockerPurl(m.ref, m.platform ?? b.platform) : m.ref, digest: m.digest }));
  const unique = [...new Map(materials.map((m) => [`${m.uri} ${m.digest}`, m])).values()];
  const times =
    facts.sourceDateEpoch !== undefined
      ? { startedOn: facts.created, finishedOn: facts.created }
      : { startedOn: facts.startedAt, finishedOn: facts.finishedAt };
  const invocationId = digestOf(JSON.stringify([facts.dockerfileDigest, facts.buildArgs, facts.target, key, unique, times.startedOn.toISOString()])).slice(
    7,
    39,
  );
  const { predicateType, predicate } = provenancePredicate({
    ...request,
    builderVersion: facts.strataVersion,
    dockerfile: { path: facts.dockerfilePath, digest: facts.dockerfileDigest },
    buildArgs: facts.buildArgs,
    target: facts.target,
    platform: imagePlatform(b.image),
    builderPlatform: hostPlatform(),
    materials: unique,
    contexts: facts.contexts,
    ...times,
    sourceDateEpoch: facts.sourceDateEpoch,
    steps: facts.steps.get(key),
    invocationId,
  });
  return statement(predicateType, subjectOf(b, subjectDigest, facts), predicate);
}
