import { resolve } from 'node:path';
import { StrataError, isStrataError } from '../errors/index.js';
import { digestOf, parseDigest, type Digest } from '../digest/index.js';
import type { StepOutcome, ImportedStepCache, LayeredStepCache } from '../build/index.js';
import type { Image } from '../image/index.js';
import { MediaType, canonicalJsonBytes, parseManifestOrIndex, type Descriptor, type Manifest } from '../oci/index.js';
import { writeToOciLayout } from '../output/index.js';
import { parseImageReference, type ImageReference } from '../ref/index.js';
import { CompositeBlobReader, MemoryBlobReader, OciLayout, type BlobIngester, type BlobReader } from '../store/index.js';
import { walkLayerTree, writeLayer } from '../layer/index.js';
import {
  type RegistryIo,
  reportingReader,
  isRegistryConnection,
  noteReadFrom,
  registryTarget,
  type RegistryConnection,
  pushToRegistry,
} from '../transports/index.js';

export const BUILD_CACHE_ARTIFACT_TYPE = 'application/vnd.strata.build-cache.v1+json';
export const BUILD_CACHE_CONFIG_TYPE = 'application/vnd.strata.build-cache.config.v1+json';
/** The name a local cache's manifest gets in its layout's index.json. */
export const LOCAL_CACHE_TAG = 'cache';
const FORMAT_VERSION = 1;

export type CacheMode = 'min' | 'max';
/** `--cache-from`, as buildx takes it. */
export type CacheImportSpec = { type: 'registry'; ref: string } | { type: 'local'; src: string };
/** `--cache-to`, as buildx takes it. */
export type CacheExportSpec = ({ type: 'registry'; ref: string } | { type: 'local'; dest: string }) & {
  mode: CacheMode;
  /** `ignore-error=true`: a failed export is a warning, not a failed build. */
  ignoreError?: boolean;
  /** `cache-mounts=true`: the contents of the RUN --mount=type=cache directories travel too (never an image layer). */
  cacheMounts?: boolean;
};

/**
 * The config blob of a cache artifact: every exported step's outcome by its key. An outcome's `createdAt`
 * (when the step was run) came in later within schema version 1: readers of either age ignore what they
 * do not know, and an outcome without it is dated by its history entry.
 */
interface CacheConfig {
  schemaVersion: number;
  steps: Record<string, StepOutcome>;
  /** Cache mounts' contents by mount id: a layer of the artifact each. */
  mounts?: Record<string, Descriptor>;
}

/** buildx attributes that mean nothing to strata's format but are accepted, so shared CI scripts keep working. */
const IGNORED_ATTRS = new Set(['oci-mediatypes', 'image-manifest', 'compression', 'compression-level', 'force-compression']);

function attributes(text: string, flag: string): Map<string, string> {
  const attrs = new Map<string, string>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0)
      throw new StrataError('E_USAGE', `${flag} "${text}": "${part}" is not KEY=VALUE`, {
        hint: `write ${flag} type=registry,ref=REPO:TAG or type=local,${flag === '--cache-to' ? 'dest' : 'src'}=DIR`,
      });
    attrs.set(
      part.slice(0, eq).trim().toLowerCase(),
      part
        .slice(eq + 1)
        .trim()
        .replace(/^"(.*)"$/, '$1'),
    );
  }
  return attrs;
}

function checkKnown(attrs: Map<string, string>, known: readonly string[], flag: string, text: string): void {
  for (const key of attrs.keys()) {
    if (!known.includes(key) && !IGNORED_ATTRS.has(key)) {
      throw new StrataError('E_USAGE', `${flag} "${text}": unknown attribute "${key}"`, { hint: `attributes: ${known.join(', ')}` });
    }
  }
}

function checkRef(ref: string | undefined, flag: string, text: string, allowDigest: boolean): string {
  if (!ref) throw new StrataError('E_USAGE', `${flag} "${text}": type=registry needs ref=REPO[:TAG]`);
  let parsed: ImageReference;
  try {
    parsed = parseImageReference(ref);
  } catch (cause) {
    throw new StrataError('E_REF_INVALID', `${flag} "${text}": ${(cause as Error).message}`, { cause });
  }
  if (!allowDigest && parsed.digest !== undefined) {
    throw new StrataError('E_USAGE', `${flag} "${text}": a cache is written under a tag, not a digest`, { hint: 'give ref=REPO:TAG' });
  }
  return ref;
}

function unknownType(type: string, flag: string, text: string): StrataError {
  return new StrataError('E_USAGE', `${flag} "${text}": cache type "${type}" is not supported`, { hint: 'types: registry, local' });
}

/** Parses `--cache-from`: `type=registry,ref=REF`, `type=local,src=DIR`, or a bare REF (type=registry). */
export function parseCacheImport(text: string, cwd = '.'): CacheImportSpec {
  const flag = '--cache-from';
  if (!text.includes('=')) return { type: 'registry', ref: checkRef(text.trim(), flag, text, true) };
  const attrs = attributes(text, flag);
  const type = attrs.get('type') ?? 'registry';
  switch (type) {
    case 'registry':
      checkKnown(attrs, ['type', 'ref'], flag, text);
      return { type, ref: checkRef(attrs.get('ref'), flag, text, true) };
    case 'local': {
      checkKnown(attrs, ['type', 'src'], flag, text);
      const src = attrs.get('src');
      if (!src) throw new StrataError('E_USAGE', `${flag} "${text}": type=local needs src=DIR`);
      return { type, src: resolve(cwd, src) };
    }
    default:
      throw unknownType(type, flag, text);
  }
}

/** Parses `--cache-to`: `type=registry,ref=REPO:TAG[,mode=min|max]` or `type=local,dest=DIR[,mode=…]`. */
export function parseCacheExport(text: string, cwd = '.'): CacheExportSpec {
  const flag = '--cache-to';
  if (!text.includes('=')) return { type: 'registry', ref: checkRef(text.trim(), flag, text, false), mode: 'min' };
  const attrs = attributes(text, flag);
  const type = attrs.get('type') ?? 'registry';
  if (type !== 'registry' && type !== 'local') throw unknownType(type, flag, text);
  const modeText = attrs.get('mode') ?? 'min';
  if (modeText !== 'min' && modeText !== 'max') throw new StrataError('E_USAGE', `${flag} "${text}": mode must be min or max, got "${modeText}"`);
  const mode: CacheMode = modeText;
  const ignoreText = attrs.get('ignore-error') ?? 'false';
  if (ignoreText !== 'true' && ignoreText !== 'false') throw new StrataError('E_USAGE', `${flag} "${text}": ignore-error must be true or false`);
  const mountsText = attrs.get('cache-mounts') ?? 'false';
  if (mountsText !== 'true' && mountsText !== 'false') throw new StrataError('E_USAGE', `${flag} "${text}": cache-mounts must be true or false`);
  const common = { mode, ...(ignoreText === 'true' ? { ignoreError: true } : {}), ...(mountsText === 'true' ? { cacheMounts: true } : {}) };
  switch (type) {
    case 'registry':
      checkKnown(attrs, ['type', 'ref', 'mode', 'ignore-error', 'cache-mounts'], flag, text);
      return { type, ref: checkRef(attrs.get('ref'), flag, text, false), ...common };
    case 'local': {
      checkKnown(attrs, ['type', 'dest', 'mode', 'ignore-error', 'cache-mounts'], flag, text);
      const dest = attrs.get('dest');
      if (!dest) throw new StrataError('E_USAGE', `${flag} "${text}": type=local needs dest=DIR`);
      return { type, dest: resolve(cwd, dest), ...common };
    }
  }
}

/** Checks, before any build work, that the specs can be served: registry caches need registry access. */
export function checkCacheSpecs(specs: readonly (CacheImportSpec | CacheExportSpec)[], io: RegistryIo): void {
  if (specs.some((s) => s.type === 'registry') && !isRegistryConnection(io)) {
    throw new StrataError('E_TRANSPORT_INVALID', 'a registry build cache needs registry access, which is not configured here');
  }
}

function describeImport(spec: CacheImportSpec): string {
  return spec.type === 'registry' ? `registry cache ${spec.ref}` : `local cache ${spec.src}`;
}

/**
 * Opens every `--cache-from`. Only the small manifest and config are read; layers stay where they
 * are until something needs their bytes. A cache that is missing or unreadable is a warning, as
 * with buildx: the build goes on without it.
 */
export async function importBuildCaches(
  specs: readonly CacheImportSpec[],
  io: RegistryIo,
  warn: (message: string) => void,
  signal?: AbortSignal,
): Promise<ImportedStepCache[]> {
  const out: ImportedStepCache[] = [];
  for (const spec of specs) {
    const description = describeImport(spec);
    try {
      const opened = spec.type === 'registry' ? await openRegistryCache(io as RegistryConnection, spec.ref, signal) : await openLocalCache(spec.src);
      const { outcomes, mounts } = readCacheConfig(opened.manifest, opened.config, description, warn);
      out.push({ description, outcomes, reader: opened.reader, ...(mounts.size ? { mounts } : {}) });
    } catch (cause) {
      if (isStrataError(cause, 'E_ABORTED') || signal?.aborted) throw cause;
      const why = cause instanceof Error ? cause.message : String(cause);
      warn(`${description} not imported: ${why}`);
    }
  }
  return out;
}

interface OpenedCache {
  manifest: Manifest;
  config: Buffer;
  reader: BlobReader;
}

function cacheManifest(bytes: Uint8Array, mediaType: string | undefined, where: string): Manifest {
  const parsed = parseManifestOrIndex(bytes, where, mediaType);
  if (
    parsed.kind !== 'manifest' ||
    parsed.manifest.artifactType !== BUILD_CACHE_ARTIFACT_TYPE ||
    parsed.manifest.config.mediaType !== BUILD_CACHE_CONFIG_TYPE
  ) {
    throw new StrataError('E_MANIFEST_INVALID', `${where} is not a strata build cache (artifactType ${BUILD_CACHE_ARTIFACT_TYPE})`);
  }
  return parsed.manifest;
}

async function openRegistryCache(conn: RegistryConnection, ref: string, signal: AbortSignal | undefined): Promise<OpenedCache> {
  const target = registryTarget(conn, ref);
  const fetched = await target.client.getManifest(target.repository, target.reference, { signal });
  const manifest = cacheManifest(fetched.bytes, fetched.mediaType, target.description);
  const reader = reportingReader(target.client, target.repository, conn.progress);
  const config = await reader.readBlob(manifest.config, { signal });
  // The cache's repository becomes a mount source: a pushed image reuses its layers without a download.
  noteReadFrom(conn, target.client.registry, target.repository);
  return { manifest, config, reader };
}

async function openLocalCache(dir: string): Promise<OpenedCache> {
  const layout = await OciLayout.open(dir);
  const root = await layout.resolve(LOCAL_CACHE_TAG);
  const manifest = cacheManifest(await layout.blobs.readBlob(root), root.mediaType, `${dir} (${LOCAL_CACHE_TAG})`);
  return { manifest, config: await layout.blobs.readBlob(manifest.config), reader: layout.blobs };
}

function isOutcome(value: unknown, layers: ReadonlySet<string>): value is StepOutcome {
  const o = value as Partial<StepOutcome> | null;
  if (!o || typeof o !== 'object' || !o.layer || typeof o.history !== 'object' || typeof o.config !== 'object' || o.config === null) return false;
  const d = o.layer.descriptor as Partial<Descriptor> | undefined;
  if (!d || typeof d.mediaType !== 'string' || typeof d.size !== 'number' || typeof d.digest !== 'string') return false;
  try {
    parseDigest(d.digest);
    parseDigest(o.layer.diffId);
  } catch {
    return false;
  }
  // A step whose layer the artifact does not carry could never be read back.
  return layers.has(d.digest);
}

/**
 * An outcome's `createdAt` as recorded, when it is a time; anything else is dropped, so its age falls back
 * to its history time (as for artifacts written before the time was recorded).
 */
function withCreationTime(outcome: StepOutcome): StepOutcome {
  if (outcome.createdAt === undefined || (typeof outcome.createdAt === 'string' && !Number.isNaN(Date.parse(outcome.createdAt)))) return outcome;
  const { createdAt: _dropped, ...rest } = outcome;
  return rest;
}

function readCacheConfig(
  manifest: Manifest,
  bytes: Buffer,
  description: string,
  warn: (message: string) => void,
): { outcomes: Map<Digest, StepOutcome>; mounts: Map<string, Descriptor> } {
  let config: Partial<CacheConfig>;
  try {
    config = JSON.parse(bytes.toString('utf8')) as Partial<CacheConfig>;
  } catch (cause) {
    throw new StrataError('E_CONFIG_INVALID', `${description}: the cache config is not valid JSON`, { cause });
  }
  if (config.schemaVersion !== FORMAT_VERSION || typeof config.steps !== 'object' || config.steps === null) {
    throw new StrataError('E_CONFIG_INVALID', `${description}: unsupported cache config (schemaVersion ${JSON.stringify(config.schemaVersion)})`, {
      hint: 'export the cache again with this version of strata',
    });
  }
  const layers = new Set(manifest.layers.map((l) => l.digest));
  const outcomes = new Map<Digest, StepOutcome>();
  let skipped = 0;
  for (const [key, outcome] of Object.entries(config.steps)) {
    let digest: Digest;
    try {
      digest = parseDigest(key);
    } catch {
      skipped++;
      continue;
    }
    if (isOutcome(outcome, layers)) outcomes.set(digest, withCreationTime(outcome));
    else skipped++;
  }
  if (skipped) warn(`${description}: ${skipped} damaged step record(s) ignored`);
  const mounts = new Map<string, Descriptor>();
  for (const [id, d] of Object.entries(config.mounts ?? {})) {
    // Only a layer the artifact carries, by the descriptor it lists.
    const listed = manifest.layers.find((l) => l.digest === d?.digest);
    if (listed !== undefined) mounts.set(id, listed);
  }
  return { outcomes, mounts };
}

export interface ExportBuildCacheOptions {
  cache: LayeredStepCache;
  /** The images the build produced (one per platform): mode=min keeps only the steps that made their layers. */
  finals: readonly Image[];
  /** Where layer blobs are read from: the store, the bases, the imported caches. */
  reader: BlobReader;
  io: RegistryIo;
  strataVersion?: string | undefined;
  /** Where cache-mount layers are written (the store): they are read back through `reader`. */
  ingester?: BlobIngester | undefined;
}

/** The cache artifact: a manifest over the config (steps by key) and the layers those steps made. */
export function buildCacheArtifact(
  spec: CacheExportSpec,
  options: Pick<ExportBuildCacheOptions, 'cache' | 'finals' | 'strataVersion'>,
  mounts: Readonly<Record<string, Descriptor>> = {},
): { descriptor: Descriptor; memory: MemoryBlobReader; steps: number } {
  const wanted = spec.mode === 'max' ? undefined : new Set(options.finals.flatMap((i) => i.layers.map((l) => l.descriptor.digest)));
  const steps: Record<string, StepOutcome> = {};
  const layers = new Map<string, Descriptor>();
  for (const [key, outcome] of options.cache.recorded()) {
    if (wanted && !wanted.has(outcome.layer.descriptor.digest)) continue;
    steps[key] = outcome;
    if (!layers.has(outcome.layer.descriptor.digest)) layers.set(outcome.layer.descriptor.digest, outcome.layer.descriptor);
  }
  for (const d of Object.values(mounts)) if (!layers.has(d.digest)) layers.set(d.digest, d);
  const configBytes = canonicalJsonBytes({ schemaVersion: FORMAT_VERSION, steps, ...(Object.keys(mounts).length ? { mounts } : {}) } satisfies CacheConfig);
  const config: Descriptor = { mediaType: BUILD_CACHE_CONFIG_TYPE, digest: digestOf(configBytes), size: configBytes.byteLength };
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: BUILD_CACHE_ARTIFACT_TYPE,
    config,
    layers: [...layers.values()].map((d) => ({ mediaType: d.mediaType, digest: d.digest, size: d.size })),
    annotations: { 'dev.strata.version': options.strataVersion ?? 'unknown', 'dev.strata.cache.mode': spec.mode },
  };
  const bytes = canonicalJsonBytes(manifest);
  const descriptor: Descriptor = { mediaType: MediaType.OciManifest, artifactType: BUILD_CACHE_ARTIFACT_TYPE, digest: digestOf(bytes), size: bytes.byteLength };
  const memory = new MemoryBlobReader().add(config.digest, configBytes).add(descriptor.digest, bytes);
  return { descriptor, memory, steps: Object.keys(steps).length };
}

/**
 * Writes `--cache-to`. To a registry, every blob is HEAD-checked first and mounted from
 * repositories this run read from (bases, imported caches) before anything is uploaded; the
 * manifest goes last. Returns what was written, in words.
 */
export async function exportBuildCache(
  spec: CacheExportSpec,
  options: ExportBuildCacheOptions & { warn?: (message: string) => void },
): Promise<string | undefined> {
  try {
    return await writeBuildCache(spec, options);
  } catch (cause) {
    if (!spec.ignoreError || !options.warn) throw cause;
    options.warn(`build cache not exported (ignore-error=true): ${cause instanceof Error ? cause.message : String(cause)}`);
    return undefined;
  }
}

/** Each cache mount the build used, written as a layer into the store (streamed, like every layer). */
async function cacheMountLayers(spec: CacheExportSpec, options: ExportBuildCacheOptions): Promise<Record<string, Descriptor>> {
  const out: Record<string, Descriptor> = {};
  if (spec.cacheMounts !== true || options.ingester === undefined) return out;
  for (const [id, dir] of [...options.cache.mounts()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const layer = await writeLayer(await walkLayerTree(dir), { compression: 'gzip', mediaTypeFamily: 'oci', ownership: 'keep' }, options.ingester);
    out[id] = { ...layer.descriptor, annotations: { 'dev.strata.cache-mount.id': id } };
  }
  return out;
}

async function writeBuildCache(spec: CacheExportSpec, options: ExportBuildCacheOptions): Promise<string> {
  const artifact = buildCacheArtifact(spec, options, await cacheMountLayers(spec, options));
  const content = { descriptor: artifact.descriptor, reader: new CompositeBlobReader([artifact.memory, options.reader]) };
  if (spec.type === 'registry') {
    await pushToRegistry(options.io as RegistryConnection, spec.ref, content);
    return `build cache (${artifact.steps} steps, mode=${spec.mode}) registry ${spec.ref}`;
  }
  await writeToOciLayout(spec.dest, content, LOCAL_CACHE_TAG);
  return `build cache (${artifact.steps} steps, mode=${spec.mode}) oci layout ${spec.dest}`;
}
