import { attestationManifest, indexWithAttestations, referrerManifest, type AttestRequest, type Blobs, type InTotoStatement } from '../attest/index.js';
import type { BuildEventSink, LayerWatch } from '../build/index.js';
import { StrataError } from '../errors/index.js';
import { formatPlatform, type Descriptor, type Platform } from '../oci/index.js';
import type { FetchedSource } from '../remote/index.js';
import { scanWhileWriting } from '../sbom/index.js';
import type { BlobReader, MemoryBlobReader } from '../store/index.js';
import { type RegistryIo, pushReferrers, isRegistryConnection } from '../transports/index.js';
import { annotationsFor, indexEntry, needsIndex, type AnnotationSpec } from '../output/index.js';
import { buildFacts, provenanceStatement, sbomCacheDir, sbomStatements, type BuildStep, type Material, type StatementInputs } from './attest-statements.js';
import type { PlatformBuild } from './inputs.js';
import type { BuildOutputSpec } from './output-spec.js';

export type { BuildStep, Material } from './attest-statements.js';

export type AttestTo = 'index' | 'referrers' | 'both';

export function parseAttestTo(value: string | undefined): AttestTo {
  if (value === undefined || value === 'index' || value === 'referrers' || value === 'both') return value ?? 'index';
  throw new StrataError('E_USAGE', `--attest-to must be index, referrers or both, got "${value}"`);
}

/**
 * What a build records as it runs for its attestations: the bases each platform opened and the
 * sources outside the context it fetched (materials) and, for max-mode provenance, the steps it ran.
 * Costs nothing when no attestation is asked for.
 */
export class AttestRecorder {
  readonly materials: Material[] = [];
  readonly steps = new Map<string, BuildStep[]>();
  private platform: Platform | undefined;

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
    this.platform = platform;
  }

  base(ref: string, platform: Platform, opened: { top: { descriptor: Descriptor }; location: { transport: string }; description: string }): void {
    if (!this.wanted) return;
    const docker = opened.location.transport === 'docker' || opened.location.transport === 'local';
    this.materials.push({ platform, ref: docker ? ref : opened.description, digest: opened.top.descriptor.digest, docker });
  }

  /** What the engine tells of each `ADD <url>`/`ADD <git>` source: a material of the platform being built. */
  sourceRecorder(): ((source: FetchedSource) => void) | undefined {
    if (this.request.provenance === undefined) return undefined;
    return (source) => this.materials.push({ platform: this.platform, ref: source.uri, digest: source.digest, docker: false });
  }

  /** A remote context (the build's own, or a `--build-context`) as fetched: a material of every platform. */
  context(source: FetchedSource): void {
    if (this.request.provenance !== undefined) this.materials.push({ ref: source.uri, digest: source.digest, docker: false });
  }

  events(sink: BuildEventSink | undefined): BuildEventSink | undefined {
    if (this.request.provenance?.mode !== 'max') return sink;
    return (event) => {
      if (event.type === 'step') {
        const key = this.platform === undefined ? '' : formatPlatform(this.platform);
        let list = this.steps.get(key);
        if (!list) this.steps.set(key, (list = []));
        // Whether a step was cached is left out: a rebuild must give the same provenance.
        const line = /:(\d+)$/.exec(event.where);
        list.push({ stage: event.stage, instruction: event.text, line: line ? Number(line[1]) : 0 });
      }
      sink?.(event);
    };
  }
}

export interface AttestInputs extends StatementInputs {
  request: AttestRequest;
  /** `--annotation`s: the index's, and each image entry's descriptor's. */
  annotations: readonly AnnotationSpec[];
  attestTo: AttestTo;
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
  const referrers: AttestedImage['referrers'] = [];
  const entries: Array<{ image: Descriptor; attestation?: Descriptor }> = [];
  const facts = buildFacts(inputs);
  for (const b of builds) {
    const subjectDescriptor: Descriptor = indexEntry(b.serialized.manifest.descriptor, b.image, inputs.annotations);
    const statements: InTotoStatement[] = [];
    if (inputs.request.sbom) {
      const sboms = await sbomStatements(b, reader, inputs.request.sbom, subjectDescriptor.digest, facts);
      warnings.push(...sboms.warnings);
      packages.set(formatPlatform(b.platform), sboms.packages);
      statements.push(...sboms.statements);
    }
    if (inputs.request.provenance) statements.push(provenanceStatement(b, inputs.request.provenance, subjectDescriptor.digest, facts));
    const entry: { image: Descriptor; attestation?: Descriptor } = { image: subjectDescriptor };
    if (statements.length > 0 && inputs.attestTo !== 'referrers') entry.attestation = attestationManifest(subjectDescriptor, statements, blobs);
    if (inputs.attestTo !== 'index') {
      const subject = b.serialized.manifest.descriptor;
      const created = facts.created.toISOString().replace(/\.\d{3}Z$/, 'Z');
      for (const s of statements) referrers.push({ subject, artifact: referrerManifest(subject, s, blobs, created) });
    }
    entries.push(entry);
  }
  const top =
    inputs.attestTo === 'referrers' && builds.length === 1 && !needsIndex(inputs.annotations)
      ? builds[0]!.serialized.manifest.descriptor
      : indexWithAttestations(entries, blobs, annotationsFor(inputs.annotations, 'index'));
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
