import { join, relative, isAbsolute } from 'node:path';
import {
  attestationManifest,
  indexWithAttestations,
  PredicateType,
  provenancePredicate,
  referrerManifest,
  statement,
  type AttestRequest,
  type Blobs,
  type InTotoStatement,
} from '../attest/index.js';
import type { BuildEventSink, LayerWatch } from '../build/index.js';
import { digestOf, type Digest } from '../digest/index.js';
import { StrataError } from '../errors/index.js';
import { imagePlatform } from '../image/index.js';
import { formatPlatform, hostPlatform, type Descriptor, type Platform } from '../oci/index.js';
import { cyclonedxDocument, scanImageLayers, scanWhileWriting, spdxDocument } from '../sbom/index.js';
import type { BlobReader, MemoryBlobReader } from '../store/index.js';
import { type RegistryIo, pushReferrers, isRegistryConnection, familiarImageName } from '../transports/index.js';
import { annotationsFor, indexEntry, needsIndex, type AnnotationSpec } from '../output/index.js';
import type { PlatformBuild } from './inputs.js';
import type { BuildOutputSpec } from './output-spec.js';

export type AttestTo = 'index' | 'referrers' | 'both';

export function parseAttestTo(value: string | undefined): AttestTo {
  if (value === undefined || value === 'index' || value === 'referrers' || value === 'both') return value ?? 'index';
  throw new StrataError('E_USAGE', `--attest-to must be index, referrers or both, got "${value}"`);
}

/**
 * What a build records as it runs for its attestations: the bases each platform opened (materials)
 * and, for max-mode provenance, the steps it ran. Costs nothing when no attestation is asked for.
 */
export class AttestRecorder {
  readonly materials: Material[] = [];
  readonly steps = new Map<string, BuildStep[]>();
  private platform = '';

  constructor(readonly request: AttestRequest) {}

  get wanted(): boolean {
    return this.request.sbom !== undefined || this.request.provenance !== undefined;
  }

  /**
   * With an SBOM asked for, each layer the build writes is scanned as it is written and its findings
   * kept by digest, where the image's scan finds them: the scan then reads no new layer back.
   */
  layerWatch(storeRoot: string): (() => LayerWatch) | undefined {
    if (this.request.sbom === undefined) return undefined;
    const dir = sbomCacheDir(storeRoot);
    return () => scanWhileWriting(dir);
  }

  forPlatform(platform: Platform): void {
    this.platform = formatPlatform(platform);
  }

  base(ref: string, platform: Platform, opened: { top: { descriptor: Descriptor }; location: { transport: string }; description: string }): void {
    if (!this.wanted) return;
    const docker = opened.location.transport === 'docker' || opened.location.transport === 'local';
    this.materials.push({ platform, ref: docker ? ref : opened.description, digest: opened.top.descriptor.digest, docker });
  }

  events(sink: BuildEventSink | undefined): BuildEventSink | undefined {
    if (this.request.provenance?.mode !== 'max') return sink;
    return (event) => {
      if (event.type === 'step') {
        let list = this.steps.get(this.platform);
        if (!list) this.steps.set(this.platform, (list = []));
        // Whether a step was cached is left out: a rebuild must give the same provenance.
        const line = /:(\d+)$/.exec(event.where);
        list.push({ stage: event.stage, instruction: event.text, line: line ? Number(line[1]) : 0 });
      }
      sink?.(event);
    };
  }
}

/** Where layers' SBOM findings are kept by digest. */
function sbomCacheDir(storeRoot: string): string {
  return join(storeRoot, 'cache', 'sbom');
}

/** A base image (or image context) a platform's build read, for provenance's materials. */
export interface Material {
  platform: Platform;
  /** The reference as written (`debian:12`), or the location's description. */
  ref: string;
  digest: Digest;
  /** Registry and local-store references are `pkg:docker` URIs; layouts keep their description. */
  docker: boolean;
}

export interface BuildStep {
  stage: string;
  /** As written in the Dockerfile (not expanded: no build-arg value reaches it). */
  instruction: string;
  /** The Dockerfile line; the host path of the file is left out. */
  line: number;
}

export interface AttestInputs {
  request: AttestRequest;
  /** `--annotation`s: the index's, and each image entry's descriptor's. */
  annotations: readonly AnnotationSpec[];
  attestTo: AttestTo;
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

export interface AttestedImage {
  /** The top descriptor to write: an index carrying attestation manifests (index mode), or as before. */
  top: Descriptor;
  /** OCI 1.1 artifacts to push as referrers of each image manifest (referrers mode). */
  referrers: Array<{ subject: Descriptor; artifact: Descriptor }>;
  warnings: string[];
  /** Packages found per platform, for the summary. */
  packages: Map<string, number>;
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

/**
 * Scans and attests each platform's image, and lays the attestations out as asked: attestation
 * manifests in an index (BuildKit's layout; a single platform becomes an index), OCI 1.1 referrers,
 * or both. New blobs go to `memory`, where every sink reads them from.
 */
export async function attestBuilds(
  builds: readonly PlatformBuild[],
  reader: BlobReader,
  memory: MemoryBlobReader,
  inputs: AttestInputs,
): Promise<AttestedImage> {
  const blobs: Blobs = new Map();
  const warnings: string[] = [];
  const packages = new Map<string, number>();
  const entries: Array<{ image: Descriptor; attestation?: Descriptor }> = [];
  const referrers: Array<{ subject: Descriptor; artifact: Descriptor }> = [];
  const created = new Date(inputs.sourceDateEpoch !== undefined ? inputs.sourceDateEpoch * 1000 : inputs.startedAt.getTime());
  const dockerfileDigest = digestOf(inputs.dockerfile.text);
  const dockerfilePath = isAbsolute(inputs.dockerfile.file) ? relative(inputs.contextDir, inputs.dockerfile.file) || 'Dockerfile' : inputs.dockerfile.file;
  const name = inputs.names[0] ?? 'image';
  for (const b of builds) {
    const platform = imagePlatform(b.image);
    const key = formatPlatform(b.platform);
    const subjectDescriptor: Descriptor = indexEntry(b.serialized.manifest.descriptor, b.image, inputs.annotations);
    const subject = { name: dockerPurl(name, platform), digest: subjectDescriptor.digest };
    const statements: InTotoStatement[] = [];
    if (inputs.request.sbom) {
      if (inputs.request.sbom.scanStage) warnings.push('--sbom scan-stage=true: strata scans the final image only; build stages are not scanned yet');
      const scan = await scanImageLayers(
        b.image.layers.map((l) => l.descriptor),
        reader,
        { cacheDir: sbomCacheDir(inputs.storeRoot), signal: inputs.signal },
      );
      for (const w of scan.warnings) warnings.push(`sbom ${key}: ${w}`);
      packages.set(key, scan.packages.length);
      const docSubject = { name: familiarImageName(name), created, tool: `strata-${inputs.strataVersion}` };
      statements.push(
        inputs.request.sbom.format === 'cyclonedx'
          ? statement(PredicateType.cyclonedx, subject, JSON.parse(await cyclonedxDocument(scan, docSubject)) as unknown)
          : statement(PredicateType.spdx, subject, await spdxDocument(scan, docSubject)),
      );
    }
    if (inputs.request.provenance) {
      const materials = inputs.materials
        .filter((m) => formatPlatform(m.platform) === key)
        .map((m) => ({ uri: m.docker ? dockerPurl(m.ref, m.platform) : m.ref, digest: m.digest }));
      const unique = [...new Map(materials.map((m) => [`${m.uri} ${m.digest}`, m])).values()];
      const times =
        inputs.sourceDateEpoch !== undefined ? { startedOn: created, finishedOn: created } : { startedOn: inputs.startedAt, finishedOn: inputs.finishedAt };
      const invocationId = digestOf(JSON.stringify([dockerfileDigest, inputs.buildArgs, inputs.target, key, unique, times.startedOn.toISOString()])).slice(
        7,
        39,
      );
      const { predicateType, predicate } = provenancePredicate({
        ...inputs.request.provenance,
        builderVersion: inputs.strataVersion,
        dockerfile: { path: dockerfilePath, digest: dockerfileDigest },
        buildArgs: inputs.buildArgs,
        target: inputs.target,
        platform,
        builderPlatform: hostPlatform(),
        materials: unique,
        contexts: inputs.contexts,
        ...times,
        sourceDateEpoch: inputs.sourceDateEpoch,
        steps: inputs.steps.get(key),
        invocationId,
      });
      statements.push(statement(predicateType, subject, predicate));
    }
    const entry: { image: Descriptor; attestation?: Descriptor } = { image: subjectDescriptor };
    if (statements.length > 0 && inputs.attestTo !== 'referrers') entry.attestation = attestationManifest(subjectDescriptor, statements, blobs);
    if (inputs.attestTo !== 'index') {
      for (const s of statements)
        referrers.push({
          subject: b.serialized.manifest.descriptor,
          artifact: referrerManifest(b.serialized.manifest.descriptor, s, blobs, created.toISOString().replace(/\.\d{3}Z$/, 'Z')),
        });
    }
    entries.push(entry);
  }
  let top: Descriptor;
  if (inputs.attestTo === 'referrers' && builds.length === 1 && !needsIndex(inputs.annotations)) top = builds[0]!.serialized.manifest.descriptor;
  else top = indexWithAttestations(entries, blobs, annotationsFor(inputs.annotations, 'index'));
  for (const [digest, bytes] of blobs) memory.add(digest, bytes);
  return { top, referrers, warnings: [...new Set(warnings)], packages };
}

/**
 * After the outputs are written: the notice that docker-archive output holds no attestations, and the
 * referrers pushed next to each registry output. Returns what was written, in words.
 */
export async function writeAttestationExtras(
  attested: AttestedImage,
  outputs: readonly BuildOutputSpec[],
  names: readonly string[],
  reader: BlobReader,
  io: RegistryIo,
  events: BuildEventSink | undefined,
  signal?: AbortSignal,
): Promise<string[]> {
  const written: string[] = [];
  for (const out of outputs) {
    if (out.type === 'docker')
      events?.({ type: 'warning', message: `--output type=docker (${out.dest}): Docker's archive format holds no attestations; they were left out` });
  }
  if (attested.referrers.length === 0) return written;
  const pushed = outputs.flatMap((o) => (o.type === 'registry' || (o.type === 'image' && o.push) ? (o.names ?? names) : []));
  if (pushed.length === 0) {
    events?.({ type: 'warning', message: '--attest-to referrers: referrers go to registries; with no registry output they were not written' });
    return written;
  }
  if (!isRegistryConnection(io)) throw new StrataError('E_TRANSPORT_INVALID', 'registry access is not available here');
  for (const name of [...new Set(pushed)]) written.push(...(await pushReferrers(io, name, attested.referrers, reader, signal)));
  return written;
}
