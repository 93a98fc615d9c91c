import { StrataError } from '../errors/index.js';
import { parseDigest, type Digest } from '../digest/index.js';
import { isIndexMediaType, isManifestMediaType, MediaType } from './media-types.js';
import type { Descriptor, ImageConfig, Index, Manifest } from './types.js';

function fail(what: string, why: string, code: 'E_MANIFEST_INVALID' | 'E_CONFIG_INVALID' = 'E_MANIFEST_INVALID'): never {
  throw new StrataError(code, `${what}: ${why}`);
}

function parseJsonObject(bytes: Uint8Array | string, what: string, code: 'E_MANIFEST_INVALID' | 'E_CONFIG_INVALID'): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8'));
  } catch (cause) {
    fail(what, `not valid JSON (${(cause as Error).message})`, code);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(what, 'not a JSON object', code);
  return value as Record<string, unknown>;
}

export function checkDescriptor(value: unknown, what: string): Descriptor {
  if (value === null || typeof value !== 'object') fail(what, 'descriptor is not an object');
  const d = value as Record<string, unknown>;
  if (typeof d.mediaType !== 'string' || d.mediaType === '') fail(what, 'descriptor has no mediaType');
  if (typeof d.digest !== 'string') fail(what, 'descriptor has no digest');
  try {
    parseDigest(d.digest);
  } catch (cause) {
    fail(what, (cause as Error).message);
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) fail(what, `descriptor ${d.digest} has an invalid size`);
  return value as Descriptor;
}

export type ParsedManifest = { kind: 'manifest'; manifest: Manifest; mediaType: string } | { kind: 'index'; index: Index; mediaType: string };

/**
 * Parses a manifest or index from the exact bytes received. `contentType` (a registry's header or a
 * descriptor's mediaType) is used when the document itself has no mediaType field.
 */
export function parseManifestOrIndex(bytes: Uint8Array | string, what: string, contentType?: string): ParsedManifest {
  const doc = parseJsonObject(bytes, what, 'E_MANIFEST_INVALID');
  if (doc.schemaVersion !== 2) fail(what, `unsupported schemaVersion ${JSON.stringify(doc.schemaVersion)} (only 2 is supported)`);
  const declared = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  const mediaType =
    declared ??
    (isIndexMediaType(contentType) || isManifestMediaType(contentType) ? contentType : undefined) ??
    (Array.isArray(doc.manifests) ? MediaType.OciIndex : MediaType.OciManifest);
  // The checked fields are put back over the document, so its type comes from the checks; every other field
  // stays as it was read (the same keys in the same order, so re-encoding it changes nothing).
  if (isIndexMediaType(mediaType)) {
    if (!Array.isArray(doc.manifests)) fail(what, 'index has no manifests array');
    const manifests = doc.manifests.map((m, i) => checkDescriptor(m, `${what}: manifests[${i}]`));
    const index: Index = { ...doc, schemaVersion: 2, manifests };
    return { kind: 'index', index, mediaType };
  }
  if (!isManifestMediaType(mediaType)) fail(what, `unsupported media type ${mediaType}`);
  const config = checkDescriptor(doc.config, `${what}: config`);
  if (!Array.isArray(doc.layers)) fail(what, 'manifest has no layers array');
  const layers = doc.layers.map((l, i) => checkDescriptor(l, `${what}: layers[${i}]`));
  const manifest: Manifest = { ...doc, schemaVersion: 2, config, layers };
  return { kind: 'manifest', manifest, mediaType };
}

export function parseImageConfig(bytes: Uint8Array | string, what: string): ImageConfig {
  const doc = parseJsonObject(bytes, what, 'E_CONFIG_INVALID');
  if (typeof doc.architecture !== 'string' || typeof doc.os !== 'string') fail(what, 'config has no architecture or os', 'E_CONFIG_INVALID');
  const rootfs = doc.rootfs as { type?: unknown; diff_ids?: unknown } | undefined;
  if (rootfs?.type !== 'layers' || !Array.isArray(rootfs.diff_ids)) fail(what, 'config has no rootfs.diff_ids', 'E_CONFIG_INVALID');
  const diffIds = rootfs.diff_ids.map((id: unknown) => checkedDiffId(id, what));
  const config: ImageConfig = { ...doc, architecture: doc.architecture, os: doc.os, rootfs: { ...rootfs, type: 'layers', diff_ids: diffIds } };
  return config;
}

function checkedDiffId(id: unknown, what: string): Digest {
  if (typeof id !== 'string') fail(what, 'rootfs.diff_ids holds a non-string', 'E_CONFIG_INVALID');
  try {
    return parseDigest(id);
  } catch (cause) {
    fail(what, (cause as Error).message, 'E_CONFIG_INVALID');
  }
}
