import { StrataError } from '../errors/index.js';
import { imagePlatform, type Image } from '../image/index.js';
import { digestOf } from '../digest/index.js';
import { MediaType, canonicalJsonBytes, formatPlatform, parsePlatform, type Annotations, type Descriptor, type Index, type Platform } from '../oci/index.js';
import type { MemoryBlobReader } from '../store/index.js';

export type AnnotationTarget = 'manifest' | 'index' | 'manifest-descriptor' | 'index-descriptor';

const TARGETS: readonly AnnotationTarget[] = ['manifest', 'index', 'manifest-descriptor', 'index-descriptor'];

export interface AnnotationSpec {
  targets: AnnotationTarget[];
  /** Only for manifests (and their descriptors) of this platform. */
  platform?: string | undefined;
  key: string;
  value: string;
}

/**
 * `--annotation` as buildx takes it: `KEY=VALUE` (on the image manifests), or
 * `TYPE[,TYPE…][PLATFORM]:KEY=VALUE` with types manifest, index, manifest-descriptor and
 * index-descriptor, e.g. `index:org.opencontainers.image.title=app` or
 * `manifest[linux/arm64]:com.example.arch=arm`. As in buildx, what comes before the first `=` is split
 * at its first `:` into types and key.
 */
export function parseAnnotation(text: string): AnnotationSpec {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new StrataError('E_USAGE', `--annotation "${text}": expected [TYPE:]KEY=VALUE`);
  const head = text.slice(0, eq);
  const value = text.slice(eq + 1);
  const colon = head.indexOf(':');
  if (colon < 0) return { targets: ['manifest'], key: head.trim(), value };
  let types = head.slice(0, colon).trim();
  const key = head.slice(colon + 1).trim();
  if (key === '') throw new StrataError('E_USAGE', `--annotation "${text}": the key is empty`);
  let platform: string | undefined;
  const bracket = /^(.*)\[([^\]]+)\]$/.exec(types);
  if (bracket) {
    types = bracket[1]!;
    platform = formatPlatform(parsePlatform(bracket[2]!.trim()));
  }
  const targets = types
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean) as AnnotationTarget[];
  if (targets.length === 0) throw new StrataError('E_USAGE', `--annotation "${text}": no type before ":"`);
  for (const t of targets) {
    if (!TARGETS.includes(t)) throw new StrataError('E_USAGE', `--annotation "${text}": unknown type "${t}"`, { hint: `types: ${TARGETS.join(', ')}` });
  }
  if (platform !== undefined && targets.some((t) => t === 'index' || t === 'index-descriptor')) {
    throw new StrataError('E_USAGE', `--annotation "${text}": a platform applies to manifest and manifest-descriptor annotations only`);
  }
  return { targets, platform, key, value };
}

/** The annotations of one kind (and, for manifests, one platform) the specs give; later ones win. */
export function annotationsFor(specs: readonly AnnotationSpec[], target: AnnotationTarget, platform?: Platform): Annotations | undefined {
  const wanted = platform === undefined ? undefined : formatPlatform(platform);
  const out: Annotations = {};
  for (const s of specs) {
    if (!s.targets.includes(target)) continue;
    if (s.platform !== undefined && s.platform !== wanted) continue;
    out[s.key] = s.value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Whether the specs ask for anything only an index can carry. */
export function needsIndex(specs: readonly AnnotationSpec[]): boolean {
  return specs.some((s) => s.targets.includes('index') || s.targets.includes('manifest-descriptor'));
}

/** The image with its `manifest` annotations (those for its platform included) added. */
export function annotateManifest(image: Image, specs: readonly AnnotationSpec[]): Image {
  const extra = annotationsFor(specs, 'manifest', imagePlatform(image));
  return extra === undefined ? image : { ...image, annotations: { ...(image.annotations ?? {}), ...extra } };
}

/** An image manifest's entry in an index: its platform, and its `manifest-descriptor` annotations. */
export function indexEntry(manifest: Descriptor, image: Image, specs: readonly AnnotationSpec[]): Descriptor {
  const platform = imagePlatform(image);
  const extra = annotationsFor(specs, 'manifest-descriptor', platform);
  return { ...manifest, ...(extra ? { annotations: { ...(manifest.annotations ?? {}), ...extra } } : {}), platform };
}

/**
 * One image's top descriptor with the `--annotation`s that are not on its manifest: wrapped in an
 * index when index or manifest-descriptor annotations ask for one (its bytes go to `memory`), and
 * carrying the index-descriptor annotations (which OCI layouts and the local store keep).
 */
export function annotatedTop(manifest: Descriptor, image: Image, specs: readonly AnnotationSpec[], memory: MemoryBlobReader): Descriptor {
  let top = manifest;
  if (needsIndex(specs)) {
    const indexAnnotations = annotationsFor(specs, 'index');
    const index: Index = {
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [indexEntry(manifest, image, specs)],
      ...(indexAnnotations ? { annotations: indexAnnotations } : {}),
    };
    const bytes = canonicalJsonBytes(index);
    top = { mediaType: MediaType.OciIndex, digest: digestOf(bytes), size: bytes.byteLength };
    memory.add(top.digest, bytes);
  }
  const descriptorAnnotations = annotationsFor(specs, 'index-descriptor');
  return descriptorAnnotations ? { ...top, annotations: descriptorAnnotations } : top;
}
