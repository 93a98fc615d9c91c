import { StrataError } from '../errors/index.js';
import {
  canonicalJsonBytes,
  formatPlatform,
  isAttestationPlatform,
  parseImageConfig,
  parseManifestOrIndex,
  type Descriptor,
  type ImageConfig,
  type Manifest,
} from '../oci/index.js';
import type { BlobReader } from '../store/index.js';
import { compareTrees, type FileChange } from './files.js';
import { describeReasons, list } from './reasons.js';
import { MergedTree } from './tree.js';

/** One side of a diff: an image (manifest or index) and where its blobs are read from. */
export interface DiffSide {
  name: string;
  top: Descriptor;
  reader: BlobReader;
}

export interface FieldChange {
  field: string;
  a?: unknown;
  b?: unknown;
}

export interface LayerSide {
  digest: string;
  mediaType: string;
  size: number;
  diffId?: string | undefined;
}

export interface LayerComparison {
  /** 1-based. */
  layer: number;
  a?: LayerSide | undefined;
  b?: LayerSide | undefined;
  verdict: 'same' | 'same-content' | 'different' | 'only-a' | 'only-b';
}

export interface PlatformDiff {
  platform: string;
  a: { manifest: string; config: string };
  b: { manifest: string; config: string };
  identical: boolean;
  manifest: FieldChange[];
  config: FieldChange[];
  layers: LayerComparison[];
  /** Undefined when the layers' contents (diffIDs) are all the same and the filesystems were not read. */
  files?: FileChange[] | undefined;
  reasons: string[];
}

export interface ImageDiff {
  a: { name: string; digest: string; mediaType: string };
  b: { name: string; digest: string; mediaType: string };
  identical: boolean;
  /** Differences of the indexes themselves (media type, annotations). */
  index: FieldChange[];
  onlyInA: string[];
  onlyInB: string[];
  platforms: PlatformDiff[];
  /** Why the digests differ, in plain words: every platform's reasons, prefixed with the platform when there are several. */
  reasons: string[];
}

export interface DiffOptions {
  signal?: AbortSignal | undefined;
  /** Told before each image's layers are read (for progress). */
  onReadLayers?: ((side: 'a' | 'b', platform: string, count: number) => void) | undefined;
}

interface PlatformEntry {
  platform: string;
  descriptor: Descriptor;
}

interface SideDoc {
  kind: 'manifest' | 'index';
  mediaType: string;
  annotations?: Record<string, string> | undefined;
  entries: PlatformEntry[];
}

/**
 * Compares two images platform by platform: the index, each manifest's fields, the configs, the layers
 * (by digest and by diffID) and, when the layers' contents differ, the merged filesystems path by path,
 * read from the layers without unpacking them. Then says why the digests differ.
 */
export async function diffImages(a: DiffSide, b: DiffSide, options: DiffOptions = {}): Promise<ImageDiff> {
  const docA = await readSide(a, options.signal);
  const docB = await readSide(b, options.signal);
  const result: ImageDiff = {
    a: { name: a.name, digest: a.top.digest, mediaType: docA.mediaType },
    b: { name: b.name, digest: b.top.digest, mediaType: docB.mediaType },
    identical: a.top.digest === b.top.digest,
    index: [],
    onlyInA: [],
    onlyInB: [],
    platforms: [],
    reasons: [],
  };
  if (result.identical) {
    result.reasons.push('identical: both are the same manifest digest');
    return result;
  }
  if (docA.kind === 'index' || docB.kind === 'index') {
    if (docA.mediaType !== docB.mediaType) result.index.push({ field: 'mediaType', a: docA.mediaType, b: docB.mediaType });
    if (docA.kind === 'index' && docB.kind === 'index') pushIfDifferent(result.index, 'annotations', docA.annotations, docB.annotations);
  }
  const pairs = pairPlatforms(docA, docB, result);
  for (const [ea, eb] of pairs) {
    result.platforms.push(await diffPlatform(ea, eb, a.reader, b.reader, options));
  }
  const several = pairs.length > 1 || result.onlyInA.length + result.onlyInB.length > 0;
  if (result.index.length > 0) result.reasons.push(`the indexes differ in ${list(result.index.map((f) => f.field))}`);
  for (const p of result.onlyInA) result.reasons.push(`platform ${p} is only in A`);
  for (const p of result.onlyInB) result.reasons.push(`platform ${p} is only in B`);
  for (const p of result.platforms) {
    if (p.identical) continue;
    for (const reason of p.reasons) result.reasons.push(several ? `${p.platform}: ${reason}` : reason);
  }
  if (result.reasons.length === 0) result.reasons.push('the index bytes differ (same platforms, same manifests)');
  return result;
}

async function readSide(side: DiffSide, signal: AbortSignal | undefined): Promise<SideDoc> {
  const bytes = await side.reader.readBlob(side.top, signal === undefined ? {} : { signal });
  const parsed = parseManifestOrIndex(bytes, side.name, side.top.mediaType);
  if (parsed.kind === 'index') {
    const entries = parsed.index.manifests
      .filter((d) => !isAttestationPlatform(d.platform))
      .map((d, i) => ({ platform: d.platform ? formatPlatform(d.platform) : `#${i}`, descriptor: d }));
    return { kind: 'index', mediaType: parsed.mediaType, annotations: parsed.index.annotations, entries };
  }
  const config = parseImageConfig(await side.reader.readBlob(parsed.manifest.config, signal === undefined ? {} : { signal }), `config of ${side.name}`);
  const platform = formatPlatform({ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) });
  return { kind: 'manifest', mediaType: parsed.mediaType, entries: [{ platform, descriptor: side.top }] };
}

/** Two single images are compared whatever their platforms; otherwise images pair by platform. */
function pairPlatforms(a: SideDoc, b: SideDoc, result: ImageDiff): Array<[PlatformEntry, PlatformEntry]> {
  if (a.kind === 'manifest' && b.kind === 'manifest') return [[a.entries[0]!, b.entries[0]!]];
  const pairs: Array<[PlatformEntry, PlatformEntry]> = [];
  const inB = new Map(b.entries.map((e) => [e.platform, e]));
  for (const ea of a.entries) {
    const eb = inB.get(ea.platform);
    if (eb === undefined) result.onlyInA.push(ea.platform);
    else {
      pairs.push([ea, eb]);
      inB.delete(ea.platform);
    }
  }
  result.onlyInB.push(...inB.keys());
  return pairs;
}

async function diffPlatform(ea: PlatformEntry, eb: PlatformEntry, readerA: BlobReader, readerB: BlobReader, options: DiffOptions): Promise<PlatformDiff> {
  const read = options.signal === undefined ? {} : { signal: options.signal };
  const [ma, mb] = await Promise.all([readManifest(ea.descriptor, readerA, read), readManifest(eb.descriptor, readerB, read)]);
  const [ca, cb] = await Promise.all([
    readerA.readBlob(ma.manifest.config, read).then((bytes) => parseImageConfig(bytes, `config ${ma.manifest.config.digest}`)),
    readerB.readBlob(mb.manifest.config, read).then((bytes) => parseImageConfig(bytes, `config ${mb.manifest.config.digest}`)),
  ]);
  const diff: PlatformDiff = {
    platform: ea.platform === eb.platform ? ea.platform : `${ea.platform} vs ${eb.platform}`,
    a: { manifest: ea.descriptor.digest, config: ma.manifest.config.digest },
    b: { manifest: eb.descriptor.digest, config: mb.manifest.config.digest },
    identical: ea.descriptor.digest === eb.descriptor.digest,
    manifest: [],
    config: [],
    layers: [],
    reasons: [],
  };
  if (diff.identical) return diff;
  diff.manifest = manifestChanges(ma.mediaType, ma.manifest, mb.mediaType, mb.manifest);
  diff.config = configChanges(ca, cb);
  diff.layers = compareLayers(ma.manifest.layers, ca, mb.manifest.layers, cb);
  const sameContent = diff.layers.every((l) => l.verdict === 'same' || l.verdict === 'same-content');
  if (!sameContent) {
    options.onReadLayers?.('a', diff.platform, ma.manifest.layers.length);
    const ta = await MergedTree.read(ma.manifest.layers, readerA, { hashContent: true, signal: options.signal });
    options.onReadLayers?.('b', diff.platform, mb.manifest.layers.length);
    const tb = await MergedTree.read(mb.manifest.layers, readerB, { hashContent: true, signal: options.signal });
    diff.files = compareTrees(ta, tb);
  }
  diff.reasons = describeReasons(diff);
  return diff;
}

async function readManifest(d: Descriptor, reader: BlobReader, read: { signal?: AbortSignal }): Promise<{ mediaType: string; manifest: Manifest }> {
  const parsed = parseManifestOrIndex(await reader.readBlob(d, read), `manifest ${d.digest}`, d.mediaType);
  if (parsed.kind !== 'manifest') throw new StrataError('E_MANIFEST_INVALID', `manifest ${d.digest}: an index nested in an index is not compared`);
  return { mediaType: parsed.mediaType, manifest: parsed.manifest };
}

function manifestChanges(typeA: string, a: Manifest, typeB: string, b: Manifest): FieldChange[] {
  const changes: FieldChange[] = [];
  if (typeA !== typeB) changes.push({ field: 'mediaType', a: typeA, b: typeB });
  pushIfDifferent(changes, 'config.mediaType', a.config.mediaType, b.config.mediaType);
  pushIfDifferent(changes, 'artifactType', a.artifactType, b.artifactType);
  pushIfDifferent(changes, 'annotations', a.annotations, b.annotations);
  pushIfDifferent(changes, 'subject', a.subject?.digest, b.subject?.digest);
  if (a.layers.length !== b.layers.length) changes.push({ field: 'layers', a: a.layers.length, b: b.layers.length });
  return changes;
}

const TOP_FIELDS = ['created', 'author', 'architecture', 'os', 'os.version', 'os.features', 'variant'] as const;

/** Config fields that differ; `rootfs` is left to the layer comparison. Container config fields go by their own names (Labels). */
export function configChanges(a: ImageConfig, b: ImageConfig): FieldChange[] {
  const changes: FieldChange[] = [];
  for (const field of TOP_FIELDS) pushIfDifferent(changes, field, a[field], b[field]);
  const ca = (a.config ?? {}) as Record<string, unknown>;
  const cb = (b.config ?? {}) as Record<string, unknown>;
  for (const field of [...new Set([...Object.keys(ca), ...Object.keys(cb)])].sort()) pushIfDifferent(changes, field, ca[field], cb[field]);
  const ha = a.history ?? [];
  const hb = b.history ?? [];
  for (let i = 0; i < Math.max(ha.length, hb.length); i++) pushIfDifferent(changes, `history[${i}]`, ha[i], hb[i]);
  return changes;
}

function compareLayers(la: readonly Descriptor[], ca: ImageConfig, lb: readonly Descriptor[], cb: ImageConfig): LayerComparison[] {
  const out: LayerComparison[] = [];
  const side = (d: Descriptor | undefined, c: ImageConfig, i: number): LayerSide | undefined =>
    d === undefined ? undefined : { digest: d.digest, mediaType: d.mediaType, size: d.size, diffId: c.rootfs.diff_ids[i] };
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    const a = side(la[i], ca, i);
    const b = side(lb[i], cb, i);
    const verdict: LayerComparison['verdict'] =
      a === undefined
        ? 'only-b'
        : b === undefined
          ? 'only-a'
          : a.digest === b.digest
            ? 'same'
            : a.diffId !== undefined && a.diffId === b.diffId
              ? 'same-content'
              : 'different';
    out.push({ layer: i + 1, a, b, verdict });
  }
  return out;
}

function pushIfDifferent(changes: FieldChange[], field: string, a: unknown, b: unknown): void {
  if (same(a, b)) return;
  const change: FieldChange = { field };
  if (a !== undefined) change.a = a;
  if (b !== undefined) change.b = b;
  changes.push(change);
}

function same(a: unknown, b: unknown): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.from(canonicalJsonBytes(a)).equals(Buffer.from(canonicalJsonBytes(b)));
}
